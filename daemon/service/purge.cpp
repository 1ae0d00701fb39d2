// `certn-archiver purge`: the due cases (or one case, an erasure request), as a dry run unless
// --execute. The purge itself is records/purger.hpp, as serve's periodic purge runs it; under
// two-person approval, an erasure goes through records/erasure.hpp first.
#include <unistd.h>

#include <functional>
#include <iostream>
#include <optional>
#include <pqxx/pqxx>
#include <string>

#include "records/audit.hpp"
#include "records/erasure.hpp"
#include "records/purger.hpp"
#include "service/cli_database.hpp"
#include "service/pipeline.hpp"
#include "service/service.hpp"

namespace archiver::service {

namespace {

// Two-person approval: records the request (--execute without --approve), or approves the one
// in progress and lets the purge go on (--approve --execute). A dry run only shows the request.
// Returns whether the purge goes on; otherwise exit_code says how the command ends. `order`
// receives the reason the audit trail keeps, and `request_id` the request to complete.
awaitable<bool> erasure_step(db::pool& database, const purge_request& request,
                             records::purge_order& order, std::int64_t& request_id,
                             int& exit_code) {
  const std::string case_id = request.case_id;
  const std::string actor = order.actor;
  if (!request.approve) {
    if (!request.execute) {
      std::cout << "records.purge_approval is \"two-person\": --execute records the request, "
                   "and another operator approves it with `certn-archiver purge --case "
                << case_id << " --approve --execute`\n";
      co_return true;  // the dry run shows what the purge would do
    }
    const std::string reason = request.reason;
    std::function<std::optional<records::erasure_request>(pqxx::connection&)> ask =
        [case_id, reason, actor](pqxx::connection& conn) {
          pqxx::work tx(conn);
          auto open = records::request_erasure(tx, case_id, reason, actor);
          tx.commit();
          return open;
        };
    const std::optional<records::erasure_request> open =
        co_await database.query<std::optional<records::erasure_request>>(std::move(ask));
    if (open) {
      std::cerr << "certn-archiver: purge: an erasure of case " << case_id
                << " is already requested, by " << open->requested_by << " at "
                << open->requested_at << " (" << open->reason << ")"
                << (open->approved_by.empty() ? "" : ", approved by " + open->approved_by) << "\n";
      exit_code = exit_failure;
      co_return false;
    }
    std::cout << "erasure of case " << case_id << " requested by " << actor
              << "; nothing is deleted until another operator runs `certn-archiver purge --case "
              << case_id << " --approve --execute`\n";
    exit_code = exit_ok;
    co_return false;
  }
  records::erasure_request found;
  records::approval_verdict verdict = records::approval_verdict::no_request;
  const bool approving = request.execute;
  std::function<void(pqxx::connection&)> approve = [&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    if (approving) {
      verdict = records::approve_erasure(tx, case_id, actor, found);
    } else if (auto open = records::open_erasure(tx, case_id)) {
      found = *open;
      verdict = records::approval_verdict::already_approved;  // shown, not approved
    }
    tx.commit();
  };
  co_await database.run(std::move(approve));
  switch (verdict) {
    case records::approval_verdict::no_request:
      std::cerr << "certn-archiver: purge: no erasure of case " << case_id
                << " is requested: one operator asks with `purge --case " << case_id
                << " --reason TEXT --execute`, another approves\n";
      exit_code = exit_failure;
      co_return false;
    case records::approval_verdict::same_operator:
      std::cerr << "certn-archiver: purge: " << actor << " requested this erasure ("
                << found.requested_at << "): another operator must approve it\n";
      exit_code = exit_failure;
      co_return false;
    case records::approval_verdict::approved:
    case records::approval_verdict::already_approved:
      break;
  }
  std::cout << "erasure of case " << case_id << " requested by " << found.requested_by << " at "
            << found.requested_at << " (" << found.reason << ")"
            << (approving ? ", approved by " + found.approved_by : std::string()) << "\n";
  order.reason = found.reason + " (requested by " + found.requested_by + ", approved by " +
                 (approving ? found.approved_by : actor) + ")";
  request_id = found.id;
  co_return true;
}

awaitable<void> run_purge(db::pool& database, storage::object_store& store,
                          const purge_request& request, bool two_person, records::purge_order order,
                          records::purge_tally& tally, int& exit_code) {
  const char* would = request.execute ? "" : "would be ";
  std::int64_t erasure_id = 0;
  if (!two_person && !request.case_id.empty()) {
    // The rule serve last started with counts too: a local configuration (or an environment
    // variable) saying "single" does not lift it.
    std::function<bool(pqxx::connection&)> read_rule = [](pqxx::connection& conn) {
      pqxx::read_transaction tx(conn);
      return records::two_person_in_force(tx);
    };
    two_person = co_await database.query<bool>(std::move(read_rule));
  }
  if (request.approve && !two_person) {
    std::cerr << "certn-archiver: purge --approve is for records.purge_approval = "
                 "\"two-person\", and neither this configuration nor serve's says so\n";
    exit_code = exit_usage;
    co_return;
  }
  if (two_person && !request.case_id.empty()) {
    const bool go_on = co_await erasure_step(database, request, order, erasure_id, exit_code);
    if (!go_on) {
      co_return;
    }
  }
  if (!request.case_id.empty()) {
    order.case_id = request.case_id;
    const records::purge_verdict verdict =
        co_await records::purge_case(database, store, order, tally);
    if (verdict != records::purge_verdict::purge) {
      std::cerr << "certn-archiver: purge: case " << request.case_id
                << " not purged: " << records::describe(verdict) << "\n";
      exit_code = exit_failure;
      co_return;
    }
    if (erasure_id != 0 && request.execute && tally.problems.empty()) {
      // Built apart from the co_await: see db::pool::query_within.
      std::function<void(pqxx::connection&)> complete = [erasure_id](pqxx::connection& conn) {
        pqxx::work tx(conn);
        records::complete_erasure(tx, erasure_id);
        tx.commit();
      };
      co_await database.run(std::move(complete));
    }
  } else {
    const bool never_stop = false;
    co_await records::purge_due(database, store, order, request.limit, never_stop, tally);
  }
  for (const std::string& problem : tally.problems) {
    std::cerr << "certn-archiver: purge: " << problem << "\n";
  }
  std::cout << (request.execute ? "" : "dry run: ") << tally.cases << " case(s), " << tally.objects
            << " object(s), " << tally.bytes << " bytes " << would << "purged"
            << (request.execute ? "" : "; nothing was deleted (--execute purges)") << "\n";
  exit_code = tally.problems.empty() ? exit_ok : exit_failure;
}

}  // namespace

int purge(const config::config& cfg, const purge_request& request) {
  const bool two_person = cfg.records.purge_approval == "two-person";
  if (request.approve && request.case_id.empty()) {
    std::cerr << "certn-archiver: purge --approve needs --case: it approves one erasure request\n";
    return exit_usage;
  }
  if (!request.case_id.empty() && !request.approve && request.reason.empty()) {
    std::cerr << "certn-archiver: purge --case needs --reason: purging a case ahead of its "
                 "retention is an erasure request, and the audit trail keeps why\n";
    return exit_usage;
  }
  records::purge_order order;
  order.actor = records::command_actor();
  order.purger = order.actor + " #" + std::to_string(::getpid());
  order.erasure = !request.case_id.empty();
  order.reason = request.reason;
  order.dry_run = !request.execute;

  int exit_code = exit_failure;
  try {
    asio::io_context io(1);
    db::pool database(cfg.database.url, 1, static_cast<int>(cfg.database.connect_timeout.count()),
                      admin_limits(cfg));
    const std::unique_ptr<storage::object_store> store = make_store(io, cfg.storage);
    records::purge_tally tally;
    std::exception_ptr failure;
    asio::co_spawn(io, run_purge(database, *store, request, two_person, order, tally, exit_code),
                   [&](std::exception_ptr error) {
                     failure = error;
                     io.stop();  // pooled idle connections (S3) would keep run() going
                   });
    io.run();
    if (failure) {
      std::rethrow_exception(failure);
    }
  } catch (const std::exception& e) {
    const std::string text = e.what();
    std::cerr << "certn-archiver: purge: " << text.substr(0, text.find('\n')) << "\n";
    return exit_failure;
  }
  return exit_code;
}

}  // namespace archiver::service
