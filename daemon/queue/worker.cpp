#include "queue/worker.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <pqxx/pqxx>
#include <random>
#include <thread>

#include "ops/logging.hpp"
#include "queue/admin.hpp"

namespace archiver::queue {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

double unit_random() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

std::string one_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  while (!text.empty() && text.back() == ' ') {
    text.pop_back();
  }
  return text;
}

// The one place a handler's verdict becomes a queue outcome.
outcome decide(const job_result& result, const claimed_job& job, const worker_settings& s) {
  switch (result.what) {
    case job_result::kind::done:
      return {outcome::kind::succeeded, "", milliseconds{0}};
    case job_result::kind::permanent:
      return {outcome::kind::dead, result.error, milliseconds{0}};
    case job_result::kind::retry:
      break;
  }
  return {
      outcome::kind::retry, result.error,
      retry_delay(job.attempt, s.backoff_base, s.backoff_max, result.retry_after, unit_random()),
      result.counts_as_attempt};
}

const char* outcome_label(outcome::kind what, bool recorded) {
  if (!recorded) {
    return "lease_lost";
  }
  switch (what) {
    case outcome::kind::succeeded:
      return "succeeded";
    case outcome::kind::retry:
      return "retry";
    case outcome::kind::dead:
      return "dead";
  }
  return "unknown";
}

}  // namespace

std::string make_owner_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) {
    std::snprintf(host, sizeof host, "unknown");
  }
  std::mt19937 engine{std::random_device{}()};
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(engine()));
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" + suffix;
}

worker_metrics::worker_metrics(ops::registry& registry)
    : runs(registry.counter("certn_archiver_jobs_total", "Job runs by kind and outcome.",
                            {"kind", "outcome"})),
      duration(registry.histogram(
          "certn_archiver_job_duration_seconds", "Time from claim to recorded outcome, by kind.",
          {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800}, {"kind"})),
      depth(registry.gauge("certn_archiver_jobs", "Jobs by state (queued, failed, running, dead).",
                           {"state"})),
      oldest_age(registry.gauge("certn_archiver_jobs_oldest_age_seconds",
                                "Age of the oldest due job by state (queued, failed), and of the "
                                "oldest dead job.",
                                {"state"})) {}

// LISTEN on its own connection and thread (libpq blocks while it waits); each notification
// posts a wake-up to the io_context. Reconnects after a failure; the claim loop's polling covers
// the gap.
struct workers::listener {
  listener(std::string conninfo, std::function<void()> on_notify)
      : conninfo(std::move(conninfo)), on_notify(std::move(on_notify)) {
    thread = std::thread([this] { run(); });
  }
  ~listener() {
    stop = true;
    thread.join();
  }

  struct receiver final : pqxx::notification_receiver {
    receiver(pqxx::connection_base& conn, std::function<void()>& on_notify)
        : pqxx::notification_receiver(conn, notify_channel), on_notify(on_notify) {}
    void operator()(const std::string&, int) override { on_notify(); }
    std::function<void()>& on_notify;
  };

