// certn-sim's in-memory Certn account: cases, their checks and files, report files and packages,
// with ids drawn from a seeded generator so that a run is reproducible, and the status rules
// (which check statuses a case status implies, when a case may be cancelled). Pure: no I/O; the
// caller sends the webhook events a change returns. Not thread-safe (one io_context thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace certn_sim {

// Microseconds: what the JSON shows, so a timestamp read back compares equal to the original.
using time_point = std::chrono::sys_time<std::chrono::microseconds>;
time_point now_utc();

struct file_record {
  std::string id;
  std::string name;
  std::string content_type;
  std::uint64_t size = 0;
  std::uint64_t content_seed = 0;
  time_point created;
};

struct check_record {
  std::string id;
  std::string type;
  std::string status;
  std::optional<std::string> result;  // set while the check is closed
  time_point created;
  time_point modified;
  std::vector<file_record> files;  // listed by the API only while the check is closed
};

struct case_record {
  std::string id;
  std::string overall_status;
  std::optional<std::string> overall_score;  // set while COMPLETE
  std::string email_address;
  std::string group;
  std::string ordered_by;
  std::vector<std::string> tags;
  time_point created;
  time_point modified;
  std::vector<check_record> checks;
  int revision = 1;  // bumped each time a disputed case closes again (new content to archive)
};

struct report_file {
  std::string id;
  std::string case_id;
  std::string status = "IN_PROGRESS";  // then COMPLETE
  time_point created;
  std::uint64_t number = 0;  // creation order from 0 (the observed shapes alternate on it)
};

// A webhook to send: CASE_STATUS_CHANGED, CHECK_STATUS_CHANGED, CASE_REPORT_READY.
struct event {
  std::string type;
  std::string object_id;
  std::string object_type = "CASE";
  std::string check_id;  // CHECK_STATUS_CHANGED: the check that changed (object_id is its case)
};

struct new_case {
  std::string email_address;
  std::vector<std::string> check_types;
  int files_per_check = 1;
  std::uint64_t file_size = 0;
  std::string status = "APPLICANT_INVITED";
  std::string group = "default";
  std::string ordered_by = "sim-user@example.com";
  std::vector<std::string> tags;
};

// List filters; an empty vector means "any". Within a vector any value may match.
struct case_filter {
  std::vector<std::string> check_types, email_addresses, groups, ordered_by, statuses, tags;
  std::optional<time_point> created_after;   // created >= this
  std::optional<time_point> created_before;  // created <= this
};

bool is_closed_check_status(std::string_view status);
// A case status the control API accepts: Certn's documented ones or any other [A-Z_]+ name.
bool is_valid_status_name(std::string_view status);

// "2026-11-29T04:49:00.123456Z"
std::string iso8601(time_point at);
// "YYYY-MM-DD" (start of that day, or its last microsecond when `end_of_day`) or a date-time with
// optional fraction and a "Z" or "+HH:MM" offset (UTC when none); nullopt when malformed.
std::optional<time_point> parse_iso8601(std::string_view text, bool end_of_day);

class state {
 public:
  explicit state(std::uint64_t seed);

  std::string new_id();  // a version-4 UUID from the seeded generator

  // Creates a case (checks in the status `spec.status` implies, each with its files) and appends
  // CASE_STATUS_CHANGED to `events`.
  case_record& create_case(const new_case& spec, time_point now, std::vector<event>& events);
  case_record* find_case(std::string_view id);
  // Matching cases, newest first (creation order breaks ties).
  std::vector<const case_record*> list(const case_filter& filter) const;

  // Moves the case and the checks the status implies; appends CASE_STATUS_CHANGED when the case
  // status changed and one CHECK_STATUS_CHANGED (object_id = case id, check_id set) per check that
  // changed.
  void set_status(case_record& c, const std::string& status, time_point now,
                  std::vector<event>& events);
  // Cancel is allowed while the case is open and every open check awaits the applicant or
  // fulfilment.
  static bool can_cancel(const case_record& c);
  // A disputed case closes again: new revision (new supplementary information), one new file per
  // check, then COMPLETE.
  void reclose(case_record& c, std::uint64_t file_size, time_point now,
               std::vector<event>& events);

  report_file& create_report(const case_record& c, time_point now);
  report_file* find_report(std::string_view id);
  const file_record* find_file(std::string_view id) const;

  std::size_t case_count() const { return cases_.size(); }

 private:
  void add_file(check_record& check, std::uint64_t size, time_point now);

  std::mt19937_64 random_;
  std::vector<std::unique_ptr<case_record>> cases_;  // creation order; pointers stay valid
  std::unordered_map<std::string, case_record*> cases_by_id_;
  std::unordered_map<std::string, file_record> files_by_id_;
  std::unordered_map<std::string, report_file> reports_by_id_;
};

// The deterministic supplementary_information object of a check at the case's revision.
std::string supplementary_information_json(const case_record& c, const check_record& check);

}  // namespace certn_sim
