#include "db/migrations.hpp"

#include "encoding/encoding.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <pqxx/pqxx>

#include <map>
#include <stdexcept>

namespace archiver::db {

namespace {

const std::string lock_key = std::to_string(migration_lock_key);

// Holds the session-level advisory lock for its lifetime, so that of several processes migrating
// at once one applies and the others then find nothing to do.
class migration_lock {
 public:
  explicit migration_lock(pqxx::connection& conn) : conn_(conn) {
    pqxx::nontransaction tx(conn_);
    if (!tx.exec1("SELECT pg_try_advisory_lock(" + lock_key + ")")[0].as<bool>()) {
      spdlog::info("another process is migrating this database; waiting for it to finish");
      tx.exec1("SELECT pg_advisory_lock(" + lock_key + ")");
    }
  }

  ~migration_lock() {
    // After a broken connection the session, and with it the lock, is gone already.
    if (!conn_.is_open()) {
      return;
    }
    try {
      pqxx::nontransaction tx(conn_);
      tx.exec1("SELECT pg_advisory_unlock(" + lock_key + ")");
    } catch (const std::exception& e) {
      spdlog::warn("releasing the migration lock failed (it ends with the session): {}", e.what());
    }
  }

  migration_lock(const migration_lock&) = delete;
  migration_lock& operator=(const migration_lock&) = delete;

 private:
  pqxx::connection& conn_;
};

// libpqxx 6 silently reconnects a broken connection when a transaction begins, and a new session
// does not hold our lock. Checked inside each migration's transaction, before it changes anything.
void require_lock_held(pqxx::work& tx) {
  const pqxx::row row = tx.exec1(
      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
      " AND granted AND classid = " +
      std::to_string(static_cast<std::uint32_t>(migration_lock_key >> 32)) + " AND objid = " +
      std::to_string(static_cast<std::uint32_t>(migration_lock_key)) + " AND objsubid = 1");
  if (row[0].as<long>() != 1) {
    throw pqxx::broken_connection(
        "the connection holding the migration lock was lost; run the migration again");
  }
}

int highest_embedded() {
  const auto& all = embedded_migrations();
  return all.empty() ? 0 : all.back().version;
}

}  // namespace

std::string migration_checksum(const std::string& sql) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(sql.data(), sql.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("computing the SHA-256 of a migration failed");
  }
  return encoding::to_hex(std::string_view(reinterpret_cast<const char*>(digest), length));
}

migrate_result apply_migrations(pqxx::connection& conn) {
  const migration_lock lock(conn);
  {
    pqxx::work tx(conn);
    // libpqxx prints server notices to stderr; "already exists, skipping" is no news.
    tx.exec0("SET LOCAL client_min_messages = warning");
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

  // Every applied migration is checked before anything new is applied.
  for (const migration& m : embedded_migrations()) {
    const auto found = applied.find(m.version);
    if (found == applied.end()) {
      continue;
    }
    const std::string checksum = migration_checksum(m.sql);
    if (found->second != checksum) {
      throw std::runtime_error("migration " + std::to_string(m.version) + " (" + m.name +
                               ") was changed after it was applied: checksum " + found->second +
                               " in the database, " + checksum + " in this build");
    }
  }

  migrate_result result;
  for (const migration& m : embedded_migrations()) {
    if (applied.contains(m.version)) {
      continue;
    }
    try {
      pqxx::work tx(conn);
      require_lock_held(tx);
      tx.exec0("SET LOCAL client_min_messages = warning");
      tx.exec(m.sql);
      tx.exec_params0("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                      m.version, m.name, migration_checksum(m.sql));
      tx.commit();
    } catch (const std::exception&) {
      spdlog::error("migration {} ({}) failed", m.version, m.name);
      throw;
    }
    result.applied.push_back(m.version);
    applied[m.version] = migration_checksum(m.sql);
  }
  // A database migrated by a newer build may be ahead of this one; that is not an error here.
  result.current_version = applied.empty() ? 0 : applied.rbegin()->first;
  return result;
}

schema_status check_schema(pqxx::connection& conn) {
  schema_status status;
  status.expected_version = highest_embedded();
  pqxx::read_transaction tx(conn);
  const bool exists = tx.exec1("SELECT to_regclass('schema_migrations') IS NOT NULL")[0].as<bool>();
  if (exists) {
    status.database_version =
        tx.exec1("SELECT coalesce(max(version), 0) FROM schema_migrations")[0].as<int>();
  }
  return status;
}

}  // namespace archiver::db
