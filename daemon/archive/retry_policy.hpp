// What a failed step means for the job that took it: retried (an attempt used, backoff), throttled
// (retried after the remote's wait, no attempt used) or permanent (dead). The one table of retry
// verdicts for failures; pure functions, no I/O, safe from any thread.
//
// The chain of a retry decision, each step in one place:
//   an HTTP status, a download's error body or a transport failure -> certn::failure_class
//       (certn::classify, classify_download; classify_transport in certn/api.cpp)
//   a store's errno or S3 error -> storage::store_failure::retryable
//       (retryable_errno in storage/filesystem_store.cpp, s3_xml::classify)
//   the class -> the job's verdict and its reason: here
//   the verdict -> the queue's outcome and its delay (queue worker_detail::decide, retry_delay);
//       the last attempt -> dead, and throttled runs not counted (queue finish)
// A workflow's own verdicts (a report not ready yet, a manifest waiting for the case's other
// jobs) are written where they arise, in workflows_<kind>.cpp.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "certn/errors.hpp"
#include "queue/job_result.hpp"

namespace archiver::archive {

// How long a job whose call Certn answered 401 waits before it tries again.
inline constexpr std::chrono::seconds refused_key_wait{300};

// A failed Certn call (or presigned download) of class `kind`, described by `message`:
//   retryable, expired_url  retry, after at least `retry_after` when Certn sent one
//   rate_limited            throttled: after `retry_after`, without using up an attempt (a 429,
//                           or a call not sent because the day's budget or a 429's throttle
//                           holds its class back)
//   authentication (401)    retry, message + " (check certn.api_key)": an operator can replace
//                           the key file, and the job keeps its place meanwhile
//   forbidden (403)         permanent, message + " (the API key lacks permission for this
//                           endpoint)": retrying does not grant a permission
//   permanent               permanent
// `kept_at`, when not empty, names where the answer was archived (an unreadable 2xx): appended
// as " (answer kept at <kept_at>)".
queue::job_result certn_failure_result(certn::failure_class kind, const std::string& message,
                                       std::optional<std::chrono::seconds> retry_after,
                                       std::string_view kept_at = {});

// A failed store operation: retry when the store may accept a later attempt (`retryable`: disk
// full, network, 5xx, SlowDown), else permanent (credentials, permissions, a missing bucket).
queue::job_result store_failure_result(bool retryable, const std::string& message);

}  // namespace archiver::archive
