// write_manifest: the case's manifest.json, once its other jobs are done and only when changed.
#include <algorithm>
#include <pqxx/pqxx>

#include "archive/policy.hpp"
#include "archive/repository.hpp"
#include "archive/workflows_detail.hpp"
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
    case manifest_step::unchanged:
      co_return job_result::done();
    case manifest_step::write:
      break;
  }
  const storage::object_protection protection = co_await protection_of(case_id);
  const storage::put_result put =
      co_await store_.put_bytes(key, std::move(body), "application/json", protection);
  if (put.failure) {
    co_return from_store_failure(*put.failure);
  }
  co_await database_.run([&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    repository::record_artifact(tx, case_id, "manifest", case_id, key, digest, "application/json");
    tx.commit();
  });
  metrics_.artifacts.inc({"manifest"});
  metrics_.cases_archived_last_hour.add(1, std::chrono::steady_clock::now());
  co_return job_result::done();
}

}  // namespace archiver::archive
