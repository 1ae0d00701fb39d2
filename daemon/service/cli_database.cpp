#include "service/cli_database.hpp"

#include <algorithm>
#include <iostream>
#include <pqxx/pqxx>
#include <string>

#include "db/migrations.hpp"
#include "db/pool.hpp"

namespace archiver::service {

db::pool_limits admin_limits(const config::config& cfg) {
  const auto statement = cfg.database.admin_statement_timeout;
  const auto lock = statement.count() > 0 && cfg.database.lock_timeout.count() > 0
                        ? std::min(cfg.database.lock_timeout, statement)
                        : cfg.database.lock_timeout;
  db::pool_limits limits;
  limits.dead_connection_seconds = cfg.database.dead_connection_seconds;
  limits.statement_timeout_ms = static_cast<int>(statement.count());
  limits.lock_timeout_ms = static_cast<int>(lock.count());
  return limits;
}

int with_database(const config::config& cfg, const std::function<int(pqxx::connection&)>& command) {
  try {
    const db::pool_limits limits = admin_limits(cfg);
    pqxx::connection conn(db::with_statement_limits(
        db::with_dead_connection_limit(
            db::with_connect_timeout(cfg.database.url,
                                     static_cast<int>(cfg.database.connect_timeout.count())),
            limits.dead_connection_seconds),
        limits.statement_timeout_ms, limits.lock_timeout_ms));
    const db::schema_status schema = db::check_schema(conn);
    if (!schema.current()) {
      std::cerr << "certn-archiver: database schema is at version " << schema.database_version
                << ", this build needs " << schema.expected_version
                << ": run `certn-archiver migrate`\n";
      return 1;
    }
    return command(conn);
  } catch (const pqxx::failure& e) {
    // libpq's messages run over several lines ("could not connect...\n\tIs the server
    // running..."): the operator gets the first.
    const std::string text = e.what();
    std::cerr << "certn-archiver: database: " << text.substr(0, text.find('\n')) << "\n";
    return 1;
  }
}

}  // namespace archiver::service