  void run() {
    bool warned = false;
    while (!stop) {
      try {
        pqxx::connection conn(conninfo);
        receiver listening(conn, on_notify);
        if (warned) {
          spdlog::info("job notifications: listening again");
          warned = false;
        }
        on_notify();  // jobs may have arrived while we were not listening
        while (!stop) {
          conn.await_notification(0, 250'000);
        }
      } catch (const std::exception& e) {
        if (!warned) {
          spdlog::warn("job notifications: {}; polling until the database is back",
                       one_line(e.what()));
          warned = true;
        }
        for (int i = 0; i < 10 && !stop; ++i) {
          std::this_thread::sleep_for(milliseconds(100));
        }
      }
    }
  }

  std::string conninfo;
  std::function<void()> on_notify;
  std::atomic<bool> stop{false};
  std::thread thread;
};

workers::workers(asio::io_context& io, db::pool& database, std::string conninfo,
                 worker_settings settings, worker_metrics& metrics)
    : io_(io),
      database_(database),
      conninfo_(std::move(conninfo)),
      settings_(std::move(settings)),
      metrics_(metrics),
      wake_timer_(io),
      idle_timer_(io),
      maintenance_timer_(io) {}

workers::~workers() { listener_.reset(); }

void workers::add(std::string kind, handler run) { handlers_[std::move(kind)] = std::move(run); }

void workers::wake() {
  wake_pending_ = true;
  wake_timer_.cancel();
}

void workers::start() {
  listener_ =
      std::make_unique<listener>(conninfo_, [this] { asio::post(io_, [this] { wake(); }); });
  auto log_failure = [](const char* what) {
    return [what](std::exception_ptr error) { ops::log_exception(what, error); };
  };
  asio::co_spawn(io_, claim_loop(), log_failure("job claim loop"));
  asio::co_spawn(io_, maintenance_loop(), log_failure("job maintenance loop"));
  spdlog::info("workers: {} as {}, lease {} s", settings_.concurrency, settings_.owner,
               settings_.lease.count());
}

awaitable<void> workers::claim_loop() {
  ++loops_alive_;
  bool database_failing = false;
  while (!stopping_) {
    wake_pending_ = false;
    const int wanted = std::min(free_slots(), settings_.claim_batch);
    bool maybe_more = false;
    if (wanted > 0) {
      std::vector<claimed_job> jobs;
      reserved_ += wanted;
      try {
        jobs = co_await database_.query<std::vector<claimed_job>>([&](pqxx::connection& conn) {
          return claim(conn, settings_.owner, wanted, settings_.lease);
        });
        if (database_failing) {
          spdlog::info("workers: claiming jobs again");
          database_failing = false;
        }
      } catch (const std::exception& e) {
        if (!database_failing) {
          spdlog::warn("workers: cannot claim jobs: {}; retrying every {} ms", one_line(e.what()),
                       settings_.poll_interval.count());
          database_failing = true;
        }
      }
      reserved_ -= wanted;
      maybe_more = static_cast<int>(jobs.size()) == wanted;
      co_await start_jobs(std::move(jobs));
      if (stopping_) {
        break;
      }
    }
    if ((maybe_more || wake_pending_) && free_slots() > 0) {
      continue;
    }
    wake_timer_.expires_after(settings_.poll_interval);
    error_code ec;
    co_await wake_timer_.async_wait(with_error(ec));
  }
  --loops_alive_;
  idle_timer_.cancel();
}

awaitable<void> workers::start_jobs(std::vector<claimed_job> jobs) {
  if (stopping_) {
    // Claimed during the drain's first moments: give them straight back.
    std::vector<std::int64_t> ids;
    for (const auto& job : jobs) {
      ids.push_back(job.id);
    }
    if (!ids.empty()) {
      co_await database_.run([&](pqxx::connection& conn) { release(conn, settings_.owner, ids); });
    }
    co_return;
  }
  for (claimed_job& job : jobs) {
    running_[job.id] = job.kind;
    asio::co_spawn(io_, run_one(std::move(job)),
                   [](std::exception_ptr error) { ops::log_exception("job", error); });
  }
}

awaitable<void> workers::run_one(claimed_job job) {
  const auto started = steady_clock::now();
  job_result result;
  const auto found = handlers_.find(job.kind);
  if (found == handlers_.end()) {
    result = job_result::permanent("no handler for job kind \"" + job.kind + "\"");
  } else {
    try {
      result = co_await found->second(job);
    } catch (const std::exception& e) {
      result = job_result::retry(one_line(e.what()));
    }
  }
  const outcome decided = decide(result, job, settings_);
  finishing_.insert(job.id);
  const auto now = steady_clock::now();
  // While the database is away the outcome is kept for recording until the lease would have run
  // out anyway (then a rescuer re-runs the job: at least once, never lost).
  to_record_.push_back(pending_outcome{std::move(job), decided, started, now + settings_.lease});
  if (!recording_) {
    recording_ = true;
    asio::co_spawn(io_, record_outcomes(),
                   [](std::exception_ptr error) { ops::log_exception("job outcomes", error); });
  }
}

// Group commit: the outcomes that arrive while one transaction records are recorded together by
// the next, so a busy queue pays one commit for many jobs and an idle one adds no delay.
awaitable<void> workers::record_outcomes() {
  while (!to_record_.empty()) {
    std::vector<pending_outcome> batch;
    batch.swap(to_record_);
    std::vector<finished_run> runs;
    runs.reserve(batch.size());
    for (const auto& pending : batch) {
      runs.push_back({pending.job.id, pending.decided});
    }
    // The slots these runs free are filled in the same transaction: one commit per cycle of a
    // busy queue instead of one to record and one to claim.
    const int wanted = stopping_ ? 0
                                 : std::min(settings_.claim_batch,
                                            free_slots() + static_cast<int>(batch.size()));
    reserved_ += wanted;
    std::vector<bool> recorded;
    std::vector<claimed_job> claimed;
    try {
      std::tie(recorded, claimed) =
          co_await database_.query<std::pair<std::vector<bool>, std::vector<claimed_job>>>(
              [&](pqxx::connection& conn) {
                pqxx::work tx(conn, "finish");
                auto mine = finish_all(tx, settings_.owner, runs);
                auto next = claim(tx, settings_.owner, wanted, settings_.lease);
                tx.commit();
                return std::pair{std::move(mine), std::move(next)};
              });
    } catch (const std::exception& e) {
      // One run whose outcome cannot be recorded must not hold up the others: record them one by
      // one this round. When the database itself is away, each fails at once.
      spdlog::debug("workers: recording {} outcome(s) together failed: {}", batch.size(),
                    one_line(e.what()));
      recorded.clear();
    }
    reserved_ -= wanted;
    if (recorded.size() == batch.size()) {
      for (std::size_t i = 0; i < batch.size(); ++i) {
        after_recorded(batch[i], recorded[i]);
      }
      co_await start_jobs(std::move(claimed));
      continue;
    }
    std::vector<pending_outcome> unrecorded;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      std::string error;
      try {
        const bool mine = co_await database_.query<bool>([&](pqxx::connection& conn) {
          pqxx::work tx(conn, "finish");
          const bool held = finish(tx, runs[i].id, settings_.owner, runs[i].result);
          tx.commit();
          return held;
        });
        after_recorded(batch[i], mine);
        continue;
      } catch (const std::exception& e) {
        error = one_line(e.what());
      }
      const auto& job = batch[i].job;
      if (steady_clock::now() >= batch[i].give_up) {
        spdlog::error("job {} {}({}): cannot record its outcome: {}; it will run again", job.id,
                      job.kind, job.key, error);
        after_recorded(batch[i], false);
      } else {
        unrecorded.push_back(std::move(batch[i]));
      }
    }
    if (!unrecorded.empty()) {
      to_record_.insert(to_record_.begin(), std::make_move_iterator(unrecorded.begin()),
                        std::make_move_iterator(unrecorded.end()));
      asio::steady_timer pause(io_, settings_.poll_interval);
      error_code ec;
      co_await pause.async_wait(with_error(ec));
    }
  }
  recording_ = false;
  if (stopping_) {
    idle_timer_.cancel();
  }
}

