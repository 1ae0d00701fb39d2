#include "service/pipeline.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <pqxx/pqxx>

#include "archive/repository.hpp"
#include "certn/key_expiry.hpp"
#include "encoding/encoding.hpp"
#include "ops/clock.hpp"
#include "ops/logging.hpp"
#include "queue/admin.hpp"
#include "records/audit.hpp"
#include "records/purger.hpp"
#include "records/retention.hpp"
#include "retry/table.hpp"
#include "storage/filesystem_store.hpp"
#include "storage/s3_store.hpp"
#include "webhook/store.hpp"

namespace archiver::service {

std::unique_ptr<storage::object_store> make_store(asio::io_context& io,
                                                  const config::storage_settings& settings) {
  if (settings.backend == "s3") {
    return std::make_unique<storage::s3_store>(io, settings);
  }
  return std::make_unique<storage::filesystem_store>(settings.path);
}

namespace {

archive::settings archive_settings_from(const config::config& cfg) {
  archive::settings s;
  s.policy = cfg.archive;
  s.prefix = cfg.storage.prefix;
  s.max_attempts = cfg.workers.max_attempts;
  s.report_poll_delay = cfg.workers.report_poll_delay;
  s.reconcile_interval = cfg.workers.reconcile_interval;
  s.reconcile.full_interval = cfg.workers.reconcile_full_interval;
  s.reconcile.lookback_days = cfg.workers.reconcile_lookback_days;
  s.reconcile.recent_days = cfg.workers.reconcile_recent_days;
  s.reconcile.old_case_days = cfg.workers.reconcile_old_case_days;
  s.reconcile.recheck_open = cfg.workers.reconcile_recheck_open;
  s.reconcile.recheck_old = cfg.workers.reconcile_recheck_old;
  s.reconcile.archive_statuses = cfg.archive.on_statuses;
  s.retention = records::parse_retention(cfg.records.retention);  // checked at start-up (main)
  s.protect_objects = config::locks_objects(cfg.storage);
  return s;
}

queue::worker_settings worker_settings_from(const config::workers_settings& w) {
  queue::worker_settings s;
  s.owner = queue::make_owner_name();
  s.concurrency = w.concurrency;
  s.claim_batch = w.claim_batch;
  s.lease = std::chrono::seconds(w.lease_seconds);
  s.poll_interval = w.poll_interval;
  s.backoff_base = w.backoff_base;
  s.backoff_max = w.backoff_max;
  s.drain_timeout = w.drain_timeout;
  s.keep_finished_days = w.keep_finished_days;
  s.priorities = {w.priority_reserve_percent, w.priority_max_wait};
  return s;
}

}  // namespace

pipeline::pipeline(asio::io_context& io, const config::config& cfg, pipeline_databases databases,
                   ops::registry& registry)
    : pipeline(io, cfg, databases, registry, make_store(io, cfg.storage), nullptr) {}

pipeline::pipeline(asio::io_context& io, const config::config& cfg, pipeline_databases databases,
                   ops::registry& registry, storage::object_store& store)
    : pipeline(io, cfg, databases, registry, nullptr, &store) {}

pipeline::pipeline(asio::io_context& io, const config::config& cfg, pipeline_databases databases,
                   ops::registry& registry, std::unique_ptr<storage::object_store> owned,
                   storage::object_store* borrowed)
    : cfg_(cfg),
      databases_(databases),
      owned_store_(std::move(owned)),
      store_(borrowed != nullptr ? *borrowed : *owned_store_, registry),
      // The shared rate limit's bookings come before each Certn call: part of a job's work.
      certn_(io, cfg.certn, &registry, &databases.work,
             {cfg.workers.priority_reserve_percent, cfg.workers.priority_max_wait}),
      archive_metrics_(registry),
      workflows_(databases.work, certn_.api(), store_, archive_settings_from(cfg),
                 archive_metrics_),
      worker_metrics_(registry),
      workers_(io, databases.queue, databases.queue.conninfo(), worker_settings_from(cfg.workers),
               worker_metrics_, ops::real_clock()),
      records_(cfg.records),
      retention_(records::parse_retention(cfg.records.retention)),
      protect_objects_(config::locks_objects(cfg.storage)),
      max_attempts_(cfg.workers.max_attempts),
      layout_(cfg.storage.prefix),
      purged_(registry.counter("certn_archiver_records_purged_total",
                               "What the purge disposed of: cases, objects and bytes.", {"what"})),
      purge_problems_(registry.counter("certn_archiver_records_purge_problems_total",
                                       "Objects the purge could not delete (retried next run).")),
      records_gauge_(registry.gauge(
          "certn_archiver_records",
          "Records management, refreshed at each purge run: held_cases, cases_due (retention "
          "passed, not purged), objects_retained and bytes_retained (of cases with a retention "
          "date), next_purge_unixtime.",
          {"what"})),
      purge_timer_(io),
      digest_timer_(io),
      api_key_created_(encoding::parse_utc_day(cfg.certn.api_key_created)),
      key_expiry_timer_(io) {
  workflows_.register_with(workers_);
  if (const int days = cfg.webhook.keep_events_days; days > 0) {
    workers_.add_housekeeping(
        {"processed webhook event(s) older than " + std::to_string(days) + " days",
         [days](pqxx::connection& conn, int limit) {
           return webhook::prune_processed_events(conn, std::chrono::hours(24) * days, limit);
         }});
  }
  s3_store_ = dynamic_cast<storage::s3_store*>(owned_store_.get());
  registry.gauge_callback(
      "certn_archiver_certn_api_key_expiry_days",
      "Days until the Certn API key expires (365 days after certn.api_key_created); negative "
      "once it has; NaN when certn.api_key_created is not set.",
      [this] {
        return api_key_created_
                   ? certn::days_until_key_expires(*api_key_created_, ops::real_clock().wall_now())
                   : std::numeric_limits<double>::quiet_NaN();
      });
  registry.gauge_callback(
      "certn_archiver_reconcile_interval_seconds",
      "workers.reconcile_interval_seconds: how often reconcile runs (0: never).",
      [interval = cfg.workers.reconcile_interval] {
        return static_cast<double>(interval.count());
      });
  registry.gauge_callback("certn_archiver_certn_auth_refused",
                          "1 while Certn refuses the API key (401, or a 403 saying so), else 0.",
                          [this] { return workflows_.certn_auth_failing() ? 1.0 : 0.0; });
  registry.gauge_callback(
      "certn_archiver_certn_calls_per_archived_case",
      "Certn API calls of the last hour per case archived (manifest written) in the last hour; "
      "0 when no case was archived. 5 is the minimum on the webhook flow.",
      [this] {
        const auto now = std::chrono::steady_clock::now();
        const std::int64_t cases = archive_metrics_.cases_archived_last_hour.sum(now);
        const certn::api_metrics* calls = certn_.metrics();
        if (cases == 0 || calls == nullptr) {
          return 0.0;
        }
        return static_cast<double>(calls->calls_last_hour.sum(now)) / static_cast<double>(cases);
      });
}

pipeline::~pipeline() = default;

awaitable<void> pipeline::start() {
  // Protection the configuration asks for and the store cannot give (Object Lock on a bucket
  // without it) is a start-up error: archiving without it would break the promise silently.
  const std::optional<storage::store_failure> unprotected = co_await store_.check_protection();
  if (unprotected) {
    throw std::runtime_error(unprotected->message);
  }
  if (cfg_.workers.reconcile_interval.count() > 0) {
    const int max_attempts = cfg_.workers.max_attempts;
    const std::chrono::seconds interval = cfg_.workers.reconcile_interval;
    co_await databases_.queue.run([max_attempts, interval](pqxx::connection& conn) {
      pqxx::work tx(conn);
      // Books the chain when it has no pending run (a first start, or its run died) one interval
      // ahead; a pending run keeps its time. So restarts spend no Certn calls, and a run that
      // fell due while nobody listened runs at once: that is the catching up.
      queue::enqueue(tx, {archive::reconcile_kind, archive::reconcile_key, "{}", max_attempts,
                          interval, ops::priority::sync});
      tx.commit();
    });
  }
  // A change of the retention policy applies to the cases that close from now on; the trail
  // records when it took effect.
  const std::string retention = records::to_string(retention_);
  // The approval rule too: the CLI holds to it whatever its own configuration says.
  const std::string approval = records_.purge_approval;
  // Built apart from the co_await: see db::pool::query_within.
  std::function<bool(pqxx::connection&)> record_policy = [retention,
                                                          approval](pqxx::connection& conn) {
    pqxx::work tx(conn);
    const bool appended = records::append_audit_if_changed(tx, records::daemon_actor(),
                                                           "retention_policy", retention);
    records::append_audit_if_changed(tx, records::daemon_actor(), "purge_approval", approval);
    tx.commit();
    return appended;
  };
  const bool changed = co_await databases_.work.query<bool>(std::move(record_policy));
  if (changed) {
    spdlog::info("retention policy now in force: {}", retention);
  }
  if (stopping_) {
    co_return;  // drained while starting (a SIGTERM during a start that a reload began)
  }
  workers_.start();
  spdlog::info("archiving to {}", store_.describe());
  if (records_.purge_interval_seconds > 0) {
    asio::co_spawn(purge_timer_.get_executor(), purge_loop(),
                   [](std::exception_ptr error) { ops::log_exception("purge loop", error); });
  }
  if (records_.audit_digest_interval_seconds > 0) {
    asio::co_spawn(digest_timer_.get_executor(), audit_digest_loop(), [](std::exception_ptr error) {
      ops::log_exception("audit digest loop", error);
    });
  }
  asio::co_spawn(key_expiry_timer_.get_executor(), key_expiry_loop(),
                 [](std::exception_ptr error) { ops::log_exception("key expiry loop", error); });
  std::function<std::optional<double>(pqxx::connection&)> read_last_reconcile =
      [](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        return archive::repository::last_reconcile_run(tx);
      };
  const std::optional<double> last_reconcile =
      co_await databases_.work.query<std::optional<double>>(std::move(read_last_reconcile));
  if (last_reconcile) {
    archive_metrics_.reconcile_finished.set({}, *last_reconcile);
  }
  // Partial files of a process killed mid-download. An hour is far beyond any live write's
  // silence (reads time out after 30 s), so another replica's staging file is never taken.
  try {
    const std::size_t removed = co_await store_.remove_stale_staging(std::chrono::hours(1));
    if (removed > 0) {
      spdlog::info("removed {} stale staging file(s) left by an earlier crash", removed);
    }
  } catch (const std::exception& e) {
    spdlog::warn("could not look for stale staging files: {}", e.what());
  }
}

awaitable<void> pipeline::drain() {
  stopping_ = true;
  purge_timer_.cancel();
  digest_timer_.cancel();
  key_expiry_timer_.cancel();
  co_await workers_.drain();
}

awaitable<void> pipeline::refresh_records_gauges() {
  std::function<records::records_status(pqxx::connection&)> read = [](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    return records::read_records_status(tx);
  };
  const records::records_status now =
      co_await databases_.work.query<records::records_status>(std::move(read));
  records_gauge_.set({"held_cases"}, static_cast<double>(now.held_cases));
  records_gauge_.set({"cases_due"}, static_cast<double>(now.cases_due));
  records_gauge_.set({"objects_retained"}, static_cast<double>(now.objects_retained));
  records_gauge_.set({"bytes_retained"}, static_cast<double>(now.bytes_retained));
  records_gauge_.set({"erasures_pending"}, static_cast<double>(now.erasures_pending));
}

awaitable<void> pipeline::purge_loop() {
  const auto interval = std::chrono::seconds(records_.purge_interval_seconds);
  records::purge_order order;
  order.actor = records::daemon_actor();
  order.purger = order.actor;
  while (!stopping_) {
    try {
      // Closed cases without a date (closed before the policy existed, or before an upgrade)
      // get theirs first, a thousand per transaction.
      constexpr int dating_batch = 1000;
      int dated = 0;
      for (int batch = dating_batch; batch == dating_batch && !stopping_;) {
        std::function<int(pqxx::connection&)> date_them = [this](pqxx::connection& conn) {
          pqxx::work tx(conn);
          const int done = archive::date_closed_cases(tx, retention_, dating_batch,
                                                      protect_objects_, max_attempts_);
          tx.commit();
          return done;
        };
        batch = co_await databases_.work.query<int>(std::move(date_them));
        dated += batch;
      }
      if (dated > 0) {
        spdlog::info("retention: dated {} closed case(s) that had no retention date", dated);
      }
      records::purge_tally tally;
      co_await records::purge_due(databases_.work, store_, order, records_.purge_batch, stopping_,
                                  tally);
      purged_.inc({"cases"}, tally.cases);
      purged_.inc({"objects"}, tally.objects);
      purged_.inc({"bytes"}, static_cast<double>(tally.bytes));
      purge_problems_.inc({}, static_cast<double>(tally.problems.size()));
      for (const std::string& problem : tally.problems) {
        spdlog::warn("purge: {}", problem);
      }
      if (tally.cases > 0) {
        spdlog::info("purge: {} case(s), {} object(s), {} bytes", tally.cases, tally.objects,
                     tally.bytes);
      }
      co_await refresh_records_gauges();
    } catch (const std::exception& e) {
      spdlog::warn("purge: {}; trying again in {} s", e.what(), interval.count());
    }
    records_gauge_.set(
        {"next_purge_unixtime"},
        static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                (std::chrono::system_clock::now() + interval).time_since_epoch())
                                .count()));
    purge_timer_.expires_after(interval);
    error_code ec;
    co_await purge_timer_.async_wait(with_error(ec));
  }
}

