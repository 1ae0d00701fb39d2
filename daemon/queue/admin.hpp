// The operator's side of the job queue (see queue.hpp): list, show, retry, cancel and prune jobs,
// and the counts `status` reports. Generic: knows nothing about Certn. Every function runs
// parameterized SQL in the transaction it is given and the caller commits; SQL failures are pqxx
// exceptions. Thread-safe (stateless).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <pqxx/transaction>
#include <string>
#include <string_view>
#include <vector>

#include "ops/priority.hpp"

namespace archiver::queue {

// The values of the `job_state` type, in its order.
inline constexpr const char* job_states[] = {"queued", "running", "succeeded",
                                             "failed", "dead",    "cancelled"};

// One row of `jobs`; timestamps are UTC ISO 8601 text ("2026-11-29T08:13:32.123456Z").
struct job_row {
  std::int64_t id = 0;
  std::string kind, key, payload, state;  // payload: JSON text
  int attempts = 0, max_attempts = 0;
  std::string run_at, created_at, updated_at;
  std::optional<std::string> lease_owner, lease_expires, last_error, finished_at;
};

struct job_filter {
  std::optional<std::string> state{};  // one of job_states (anything else matches nothing)
  std::optional<std::string> kind{};
  int limit = 50;
};

// Jobs matching `filter`, newest first.
std::vector<job_row> list_jobs(pqxx::transaction_base& tx, const job_filter& filter);

// The job, or nullopt when there is none with that id.
std::optional<job_row> show_job(pqxx::transaction_base& tx, std::int64_t id);

enum class retry_outcome { queued, already_pending, not_found, not_retryable };
struct retry_result {
  retry_outcome outcome = retry_outcome::not_found;
  std::optional<job_row> before;  // the job as it was (not_found: none)
  std::int64_t pending_id = 0;    // already_pending: the pending job of the same (kind, key)
};

// A dead, failed or cancelled job becomes queued, due now, with attempts 0, no lease and
// last_error "retried by operator after N attempts as <state>: <previous error>"; workers are
// notified at commit. When another job of the same (kind, key) is pending, nothing changes and
// the result names it. Queued, running and succeeded jobs are not_retryable.
retry_result retry_job(pqxx::work& tx, std::int64_t id);

struct retry_counts {
  int queued = 0;
  int already_pending = 0;
};
// retry_job for every dead job, oldest first (so of two dead jobs of one key the older runs).
retry_counts retry_all_dead(pqxx::work& tx);

enum class cancel_outcome { cancelled, already_finished, not_found };
struct cancel_result {
  cancel_outcome outcome = cancel_outcome::not_found;
  std::string previous_state;  // empty when not_found
};

// queued, failed or running -> cancelled, finished now, lease cleared: a running job's worker
// loses its lease, learns it at its next heartbeat, and its finish() changes nothing.
cancel_result cancel_job(pqxx::work& tx, std::int64_t id);

// Makes due now the queued and failed jobs waiting for later whose last_error ends with `note`
// (a reload of the API key: the jobs a refused key held back need not wait their 5 minutes);
// attempts are not touched. Returns how many; workers are notified at commit when any.
int bring_forward(pqxx::work& tx, std::string_view note);

// Deletes up to `limit` succeeded and cancelled jobs finished more than `older_than` ago (oldest
// first) and returns how many; callers repeat while it returns `limit`, one short transaction a
// batch. Dead jobs are never pruned: they wait for an operator.
std::int64_t prune_finished(pqxx::work& tx, std::chrono::seconds older_than, int limit);

struct status_counts {
  std::int64_t events_total = 0;
  std::int64_t events_unprocessed = 0;  // processed_at is null
  std::map<std::string, std::int64_t> jobs_by_state;  // every state of job_states, zeros too
  std::map<std::string, std::map<std::string, std::int64_t>> jobs_by_kind;  // kind -> every state
  std::optional<double> oldest_due_seconds;  // age of the oldest due queued/failed job's run_at
  std::int64_t artifacts = 0;
  std::int64_t artifact_bytes = 0;
};

status_counts read_status(pqxx::transaction_base& tx);

// Pausing a priority class: workers claim none of its jobs until it is resumed (the queue's
// claim reads table paused_classes). `by` names who paused it. pause_class returns false when the
// class was paused already; resume_class false when it was not paused.
bool pause_class(pqxx::work& tx, ops::priority priority, const std::string& by);
bool resume_class(pqxx::work& tx, ops::priority priority);

// A class's pause and its open (queued, failed, running) jobs, for `status`.
struct class_status {
  std::int64_t open_jobs = 0;
  std::optional<std::string> paused_at;  // UTC ISO 8601; none: not paused
  std::optional<std::string> paused_by;
};
class_status read_class_status(pqxx::transaction_base& tx, ops::priority priority);

// JSON objects with the fields above under the same names (timestamps and absent values as
// strings and nulls); to_json(status_counts) is documented where `status --json` is.
std::string to_json(const job_row& job);
std::string to_json(const status_counts& status);

}  // namespace archiver::queue
