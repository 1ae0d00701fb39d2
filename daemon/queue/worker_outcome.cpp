// The workers' outcome recorder: a handler's verdict turned into a queue outcome (decide), the
// outcomes recorded in groups with the next claims in the same transaction, and the metrics.
#include <spdlog/spdlog.h>

#include <pqxx/pqxx>
#include <random>

#include "ops/logging.hpp"
#include "queue/worker_detail.hpp"

namespace archiver::queue {

using worker_detail::one_line;

namespace {

double unit_random() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
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

outcome worker_detail::decide(const job_result& result, const claimed_job& job,
                              const worker_settings& s) {
  using std::chrono::milliseconds;
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
                                {"state"})),
      stale_outcomes(registry.counter(
          "certn_archiver_jobs_stale_outcomes_total",
          "Outcomes discarded because their run no longer held its lease (rescued, cancelled or "
          "claimed again), by kind.",
          {"kind"})) {}

// Group commit: the outcomes that arrive while one transaction records are recorded together by
// the next, so a busy queue pays one commit for many jobs and an idle one adds no delay.
awaitable<void> workers::record_outcomes() {
  while (!to_record_.empty()) {
    std::vector<pending_outcome> batch;
    batch.swap(to_record_);
    std::vector<finished_run> runs;
    runs.reserve(batch.size());
    for (const auto& pending : batch) {
      runs.push_back({pending.job.lease(), pending.decided});
    }
    // The slots these runs free are filled in the same transaction: one commit per cycle of a
    // busy queue instead of one to record and one to claim.
    const int wanted =
        stopping_ ? 0
                  : std::min(settings_.claim_batch, free_slots() + static_cast<int>(batch.size()));
    reserved_ += wanted;
    std::vector<bool> recorded;
    std::vector<claimed_job> claimed;
    try {
      std::tie(recorded, claimed) =
          co_await database_.query<std::pair<std::vector<bool>, std::vector<claimed_job>>>(
              [&](pqxx::connection& conn) {
                pqxx::work tx(conn, "finish");
                auto mine = finish_all(tx, runs);
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
        after_recorded(batch[i], recorded[i] ? recording::recorded : recording::stale);
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
          const bool held = finish(tx, runs[i].run, runs[i].result);
          tx.commit();
          return held;
        });
        after_recorded(batch[i], mine ? recording::recorded : recording::stale);
        continue;
      } catch (const std::exception& e) {
        error = one_line(e.what());
      }
      const auto& job = batch[i].job;
      if (give_up_recording(batch[i].finished, settings_.lease, time_.steady_now())) {
        spdlog::error("job {} {}({}): cannot record its outcome: {}; it will run again", job.id,
                      job.kind, job.key, error);
        after_recorded(batch[i], recording::given_up);
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

void workers::after_recorded(const pending_outcome& run, recording what) {
  const bool recorded = what == recording::recorded;
  const auto& job = run.job;
  const auto& decided = run.decided;
  const double elapsed = std::chrono::duration<double>(time_.steady_now() - run.started).count();
  metrics_.runs.inc({job.kind, outcome_label(decided.what, recorded)});
  metrics_.duration.observe({job.kind}, elapsed);
  // The job's ids as fields of the record too (JSON keys, journald fields), not only in its text.
  // The message is formatted only when its level is logged: a busy queue's "waits" lines are
  // debug.
  const auto log = [&](spdlog::level::level_enum level, const auto& message) {
    if (spdlog::should_log(level)) {
      ops::log_with(
          level, {{"job_id", std::to_string(job.id)}, {"job_kind", job.kind}, {"job_key", job.key}},
          fmt::format("job {} {}({}){}", job.id, job.kind, job.key, message()));
    }
  };
  const double delay_seconds = static_cast<double>(decided.delay.count()) / 1000.0;
  if (what == recording::given_up) {
    // Logged by the caller with the database's error.
  } else if (what == recording::stale) {
    metrics_.stale_outcomes.inc({job.kind});
    log(spdlog::level::warn, [] {
      return std::string(": lease lost (cancelled, rescued or claimed again); result discarded");
    });
  } else if (decided.what == outcome::kind::succeeded) {
    log(spdlog::level::info, [&] { return fmt::format(" done in {:.3f} s", elapsed); });
  } else if (decided.what == outcome::kind::retry && !decided.counts_as_attempt) {
    // Waiting (for a 429's window, for the case's other jobs) is expected, not a failure.
    log(spdlog::level::debug,
        [&] { return fmt::format(" waits: {}; again in {:.1f} s", decided.error, delay_seconds); });
  } else if (decided.what == outcome::kind::retry && job.attempt < job.max_attempts) {
    log(spdlog::level::warn, [&] {
      return fmt::format(" attempt {}/{} failed: {}; retry in {:.1f} s", job.attempt,
                         job.max_attempts, decided.error, delay_seconds);
    });
  } else {
    log(spdlog::level::err,
        [&] { return fmt::format(" dead after attempt {}: {}", job.attempt, decided.error); });
  }
  if (running_.erase(job.lease_token) > 0 && job.priority != ops::priority::live) {
    --running_below_live_;
  }
  finishing_.erase(job.lease_token);
  wake();
  if (stopping_ && running_.empty()) {
    idle_timer_.cancel();
  }
}

awaitable<void> workers::refresh_depth() {
  struct row {
    std::string state;
    double count;
    double oldest;
  };
  const auto rows = co_await database_.query<std::vector<row>>([](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn, "depth");
    // One part per partial index (migrations 0001, 0005, 0010), so that no part scans the
    // finished jobs.
    const pqxx::result r = tx.exec(
        "SELECT state::text, count(*), COALESCE(EXTRACT(EPOCH FROM now() - min("
        "  CASE WHEN run_at <= now() THEN run_at END)), 0) "
        "FROM jobs WHERE state IN ('queued', 'failed') GROUP BY state "
        "UNION ALL SELECT 'running', count(*), 0 FROM jobs WHERE state = 'running' "
        "UNION ALL SELECT 'dead', count(*), "
        "  COALESCE(EXTRACT(EPOCH FROM now() - min(finished_at)), 0) "
        "FROM jobs WHERE state = 'dead'");
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

}  // namespace archiver::queue
