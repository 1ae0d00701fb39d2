// The workers' lease keeper: the maintenance loop (heartbeats for running jobs, rescue of expired
// leases, the depth refresh and pruning on their schedules), the schedule itself
// (maintenance_schedule, pure) and the give-up decision for outcomes that cannot be recorded
// before their lease would run out.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <pqxx/pqxx>

#include "queue/admin.hpp"
#include "queue/worker_detail.hpp"

namespace archiver::queue {

using std::chrono::milliseconds;

namespace {

constexpr std::chrono::seconds depth_every{5};
constexpr std::chrono::hours prune_every{1};
constexpr std::chrono::minutes first_prune_after{1};
constexpr int prune_batch = 1000;

}  // namespace

bool give_up_recording(ops::clock::steady_time finished, std::chrono::seconds lease,
                       ops::clock::steady_time now) {
  return now >= finished + lease;
}

maintenance_schedule::maintenance_schedule(std::chrono::seconds lease,
                                           ops::clock::steady_time start)
    : tick_(std::clamp<milliseconds>(std::chrono::duration_cast<milliseconds>(lease) / 10,
                                     milliseconds(200), milliseconds(5000))),
      heartbeat_every_(std::chrono::duration_cast<milliseconds>(lease) / 4),
      next_heartbeat_(start + heartbeat_every_),
      next_depth_(start),
      next_prune_(start + first_prune_after) {}

maintenance_schedule::due_work maintenance_schedule::due(ops::clock::steady_time now,
                                                         bool jobs_running) const {
  due_work result;
  result.heartbeat = jobs_running && now >= next_heartbeat_;
  result.depth = now >= next_depth_;
  result.prune = now >= next_prune_;
  return result;
}

void maintenance_schedule::advance(work done, ops::clock::steady_time now) {
  switch (done) {
    case work::heartbeat:
      next_heartbeat_ = now + heartbeat_every_;
      break;
    case work::depth:
      next_depth_ = now + depth_every;
      break;
    case work::prune:
      next_prune_ = now + prune_every;
      break;
  }
}

awaitable<void> workers::maintenance_loop() {
  ++loops_alive_;
  maintenance_schedule schedule(settings_.lease, time_.steady_now());
  while (!stopping_) {
    const auto now = time_.steady_now();
    // Decided once, at the top of the pass: only this pass's advance() calls move the schedule.
    const maintenance_schedule::due_work due = schedule.due(now, !running_.empty());
    try {
      if (due.heartbeat) {
        std::vector<lease_ref> runs;
        for (const auto& [token, id] : running_) {
          if (!finishing_.count(token)) {
            runs.push_back({id, token});
          }
        }
        const auto lost = co_await database_.query<std::vector<lease_ref>>(
            [&](pqxx::connection& conn) { return heartbeat(conn, runs, settings_.lease); });
        for (const lease_ref& run : lost) {
          // A job that finished while the heartbeat ran is not lost.
          if (running_.count(run.token) && !finishing_.count(run.token)) {
            spdlog::warn("job {}: this run no longer holds its lease", run.id);
          }
        }
        schedule.advance(maintenance_schedule::work::heartbeat, now);
      }
      const int rescued = co_await database_.query<int>(
          [](pqxx::connection& conn) { return rescue_expired(conn); });
      if (rescued > 0) {
        spdlog::warn("rescued {} job(s) whose lease had expired", rescued);
      }
      if (due.depth) {
        co_await refresh_depth();
        schedule.advance(maintenance_schedule::work::depth, now);
      }
      if (due.prune) {
        co_await prune();
        schedule.advance(maintenance_schedule::work::prune, now);
      }
    } catch (const std::exception& e) {
      spdlog::debug("job maintenance: {}", worker_detail::one_line(e.what()));
    }
    maintenance_timer_.expires_after(schedule.tick());
    error_code ec;
    co_await maintenance_timer_.async_wait(with_error(ec));
  }
  --loops_alive_;
  idle_timer_.cancel();
}

// Finished jobs and the housekeeping tasks' rows, in batches of prune_batch rows, each its own
// short transaction: a large backlog never holds locks or a pool thread for long.
awaitable<void> workers::prune() {
  const int days = settings_.keep_finished_days;
  std::vector<housekeeping_task> tasks = housekeeping_;
  tasks.insert(tasks.begin(),
               housekeeping_task{"finished job(s) older than " + std::to_string(days) + " days",
                                 [days](pqxx::connection& conn, int limit) {
                                   pqxx::work tx(conn, "prune");
                                   const std::int64_t gone =
                                       prune_finished(tx, std::chrono::hours(24) * days, limit);
                                   tx.commit();
                                   return gone;
                                 }});
  for (const housekeeping_task& task : tasks) {
    std::int64_t total = 0;
    std::int64_t batch = 0;
    do {
      batch = co_await database_.query<std::int64_t>(
          [&task](pqxx::connection& conn) { return task.prune_batch(conn, prune_batch); });
      total += batch;
    } while (batch == prune_batch && !stopping_);
    if (total > 0) {
      spdlog::info("pruned {} {}", total, task.what);
    }
  }
}

}  // namespace archiver::queue
