// The workers' lease keeper: the maintenance loop (heartbeats for running jobs, rescue of expired
// leases, the depth refresh and pruning on their schedules) and the give-up decision for outcomes
// that cannot be recorded before their lease would run out.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <pqxx/pqxx>

#include "queue/admin.hpp"
#include "queue/worker_detail.hpp"

namespace archiver::queue {

using std::chrono::milliseconds;

bool give_up_recording(ops::clock::steady_time finished, std::chrono::seconds lease,
                       ops::clock::steady_time now) {
  return now >= finished + lease;
}

awaitable<void> workers::maintenance_loop() {
  ++loops_alive_;
  const milliseconds tick =
      std::clamp<milliseconds>(std::chrono::duration_cast<milliseconds>(settings_.lease) / 10,
                               milliseconds(200), milliseconds(5000));
  const auto heartbeat_every = std::chrono::duration_cast<milliseconds>(settings_.lease) / 4;
  auto next_heartbeat = time_.steady_now() + heartbeat_every;
  auto next_depth = time_.steady_now();
  auto next_prune = time_.steady_now() + std::chrono::minutes(1);
  while (!stopping_) {
    const auto now = time_.steady_now();
    try {
      if (now >= next_heartbeat && !running_.empty()) {
        std::vector<std::int64_t> ids;
        for (const auto& [id, kind] : running_) {
          if (!finishing_.count(id)) {
            ids.push_back(id);
          }
        }
        const auto lost =
            co_await database_.query<std::vector<std::int64_t>>([&](pqxx::connection& conn) {
              return heartbeat(conn, settings_.owner, ids, settings_.lease);
            });
        for (const std::int64_t id : lost) {
          // A job that finished while the heartbeat ran is not lost.
          if (running_.count(id) && !finishing_.count(id)) {
            spdlog::warn("job {}: this worker no longer holds its lease", id);
          }
        }
        next_heartbeat = now + heartbeat_every;
      }
      const int rescued = co_await database_.query<int>(
          [](pqxx::connection& conn) { return rescue_expired(conn); });
      if (rescued > 0) {
        spdlog::warn("rescued {} job(s) whose lease had expired", rescued);
      }
      if (now >= next_depth) {
        co_await refresh_depth();
        next_depth = now + std::chrono::seconds(5);
      }
      if (now >= next_prune) {
        const int days = settings_.keep_finished_days;
        const auto pruned = co_await database_.query<std::int64_t>([days](pqxx::connection& conn) {
          pqxx::work tx(conn, "prune");
          const std::int64_t gone = prune_finished(tx, std::chrono::hours(24) * days);
          tx.commit();
          return gone;
        });
        if (pruned > 0) {
          spdlog::info("pruned {} finished job(s) older than {} days", pruned, days);
        }
        next_prune = now + std::chrono::hours(1);
      }
    } catch (const std::exception& e) {
      spdlog::debug("job maintenance: {}", worker_detail::one_line(e.what()));
    }
    maintenance_timer_.expires_after(tick);
    error_code ec;
    co_await maintenance_timer_.async_wait(with_error(ec));
  }
  --loops_alive_;
  idle_timer_.cancel();
}

}  // namespace archiver::queue
