#pragma once

// The Certn error envelope and how the daemon classifies a failed HTTP answer. Pure functions,
// no I/O, safe to call from any thread.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// expired_url: a presigned download URL has expired; retrying it is pointless, the caller must
// ask the API for a fresh one. forbidden: the key is valid but lacks permission for this endpoint
// (403); retrying does not help, an operator must change the key's permissions.
enum class failure_class {
  retryable,
  permanent,
  authentication,
  forbidden,
  rate_limited,
  expired_url
};

// 408/425/5xx -> retryable, 429 -> rate_limited, 401 -> authentication, 403 -> forbidden, other
// 4xx -> permanent. Anything else (not an error status) is reported as permanent.
failure_class classify(int http_status);

const char* to_string(failure_class value);

// A presigned-URL store's answer (S3 style): 403 whose XML error says the request has expired
// (code ExpiredRequest or ExpiredToken, or a message containing "expired") is expired_url; any
// other 403 is retryable (the next attempt lists the files again and gets fresh URLs); other
// statuses as classify(). `body_start` is the first bytes of the body.
failure_class classify_download(int http_status, std::string_view body_start);

// Retry-After as delta-seconds or an IMF-fixdate ("Wed, 21 Oct 2015 07:28:00 GMT"). A past date
// gives 0 s; anything unparseable gives nullopt; the result is capped at 24 h.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view header,
                                                      std::chrono::system_clock::time_point now);

}  // namespace archiver::certn
