// The operator's records commands: legal holds and the audit trail (records/).
#include <iostream>
#include <pqxx/pqxx>
#include <string>

#include "records/audit.hpp"
#include "records/holds.hpp"
#include "service/cli_database.hpp"
#include "service/service.hpp"

namespace archiver::service {

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;

}  // namespace

int hold(const config::config& cfg, const hold_request& request) {
  return with_database(cfg, [&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    const std::string actor = records::command_actor();
    if (request.release) {
      if (!records::release_hold(tx, request.case_id, request.reason, actor)) {
        std::cerr << "certn-archiver: case " << request.case_id << " is not held\n";
        return exit_failure;
      }
      tx.commit();
      std::cout << "released the hold on case " << request.case_id << "\n";
      return exit_ok;
    }
    if (const auto existing = records::place_hold(tx, request.case_id, request.reason, actor)) {
      std::cerr << "certn-archiver: case " << request.case_id << " is already held (since "
                << existing->held_at << ", by " << existing->held_by << ": " << existing->reason
                << ")\n";
      return exit_failure;
    }
    tx.commit();
    std::cout << "case " << request.case_id << " held: it will not be purged until released\n";
    return exit_ok;
  });
}

int list_held(const config::config& cfg) {
  return with_database(cfg, [&](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    std::cout << "[";
    bool first = true;
    for (const records::legal_hold& hold : records::holds_in_force(tx)) {
      std::cout << (first ? "" : ",") << records::to_json(hold);
      first = false;
    }
    std::cout << "]\n";
    return exit_ok;
  });
}

int audit(const config::config& cfg, const audit_request& request) {
  return with_database(cfg, [&](pqxx::connection& conn) {
    // One snapshot: rows appended meanwhile neither count nor break the walk.
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn);
    if (request.verify) {
      const records::chain_check check = records::verify_chain(tx);
      if (!check.intact()) {
        std::cerr << "certn-archiver: audit trail broken at seq " << *check.first_bad_seq << ": "
                  << check.problem << " (" << check.rows << " rows before it are intact)\n";
        return exit_failure;
      }
      std::cout << "audit trail intact: " << check.rows << " rows, head " << check.head_hash
                << "\n";
      return exit_ok;
    }
    records::audit_filter filter;
    filter.case_id = request.case_id;
    filter.since = request.since;
    filter.limit = request.limit;
    const auto entries = records::list_audit(tx, filter);
    if (request.json) {
      std::cout << "[";
      for (std::size_t i = 0; i < entries.size(); ++i) {
        std::cout << (i == 0 ? "" : ",") << records::to_json(entries[i]);
      }
      std::cout << "]\n";
      return exit_ok;
    }
    for (const records::audit_entry& entry : entries) {
      std::cout << entry.seq << "  " << entry.at << "  " << entry.actor << "  " << entry.action
                << "  " << (entry.case_id.empty() ? "-" : entry.case_id) << "  " << entry.detail
                << "\n";
    }
    return exit_ok;
  });
}

}  // namespace archiver::service
