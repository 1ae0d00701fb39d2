// `certn-archiver purge`: the due cases (or one case, an erasure request), as a dry run unless
// --execute. The purge itself is records/purger.hpp, as serve's periodic purge runs it.
#include <unistd.h>

#include <iostream>
#include <string>

#include "records/audit.hpp"
#include "records/purger.hpp"
#include "service/cli_database.hpp"
#include "service/pipeline.hpp"
#include "service/service.hpp"

namespace archiver::service {

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

awaitable<void> run_purge(db::pool& database, storage::object_store& store,
                          const purge_request& request, records::purge_order order,
                          records::purge_tally& tally, int& exit_code) {
  const char* would = request.execute ? "" : "would be ";
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
  if (!request.case_id.empty() && request.reason.empty()) {
    std::cerr << "certn-archiver: purge --case needs --reason: purging a case ahead of its "
                 "retention is an erasure request, and the audit trail keeps why\n";
    return exit_usage;
  }
  if (cfg.records.purge_approval == "two-person" && !request.case_id.empty() && request.execute) {
    std::cerr << "certn-archiver: purge: records.purge_approval = \"two-person\" is not "
                 "supported yet; an erasure request cannot be executed\n";
    return exit_failure;
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
    asio::co_spawn(io, run_purge(database, *store, request, order, tally, exit_code),
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