void workers::after_recorded(const pending_outcome& run, bool recorded) {
  const auto& job = run.job;
  const auto& decided = run.decided;
  const double elapsed = std::chrono::duration<double>(steady_clock::now() - run.started).count();
  metrics_.runs.inc({job.kind, outcome_label(decided.what, recorded)});
  metrics_.duration.observe({job.kind}, elapsed);
  if (!recorded) {
    spdlog::warn("job {} {}({}): lease lost (cancelled or rescued); result discarded", job.id,
                 job.kind, job.key);
  } else if (decided.what == outcome::kind::succeeded) {
    spdlog::info("job {} {}({}) done in {:.3f} s", job.id, job.kind, job.key, elapsed);
  } else if (decided.what == outcome::kind::retry && !decided.counts_as_attempt) {
    // Waiting (for a 429's window, for the case's other jobs) is expected, not a failure.
    spdlog::debug("job {} {}({}) waits: {}; again in {:.1f} s", job.id, job.kind, job.key,
                  decided.error, static_cast<double>(decided.delay.count()) / 1000.0);
  } else if (decided.what == outcome::kind::retry && job.attempt < job.max_attempts) {
    spdlog::warn("job {} {}({}) attempt {}/{} failed: {}; retry in {:.1f} s", job.id, job.kind,
                 job.key, job.attempt, job.max_attempts, decided.error,
                 static_cast<double>(decided.delay.count()) / 1000.0);
  } else {
    spdlog::error("job {} {}({}) dead after attempt {}: {}", job.id, job.kind, job.key, job.attempt,
                  decided.error);
  }
  running_.erase(job.id);
  finishing_.erase(job.id);
  wake();
  if (stopping_ && running_.empty()) {
    idle_timer_.cancel();
  }
}

