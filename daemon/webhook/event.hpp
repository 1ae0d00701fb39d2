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
  std::string object_id;    // the case (or report file) the event is about
  std::string object_type;  // e.g. CASE, CASE_REPORT_FILE
};

// Either an event or a one-line message saying what is wrong with the body
// ("event_type: missing", "object_id: expected a string", "body: not valid JSON").
struct parsed_event {
  std::optional<event> value;
  std::string error;
};

// Rules: the body is one JSON object (nothing after it); `id` or `event_id` is a non-empty string
// of at most 128 characters from [A-Za-z0-9._:-]; `event_type` and `object_type` are non-empty
// strings of at most 64 characters from [A-Za-z0-9_.-]; `object_id` as `id` (it ends up in storage
// keys, so no '/', spaces or control characters). Unknown fields are ignored.
parsed_event parse_event(std::string_view body);

// True for the four event types Certn documents.
bool is_known_event_type(std::string_view event_type);

}  // namespace archiver::webhook
