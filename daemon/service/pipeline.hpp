// The archiving side of `serve`, wired from configuration: the object store, the Certn clients,
// the workflows and the workers that run them.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "archive/workflows.hpp"
#include "config/config.hpp"
#include "db/pool.hpp"
#include "net/asio.hpp"
#include "ops/metrics.hpp"
#include "queue/worker.hpp"
#include "records/retention.hpp"
#include "service/certn_clients.hpp"
#include "storage/metered_store.hpp"
#include "storage/object_store.hpp"
#include "storage/s3_store.hpp"

namespace archiver::service {

// storage.backend "filesystem" or "s3". Throws (std::exception naming the setting) when the store
// cannot be set up.
std::unique_ptr<storage::object_store> make_store(asio::io_context& io,
                                                  const config::storage_settings& settings);

// The pools the pipeline uses, by class of work: `queue` for claims, heartbeats, outcomes and
// housekeeping, `work` for what the jobs do. serve gives each its own connections (lanes), so
// that jobs waiting on the database never delay a heartbeat; tests may pass one pool for both.
struct pipeline_databases {
  pipeline_databases(db::pool& queue, db::pool& work) : queue(queue), work(work) {}
  pipeline_databases(db::pool& both) : queue(both), work(both) {}  // NOLINT: implicit on purpose
  db::pool& queue;
  db::pool& work;
};

class pipeline {
 public:
  // Throws when the store or the Certn clients cannot be set up (start-up error).
  pipeline(asio::io_context& io, const config::config& cfg, pipeline_databases databases,
           ops::registry& registry);
  // The same, archiving to `store` (borrowed: it must outlive the pipeline) instead of the store
  // cfg.storage describes, which is then ignored. For tests that wrap a store
  // (storage/faulty_store.hpp). Throws when the Certn clients cannot be set up.
  pipeline(asio::io_context& io, const config::config& cfg, pipeline_databases databases,
           ops::registry& registry, storage::object_store& store);
  ~pipeline();

  // Enqueues the periodic reconcile (once per database), starts the workers and the periodic
  // purge (records.purge_interval_seconds).
  awaitable<void> start();
  // Stops the purge between cases and drains the workers.
  awaitable<void> drain();

  // The workers of this pipeline, for serve's wiring (webhook::intake::on_job_due_later).
  queue::workers& workers() { return workers_; }

  // Whether Certn answered the last call with 401 (the API key is refused). Io thread only.
  bool certn_auth_refused() const;

  // Applies what of `next` can change while running (SIGHUP): certn.api_key,
  // certn.api_key_created, storage.s3.access_key_id and secret_access_key. Io thread only.
  // Returns the keys it applied among `changed`.
  std::vector<std::string> apply_reload(const config::config& next,
                                        const std::vector<std::string>& changed);

 private:
  // Archives to `borrowed` when given, else to `owned`.
  pipeline(asio::io_context& io, const config::config& cfg, pipeline_databases databases,
           ops::registry& registry, std::unique_ptr<storage::object_store> owned,
           storage::object_store* borrowed);

  const config::config& cfg_;
  pipeline_databases databases_;
  std::unique_ptr<storage::object_store> owned_store_;  // null when the store is borrowed
  // The store everything archives through: the owned or borrowed one, counted.
  storage::metered_store store_;
  storage::s3_store* s3_store_ = nullptr;  // the owned store, when it is S3 (credential reloads)
  certn_clients certn_;
  archive::metrics archive_metrics_;
  archive::workflows workflows_;
  queue::worker_metrics worker_metrics_;
  queue::workers workers_;

  // The periodic purge (records/purger.hpp) and its metrics. The settings are copied: the purge
  // loop outlives start(), and callers' configurations need not.
  const config::records_settings records_;
  const records::retention_policy retention_;
  const bool protect_objects_;  // storage.s3.object_lock_mode: dated cases get protect_case
  const int max_attempts_;
  awaitable<void> purge_loop();
  // Writes the audit trail's head to the archive when it changed (records::audit_digest).
  awaitable<void> audit_digest_loop();
  const archive::layout layout_;
  awaitable<void> refresh_records_gauges();
  ops::counter_family& purged_;  // certn_archiver_records_purged_total{what}: cases, objects, bytes
  ops::counter_family& purge_problems_;  // certn_archiver_records_purge_problems_total
  ops::gauge_family& records_gauge_;     // certn_archiver_records{what}: held_cases, ...
  asio::steady_timer purge_timer_;
  asio::steady_timer digest_timer_;

  // certn.api_key_created, when set: the gauge of days left, and a warning in the log from 30
  // days before the key expires, at start-up, every 12 hours and when a reload changes it
  // (certn/key_expiry.hpp).
  std::optional<std::chrono::sys_days> api_key_created_;
  awaitable<void> key_expiry_loop();
  void log_key_expiry() const;  // a line at info, warn or error level; nothing when unknown
  // After a new API key: the jobs a refused key held back for minutes run at once.
  awaitable<void> run_jobs_held_by_refused_key();
  asio::steady_timer key_expiry_timer_;
  bool stopping_ = false;
};

}  // namespace archiver::service
