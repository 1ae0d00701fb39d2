// Runs queued jobs in this process: claims in batches (woken by LISTEN/NOTIFY, polling as a
// fallback that also covers a Postgres restart), holds each claim under a lease renewed by
// heartbeat, rescues jobs whose lease ran out (any replica's), prunes old finished jobs, and on
// drain stops claiming, waits for running jobs up to a deadline and releases the rest so that
// another replica takes them at once. A handler's job_result (queue/job_result.hpp) becomes the
// run's outcome and backoff delay here. Runs on one io_context thread; database work goes through
// db::pool.
//
// The parts: the claim loop, runs and drain (worker.cpp), the lease keeper (worker_lease.cpp),
// the outcome recorder and metrics (worker_outcome.cpp); what they share is worker_detail.hpp.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "db/pool.hpp"
#include "net/asio.hpp"
#include "ops/clock.hpp"
#include "ops/metrics.hpp"
#include "queue/job_result.hpp"
#include "queue/queue.hpp"

namespace archiver::queue {

// A handler may throw: that is a retry with the exception's message. It runs on the workers'
// io_context thread.
using handler = std::function<awaitable<job_result>(const claimed_job&)>;

// Hourly housekeeping beside the pruning of finished jobs (e.g. old webhook events): deletes at
// most `limit` rows in its own short transaction and returns how many; it is called again while
// it returns `limit`. Runs on a database pool thread.
struct housekeeping_task {
  std::string what;  // for the log: "webhook event(s)"
  std::function<std::int64_t(pqxx::connection&, int limit)> prune_batch;
};

struct worker_settings {
  std::string owner;  // unique per process: "host:pid:random"
  int concurrency = 4;
  int claim_batch = 8;
  std::chrono::seconds lease{60};
  std::chrono::milliseconds poll_interval{2000};
  std::chrono::seconds backoff_base{5};
  std::chrono::seconds backoff_max{3600};
  std::chrono::seconds drain_timeout{20};
  int keep_finished_days = 30;
  // The share of the workers kept for work below live (queue::reserved_claims).
  ops::priority_settings priorities;
};

// certn_archiver_jobs_total{kind,outcome}, certn_archiver_job_duration_seconds{kind},
// certn_archiver_jobs{state} and certn_archiver_jobs_oldest_age_seconds{state} (refreshed by the
// workers every few seconds). The families belong to `registry`, which must outlive this.
struct worker_metrics {
  explicit worker_metrics(ops::registry& registry);
  ops::counter_family& runs;
  ops::histogram_family& duration;
  ops::gauge_family& depth;
  ops::gauge_family& oldest_age;
  ops::counter_family& stale_outcomes;  // outcomes refused: the run no longer held its lease
};

// How long the claim loop sleeps after a claim that found no more due jobs: until the next job
// enqueued for later becomes due (`next_due`, queue::next_due_in), at most `poll_interval`. Pure.
std::chrono::milliseconds claim_wait(std::chrono::milliseconds poll_interval,
                                     std::optional<std::chrono::milliseconds> next_due);

// Whether an outcome that could not be recorded is given up (dropped: the job's lease runs out
// and a rescuer runs it again) rather than kept for another try. True once `now` reaches the
// time the run's lease would have run out, `lease` after the run `finished`. Pure.
bool give_up_recording(ops::clock::steady_time finished, std::chrono::seconds lease,
                       ops::clock::steady_time now);

// When the lease keeper's periodic work is due. Heartbeats every lease/4 (the first lease/4 after
// `start`), the queue-depth refresh every 5 s (the first at once), pruning every hour (the first
// a minute after `start`). Each next turn counts from the pass that did the work (advance), so
// work that failed stays due for the next pass. The loop sleeps tick() between passes: lease/10,
// within 200 ms and 5 s. Pure: the times are the caller's. A value; not thread-safe.
class maintenance_schedule {
 public:
  enum class work { heartbeat, depth, prune };
  struct due_work {
    bool heartbeat = false;
    bool depth = false;
    bool prune = false;
  };

  maintenance_schedule(std::chrono::seconds lease, ops::clock::steady_time start);
  // What is due at `now`. The heartbeat only while `jobs_running`; with none, it stays due.
  due_work due(ops::clock::steady_time now, bool jobs_running) const;
  // `done` ran in the pass that asked due() at `now`: its next turn counts from `now`.
  void advance(work done, ops::clock::steady_time now);
  std::chrono::milliseconds tick() const { return tick_; }

