// The one table of what a failure means. Every failure the daemon can meet is reported by the
// module that met it as what happened (an HTTP status, a transport failure, an S3 error code, a
// filesystem errno, a PostgreSQL SQLSTATE) and decided here, as one of:
//   retry          another attempt after the queue's backoff, or after the remote's Retry-After
//                  when it sent one; one of the job's max_attempts used
//   throttled      after the remote's wait, no attempt used (a 429, the day's budget)
//   pause          a refused API key: the job waits refused_key_wait at a time, no attempt used,
//                  until an operator replaces the key
//   dead           with a reason naming what an operator must do; retrying cannot help
// The queue turns a verdict into a state and a delay (queue worker_detail::decide); a workflow's
// own verdicts (a report not ready yet, a manifest waiting for other jobs) are written where they
// arise. Pure functions, no I/O; thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "http/failure.hpp"
#include "queue/job_result.hpp"

namespace archiver::retry {

// What a failed call to Certn (or to a presigned download URL) means.
// expired_url: a presigned URL has expired; retrying it is pointless, the next attempt asks the
// API for a fresh one. forbidden: the key is valid but lacks permission for this endpoint (403).
enum class failure_class {
  retryable,
  permanent,
  authentication,
  forbidden,
  rate_limited,
  expired_url
};

const char* to_string(failure_class value);

// ---- what happened -> its class ----------------------------------------------------------------

// A Certn API answer: 408/425/5xx -> retryable, 429 -> rate_limited, 401 -> authentication,
// 403 -> forbidden, other 4xx (and anything that is not an error status) -> permanent.
failure_class of_http_status(int status);

// A Certn API answer with its error envelope's `type` and first error `code` (either may be
// empty). Certn's envelope is Django REST Framework's standardized form, whose codes say more than
// the status where they differ: "throttled" -> rate_limited; "not_authenticated" or
// "authentication_failed" -> authentication (DRF answers these with 403 when the authentication
// scheme sends no WWW-Authenticate challenge, as an Api-Key scheme may); "permission_denied" ->
// forbidden; type "server_error" -> retryable. Otherwise of_http_status.
failure_class of_certn_error(int status, std::string_view type, std::string_view code);

// A presigned download's answer. `says_expired`: its error body says the request or token expired
// (S3's ExpiredRequest / ExpiredToken). 400 or 403 saying so -> expired_url; any other 403 ->
// retryable (the next attempt lists the files again and gets fresh URLs); else of_http_status.
failure_class of_download(int status, bool says_expired);

// No HTTP answer. A request the client refuses to send (invalid URL, refused by the address
// policy) or a body over its cap -> permanent: the same request fails the same way. The network's
// failures (DNS, connect, TLS, timeout, a truncated or malformed answer) -> retryable.
failure_class of_transport(http::failure kind);

// A filesystem call's errno: retryable when a later attempt may not meet it (disk full, quota,
// I/O error, interrupted, no memory or descriptors, busy, stale handle, timed out); anything else
// (permissions, read-only filesystem, a directory where a file should be) needs an operator.
bool retryable_errno(int error);

// An S3 error code we know: whether a later attempt may succeed, and advice for the operator.
struct s3_code_meaning {
  bool retryable;
  std::string_view advice;
};
// SlowDown, InternalError, ServiceUnavailable, RequestTimeout, NoSuchUpload -> retryable;
// SignatureDoesNotMatch, RequestTimeTooSkewed, AccessDenied, InvalidAccessKeyId, NoSuchBucket,
// AuthorizationHeaderMalformed -> not, with what to check; others -> nullopt (see of_s3_status).
std::optional<s3_code_meaning> of_s3_code(std::string_view code);

// An S3 answer without a known code: retryable when there was no answer (0), or 408, 429, 5xx.
bool retryable_s3_status(int status);

// A PostgreSQL error met by a job's work, by SQLSTATE. Data the database refuses (class 22: bad
// encoding, a value out of range; 23502 not null, 23514 check) is refused again: permanent.
// Anything else (connection 08, rollbacks 40, resources 53, locks 55, cancelled or shut down 57,
// system 58, a schema in the middle of an upgrade 42, a unique or foreign key race 23505/23503,
// internal XX, or no SQLSTATE at all) may pass: retryable.
failure_class of_sqlstate(std::string_view sqlstate);

// A statement over many rows (a group of webhook events) failed with `sqlstate`: whether one row
// may be the cause (data 22, integrity 23, raised by a trigger or function P0, a deadlock 40P01),
// so that storing the rows one by one lets the others pass. Anything else (the connection, a
// time limit, resources) would fail them all again, only more slowly.
bool may_be_one_rows_fault(std::string_view sqlstate);

// ---- class -> the job's verdict -----------------------------------------------------------------

// How long a job whose call Certn answered 401 waits before it tries again.
inline constexpr std::chrono::seconds refused_key_wait{300};
// What ends the last_error of a job waiting on a refused key: a reload of the key brings those
// jobs forward (queue::bring_forward).
inline constexpr std::string_view refused_key_note = " (check certn.api_key)";

// A job's failed Certn call (or presigned download) of class `kind`, described by `message`:
//   retryable, expired_url  retry, after at least `retry_after` when Certn sent one
//   rate_limited            throttled: after `retry_after`, without using up an attempt
//   authentication (401)    pause: throttled for `retry_after` or refused_key_wait, message +
//                           " (check certn.api_key)"
//   forbidden (403)         dead, message + " (the API key lacks permission for this endpoint)"
//   permanent               dead
// `kept_at`, when not empty, names where the answer was archived (an unreadable 2xx): appended
// as " (answer kept at <kept_at>)".
queue::job_result job_verdict(failure_class kind, const std::string& message,
                              std::optional<std::chrono::seconds> retry_after,
                              std::string_view kept_at = {});

// A job's failed store operation: retry when retryable (retryable_errno, of_s3_code,
// retryable_s3_status), else dead.
queue::job_result store_verdict(bool retryable, const std::string& message);

// A job's failed database work, with the error's SQLSTATE (empty when it has none: a broken
// connection): retry or dead as of_sqlstate, message prefixed with "database: ".
queue::job_result database_verdict(std::string_view sqlstate, const std::string& message);

}  // namespace archiver::retry
