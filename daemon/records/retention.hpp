// Retention: how long a closed case is kept, by the status it closed with (config
// records.retention), counted from the event that closed it, as S3 event-based holds and
// Microsoft Purview's event-based retention count. A case that re-opens (a dispute) loses its
// date; the next closing starts the clock again. Pure functions, thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace archiver::records {

// A period of calendar years, months and days, or forever.
struct keep_for {
  int years = 0;
  int months = 0;
  int days = 0;
  bool forever = false;
  bool operator==(const keep_for&) const = default;
};

// "6y", "18m", "90d", "1y6m" (units in that order, each at most once), or "forever". nullopt for
// anything else (the caller names the key).
std::optional<keep_for> parse_keep_for(std::string_view text);

// The canonical text of a period: "6y", "1y6m", "forever"; "0d" for an empty one.
std::string to_string(const keep_for& period);

struct retention_policy {
  std::map<std::string, keep_for> by_status;  // final overall_status -> period
  keep_for otherwise{0, 0, 0, true};          // statuses not listed ("default")
};

// Parses records.retention: entries "STATUS=PERIOD", and "default=PERIOD" for statuses not
// listed. Throws std::invalid_argument naming the entry that is malformed, repeated or whose
// period does not parse.
retention_policy parse_retention(const std::vector<std::string>& entries);

// The policy as one line, statuses in order then the default: "CANCELLED=1y COMPLETE=6y
// default=forever" (what the audit trail records when it changes).
std::string to_string(const retention_policy& policy);

// The period for a case that closed with `status`, and the rule that gave it ("COMPLETE=6y" or
// "default=forever").
struct retention_rule {
  keep_for period;
  std::string text;
};
retention_rule rule_for(const retention_policy& policy, std::string_view status);

using utc_time = std::chrono::sys_time<std::chrono::microseconds>;

// When a case closed at `closed_at` may be purged under `period`: the date moved forward by the
// period's years, then months, then days, at the same time of day; nullopt when forever. A date
// the calendar lacks (29 February in a year that has none, 31 April) becomes the first day of the
// next month, so that a case is never kept less than the period (PostgreSQL's interval
// arithmetic would take the last day of the month instead).
std::optional<utc_time> retain_until(utc_time closed_at, const keep_for& period);

// "2032-02-29T13:05:07.000001Z".
std::string to_iso8601(utc_time at);

}  // namespace archiver::records
