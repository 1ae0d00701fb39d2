// reconcile: cases ordered recently and cases still open here, compared with what we hold; what
// changed is synced. The periodic one books its next run first.
#include <spdlog/spdlog.h>

#include <ctime>
#include <map>
#include <pqxx/pqxx>
#include <set>

#include "archive/policy.hpp"
#include "archive/repository.hpp"
#include "archive/workflows_detail.hpp"

namespace archiver::archive {

using queue::job_result;
using workflows_detail::case_payload;
using workflows_detail::job;

namespace {

std::string utc_date_days_ago(int days) {
  const std::time_t then = std::time(nullptr) - static_cast<std::time_t>(days) * 86'400;
  std::tm parts{};
  gmtime_r(&then, &parts);
  char text[16];
  std::strftime(text, sizeof text, "%Y-%m-%d", &parts);
  return text;
}

}  // namespace

awaitable<job_result> workflows::reconcile(const queue::claimed_job& job_run) {
  // The periodic chain books its next run before anything can fail: whatever becomes of this run
  // (a crash, a 500, an unreadable answer), reconciliation goes on. The pending-job index keeps
  // it one chain, however many replicas restart.
  if (job_run.key == reconcile_key && settings_.reconcile_interval.count() > 0) {
    co_await database_.run([&](pqxx::connection& conn) {
      pqxx::work tx(conn);
      queue::enqueue(tx, job(reconcile_kind, reconcile_key, "{}", settings_.max_attempts,
                             ops::priority::sync, settings_.reconcile_interval));
      tx.commit();
    });
  }
  // What we hold: every case's status and Certn's "modified", and the cases still open here.
  std::map<std::string, held_case> known =
      co_await database_.query<std::map<std::string, held_case>>([](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        return repository::held_cases(tx);
      });

  certn::case_filter recent;
  recent.order_timeframe_after = utc_date_days_ago(settings_.reconcile_lookback_days);
  certn::api_client api = api_.for_priority(job_run.priority);
  certn::case_pages pages(api, recent, 100);
  std::vector<std::string> stale;
  std::set<std::string> listed;
  std::size_t skipped = 0;
  while (!pages.done()) {
    const certn::call_result<certn::case_page> page = co_await pages.next();
    if (page.failure) {
      if (page.failure->unreadable_answer) {
        metrics_.unusable_answers.inc({"list_cases"});
      }
      co_return from_failure(*page.failure);
    }
    auth_failing_ = false;
    for (const std::string& why : page.value->skipped) {
      spdlog::warn("reconcile: a listed case was skipped: {}", why);
    }
    skipped += page.value->skipped.size();
    metrics_.skipped_entries.inc({"list_cases"}, static_cast<double>(page.value->skipped.size()));
    for (const certn::case_record& c : page.value->results) {
      listed.insert(c.id);
      const auto found = known.find(c.id);
      if (listed_case_is_stale(c, found == known.end() ? nullptr : &found->second)) {
        stale.push_back(c.id);
      }
    }
  }
  for (const auto& [id, held] : known) {
    if (!listed.count(id) && unlisted_open_case_is_due(held, settings_.reconcile_recheck_open)) {
      stale.push_back(id);  // ordered before the window, still open here: ask again
    }
  }
  co_await database_.run([&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    for (const std::string& id : stale) {
      queue::enqueue(
          tx, job(sync_case_kind, id, case_payload(id, "reconcile"), settings_.max_attempts,
                  job_run.priority));
    }
    tx.commit();
  });
  spdlog::info("reconcile: {} case(s) listed, {} skipped, {} to sync ({})", listed.size(), skipped,
               stale.size(), job_run.key);
  co_return job_result::done();
}

}  // namespace archiver::archive
