// Migrations and the connection pool against a real PostgreSQL (TEST_PG_DSN).
#include <doctest/doctest.h>
#include <pqxx/pqxx>

#include <cstdlib>
#include <future>
#include <random>
#include <thread>

#include "db/migrations.hpp"
#include "db/pool.hpp"

using namespace archiver;

namespace {

std::string admin_dsn() {
  const char* dsn = std::getenv("TEST_PG_DSN");
  if (dsn == nullptr || *dsn == '\0') {
    FAIL("TEST_PG_DSN is not set: run the tests through scripts/test.sh");
  }
  return dsn;
}

// A database of its own for one test case.
struct fresh_database {
  std::string name;
  std::string dsn;
  fresh_database() {
    name = "mig_" + std::to_string(std::random_device{}()) + std::to_string(std::random_device{}());
    pqxx::connection admin(admin_dsn());
    pqxx::nontransaction(admin).exec0("CREATE DATABASE " + name);
    const std::string base = admin_dsn();
    dsn = base.substr(0, base.rfind('/') + 1) + name;
  }
  ~fresh_database() {
    pqxx::connection admin(admin_dsn());
    pqxx::nontransaction(admin).exec0("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  }
  long count(const std::string& sql) const {
    pqxx::connection conn(dsn);
    return pqxx::nontransaction(conn).exec1(sql)[0].as<long>();
  }
};

template <class T>
T run_on_io(db::pool& pool, std::function<T(pqxx::connection&)> work,
            std::thread::id* resumed_on = nullptr) {
  asio::io_context io;
  std::optional<T> result;
  std::exception_ptr failure;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        result = co_await pool.query<T>(work);
        if (resumed_on != nullptr) {
          *resumed_on = std::this_thread::get_id();
        }
      },
      [&](std::exception_ptr e) { failure = e; });
  io.run();
  if (failure) {
    std::rethrow_exception(failure);
  }
  return *result;
}

}  // namespace

TEST_CASE("migrate applies every migration to an empty database, and again is a no-op") {
  fresh_database db;
  pqxx::connection conn(db.dsn);
  CHECK_FALSE(db::check_schema(conn).current());
  CHECK(db::check_schema(conn).database_version == 0);

  const db::migrate_result first = db::apply_migrations(conn);
  CHECK(first.applied.size() == db::embedded_migrations().size());
  CHECK(first.current_version == db::embedded_migrations().back().version);
  CHECK(db::check_schema(conn).current());

  const db::migrate_result second = db::apply_migrations(conn);
  CHECK(second.applied.empty());
  CHECK(second.current_version == first.current_version);
  CHECK(db.count("SELECT count(*) FROM schema_migrations") ==
        static_cast<long>(db::embedded_migrations().size()));

  for (const char* table : {"webhook_events", "cases", "case_status_history", "report_files",
                            "jobs", "artifacts"}) {
    CAPTURE(table);
    CHECK(db.count(std::string("SELECT count(*) FROM pg_tables WHERE tablename = '") + table + "'") == 1);
  }
}

TEST_CASE("two migrations started at once apply each version exactly once") {
  fresh_database db;
  auto migrate = [&] {
    pqxx::connection conn(db.dsn);
    return db::apply_migrations(conn);
  };
  auto a = std::async(std::launch::async, migrate);
  auto b = std::async(std::launch::async, migrate);
  const auto first = a.get();
  const auto second = b.get();
  CHECK(first.applied.size() + second.applied.size() == db::embedded_migrations().size());
  CHECK(db.count("SELECT count(*) FROM schema_migrations") ==
        static_cast<long>(db::embedded_migrations().size()));
}

TEST_CASE("a migration changed after it was applied is refused") {
  fresh_database db;
  pqxx::connection conn(db.dsn);
  db::apply_migrations(conn);
  pqxx::nontransaction(conn).exec0("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1");
  CHECK_THROWS_WITH_AS(db::apply_migrations(conn),
                       doctest::Contains("was changed after it was applied"), std::runtime_error);
}

TEST_CASE("at most one pending job per kind and key") {
  fresh_database db;
  pqxx::connection conn(db.dsn);
  db::apply_migrations(conn);
  pqxx::nontransaction tx(conn);
  tx.exec0("INSERT INTO jobs (kind, key) VALUES ('sync_case', 'c1')");
  CHECK_THROWS_AS(tx.exec0("INSERT INTO jobs (kind, key) VALUES ('sync_case', 'c1')"),
                  pqxx::unique_violation);
  tx.exec0("INSERT INTO jobs (kind, key) VALUES ('report_ready', 'c1')");  // another kind
  tx.exec0("UPDATE jobs SET state = 'running' WHERE kind = 'sync_case'");
  tx.exec0("INSERT INTO jobs (kind, key) VALUES ('sync_case', 'c1')");  // a successor
  CHECK_THROWS_AS(tx.exec0("INSERT INTO jobs (kind, key) VALUES ('sync_case', 'c1')"),
                  pqxx::unique_violation);
}

TEST_CASE("the pool runs work on its threads and resumes the coroutine on the io thread") {
  db::pool pool(admin_dsn(), 2, 2);
  std::thread::id resumed_on;
  const int value = run_on_io<int>(
      pool, [](pqxx::connection& c) { return pqxx::nontransaction(c).exec1("SELECT 41 + 1")[0].as<int>(); },
      &resumed_on);
  CHECK(value == 42);
  CHECK(resumed_on == std::this_thread::get_id());
  CHECK(pool.in_use() == 0);

  SUBCASE("an exception thrown by the work reaches the coroutine") {
    CHECK_THROWS_AS(run_on_io<int>(pool,
                                   [](pqxx::connection& c) {
                                     return pqxx::nontransaction(c).exec1("SELECT 1/0")[0].as<int>();
                                   }),
                    pqxx::data_exception);
    CHECK(pool.in_use() == 0);
  }
  SUBCASE("a connection killed by the server is replaced") {
    const int pid = run_on_io<int>(pool, [](pqxx::connection& c) { return c.backendpid(); });
    {
      pqxx::connection other(admin_dsn());
      // Kill every pool connection: both threads may have one.
      pqxx::nontransaction(other).exec(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
          "AND datname = current_database() AND application_name = ''");
    }
    CHECK(pid > 0);
    bool recovered = false;
    for (int attempt = 0; attempt < 5 && !recovered; ++attempt) {
      try {
        recovered = run_on_io<int>(pool, [](pqxx::connection& c) {
                      return pqxx::nontransaction(c).exec1("SELECT 1")[0].as<int>();
                    }) == 1;
      } catch (const pqxx::broken_connection&) {
        // the first use of a killed connection fails; the next one reconnects
      }
    }
    CHECK(recovered);
  }
}

TEST_CASE("a pool pointed at nothing fails fast with broken_connection") {
  db::pool pool("postgresql://postgres@127.0.0.1:1/none", 1, 2);
  const auto started = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(run_on_io<int>(pool, [](pqxx::connection&) { return 1; }), pqxx::broken_connection);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
  CHECK(pool.in_use() == 0);
}
