// The archiving workflows: what each job kind does (DESIGN.md "Data flow"). Decisions come from
// archive/policy (and failures' verdicts from the retry table, retry/table.hpp); the workflows fetch, store
// and enqueue, in a short file per step of the flow (workflows_detail.hpp lists them). Every job
// reads the current state from the Certn API, so duplicated, reordered and lost webhook events are
// all harmless; every side effect is idempotent (deterministic keys, content hashes, upserts).
// Every Certn answer that feeds the archive is stored as received before anything is read from it
// (raw first), and an answer we cannot use ends as a dead job naming the endpoint, the field and
// where it was kept.
//
//   sync_case(case)              GET case (not when every event that asked for it predates the
//                                last GET); snapshot stored by content hash; case row, status
//                                history and its checks; entering an archive status enqueues
//                                request_report and archive_supplementary (again after a dispute)
//   check_changed(check)         an event that names a check: sync its case when we know it,
//                                else wait a little for the case's own event, then a targeted
//                                reconcile finds it
//   request_report(case)         POST generate-report; fetch_report(report file) after a delay
//   report_ready(object)         CASE_REPORT_READY: a known report file, else the case's pending
//                                ones
//   fetch_report(report file)    metadata kept; not ready: retry later; ready: PDF archived;
//                                failed: dead
//   archive_supplementary(case)  supplementary information as received, then the files listing
//                                as received and every file in it; an expired URL means a fresh
//                                listing, never the stale URL again
//   write_manifest(case)         manifest.json from the case's artifacts (one writer per case),
//                                once the case's other jobs are done, and only when it changed
//   reconcile                    cases ordered recently and cases still open here: sync what
//                                changed; the periodic one books its next run first, so the
//                                chain outlives any failure of this run
#pragma once

#include <atomic>
#include <chrono>
#include <pqxx/transaction>
#include <string>

#include "archive/layout.hpp"
#include "archive/policy.hpp"
#include "certn/api.hpp"
#include "config/config.hpp"
#include "db/pool.hpp"
#include "ops/clock.hpp"
#include "ops/metrics.hpp"
#include "ops/recent_count.hpp"
#include "queue/worker.hpp"
#include "records/retention.hpp"
#include "storage/object_store.hpp"

namespace archiver::archive {

struct settings {
  config::archive_settings policy;
  std::string prefix;  // storage.prefix
  int max_attempts = 10;
  std::chrono::seconds report_poll_delay{60};
  // write_manifest waits this long between looks while other jobs of its case are open.
  std::chrono::seconds manifest_wait{2};
  // check_changed waits this long for the event of a check's unknown case before it lists recent
  // cases (policy decide_check).
  std::chrono::seconds unknown_check_wait{10};
  std::chrono::seconds reconcile_interval{900};  // 0: reconcile runs only when enqueued by hand
  reconcile_settings reconcile;                  // policy plan_reconcile
  std::uint64_t max_object_bytes = 64ULL << 30;  // a download larger than this fails
  records::retention_policy retention;           // records.retention: set when a case closes
  // storage.s3.object_lock_mode is set: a case that gets its retention date has the objects
  // already written locked until then (protect_case).
  bool protect_objects = false;
};

// certn_archiver_artifacts_total{kind}, certn_archiver_downloaded_bytes_total{kind},
// certn_archiver_stored_bytes_total{kind}, certn_archiver_certn_skipped_entries_total{endpoint}
// (list entries and file entries left out), certn_archiver_certn_unusable_answers_total{endpoint}
// (2xx answers the reader could not use; kept in the archive).
struct metrics {
  explicit metrics(ops::registry& registry);
  ops::counter_family& artifacts;
  ops::counter_family& downloaded_bytes;
  ops::counter_family& stored_bytes;
  ops::counter_family& skipped_entries;
  ops::counter_family& unusable_answers;
  // Unix time at which a reconcile listing last completed: set from the database at start-up
  // (service/pipeline), then by each listing this replica completes.
  ops::gauge_family& reconcile_finished;
  // Manifests written in the last hour: a case's manifest is written once its artifacts landed,
  // so this counts the cases archived (the calls per archived case gauge, service/pipeline).
  ops::recent_count cases_archived_last_hour;
};

class workflows {
 public:
  // Nothing is owned; all must outlive the workers that run these jobs.
  workflows(db::pool& database, certn::api_client& api, storage::object_store& store,
            settings config, metrics& counters, const ops::clock& time = ops::real_clock());

  void register_with(queue::workers& workers);

  // True while the last Certn call of any job was refused as unauthenticated (a 401, or a 403
  // whose code says so: retry::of_certn_error): the API key is wrong or expired. For /statusz.
  bool certn_auth_failing() const { return auth_failing_.load(); }

  awaitable<queue::job_result> sync_case(const queue::claimed_job& job);
  awaitable<queue::job_result> check_changed(const queue::claimed_job& job);
  awaitable<queue::job_result> request_report(const queue::claimed_job& job);
  awaitable<queue::job_result> report_ready(const queue::claimed_job& job);
  awaitable<queue::job_result> fetch_report(const queue::claimed_job& job);
  awaitable<queue::job_result> archive_supplementary(const queue::claimed_job& job);
  awaitable<queue::job_result> write_manifest(const queue::claimed_job& job);
  awaitable<queue::job_result> reconcile(const queue::claimed_job& job);
  awaitable<queue::job_result> protect_case(const queue::claimed_job& job);

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
  // Read just before a put: a hold or a retention date set a moment ago counts.
  awaitable<storage::object_protection> protection_of(const std::string& case_id);
  // Keeps a Certn answer as received, content-addressed under the case; its key, or why not.
  struct kept_answer {
    std::string key;
    std::optional<queue::job_result> failure;
  };
  awaitable<kept_answer> keep_answer(const std::string& case_id, const std::string& kind,
                                     const std::string& endpoint, const std::string& source_id,
                                     const std::string& body);
  queue::job_result from_failure(const certn::call_failure& failure);
  // from_failure(), naming where the unusable answer was kept.
  queue::job_result from_failure(const certn::call_failure& failure, const std::string& kept_at);

  db::pool& database_;
  certn::api_client& api_;
  storage::object_store& store_;
  settings settings_;
  layout layout_;
  metrics& metrics_;
  const ops::clock& time_;
  std::atomic<bool> auth_failing_{false};
};

// The job kinds above, for enqueueing from elsewhere (intake, backfill, serve).
inline constexpr const char* sync_case_kind = "sync_case";
inline constexpr const char* check_changed_kind = "check_changed";
inline constexpr const char* report_ready_kind = "report_ready";
inline constexpr const char* reconcile_kind = "reconcile";
// Applies the case's retention date and legal hold to its objects already in the store
// (object_store::protect); enqueued when a case closes and by `hold` / `release`, keyed by case.
inline constexpr const char* protect_case_kind = "protect_case";
inline constexpr const char* reconcile_key = "periodic";
// A one-off reconcile (an event named a check we do not know): at most one pending at a time.
inline constexpr const char* targeted_reconcile_key = "targeted";

// Dates up to `limit` closed cases that have no retention date yet
// (records::set_missing_retention: they closed before records.retention existed, or before an
// upgrade) and, when `protect_objects`, queues protect_case for each whose date lies ahead
// (their objects were written without it). Returns how many it dated. Called by serve's purge loop.
int date_closed_cases(pqxx::work& tx, const records::retention_policy& policy, int limit,
                      bool protect_objects, int max_attempts);

}  // namespace archiver::archive