 private:
  std::chrono::milliseconds tick_;
  std::chrono::milliseconds heartbeat_every_;
  ops::clock::steady_time next_heartbeat_;
  ops::clock::steady_time next_depth_;
  ops::clock::steady_time next_prune_;
};

// Not thread-safe: every member is called on `io`'s one thread (start() and add() before it
// runs, or on it).
class workers {
 public:
  // `conninfo` is for the LISTEN connection (its own thread). Nothing here is owned: `io`,
  // `database`, `metrics` and `time` must outlive the workers. `time` is read for run durations,
  // the give-up of outcomes that cannot be recorded, the heartbeat, depth and prune schedules and
  // the drain's deadline; the timers that sleep are asio's (on a manual clock, those decisions
  // wait until the clock is advanced).
  workers(asio::io_context& io, db::pool& database, std::string conninfo, worker_settings settings,
          worker_metrics& metrics, const ops::clock& time = ops::real_clock());
  // Stops the LISTEN thread. REQUIRES: `io` no longer runs (its pending work refers to the
  // workers); drain() first, so that running jobs are handed back.
  ~workers();
  workers(const workers&) = delete;
  workers& operator=(const workers&) = delete;

  // REQUIRES: before start(). A claimed job of a kind without handler is dead ("no handler").
  void add(std::string kind, handler run);
  // REQUIRES: before start().
  void add_housekeeping(housekeeping_task task);
  // Starts the LISTEN thread, the claim loop and the lease keeper. REQUIRES: called once.
  void start();
  // Stops claiming; waits for running jobs up to drain_timeout, then releases the rest.
  // Idempotent: a second call returns at once.
  awaitable<void> drain();

  // A job was enqueued in this process that becomes due in `delay` (a coalesced live job, which
  // no NOTIFY announces): the claim loop wakes for it then, rather than at its next poll. Jobs
  // other replicas enqueue for later are found by polling.
  void due_in(std::chrono::milliseconds delay);

  std::string_view owner() const { return settings_.owner; }
  int running() const { return static_cast<int>(running_.size()); }

 private:
  struct listener;         // worker.cpp
  struct pending_outcome;  // worker_detail.hpp

  // worker.cpp: the claim side.
  awaitable<void> claim_loop();
  awaitable<void> run_one(claimed_job job);
  // Runs what was claimed, or gives it straight back when draining began meanwhile.
  awaitable<void> start_jobs(std::vector<claimed_job> jobs);
  int free_slots() const { return settings_.concurrency - running() - reserved_; }
  void wake();
  // worker_lease.cpp: heartbeats, rescue, depth and prune.
  awaitable<void> maintenance_loop();
  // worker_outcome.cpp: recording outcomes, metrics.
  awaitable<void> record_outcomes();
  // What became of a run's outcome: recorded; refused, the run no longer holding its lease
  // (stale); or given up, the database away until the lease would have run out anyway.
  enum class recording { recorded, stale, given_up };
  void after_recorded(const pending_outcome& run, recording what);
  awaitable<void> refresh_depth();
  awaitable<void> prune();

  asio::io_context& io_;
  db::pool& database_;
  std::string conninfo_;
  worker_settings settings_;
  worker_metrics& metrics_;
  const ops::clock& time_;
  std::map<std::string, handler> handlers_;
  std::vector<housekeeping_task> housekeeping_;
  // Keyed by the run's fencing token: a job rescued and claimed again while its old run is still
  // finishing here is two runs, and only the newer one holds the lease.
  std::map<std::int64_t, std::int64_t> running_;  // lease token -> job id
  int running_below_live_ = 0;                    // of running_, the jobs not of the live class
  std::set<std::int64_t> finishing_;  // tokens of runs whose outcome is being recorded: no
                                      // more heartbeats
  std::vector<pending_outcome> to_record_;
  bool recording_ = false;  // record_outcomes() is running
  int reserved_ = 0;        // slots of claims in flight
  asio::steady_timer wake_timer_;
  asio::steady_timer idle_timer_;  // drain waits on it for the last job
  asio::steady_timer maintenance_timer_;
  std::unique_ptr<listener> listener_;
  bool stopping_ = false;
  bool wake_pending_ = false;
  // The earliest time due_in() asked the claim loop to wake at, until it has.
  std::chrono::steady_clock::time_point wake_hint_ = std::chrono::steady_clock::time_point::max();
  int loops_alive_ = 0;
};

// "host:pid:xxxx": names this process as a lease owner. Thread-safe.
std::string make_owner_name();

}  // namespace archiver::queue
