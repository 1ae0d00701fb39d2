#include "records/purger.hpp"

#include <functional>
#include <pqxx/pqxx>

namespace archiver::records {

namespace {

struct case_plan {
  purge_verdict verdict = purge_verdict::unknown_case;
  std::string rule;
  std::vector<purgeable_object> objects;
};

}  // namespace

awaitable<purge_verdict> purge_case(db::pool& database, storage::object_store& store,
                                    const purge_order& order, purge_tally& tally) {
  // Decided, and the lease taken, in one transaction. Built apart from the co_await: see
  // db::pool::query_within.
  std::function<case_plan(pqxx::connection&)> plan_it = [&order](pqxx::connection& conn) {
    pqxx::work tx(conn);
    const purge_facts facts = facts_of(tx, order.case_id, order.purger);
    case_plan plan;
    plan.verdict = decide_purge(facts, order.erasure);
    plan.rule = order.erasure ? "erasure request" : facts.rule;
    if (plan.verdict == purge_verdict::purge) {
      if (order.dry_run) {
        plan.objects = unpurged_objects(tx, order.case_id);
        return plan;
      }
      if (!take_purge_lease(tx, order.case_id, order.purger, purge_lease_seconds)) {
        plan.verdict = purge_verdict::busy;
        return plan;
      }
      plan.objects = unpurged_objects(tx, order.case_id);
    }
    tx.commit();
    return plan;
  };
  const case_plan plan = co_await database.query<case_plan>(std::move(plan_it));
  if (plan.verdict != purge_verdict::purge || order.dry_run) {
    if (plan.verdict == purge_verdict::purge) {
      ++tally.cases;
      tally.objects += static_cast<int>(plan.objects.size());
      for (const auto& object : plan.objects) {
        tally.bytes += object.size;
      }
    }
    co_return plan.verdict;
  }

  std::uint64_t bytes = 0;
  for (const purgeable_object& object : plan.objects) {
    std::function<bool(pqxx::connection&)> check = [&order](pqxx::connection& conn) {
      pqxx::read_transaction tx(conn);
      return still_purgeable(tx, order.case_id, order.purger);
    };
    if (!co_await database.query<bool>(std::move(check))) {
      tally.problems.push_back(order.case_id +
                               ": stopped: a legal hold was placed, or the purge lease was lost");
      std::function<void(pqxx::connection&)> release = [&order](pqxx::connection& conn) {
        pqxx::work tx(conn);
        release_purge_lease(tx, order.case_id, order.purger);
        tx.commit();
      };
      co_await database.run(std::move(release));
      co_return purge_verdict::busy;
    }
    const storage::remove_result removed = co_await store.remove(object.key);
    if (removed.failure) {
      tally.problems.push_back(order.case_id + ": " + removed.failure->message);
      // The lease runs out by itself; released now, the next run may try again at once.
      std::function<void(pqxx::connection&)> release = [&order](pqxx::connection& conn) {
        pqxx::work tx(conn);
        release_purge_lease(tx, order.case_id, order.purger);
        tx.commit();
      };
      co_await database.run(std::move(release));
      co_return purge_verdict::purge;
    }
    std::function<void(pqxx::connection&)> mark = [&object, &plan](pqxx::connection& conn) {
      pqxx::work tx(conn);
      mark_artifact_purged(tx, object.artifact_id, plan.rule);
      tx.commit();
    };
    co_await database.run(std::move(mark));
    bytes += object.size;
  }
  std::string detail = std::to_string(plan.objects.size()) + " object(s), " +
                       std::to_string(bytes) + " bytes, by " + plan.rule;
  if (!order.reason.empty()) {
    detail += ": " + order.reason;
  }
  std::function<void(pqxx::connection&)> finish = [&order, &detail](pqxx::connection& conn) {
    pqxx::work tx(conn);
    mark_case_purged(tx, order.case_id, order.actor, detail);
    tx.commit();
  };
  co_await database.run(std::move(finish));
  ++tally.cases;
  tally.objects += static_cast<int>(plan.objects.size());
  tally.bytes += bytes;
  co_return purge_verdict::purge;
}

awaitable<void> purge_due(db::pool& database, storage::object_store& store, purge_order order,
                          int limit, const bool& stop, purge_tally& tally) {
  std::function<std::vector<due_case>(pqxx::connection&)> list = [limit](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    return due_cases(tx, limit);
  };
  const std::vector<due_case> due = co_await database.query<std::vector<due_case>>(std::move(list));
  for (const due_case& one : due) {
    if (stop) {
      co_return;
    }
    order.case_id = one.case_id;
    order.erasure = false;
    co_await purge_case(database, store, order, tally);
  }
}

}  // namespace archiver::records