awaitable<void> pipeline::audit_digest_loop() {
  const auto interval = std::chrono::seconds(records_.audit_digest_interval_seconds);
  while (!stopping_) {
    try {
      std::function<std::optional<records::audit_digest>(pqxx::connection&)> read_head =
          [](pqxx::connection& conn) {
            pqxx::read_transaction tx(conn);
            return records::chain_head(tx);
          };
      const std::optional<records::audit_digest> head =
          co_await databases_.work.query<std::optional<records::audit_digest>>(
              std::move(read_head));
      if (head) {
        // The same head gives the same bytes at the same key: replicas, and runs with no new
        // row, write nothing (put_bytes finds it already present).
        const storage::object_protection protection;
        const std::string key = layout_.audit_digest(head->seq);
        std::string body = records::digest_json(*head);
        const std::string content_type = "application/json";
        const storage::put_result put =
            co_await store_.put_bytes(key, std::move(body), content_type, protection);
        if (put.failure) {
          spdlog::warn("audit digest: {}", put.failure->message);
        } else {
          records_gauge_.set({"audit_digest_seq"}, static_cast<double>(head->seq));
          if (!put.already_present) {
            spdlog::info("audit digest written: seq {}, hash {}", head->seq, head->hash);
          }
        }
      }
    } catch (const std::exception& e) {
      spdlog::warn("audit digest: {}; trying again in {} s", e.what(), interval.count());
    }
    digest_timer_.expires_after(interval);
    error_code ec;
    co_await digest_timer_.async_wait(with_error(ec));
  }
}