awaitable<void> workers::maintenance_loop() {
  ++loops_alive_;
  const milliseconds tick =
      std::clamp<milliseconds>(std::chrono::duration_cast<milliseconds>(settings_.lease) / 10,
                               milliseconds(200), milliseconds(5000));
  const auto heartbeat_every = std::chrono::duration_cast<milliseconds>(settings_.lease) / 4;
  auto next_heartbeat = steady_clock::now() + heartbeat_every;
  auto next_depth = steady_clock::now();
  auto next_prune = steady_clock::now() + std::chrono::minutes(1);
  while (!stopping_) {
    const auto now = steady_clock::now();
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
        next_depth = now + seconds(5);
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
      spdlog::debug("job maintenance: {}", one_line(e.what()));
    }
    maintenance_timer_.expires_after(tick);
    error_code ec;
    co_await maintenance_timer_.async_wait(with_error(ec));
  }
  --loops_alive_;
  idle_timer_.cancel();
}

awaitable<void> workers::refresh_depth() {
  struct row {
    std::string state;
    double count;
    double oldest;
  };
  const auto rows = co_await database_.query<std::vector<row>>([](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn, "depth");
    const pqxx::result r = tx.exec(
        "SELECT state::text, count(*), COALESCE(EXTRACT(EPOCH FROM now() - min("
        "  CASE WHEN state = 'dead' THEN finished_at"
        "       WHEN state IN ('queued', 'failed') AND run_at <= now() THEN run_at END)), 0) "
        "FROM jobs WHERE state IN ('queued', 'failed', 'running', 'dead') GROUP BY state");
    std::vector<row> out;
    for (const auto& r_row : r) {
      out.push_back({r_row[0].as<std::string>(), r_row[1].as<double>(), r_row[2].as<double>()});
    }
    return out;
  });
  for (const char* state : {"queued", "failed", "running", "dead"}) {
    double count = 0;
    double oldest = 0;
    for (const row& r : rows) {
      if (r.state == state) {
        count = r.count;
        oldest = r.oldest;
      }
    }
    metrics_.depth.set({state}, count);
    if (std::string_view(state) != "running") {
      metrics_.oldest_age.set({state}, oldest);
    }
  }
}

awaitable<void> workers::drain() {
  if (stopping_) {
    co_return;
  }
  stopping_ = true;
  wake_timer_.cancel();
  maintenance_timer_.cancel();
  const auto deadline = steady_clock::now() + settings_.drain_timeout;
  if (!running_.empty()) {
    spdlog::info("workers: waiting up to {} s for {} running job(s)",
                 settings_.drain_timeout.count(), running_.size());
  }
  while ((!running_.empty() || loops_alive_ > 0 || recording_) && steady_clock::now() < deadline) {
    idle_timer_.expires_at(deadline);
    error_code ec;
    co_await idle_timer_.async_wait(with_error(ec));
  }
  if (!running_.empty()) {
    std::vector<std::int64_t> ids;
    for (const auto& [id, kind] : running_) {
      ids.push_back(id);
    }
    try {
      const int released = co_await database_.query<int>(
          [&](pqxx::connection& conn) { return release(conn, settings_.owner, ids); });
      spdlog::info("workers: released {} unfinished job(s) for other replicas", released);
    } catch (const std::exception& e) {
      spdlog::warn("workers: could not release {} job(s) ({}); their leases expire in {} s",
                   ids.size(), one_line(e.what()), settings_.lease.count());
    }
  }
  listener_.reset();
}

}  // namespace archiver::queue
