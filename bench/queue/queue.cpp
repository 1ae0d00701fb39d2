// bench/queue's side for certn-archiver's job queue (run.sh sets it beside graphile-worker):
// enqueues JOBS no-op jobs before the clock starts, runs them through queue::workers, and measures
// jobs/s from the first handler start to the last recorded outcome; then, with the workers idle,
// enqueues PICKUPS jobs one at a time, PACE_MS apart, and measures commit -> handler start.
// FINISHED (default 0) finished jobs are put in the table first, as months of history would be
// (issue 15: claims must not slow down as the table grows). HELD (default 0) due jobs of the bulk
// class are put there too, with that class paused, as a backfill an operator paused would be: no
// worker may take them, and every claim passes them over.
// Usage: bench-queue DSN JOBS CONCURRENCY CLAIM_BATCH POOL_THREADS PICKUPS PACE_MS
//        [FINISHED [HELD]]
// Prints one line: jobs= seconds= rate= pickups= p50_ms= p99_ms= finished= held=
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <pqxx/pqxx>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "db/migrations.hpp"
#include "db/pool.hpp"
#include "net/asio.hpp"
#include "ops/metrics.hpp"
#include "ops/priority.hpp"
#include "queue/queue.hpp"
#include "queue/worker.hpp"

namespace {

using namespace archiver;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
      .count();
}

int positive(const char* text, const char* what) {
  const int value = std::stoi(text);
  if (value <= 0) {
    throw std::invalid_argument(std::string(what) + " must be positive");
  }
  return value;
}

// A fresh, vacuumed jobs table holding `finished` succeeded jobs and `held` due jobs of the paused
// bulk class, so every run starts from the same state.
void reset_jobs(const std::string& dsn, int finished, int held) {
  pqxx::connection conn(dsn);
  db::apply_migrations(conn);
  pqxx::nontransaction(conn).exec0("TRUNCATE jobs, paused_classes");
  if (held > 0) {
    pqxx::nontransaction(conn).exec0(
        "INSERT INTO jobs (kind, key, priority, run_at) SELECT 'held', 'held-' || g, " +
        std::to_string(ops::index_of(ops::priority::bulk)) +
        ", now() - interval '1 hour' FROM generate_series(1, " + std::to_string(held) + ") g");
    pqxx::nontransaction(conn).exec0("INSERT INTO paused_classes (priority, paused_by) VALUES (" +
                                     std::to_string(ops::index_of(ops::priority::bulk)) +
                                     ", 'bench-queue')");
  }
  if (finished > 0) {
    pqxx::nontransaction(conn).exec0(
        "INSERT INTO jobs (kind, key, state, finished_at) SELECT 'done', 'done-' || g, "
        "'succeeded', now() - interval '1 day' FROM generate_series(1, " +
        std::to_string(finished) + ") g");
  }
  pqxx::nontransaction(conn).exec0("VACUUM ANALYZE jobs");
}

// The jobs go in through queue::enqueue, as the daemon's do, a few transactions in all.
void enqueue_backlog(const std::string& dsn, int count) {
  constexpr int per_transaction = 5000;
  pqxx::connection conn(dsn);
  for (int first = 0; first < count; first += per_transaction) {
    pqxx::work tx(conn);
    for (int i = first; i < std::min(count, first + per_transaction); ++i) {
      queue::enqueue(tx, {"noop", std::to_string(i), "{}", 3, 0s});
    }
    tx.commit();
  }
  pqxx::nontransaction(conn).exec0("VACUUM ANALYZE jobs");
  // Written out now, not by the server in the middle of the measurement.
  pqxx::nontransaction(conn).exec0("CHECKPOINT");
}

// As serve's queue lane has them.
db::pool_limits queue_lane_limits() {
  db::pool_limits limits;
  limits.session_settings = queue::claiming_session_settings();
  return limits;
}

// The workers on their own io_context thread, as the daemon runs them.
struct runtime {
  runtime(const std::string& dsn, std::size_t pool_threads, queue::worker_settings settings)
      : database(dsn, pool_threads, 5, queue_lane_limits()),
        metrics(registry),
        workers(io, database, dsn, std::move(settings), metrics) {}
  ~runtime() {
    if (thread.joinable()) {
      std::promise<void> drained;
      asio::co_spawn(io, workers.drain(), [&](std::exception_ptr) { drained.set_value(); });
      drained.get_future().wait();
      io.stop();
      thread.join();
    }
  }
  void start() {
    workers.start();
    thread = std::thread([this] { io.run(); });
  }
  // Outcomes recorded (committed) so far for jobs of `kind`.
  double succeeded(const char* kind) const { return metrics.runs.value({kind, "succeeded"}); }
  void wait_for(const char* kind, int count) const {
    while (succeeded(kind) < count) {
      std::this_thread::sleep_for(100us);
    }
  }

