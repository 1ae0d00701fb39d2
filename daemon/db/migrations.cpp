#include "db/migrations.hpp"

#include <openssl/evp.h>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <stdexcept>

namespace archiver::db {

namespace {

// Any fixed number shared by every certn-archiver process: "certnarc" in ASCII.
constexpr const char* advisory_lock_key = "7162256626796294755";

std::string sha256_hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("sha256 of a migration failed");
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += digits[digest[i] >> 4];
    out += digits[digest[i] & 0x0f];
  }
  return out;
}

// Holds the session-level advisory lock for its lifetime. If the connection broke, the session
// (and with it the lock) is gone already.
class migration_lock {
 public:
  explicit migration_lock(pqxx::connection& conn) : conn_(conn) {
    pqxx::nontransaction tx(conn_);
    tx.exec(std::string("SELECT pg_advisory_lock(") + advisory_lock_key + ")");
  }
  ~migration_lock() {
    try {
      if (conn_.is_open()) {
        pqxx::nontransaction tx(conn_);
        tx.exec(std::string("SELECT pg_advisory_unlock(") + advisory_lock_key + ")");
      }
    } catch (const std::exception& e) {
      spdlog::warn("releasing the migration lock failed (it ends with the session): {}", e.what());
    }
  }
  migration_lock(const migration_lock&) = delete;
  migration_lock& operator=(const migration_lock&) = delete;

 private:
  pqxx::connection& conn_;
};

int highest_embedded() {
  const auto& all = embedded_migrations();
  return all.empty() ? 0 : all.back().version;
}

}  // namespace

migrate_result apply_migrations(pqxx::connection& conn) {
  const migration_lock lock(conn);
  {
    pqxx::work tx(conn);
    tx.exec0(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY,"
        " name text NOT NULL,"
        " checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    tx.commit();
  }

  std::map<int, std::string> applied;  // version -> checksum
  {
    pqxx::read_transaction tx(conn);
    for (const auto& row : tx.exec("SELECT version, checksum FROM schema_migrations")) {
      applied[row[0].as<int>()] = row[1].as<std::string>();
    }
  }

  migrate_result result;
  for (const migration& m : embedded_migrations()) {
    const std::string checksum = sha256_hex(m.sql);
    if (const auto found = applied.find(m.version); found != applied.end()) {
      if (found->second != checksum) {
        throw std::runtime_error("migration " + std::to_string(m.version) + " (" + m.name +
                                 ") was changed after it was applied: checksum " + found->second +
                                 " in the database, " + checksum + " in this build");
      }
      continue;
    }
    pqxx::work tx(conn);
    tx.exec(m.sql);
    tx.exec_params0("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version, m.name, checksum);
    tx.commit();
    result.applied.push_back(m.version);
    applied[m.version] = checksum;
  }
  result.current_version = applied.empty() ? 0 : applied.rbegin()->first;
  return result;
}

schema_status check_schema(pqxx::connection& conn) {
  schema_status status;
  status.expected_version = highest_embedded();
  pqxx::read_transaction tx(conn);
  const bool exists = tx.exec1("SELECT to_regclass('schema_migrations') IS NOT NULL")[0].as<bool>();
  if (exists) {
    const pqxx::row row = tx.exec1("SELECT coalesce(max(version), 0) FROM schema_migrations");
    status.database_version = row[0].as<int>();
  }
  return status;
}

}  // namespace archiver::db
