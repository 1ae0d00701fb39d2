#pragma once

// The Certn error envelope, and what a failed answer says (its meaning: retry/table.hpp). Pure
// functions, no I/O, safe to call from any thread.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "retry/table.hpp"

namespace archiver::certn {

// One entry of the envelope's "errors" array; attr is null/absent for non-field errors.
struct api_error_item {
  std::string code;
  std::string detail;
  std::optional<std::string> attr;
};

// A failed answer from Certn. errors is never empty after parse_error_envelope.
struct api_error {
  int http_status = 0;
  std::string type;
  std::vector<api_error_item> errors;
  std::optional<std::chrono::seconds> retry_after;

  // One line, e.g. "404 client_error: not_found: Not found." plus " (+N more)".
  std::string summary() const;
};

// Never fails: a non-JSON or unexpected body yields type from the status class
// (validation_error/client_error/server_error) and detail "unexpected response body". Text taken
// from the body is cut to 200 bytes and stripped of control characters.
api_error parse_error_envelope(int http_status, std::string_view body,
                               std::string_view retry_after_header);

// What a failed call means is decided by the retry table; certn code names the class as its own.
using retry::failure_class;
using retry::to_string;

// Whether a presigned-URL store's error body (S3 style; `body_start` is its first bytes) says the
// request has expired: XML error code ExpiredRequest or ExpiredToken, or an <Error> whose text
// contains "expired" (any case). What that means: retry::of_download.
bool says_request_expired(std::string_view body_start);

// Retry-After as delta-seconds or an IMF-fixdate ("Wed, 21 Oct 2015 07:28:00 GMT"). A past date
// gives 0 s; anything unparseable gives nullopt; the result is capped at 24 h.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view header,
                                                      std::chrono::system_clock::time_point now);

}  // namespace archiver::certn
