// Internal to archive/: what the workflows' files share. workflows.cpp holds construction,
// registration and the steps every job kind uses (archive_bytes, archive_download, keep_answer,
// from_failure); each job kind's coroutine has a file of its own: workflows_sync.cpp (sync_case,
// check_changed), workflows_report.cpp (request_report, report_ready, fetch_report),
// workflows_supplementary.cpp, workflows_manifest.cpp and workflows_reconcile.cpp. Not to be
// included outside daemon/archive.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "archive/workflows.hpp"
#include "ops/priority.hpp"
#include "queue/queue.hpp"
#include "queue/worker.hpp"
#include "storage/object_store.hpp"

namespace archiver::archive {

struct workflows::download_outcome {
  bool expired = false;                      // the presigned URL expired: list again
  std::optional<queue::job_result> failure;  // anything else that ends this run
};

namespace workflows_detail {

// The job kinds enqueued only by the workflows themselves (the others are in workflows.hpp).
inline constexpr const char* request_report_kind = "request_report";
inline constexpr const char* fetch_report_kind = "fetch_report";
inline constexpr const char* archive_supplementary_kind = "archive_supplementary";
inline constexpr const char* write_manifest_kind = "write_manifest";

// A string field of a job's JSON payload, "" when absent or not a string.
std::string payload_field(const std::string& payload, const char* name);

// `source_event`: the webhook event that asked for the job, passed on to the jobs it enqueues so
// that sync_case knows it was asked by an event (policy sync_needs_fetch).
std::string case_payload(const std::string& case_id, const std::string& source,
                         const std::string& source_event = "");

// A job enqueued by a run of class `parent` (policy follow_up_priority gives its class).
queue::job_spec job(const char* kind, const std::string& key, std::string payload, int max_attempts,
                    ops::priority parent, std::chrono::seconds delay = std::chrono::seconds(0));

// the retry table's store_verdict for `failure`.
queue::job_result from_store_failure(const storage::store_failure& failure);

}  // namespace workflows_detail

}  // namespace archiver::archive
