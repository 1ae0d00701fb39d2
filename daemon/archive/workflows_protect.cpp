// protect_case: the case's retention date and legal hold applied to its objects already in the
// store, once its other jobs are done (objects they write read the case's protection themselves).
#include <algorithm>
#include <pqxx/pqxx>

#include "archive/repository.hpp"
#include "archive/workflows_detail.hpp"

namespace archiver::archive {

using queue::job_result;
using workflows_detail::from_store_failure;

awaitable<job_result> workflows::protect_case(const queue::claimed_job& job_run) {
  const std::string& case_id = job_run.key;
  struct protect_facts {
    repository::open_jobs other_jobs;
    std::vector<std::string> keys;
    storage::object_protection protection;
  };
  const protect_facts facts = co_await database_.query<protect_facts>([&](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    return protect_facts{repository::open_jobs_of_case(tx, case_id, protect_case_kind),
                         repository::live_object_keys(tx, case_id),
                         repository::protection_of(tx, case_id)};
  });
  if (facts.other_jobs.count > 0) {
    // An object being written now may have read the protection before it changed: wait until
    // every job of the case has ended, then cover what they wrote too.
    co_return job_result::throttled(
        "waiting for " + std::to_string(facts.other_jobs.count) +
            " other job(s) of the case before protecting its objects",
        std::max(settings_.manifest_wait, facts.other_jobs.first_due_in));
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

}  // namespace archiver::archive