void pipeline::log_key_expiry() const {
  if (!api_key_created_) {
    return;
  }
  const double days_left =
      certn::days_until_key_expires(*api_key_created_, ops::real_clock().wall_now());
  const std::string line = certn::describe_key_expiry(*api_key_created_, days_left);
  switch (certn::key_expiry_state_of(days_left)) {
    case certn::key_expiry_state::expired:
      spdlog::error("{}", line);
      break;
    case certn::key_expiry_state::expiring_soon:
      spdlog::warn("{}", line);
      break;
    case certn::key_expiry_state::fine:
      spdlog::info("{}", line);
      break;
  }
}

std::vector<std::string> pipeline::apply_reload(const config::config& next,
                                                const std::vector<std::string>& changed) {
  const auto has = [&](std::string_view key) {
    return std::find(changed.begin(), changed.end(), key) != changed.end();
  };
  std::vector<std::string> applied;
  if (has("certn.api_key") && !next.certn.api_key.empty()) {
    certn_.set_api_key(next.certn.api_key);
    applied.emplace_back("certn.api_key");
    asio::co_spawn(key_expiry_timer_.get_executor(), run_jobs_held_by_refused_key(),
                   [](std::exception_ptr error) {
                     ops::log_exception("jobs held by the refused key", error);
                   });
  }
  if (has("certn.api_key_created")) {
    api_key_created_ = encoding::parse_utc_day(next.certn.api_key_created);
    applied.emplace_back("certn.api_key_created");
    log_key_expiry();
  }
  if (s3_store_ != nullptr &&
      (has("storage.s3.access_key_id") || has("storage.s3.secret_access_key"))) {
    s3_store_->set_credentials(next.storage.s3.access_key_id, next.storage.s3.secret_access_key);
    for (const char* key : {"storage.s3.access_key_id", "storage.s3.secret_access_key"}) {
      if (has(key)) {
        applied.emplace_back(key);
      }
    }
  }
  return applied;
}

awaitable<void> pipeline::run_jobs_held_by_refused_key() {
  std::function<int(pqxx::connection&)> bring_forward = [](pqxx::connection& conn) {
    pqxx::work tx(conn);
    const int moved = queue::bring_forward(tx, retry::refused_key_note);
    tx.commit();
    return moved;
  };
  const int moved = co_await databases_.queue.query<int>(std::move(bring_forward));
  if (moved > 0) {
    spdlog::info("{} job(s) that the refused API key held back run now", moved);
  }
}

awaitable<void> pipeline::key_expiry_loop() {
  while (!stopping_) {
    log_key_expiry();
    key_expiry_timer_.expires_after(std::chrono::hours(12));
    error_code ec;
    co_await key_expiry_timer_.async_wait(with_error(ec));
  }
}

bool pipeline::certn_auth_refused() const { return workflows_.certn_auth_failing(); }

}  // namespace archiver::service
