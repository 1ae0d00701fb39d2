// The webhook endpoint: Certn's GET challenge and the signed POST of an event, which is verified
// over the raw bytes, parsed, and stored with its job (in one transaction with the events that
// arrived with it: commit_groups) before any 2xx.
// Runs on the io_context thread; database work goes to the db::pool.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "config/config.hpp"
#include "db/pool.hpp"
#include "http/server.hpp"
#include "ops/clock.hpp"
#include "ops/metrics.hpp"
#include "webhook/commit_groups.hpp"

namespace archiver::webhook {

struct intake_metrics {
  explicit intake_metrics(ops::registry& registry);
  ops::counter_family& events;      // {type, outcome}: accepted, duplicate, bad_signature,
                                    //                  malformed, store_failed
  ops::histogram_family& latency;   // {outcome}: seconds from request to answer
  ops::histogram_family& group_events;  // events per commit group (commit_groups)
  ops::gauge_family& waiting_commit;      // events waiting for their commit group to start
};

class intake {
 public:
  // `max_attempts`: what jobs enqueued for events are created with. Signature timestamps are
  // judged by `time`'s calendar clock. Events are stored in commit groups, at most
  // settings.concurrent_commits at once (and no more than `database` has connections).
  // `database`, `metrics` and `time` must outlive the intake.
  intake(config::webhook_settings settings, int max_attempts, db::pool& database,
         intake_metrics& metrics, const ops::clock& time = ops::real_clock());

  // `notify` is called on the io thread after an event is stored whose job is due only later
  // (coalesced), with that delay: serve points it at its own workers (queue::workers::due_in),
  // which no NOTIFY wakes for such a job. REQUIRES: before the first request.
  void on_job_due_later(std::function<void(std::chrono::seconds)> notify);

  // Replaces the accepted webhook secrets (SIGHUP). On the io_context's thread only: requests
  // are verified there, each against the secrets in force when it arrived.
  void set_secrets(std::vector<std::string> secrets) { settings_.secrets = std::move(secrets); }

  // GET ?challenge=X -> 200 X; POST -> 200 accepted|duplicate, 400 malformed, 401 bad
  // signature, 503 not stored; any other method -> 405.
  awaitable<http::response> handle(const http::request& req);

 private:
  http::response answer_challenge(const http::request& req) const;
  awaitable<http::response> receive_event(const http::request& req);

  config::webhook_settings settings_;
  int max_attempts_;
  intake_metrics& metrics_;
  commit_groups groups_;
  const ops::clock& time_;
  std::function<void(std::chrono::seconds)> job_due_later_;
};

// The value of `name` in the query string of `target`, percent-decoded; nullopt when absent or
// badly encoded. Pure.
std::optional<std::string> query_parameter(std::string_view target, std::string_view name);

}  // namespace archiver::webhook
