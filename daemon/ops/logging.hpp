// Process-wide logging set-up (spdlog) to stderr, as text or one JSON object per line.
#pragma once

#include <exception>
#include <string>
#include <string_view>

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

// One record exactly as setup_logging's logger prints it, stamped now, without the line end.
// For tests. Throws std::invalid_argument for an invalid `level` (same set as above, not "off").
std::string format_log_line(config::log_format format, const std::string& level,
                            std::string_view message);

// Logs the exception in `error` (if any) as "<what>: <message>" at error level. The completion
// handler of every co_spawn goes through here, so no coroutine fails silently.
void log_exception(std::string_view what, std::exception_ptr error);

}  // namespace archiver::ops
