// Process-wide logging set-up (spdlog) to stderr, as text or one JSON object per line.
#pragma once

#include <spdlog/common.h>

#include <exception>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace archiver::ops {

// Installs the default logger "certn-archiver" writing to stderr. `level` is one of
// trace|debug|info|warn|error|critical|off; otherwise throws std::invalid_argument whose what()
// is "log.level: ..." (config_error is not thrown: archiver_ops does not link archiver_config).
// Timestamps are UTC. Text lines look like
//   2026-11-28T15:00:00.123Z info message
// with control characters in the message escaped (\n, \xNN) so one record stays one line.
// JSON lines look like
//   {"ts":"2026-11-28T15:00:00.123Z","level":"info","logger":"certn-archiver","msg":"..."}
// with the message escaped as a JSON string (invalid UTF-8 becomes U+FFFD), so every line is
// valid JSON whatever was logged. Callers never log secrets, signatures or API keys.
// Not thread-safe with itself: call once at start-up, before other threads log.
void setup_logging(config::log_format format, const std::string& level);
// Changes the default logger's level (a reload of log.level). Throws std::invalid_argument for
// an unknown level (config validation has refused it before).
void set_log_level(const std::string& level);

// With log_format::journal, records go to systemd-journald (sd_journal_send): MESSAGE, PRIORITY,
// SYSLOG_IDENTIFIER=certn-archiver and the record's fields, upper-cased (JOB_ID=42).

// What a record is about, beside its text: a JSON key of the line ("job_id":"42") and a journald
// field (JOB_ID=42); the text format shows the message only. Names are lower-case
// [a-z0-9_]; values are never secrets; an empty value leaves the field out.
struct log_field {
  std::string_view name;
  std::string_view value;
};

// Logs `message` at `level` with `fields` attached to this one record.
void log_with(spdlog::level::level_enum level, std::initializer_list<log_field> fields,
              std::string_view message);

// One record exactly as setup_logging's logger prints it (text or json), stamped now, without
// the line end. For tests. Throws std::invalid_argument for an invalid `level` (same set as
// above, not "off").
std::string format_log_line(config::log_format format, const std::string& level,
                            std::string_view message, std::initializer_list<log_field> fields = {});

// The journald fields of one record ("MESSAGE=...", "PRIORITY=6", ...), as the journal format
// sends them. For tests.
std::vector<std::string> journal_fields(spdlog::level::level_enum level, std::string_view message,
                                        std::initializer_list<log_field> fields);

// Logs the exception in `error` (if any) as "<what>: <message>" at error level. The completion
// handler of every co_spawn goes through here, so no coroutine fails silently.
void log_exception(std::string_view what, std::exception_ptr error);

}  // namespace archiver::ops
