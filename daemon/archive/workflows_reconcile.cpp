// reconcile: what webhooks missed, found by listing cases (policy plan_reconcile: each scope at
// its own pace) and comparing them with what we hold; what changed is synced. The periodic run
// books its next run first.
#include <spdlog/spdlog.h>

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

// What reconcile reads before it lists: the database's date, what we hold, and when each scope
// last completed.
struct reconcile_facts {
  std::string today;
  std::map<std::string, held_case> held;
  std::map<reconcile_scope, std::chrono::seconds> since_last;
};

certn::case_filter filter_of(const reconcile_listing& listing) {
  certn::case_filter filter;
  filter.order_timeframe_after = listing.ordered_after;
  filter.order_timeframe_before = listing.ordered_before;
  filter.overall_status = listing.statuses;
  return filter;
}

}  // namespace

awaitable<job_result> workflows::reconcile(const queue::claimed_job& job_run) {
  // The periodic chain books its next run before anything can fail: whatever becomes of this run
  // (a crash, a 500, an unreadable answer), reconciliation goes on. The pending-job index keeps
  // it one chain, however many replicas restart.
  const bool periodic = job_run.key == reconcile_key;
  if (periodic && settings_.reconcile_interval.count() > 0) {
    co_await database_.run([&](pqxx::connection& conn) {
      pqxx::work tx(conn);
      queue::enqueue(tx, job(reconcile_kind, reconcile_key, "{}", settings_.max_attempts,
                             ops::priority::sync, settings_.reconcile_interval));
      tx.commit();
    });
  }
  const reconcile_facts facts =
      co_await database_.query<reconcile_facts>([](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        return reconcile_facts{repository::utc_today(tx), repository::held_cases(tx),
                               repository::reconcile_history(tx)};
      });
  const std::vector<reconcile_listing> listings =
      plan_reconcile(facts.today, facts.since_last, facts.held, settings_.reconcile, !periodic);

  certn::api_client api = api_.for_priority(job_run.priority);
  std::set<std::string> listed;
  std::size_t synced = 0;
  std::size_t skipped = 0;
  for (const reconcile_listing& listing : listings) {
    certn::case_pages pages(api, filter_of(listing), 100);
    std::vector<certn::case_record> cases;
    std::vector<std::pair<std::string, std::string>> order_dates;  // held cases that had none
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
        const auto held = facts.held.find(c.id);
        const std::optional<std::string> ordered_on = leading_date(c.created);
        if (held != facts.held.end() && !held->second.ordered_days_ago && ordered_on) {
          order_dates.emplace_back(c.id, *ordered_on);
        }
        cases.push_back(c);
      }
    }
    const std::vector<std::string> stale = stale_after_listing(listing, cases, facts.held);
    synced += stale.size();
    // Each listing's syncs commit with its completion: a later listing that fails loses nothing.
    double finished_at = 0;
    co_await database_.run([&](pqxx::connection& conn) {
      pqxx::work tx(conn);
      for (const std::string& id : stale) {
        queue::enqueue(tx, job(sync_case_kind, id, case_payload(id, "reconcile"),
                               settings_.max_attempts, job_run.priority));
      }
      repository::record_order_dates(tx, order_dates);
      finished_at = repository::record_reconcile_run(tx, listing.scope);
      tx.commit();
    });
    metrics_.reconcile_finished.set({}, finished_at);
    spdlog::info("reconcile: {} listing: {} case(s) listed, {} to sync", scope_name(listing.scope),
                 cases.size(), stale.size());
  }
  // Cases open here that no listing can find (Certn gave no order date or no status): one GET
  // each, sparingly.
  std::vector<std::string> unlisted;
  if (periodic) {
    for (const auto& [id, held] : facts.held) {
      const bool findable = held.ordered_days_ago && !held.status.empty();
      if (!findable && !listed.count(id) &&
          unlisted_open_case_is_due(held, settings_.reconcile.recheck_open)) {
        unlisted.push_back(id);
      }
    }
  }
  if (!unlisted.empty()) {
    co_await database_.run([&](pqxx::connection& conn) {
      pqxx::work tx(conn);
      for (const std::string& id : unlisted) {
        queue::enqueue(tx, job(sync_case_kind, id, case_payload(id, "reconcile"),
                               settings_.max_attempts, job_run.priority));
      }
      tx.commit();
    });
  }
  spdlog::info("reconcile: {} listing(s), {} case(s) listed, {} skipped, {} to sync ({})",
               listings.size(), listed.size(), skipped, synced + unlisted.size(), job_run.key);
  co_return job_result::done();
}

}  // namespace archiver::archive
