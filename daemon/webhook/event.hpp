// A Certn webhook event: parsing and checking of the JSON body, after the signature passed.
// Pure and thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace archiver::webhook {

struct event {
  std::string id;           // from "id", else "event_id"
  std::string event_type;   // e.g. CASE_STATUS_CHANGED; unknown types are kept as they are
  std::string object_id;    // what object_type names: a case, a check or a report file
  std::string object_type;  // e.g. CASE, CHECK, CASE_REPORT_FILE; "" when the body has none
  std::string case_id;      // the case, when the body names it too ("case_id"); else ""
  std::string created;      // "created" as sent, "" when absent; not used for decisions
};

// Either an event or a one-line message saying what is wrong with the body
// ("event_type: missing", "object_id: expected a string", "body: not valid JSON").
struct parsed_event {
  std::optional<event> value;
  std::string error;
};

// Rules: the body is one JSON object (nothing after it); `id` or `event_id` is a non-empty string
// of at most 128 characters from [A-Za-z0-9._:-]; `event_type` is a non-empty string of at most
// 64 characters from [A-Za-z0-9_.-]; `object_id` as `id` (it ends up in storage keys, so no '/',
// spaces or control characters). `object_type` (as event_type) and `case_id` (as id) are checked
// when present and may be absent or null. Unknown fields are ignored.
parsed_event parse_event(std::string_view body);

// True for the four event types Certn documents.
bool is_known_event_type(std::string_view event_type);

// What an event's object is, from object_type (case-insensitive): a report file when the type
// names a report ("CASE_REPORT_FILE", "REPORT_FILE"), a check when it names a check, a case when
// it is "CASE" or absent, else unknown (stored and acknowledged, no job).
enum class object_kind { case_object, check, report_file, unknown };
object_kind kind_of_object(std::string_view object_type);

}  // namespace archiver::webhook
