// The archiving policy: what each job kind does (DESIGN.md "Data flow"), and the only place that
// knows it. Every job reads the current state from the Certn API, so duplicated, reordered and
// lost webhook events are all harmless; every side effect is idempotent (deterministic keys,
// content hashes, upserts), so a job that runs twice does no harm.
//
//   sync_case(case)              GET case; snapshot stored by content hash; case row and status
//                                history; entering an archive status enqueues request_report and
//                                archive_supplementary (again after a dispute reopened the case)
//   request_report(case)         POST generate-report; fetch_report(report file) after a delay
//   report_ready(object)         CASE_REPORT_READY: a known report file, else the case's pending
//   ones fetch_report(report file)    IN_PROGRESS: retry later; COMPLETE: PDF archived; FAILED:
//   dead archive_supplementary(case)  supplementary information as received, then every file; an
//                                expired URL means a fresh listing, never the stale URL again
//   write_manifest(case)         manifest.json from the case's artifacts (one writer per case)
//   reconcile                    cases ordered recently and cases still open here: sync what
//   changed
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "archive/layout.hpp"
#include "certn/api.hpp"
#include "config/config.hpp"
#include "db/pool.hpp"
#include "ops/metrics.hpp"
#include "queue/worker.hpp"
#include "storage/object_store.hpp"

namespace archiver::archive {

struct settings {
  config::archive_settings policy;
  std::string prefix;  // storage.prefix
  int max_attempts = 10;
  std::chrono::seconds report_poll_delay{60};
  std::chrono::seconds reconcile_interval{900};  // 0: reconcile runs only when enqueued by hand
  int reconcile_lookback_days = 30;
  std::uint64_t max_object_bytes = 64ULL << 30;  // a download larger than this fails
};

// certn_archiver_artifacts_total{kind}, certn_archiver_downloaded_bytes_total{kind},
// certn_archiver_stored_bytes_total{kind}.
struct metrics {
  explicit metrics(ops::registry& registry);
  ops::counter_family& artifacts;
  ops::counter_family& downloaded_bytes;
  ops::counter_family& stored_bytes;
};

class workflows {
 public:
  // Nothing is owned; all must outlive the workers that run these jobs.
  workflows(db::pool& database, certn::api_client& api, storage::object_store& store,
            settings config, metrics& counters);

  void register_with(queue::workers& workers);

  // True while the last Certn call of any job was refused as unauthenticated (401/403): the API
  // key is wrong or expired. For /readyz.
  bool certn_auth_failing() const { return auth_failing_.load(); }

  awaitable<queue::job_result> sync_case(const queue::claimed_job& job);
  awaitable<queue::job_result> request_report(const queue::claimed_job& job);
  awaitable<queue::job_result> report_ready(const queue::claimed_job& job);
  awaitable<queue::job_result> fetch_report(const queue::claimed_job& job);
  awaitable<queue::job_result> archive_supplementary(const queue::claimed_job& job);
  awaitable<queue::job_result> write_manifest(const queue::claimed_job& job);
  awaitable<queue::job_result> reconcile(const queue::claimed_job& job);

 private:
  struct download_outcome;
  awaitable<download_outcome> archive_download(const std::string& case_id, const std::string& kind,
                                               const std::string& source_id, const std::string& key,
                                               const std::string& url,
                                               const std::string& content_type,
                                               std::optional<std::int64_t> expected_size);
  awaitable<std::optional<queue::job_result>> archive_bytes(const std::string& case_id,
                                                            const std::string& kind,
                                                            const std::string& source_id,
                                                            const std::string& key,
                                                            std::string bytes);
  awaitable<bool> is_archived(const std::string& key);
  queue::job_result from_failure(const certn::call_failure& failure);

  db::pool& database_;
  certn::api_client& api_;
  storage::object_store& store_;
  settings settings_;
  layout layout_;
  metrics& metrics_;
  std::atomic<bool> auth_failing_{false};
};

// The job kinds above, for enqueueing from elsewhere (intake, backfill, serve).
inline constexpr const char* sync_case_kind = "sync_case";
inline constexpr const char* reconcile_kind = "reconcile";
inline constexpr const char* reconcile_key = "periodic";

}  // namespace archiver::archive
