#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include "db/migrations.hpp"
#include "db/pool.hpp"
#include "service/service.hpp"

namespace archiver::service {

int migrate(const config::config& cfg) {
  try {
    pqxx::connection conn(db::with_connect_timeout(
        cfg.database.url, static_cast<int>(cfg.database.connect_timeout.count())));
    const db::migrate_result result = db::apply_migrations(conn);
    if (result.applied.empty()) {
      spdlog::info("schema already at version {}; nothing to do", result.current_version);
    }
    for (const int version : result.applied) {
      spdlog::info("applied migration {}", version);
    }
    spdlog::info("schema at version {}", result.current_version);
    return 0;
  } catch (const std::exception& e) {
    std::string message = e.what();
    while (!message.empty() && message.back() == '\n') {
      message.pop_back();
    }
    spdlog::error("migrate failed: {}", message);
    return 1;
  }
}

}  // namespace archiver::service
