#include "service/cli_database.hpp"

#include <iostream>
#include <pqxx/pqxx>
#include <string>

#include "db/migrations.hpp"
#include "db/pool.hpp"

namespace archiver::service {

int with_database(const config::config& cfg, const std::function<int(pqxx::connection&)>& command) {
  try {
    pqxx::connection conn(db::with_connect_timeout(
        cfg.database.url, static_cast<int>(cfg.database.connect_timeout.count())));
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
