// The job queue on PostgreSQL (table `jobs`, migrations/0001). Generic: knows nothing about Certn.
// Every function runs SQL on the connection or transaction it is given, so the caller chooses the
// thread (a db::pool thread) and the transaction. Thread-safe (stateless).
//
// States: queued -> running -> succeeded | failed (waits for run_at, then is claimed again) |
// dead (after max_attempts, or a permanent error) | cancelled. At most one pending (queued or
// failed) job per (kind, key); a running job may have one pending successor, and the claim never
// runs two jobs of one (kind, key) at once. Running jobs hold a lease (owner, expiry) renewed by
// heartbeat. Each claim takes a new fencing token: heartbeats, outcomes and releases name the run
// by (id, token), so a run whose lease was lost (rescued, cancelled, claimed again since, even by
// the same worker) changes nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <pqxx/connection>
#include <pqxx/transaction>
#include <string>
#include <utility>
#include <vector>

#include "ops/priority.hpp"

namespace archiver::queue {

inline constexpr const char* notify_channel = "archiver_jobs";

// Session settings for the connections that claim jobs (serve's queue lane, bench-queue). Without
// bitmap scans a claim walks the due index in order and marks the entries of jobs that have moved
// on as dead as it passes, which a bitmap scan cannot do; with statistics taken while a backlog
// waited, the planner otherwise picks a bitmap scan that revisits every such entry at each claim
// (2.2x slower pickups on a table of a million finished jobs; bench/queue/big-table.sh).
inline std::vector<std::pair<std::string, std::string>> claiming_session_settings() {
  return {{"enable_bitmapscan", "off"}};
}

struct job_spec {
  std::string kind;            // e.g. "sync_case"
  std::string key;             // what it is about; one pending job per (kind, key)
  std::string payload = "{}";  // JSON object
  int max_attempts = 10;
  std::chrono::seconds delay{0};  // run_at = now() + delay
  ops::priority priority = ops::priority::sync;
};

enum class enqueue_outcome { enqueued, already_pending };

// Inserts the job unless a pending job of the same (kind, key) exists; then it does nothing, except
// that an earlier run_at (a smaller delay) moves the pending job forward and a more urgent class
// raises it (a live event about a case a backfill queued makes that job live). Notifies at commit.
enqueue_outcome enqueue(pqxx::work& tx, const job_spec& job);

// enqueue() for many jobs in one statement: jobs of one (kind, key) are merged first (the first
// one's payload and max_attempts, the smallest delay, the most urgent class). Notifies at commit,
// once, and only when a job is due now (delay 0).
void enqueue_many(pqxx::work& tx, const std::vector<job_spec>& jobs);

// One run of a job: the job and the fencing token its claim took.
struct lease_ref {
  std::int64_t id = 0;
  std::int64_t token = 0;
  bool operator==(const lease_ref&) const = default;
};

struct claimed_job {
  std::int64_t id = 0;
  std::int64_t lease_token = 0;  // this run's fencing token
  std::string kind;
  std::string key;
  std::string payload;
  int attempt = 0;  // this run's number, from 1
  int max_attempts = 0;
  ops::priority priority = ops::priority::sync;
  lease_ref lease() const { return {id, lease_token}; }
};

// Takes up to `limit` due jobs (run_at <= now, queued or failed): first up to `below_live` jobs
// of any class below live, oldest run_at first (the reserve that keeps them moving while live
// work is steady: reserved_claims), then the most urgent class, oldest run_at first. Skips rows
// other claimers hold (SKIP LOCKED), keys that already have a running job and classes an operator
// paused (table paused_classes, queue/admin.hpp); marks them running
// under `owner` until now + lease. Its own transaction.
std::vector<claimed_job> claim(pqxx::connection& conn, const std::string& owner, int limit,
                               std::chrono::seconds lease, int below_live = 0);
// The same inside the caller's transaction (the workers claim where they record outcomes).
std::vector<claimed_job> claim(pqxx::work& tx, const std::string& owner, int limit,
                               std::chrono::seconds lease, int below_live = 0);

// How long until the next job that is not due yet becomes due (run_at in the future, queued or
// failed, of a class not paused), or nothing when none waits. The claim loop sleeps that long at
// most, since a job enqueued for later is announced by no NOTIFY. Jobs already due but blocked
// (their key running) are not counted: the run that blocks them claims on its way out.
std::optional<std::chrono::milliseconds> next_due_in(pqxx::work& tx);

// How many of a claim's `wanted` jobs go to the reserve below live: the workers keep
// `reserved_percent` of their `concurrency` (at least one when the percentage is not 0) for work
// below live, and `running_below_live` of them are busy with it. Pure.
int reserved_claims(int wanted, int concurrency, int reserved_percent, int running_below_live);

// Extends the leases of the `runs` still held; returns the runs no longer held (rescued,
// cancelled or claimed again meanwhile: their workers should stop).
std::vector<lease_ref> heartbeat(pqxx::connection& conn, const std::vector<lease_ref>& runs,
                                 std::chrono::seconds lease);

// Whether `run` still holds its lease, its job's row locked until `tx` ends, so that no rescue,
// cancel or new claim takes the job meanwhile: what a run writes in `tx` after a true answer is
// the current run's. For side effects that a stale run must not record (a key rewritten in
// place).
bool holds_lease(pqxx::transaction_base& tx, const lease_ref& run);
// The state of job `id` (queued, running, ...); empty when there is no such job.
std::string state_of(pqxx::transaction_base& tx, std::int64_t id);
// Whether a job of `id`'s kind and key was enqueued after it: a successor it was merged into
// (which leaves it `cancelled`), or a later job.
bool has_later_job(pqxx::transaction_base& tx, std::int64_t id);

// How a run ended, as the worker decides it (worker_detail.hpp decide: delays and jitter).
struct outcome {
  enum class kind { succeeded, retry, dead } what = kind::succeeded;
  std::string error;                   // retry/dead: one line, kept in last_error
  std::chrono::milliseconds delay{0};  // retry: run_at = now + delay
  bool counts_as_attempt = true;       // retry: false gives this run's attempt back
};

// Records the outcome of `run` if it still holds its lease; false (nothing changed) when the
// lease was lost: a stale outcome, which the caller discards.
// A retry that would collide with a pending successor merges into it: the successor keeps its
// place (earliest run_at of the two) and this job ends `succeeded` with last_error noting the
// merge. succeeded also sets processed_at of no event; callers do their own bookkeeping in `tx`.
bool finish(pqxx::work& tx, const lease_ref& run, const outcome& result);

// finish() for many runs in one transaction (one commit for all, which is what bounds the
// queue's rate): the successes in a single statement, the others one by one. Returns, in the
// order given, whether each was recorded.
struct finished_run {
  lease_ref run;
  outcome result;
};
std::vector<bool> finish_all(pqxx::work& tx, const std::vector<finished_run>& runs);

// Gives the `runs` still held back (draining `owner`, named in last_error): queued again at once,
// attempt not counted.
int release(pqxx::connection& conn, const std::string& owner, const std::vector<lease_ref>& runs);

// Running jobs whose lease ran out go back to `failed` (due now), or `dead` when that run was the
// last attempt; merges with a pending successor as finish() does. Returns how many were rescued.
int rescue_expired(pqxx::connection& conn);

// Exponential backoff with equal jitter: a uniform delay in [base*2^(attempt-1) / 2,
// base*2^(attempt-1)], capped at `max`; `retry_after` (from the remote) is a floor. Pure.
std::chrono::milliseconds retry_delay(int attempt, std::chrono::seconds base,
                                      std::chrono::seconds max,
                                      std::optional<std::chrono::seconds> retry_after,
                                      double unit_random);

}  // namespace archiver::queue
