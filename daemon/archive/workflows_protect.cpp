// protect_case: the case's retention date and legal hold applied to its objects already in the
// store. Every write reads the case's protection just before it puts, so only a job running now
// can write an object with the protection from before the change: protect_case waits for those
// runs, not for queued or paused jobs (their next run reads the new protection, and a put that
// finds its bytes already there applies it to them: object_store::put), which bounds its wait by
// the runs in progress rather than by a backfill paused for days.
#include <pqxx/pqxx>

#include "archive/repository.hpp"
#include "archive/workflows_detail.hpp"
#include "db/sql_array.hpp"
#include "records/purge.hpp"

namespace archiver::archive {

using queue::job_result;
using workflows_detail::from_store_failure;

awaitable<job_result> workflows::protect_case(const queue::claimed_job& job_run) {
  const std::string& case_id = job_run.key;
  struct protect_facts {
    int running_jobs = 0;
    std::vector<std::string> keys;
    storage::object_protection protection;
  };
  const protect_facts facts = co_await database_.query<protect_facts>([&](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    return protect_facts{repository::running_jobs_of_case(tx, case_id, protect_case_kind),
                         repository::live_object_keys(tx, case_id),
                         repository::protection_of(tx, case_id)};
  });
  if (facts.running_jobs > 0) {
    co_return job_result::throttled("waiting for " + std::to_string(facts.running_jobs) +
                                        " running job(s) of the case before protecting its objects",
                                    settings_.manifest_wait);
  }
  for (const std::string& key : facts.keys) {
    const std::optional<storage::store_failure> failed =
        co_await store_.protect(key, facts.protection);
    if (failed) {
      co_return from_store_failure(*failed);
    }
  }
  co_return job_result::done();
}

int date_closed_cases(pqxx::work& tx, const records::retention_policy& policy, int limit,
                      bool protect_objects, int max_attempts) {
  const std::vector<std::string> dated = records::set_missing_retention(tx, policy, limit);
  if (protect_objects && !dated.empty()) {
    // Only a date still ahead changes the objects' lock: a passed one makes the case due for the
    // purge (which a pending protect_case would hold back), and "forever" has no date to set.
    const pqxx::result ahead = tx.exec_params(
        "SELECT id FROM cases WHERE id = ANY($1::text[]) AND retain_until > now() "
        "AND retain_until <> 'infinity'",
        db::array_literal(dated));
    std::vector<queue::job_spec> jobs;
    for (const auto& row : ahead) {
      // Background work, as reconcile's follow-ups: these cases closed long ago.
      jobs.push_back({protect_case_kind, row[0].as<std::string>(), "{}", max_attempts,
                      std::chrono::seconds(0), ops::priority::sync});
    }
    queue::enqueue_many(tx, jobs);
  }
  return static_cast<int>(dated.size());
}

}  // namespace archiver::archive
