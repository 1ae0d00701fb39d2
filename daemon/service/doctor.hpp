// `certn-archiver doctor`: checks an installation end to end and says, for each part, ok, warn or
// fail and what to do. This header holds the decisions, pure and unit-tested: how an answer or a
// finding becomes a line, how the report prints, and its exit code. The checks themselves (the
// database, a probe object, one Certn call, the public webhook URL) are in doctor.cpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "certn/api.hpp"

namespace archiver::service::doctor {

enum class status { ok, warn, fail, skip };
const char* to_string(status s);

struct line {
  std::string check;  // "config", "database", "storage", "certn", "webhook", ...
  status result = status::ok;
  std::string detail;  // what was found
  std::string action;  // what to do; empty when there is nothing to do
};

struct report {
  std::vector<line> lines;
  bool failed() const;  // any fail
};

// One line per check: "ok    database   reachable ...", the action after " -> ".
std::string to_text(const report& r);
// {"ok": bool, "checks": [{"check", "status", "detail", "action"}]}
std::string to_json(const report& r);
// 0 when nothing failed (warnings included), else 1.
int exit_code(const report& r);

// The Certn call's outcome: ok without a failure; a 401 names the region's base URL as the
// likely cause besides a wrong or expired key.
line certn_check(const std::optional<certn::call_failure>& failure, std::string_view base_url);

// certn.api_key_created ("" when unset) against `now`.
line key_expiry_check(std::string_view created, std::chrono::system_clock::time_point now);

// A table or sequence of the schema and the privileges the role lacks on it.
struct missing_privileges {
  std::string relation;
  std::vector<std::string> privileges;  // e.g. "INSERT", "USAGE"
};
// What serve needs on a relation: every table SELECT, INSERT, UPDATE and DELETE, except the
// append-only audit_log (SELECT, INSERT) and schema_migrations (SELECT, written by migrate only);
// sequences USAGE. `kind` is pg_class.relkind ('r', 'p' table, 'S' sequence).
std::vector<std::string> privileges_needed(std::string_view relation, char kind);
line privileges_check(const std::vector<missing_privileges>& missing, std::string_view role);

// The answer of the daemon behind --public-url to a POST signed with webhook secret number
// `secret_index` (of `secret_count`) whose body is not an event: 400 means the signature was
// accepted (the body then refused, nothing stored), 401 that the secret differs.
line signature_check(int http_status, std::string_view url, std::size_t secret_index,
                     std::size_t secret_count);

}  // namespace archiver::service::doctor