  asio::io_context io{1};
  ops::registry registry;
  db::pool database;
  queue::worker_metrics metrics;
  queue::workers workers;
  std::thread thread;
};

double percentile(std::vector<double> sorted, double p) {
  std::sort(sorted.begin(), sorted.end());
  const auto rank = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(rank, sorted.size() - 1)];
}

int run(int argc, char** argv) {
  const std::string dsn = argv[1];
  const int finished = argc > 8 ? std::stoi(argv[8]) : 0;
  const int held = argc > 9 ? std::stoi(argv[9]) : 0;
  const int jobs = positive(argv[2], "JOBS");
  const int pickups = positive(argv[6], "PICKUPS");
  const auto pace = std::chrono::milliseconds(positive(argv[7], "PACE_MS"));
  // stdout carries only the result line. The daemon runs at log level info; a line per job
  // would measure spdlog, not the queue.
  spdlog::set_default_logger(spdlog::stderr_color_mt("bench-queue"));
  spdlog::set_level(spdlog::level::warn);

  queue::worker_settings settings;  // the defaults (lease, poll interval) as the daemon has them
  settings.owner = queue::make_owner_name();
  settings.concurrency = positive(argv[3], "CONCURRENCY");
  settings.claim_batch = positive(argv[4], "CLAIM_BATCH");
  const auto pool_threads = static_cast<std::size_t>(positive(argv[5], "POOL_THREADS"));

  reset_jobs(dsn, finished, held);
  enqueue_backlog(dsn, jobs);

  std::atomic<std::int64_t> first_start{0};
  // Pickup timing: when each job's enqueue committed (client side) and when its handler began.
  std::vector<std::atomic<std::int64_t>> committed(static_cast<std::size_t>(pickups));
  std::vector<std::atomic<std::int64_t>> started(static_cast<std::size_t>(pickups));

  runtime rt(dsn, pool_threads, settings);
  rt.workers.add("noop", [&](const queue::claimed_job&) -> awaitable<queue::job_result> {
    std::int64_t none = 0;
    first_start.compare_exchange_strong(none, now_ns());
    co_return queue::job_result::done();
  });
  rt.workers.add("pickup", [&](const queue::claimed_job& job) -> awaitable<queue::job_result> {
    started[std::stoul(job.key)] = now_ns();
    co_return queue::job_result::done();
  });
  rt.start();
  rt.wait_for("noop", jobs);
  const std::int64_t all_done = now_ns();
  const double seconds = static_cast<double>(all_done - first_start.load()) / 1e9;

  pqxx::connection conn(dsn);
  std::this_thread::sleep_for(200ms);  // every worker idle, waiting for NOTIFY
  for (int i = 0; i < pickups; ++i) {
    pqxx::work tx(conn);
    queue::enqueue(tx, {"pickup", std::to_string(i), "{}", 3, 0s});
    tx.commit();
    committed[static_cast<std::size_t>(i)] = now_ns();
    std::this_thread::sleep_for(pace);
  }
  rt.wait_for("pickup", pickups);

  const std::string succeeded =
      pqxx::nontransaction(conn)
          .exec1("SELECT count(*) FROM jobs WHERE state = 'succeeded' AND kind <> 'done'")[0]
          .as<std::string>();
  if (succeeded != std::to_string(jobs + pickups)) {
    std::fprintf(stderr, "bench-queue: %s jobs succeeded, expected %d\n", succeeded.c_str(),
                 jobs + pickups);
    return 1;
  }
  std::vector<double> latency_ms;
  for (int i = 0; i < pickups; ++i) {
    const auto at = static_cast<std::size_t>(i);
    // A handler may start a hair before the enqueuer sees its COMMIT answer: that counts as 0.
    latency_ms.push_back(
        std::max<double>(0.0, static_cast<double>(started[at] - committed[at]) / 1e6));
  }
  std::printf(
      "jobs=%d seconds=%.3f rate=%.0f pickups=%d p50_ms=%.2f p99_ms=%.2f finished=%d held=%d\n",
      jobs, seconds, jobs / seconds, pickups, percentile(latency_ms, 0.50),
      percentile(latency_ms, 0.99), finished, held);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 8 || argc > 10) {
    std::fprintf(stderr,
                 "usage: bench-queue DSN JOBS CONCURRENCY CLAIM_BATCH POOL_THREADS PICKUPS "
                 "PACE_MS [FINISHED [HELD]]\n");
    return 2;
  }
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-queue: %s\n", e.what());
    return 1;
  }
}
