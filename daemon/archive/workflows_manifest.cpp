// write_manifest: the case's manifest.json, once its other jobs are done and only when changed.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <pqxx/pqxx>

#include "archive/policy.hpp"
#include "archive/repository.hpp"
#include "archive/workflows_detail.hpp"
#include "queue/queue.hpp"
#include "storage/digest.hpp"

namespace archiver::archive {

using queue::job_result;
using workflows_detail::from_store_failure;
using workflows_detail::write_manifest_kind;

awaitable<job_result> workflows::write_manifest(const queue::claimed_job& job_run) {
  const std::string& case_id = job_run.key;
  const std::string key = layout_.manifest(case_id);
  struct manifest_facts {
    repository::open_jobs other_jobs;
    std::optional<std::string> recorded_sha256;
    std::vector<manifest_entry> entries;
  };
  const manifest_facts facts =
      co_await database_.query<manifest_facts>([&](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        return manifest_facts{repository::open_jobs_of_case(tx, case_id, write_manifest_kind),
                              repository::recorded_sha256(tx, key),
                              repository::manifest_entries(tx, case_id)};
      });
  std::string body = manifest_json(case_id, facts.entries);
  const storage::object_digest digest = storage::digest_of(body);
  switch (decide_manifest(facts.other_jobs.count, facts.recorded_sha256 == digest.sha256_hex)) {
    case manifest_step::wait: {
      // Not an attempt: the case's other jobs end (done or dead) within their own attempts. No
      // look before the first of them runs (a report polled every minute, a backfill waiting
      // for the rate limit), so waiting manifests do not crowd the queue.
      const std::chrono::seconds wait =
          std::max(settings_.manifest_wait, facts.other_jobs.first_due_in);
      co_return job_result::throttled("waiting for " + std::to_string(facts.other_jobs.count) +
                                          " other job(s) of the case before writing its manifest",
                                      wait);
    }
    case manifest_step::unchanged: {
      // The record is not enough: a write whose run ended before recording it (killed, or
      // stale: see below) left other bytes at the key. Those get this run's.
      // A key that cannot be read is written too, and the put says what the store thinks (an
      // S3 user without s3:ListBucket reads a missing key as 403, not as 404).
      const storage::read_result stored = co_await store_.read_digest(key);
      if (!stored.failure && stored.digest.sha256_hex == digest.sha256_hex) {
        co_return job_result::done();
      }
      spdlog::warn("case {}: {} does not hold the manifest recorded ({}): writing it again",
                   case_id, key,
                   stored.not_found ? "missing"
                   : stored.failure ? "unreadable: " + stored.failure->message
                                    : std::string("other bytes"));
      break;
    }
    case manifest_step::write:
      break;
  }
  // The key is rewritten in place, so a run that lost its lease must not write it: a newer run
  // may have written a newer manifest already. Asked before the put, and again where the write
  // is recorded, since the put itself can outlast the lease.
  const bool held_before = co_await database_.query<bool>([&](pqxx::connection& conn) {
    pqxx::work tx(conn);  // not read-only: holds_lease locks the row
    return queue::holds_lease(tx, job_run.lease());
  });
  if (!held_before) {
    co_return job_result::retry("lease lost before writing " + key);  // a stale outcome
  }
  const storage::object_protection protection = co_await protection_of(case_id);
  const storage::put_result put =
      co_await store_.put_bytes(key, std::move(body), "application/json", protection);
  // The job's state when this run no longer held its lease (with " for good" when nothing will
  // look at the manifest again); empty while it holds it, the write then recorded if it
  // succeeded. Asked after a failed put too: a put that failed here may still land (an S3 PUT
  // that timed out on our side).
  const std::string lost_to = co_await database_.query<std::string>([&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    if (queue::holds_lease(tx, job_run.lease())) {
      if (!put.failure) {
        repository::record_artifact(tx, case_id, "manifest", case_id, key, digest,
                                    "application/json");
        tx.commit();
      }
      return std::string();
    }
    std::string state = queue::state_of(tx, job_run.id);
    if (state.empty()) {
      state = "gone";  // pruned: never the empty answer of a recorded write
    }
    // This put may have landed (or may land) over a newer run's manifest. A fresh look compares the
    // stored bytes (above) and writes the manifest again if they differ. Not for a job an operator
    // cancelled, or whose attempts ran out, when no later job of the case's manifest exists
    // (the queue also cancels a job it merges into its successor): it stays as it is, and
    // `jobs retry` looks again.
    if ((state == "cancelled" || state == "dead") && !queue::has_later_job(tx, job_run.id)) {
      return state + " for good";
    }
    queue::enqueue(tx, workflows_detail::job(write_manifest_kind, case_id, job_run.payload,
                                             settings_.max_attempts, ops::priority::archive,
                                             settings_.manifest_wait));
    tx.commit();
    return state;
  });
  if (!lost_to.empty()) {
    if (lost_to.ends_with(" for good")) {
      spdlog::warn(
          "case {}: job {} is {} and its last run sent {} to the store after losing its lease; "
          "`verify` may find other bytes there than recorded until the job is retried",
          case_id, job_run.id, lost_to.substr(0, lost_to.size() - 9), key);
    }
    co_return job_result::retry("lease lost while writing " + key);  // a stale outcome
  }
  if (put.failure) {
    co_return from_store_failure(*put.failure);
  }
  metrics_.artifacts.inc({"manifest"});
  metrics_.cases_archived_last_hour.add(1, std::chrono::steady_clock::now());
  co_return job_result::done();
}

}  // namespace archiver::archive
