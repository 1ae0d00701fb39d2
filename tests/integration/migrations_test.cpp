// Migrations and the connection pool against a real PostgreSQL named by TEST_PG_DSN (a superuser
// DSN such as the one scripts/pg.sh prints). Each migration test works in a database of its own,
// created here and dropped at its end, so the cases are independent of each other and of the
// other suites sharing the server.
#include <doctest/doctest.h>
#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <latch>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "db/migrations.hpp"
#include "db/pool.hpp"
#include "db/sql_array.hpp"

using namespace archiver;
using namespace std::chrono_literals;

namespace {

std::string admin_dsn() {
  const char* dsn = std::getenv("TEST_PG_DSN");
  REQUIRE_MESSAGE((dsn != nullptr && *dsn != '\0'),
                  "TEST_PG_DSN is not set. Start a server with `scripts/pg.sh start /tmp/pg PORT` "
                  "and export TEST_PG_DSN=<the DSN it prints>, or run scripts/test.sh");
  return dsn;
}

// `dsn` naming database `name` instead of its own.
std::string with_database(const std::string& dsn, const std::string& name) {
  const std::size_t scheme = dsn.find("://");
  if (!dsn.starts_with("postgres") || scheme == std::string::npos) {
    return dsn + " dbname=" + name;  // key=value: a later keyword wins
  }
  const std::size_t query = dsn.find('?', scheme);
  const std::size_t path_end = query == std::string::npos ? dsn.size() : query;
  const std::size_t path = std::min(dsn.find('/', scheme + 3), path_end);
  return dsn.substr(0, path) + "/" + name + dsn.substr(path_end);
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= until) {
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// The WHERE clause that finds the migration lock of the current database in pg_locks (advisory
// locks are per database; other suites may be migrating databases of their own meanwhile).
std::string lock_in_pg_locks() {
  return "locktype = 'advisory'"
         " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
         " AND classid = " +
         std::to_string(static_cast<std::uint32_t>(db::migration_lock_key >> 32)) +
         " AND objid = " + std::to_string(static_cast<std::uint32_t>(db::migration_lock_key)) +
         " AND objsubid = 1";
}

// A database of its own for one test case, dropped at the end.
struct fresh_database {
  std::string name;
  std::string dsn;

  fresh_database() {
    std::random_device random;
    char suffix[17];
    std::snprintf(suffix, sizeof suffix, "%08x%08x", random(), random());
    name = std::string("mig_") + suffix;
    dsn = with_database(admin_dsn(), name);
    pqxx::connection admin(admin_dsn());
    pqxx::nontransaction(admin).exec0("CREATE DATABASE " + name);
  }

  ~fresh_database() {
    try {
      pqxx::connection admin(admin_dsn());
      pqxx::nontransaction(admin).exec0("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "dropping the test database %s failed: %s\n", name.c_str(), e.what());
    }
  }

  fresh_database(const fresh_database&) = delete;
  fresh_database& operator=(const fresh_database&) = delete;

  // The first column of the one row `sql` returns, read on a connection of its own.
  long long scalar(const std::string& sql) const {
    pqxx::connection conn(dsn);
    return pqxx::nontransaction(conn).exec1(sql)[0].as<long long>();
  }

  bool has_relation(const std::string& relation) const {
    return scalar("SELECT (to_regclass('" + relation + "') IS NOT NULL)::int") == 1;
  }
};

std::vector<int> embedded_versions() {
  std::vector<int> out;
  for (const auto& m : db::embedded_migrations()) {
    out.push_back(m.version);
  }
  return out;
}

// Awaits `work` through the pool from a coroutine on an io_context run by this thread; returns
// its value or rethrows its exception. `resumed_on` receives the thread the coroutine resumed on.
template <class T>
T run_on_io(db::pool& pool, std::function<T(pqxx::connection&)> work,
            std::thread::id* resumed_on = nullptr) {
  asio::io_context io;
  std::optional<T> result;
  std::exception_ptr failure;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        try {
          result = co_await pool.query<T>(work);
        } catch (...) {
          if (resumed_on != nullptr) {
            *resumed_on = std::this_thread::get_id();
          }
          throw;
        }
        if (resumed_on != nullptr) {
          *resumed_on = std::this_thread::get_id();
        }
      },
      [&](std::exception_ptr e) { failure = e; });
  io.run();
  if (failure) {
    std::rethrow_exception(failure);
  }
  REQUIRE(result.has_value());
  return std::move(*result);
}

int backend_pid(pqxx::connection& conn) {
  // A query, not conn.backendpid(): that one answers from memory even when the session is gone.
  return pqxx::nontransaction(conn).exec1("SELECT pg_backend_pid()")[0].as<int>();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Migrations

TEST_CASE("check_schema on an empty database reports version 0, not current") {
  fresh_database db;
  pqxx::connection conn(db.dsn);
  const db::schema_status status = db::check_schema(conn);
  CHECK(status.database_version == 0);
  CHECK(status.expected_version == db::embedded_migrations().back().version);
  CHECK_FALSE(status.current());
  CHECK_FALSE(db.has_relation("schema_migrations"));  // checking changes nothing
}

TEST_CASE("migrate applies every migration to an empty database and records each") {
  fresh_database db;
  pqxx::connection conn(db.dsn);

  const db::migrate_result result = db::apply_migrations(conn);
  CHECK(result.applied == embedded_versions());
  CHECK(result.current_version == db::embedded_migrations().back().version);

  const db::schema_status status = db::check_schema(conn);
  CHECK(status.current());
  CHECK(status.database_version == status.expected_version);

  CHECK(db.scalar("SELECT count(*) FROM schema_migrations") ==
        static_cast<long long>(db::embedded_migrations().size()));
  for (const auto& m : db::embedded_migrations()) {
    CAPTURE(m.version);
    // The recorded checksum is the SHA-256 of the SQL as PostgreSQL computes it too.
    pqxx::nontransaction tx(conn);
    const pqxx::row row = tx.exec_params1(
        "SELECT name, checksum, checksum = encode(sha256(convert_to($2, 'UTF8')), 'hex')"
        " FROM schema_migrations WHERE version = $1",
        m.version, m.sql);
    CHECK(row[0].as<std::string>() == m.name);
    CHECK(row[1].as<std::string>() == db::migration_checksum(m.sql));
    CHECK(row[2].as<bool>());
  }
}

TEST_CASE("migrate on a current database is a no-op") {
  fresh_database db;
  pqxx::connection conn(db.dsn);
  db::apply_migrations(conn);
  const long long applied_at = db.scalar(
      "SELECT sum(extract(epoch FROM applied_at) * 1000000)::bigint FROM schema_migrations");

  const db::migrate_result again = db::apply_migrations(conn);
  CHECK(again.applied.empty());
  CHECK(again.current_version == db::embedded_migrations().back().version);
  CHECK(db.scalar("SELECT count(*) FROM schema_migrations") ==
        static_cast<long long>(db::embedded_migrations().size()));
  CHECK(db.scalar("SELECT sum(extract(epoch FROM applied_at) * 1000000)::bigint FROM "
                  "schema_migrations") == applied_at);
  CHECK(db::check_schema(conn).current());
}

TEST_CASE("two migrations started at once apply each version exactly once") {
  fresh_database db;
  std::latch start(2);
  const auto migrate = [&] {
    pqxx::connection conn(db.dsn);
    start.arrive_and_wait();  // both connected: the calls overlap as much as they can
    return db::apply_migrations(conn);
  };
  auto a = std::async(std::launch::async, migrate);
  auto b = std::async(std::launch::async, migrate);
  const db::migrate_result first = a.get();
  const db::migrate_result second = b.get();

  std::vector<int> both = first.applied;
  both.insert(both.end(), second.applied.begin(), second.applied.end());
  std::sort(both.begin(), both.end());
  CHECK(both == embedded_versions());  // each version applied by exactly one of them
  CHECK(first.current_version == second.current_version);
  CHECK(db.scalar("SELECT count(*) FROM schema_migrations") ==
        static_cast<long long>(db::embedded_migrations().size()));
  CHECK(db.scalar("SELECT count(DISTINCT version) FROM schema_migrations") ==
        static_cast<long long>(db::embedded_migrations().size()));
}

TEST_CASE("migrate waits while another session holds the migration lock") {
  fresh_database db;
  std::future<db::migrate_result> pending;  // declared first: destroyed after `holder` lets go
  pqxx::connection holder(db.dsn);
  pqxx::nontransaction(holder).exec1("SELECT pg_advisory_lock(" +
                                     std::to_string(db::migration_lock_key) + ")");

  pending = std::async(std::launch::async, [&] {
    pqxx::connection conn(db.dsn);
    return db::apply_migrations(conn);
  });
  CHECK(eventually(
      [&] {
        return db.scalar("SELECT count(*) FROM pg_locks WHERE NOT granted AND " +
                         lock_in_pg_locks()) == 1;
      },
      10s));
  CHECK(pending.wait_for(0s) == std::future_status::timeout);
  CHECK_FALSE(db.has_relation("schema_migrations"));  // nothing happens before the lock

  pqxx::nontransaction(holder).exec1("SELECT pg_advisory_unlock(" +
                                     std::to_string(db::migration_lock_key) + ")");
  CHECK(pending.get().applied == embedded_versions());
}

TEST_CASE("a migration changed after it was applied is refused, and the lock is released") {
  fresh_database db;
  pqxx::connection conn(db.dsn);
  db::apply_migrations(conn);
  pqxx::nontransaction(conn).exec0("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1");

  const std::string expected =
      "migration 1 (initial) was changed after it was applied: checksum x in the database, " +
      db::migration_checksum(db::embedded_migrations().front().sql) + " in this build";
  CHECK_THROWS_WITH_AS(db::apply_migrations(conn), doctest::Contains(expected.c_str()),
                       std::runtime_error);

  // The failed call let go of the lock although its session is still open.
  CHECK(db.scalar("SELECT count(*) FROM pg_locks WHERE " + lock_in_pg_locks()) == 0);
  CHECK(conn.is_open());
}

TEST_CASE("the initial schema has every table of the data model") {
  fresh_database db;
  pqxx::connection conn(db.dsn);
  db::apply_migrations(conn);
  for (const char* table : {"schema_migrations", "webhook_events", "cases", "case_status_history",
                            "report_files", "jobs", "artifacts"}) {
    CAPTURE(table);
    CHECK(db.has_relation(table));
  }
  CHECK(db.has_relation("jobs_pending_key_idx"));
}

TEST_CASE("the jobs table holds at most one pending job per kind and key") {
  fresh_database db;
  pqxx::connection conn(db.dsn);
  db::apply_migrations(conn);
  const auto insert = [&](const std::string& kind, const std::string& key) {
    pqxx::nontransaction(conn).exec_params0("INSERT INTO jobs (kind, key) VALUES ($1, $2)", kind,
                                            key);
  };
  // Moves the one job of (kind, key) that is in state `from` to state `to`.
  const auto move = [&](const std::string& kind, const std::string& key, const std::string& from,
                        const std::string& to) {
    pqxx::nontransaction(conn).exec_params1(
        "UPDATE jobs SET state = $4 WHERE kind = $1 AND key = $2 AND state = $3 RETURNING id", kind,
        key, from, to);
  };

  insert("sync_case", "c1");
  CHECK_THROWS_AS(insert("sync_case", "c1"), pqxx::unique_violation);
  insert("sync_case", "c2");     // another key
  insert("fetch_report", "c1");  // another kind

  SUBCASE("a job waiting to retry still counts") {
    move("sync_case", "c1", "queued", "failed");
    CHECK_THROWS_AS(insert("sync_case", "c1"), pqxx::unique_violation);
  }
  SUBCASE("after the job succeeded a new one is accepted") {
    move("sync_case", "c1", "queued", "succeeded");
    insert("sync_case", "c1");
    CHECK_THROWS_AS(insert("sync_case", "c1"), pqxx::unique_violation);
  }
  SUBCASE("after the job is dead or cancelled a new one is accepted") {
    move("sync_case", "c1", "queued", "dead");
    insert("sync_case", "c1");
    move("sync_case", "c1", "queued", "cancelled");
    insert("sync_case", "c1");
  }
  SUBCASE("a running job may have one pending successor, not two") {
    move("sync_case", "c1", "queued", "running");
    insert("sync_case", "c1");
    CHECK_THROWS_AS(insert("sync_case", "c1"), pqxx::unique_violation);
  }
}

TEST_CASE("migration 14 gives the backfill syncs their case id, and only them") {
  fresh_database db;
  pqxx::connection conn(db.dsn);
  db::apply_migrations(conn);
  pqxx::nontransaction(conn).exec0(
      "INSERT INTO jobs (kind, key, payload, state) VALUES "
      "('sync_case', 'c-queued', '{\"source\": \"backfill\"}', 'queued'), "
      "('sync_case', 'c-running', '{\"source\": \"backfill\"}', 'running'), "
      "('sync_case', 'c-dead', '{\"source\": \"backfill\"}', 'dead'), "
      "('sync_case', 'c-live', '{\"case_id\": \"c-live\", \"source\": \"x\"}', 'queued'), "
      "('check_changed', 'check-1', '{\"source_event\": \"e\"}', 'queued'), "
      "('reconcile', 'periodic', '{}', 'queued')");
  // Run again over these rows as the upgrade runs it over the rows it finds.
  const auto& all = db::embedded_migrations();
  const auto fourteen =
      std::find_if(all.begin(), all.end(), [](const auto& m) { return m.version == 14; });
  REQUIRE(fourteen != all.end());
  pqxx::nontransaction(conn).exec0(fourteen->sql);
  const auto payload_of = [&](const std::string& key) {
    return pqxx::nontransaction(conn)
        .exec_params1("SELECT payload::text FROM jobs WHERE key = $1", key)[0]
        .as<std::string>();
  };
  for (const std::string key : {"c-queued", "c-running", "c-dead"}) {
    CAPTURE(key);
    CHECK(payload_of(key) == R"({"source": "backfill", "case_id": ")" + key + R"("})");
  }
  CHECK(payload_of("c-live") == R"({"source": "x", "case_id": "c-live"})");  // had one
  CHECK(payload_of("check-1") == R"({"source_event": "e"})");  // names a check, not a case
  CHECK(payload_of("periodic") == "{}");
}

// ---------------------------------------------------------------------------------------------
// The pool

TEST_CASE("pool: query returns the work's value and the coroutine resumes on the io thread") {
  db::pool pool(admin_dsn(), 2, 2);
  std::thread::id worked_on;
  std::thread::id resumed_on;
  const int value = run_on_io<int>(
      pool,
      [&](pqxx::connection& c) {
        worked_on = std::this_thread::get_id();
        return pqxx::nontransaction(c).exec1("SELECT 41 + 1")[0].as<int>();
      },
      &resumed_on);
  CHECK(value == 42);
  CHECK(worked_on != std::this_thread::get_id());   // the work ran on a database thread
  CHECK(resumed_on == std::this_thread::get_id());  // and the coroutine came back to io.run()
  CHECK(pool.in_use() == 0);
  CHECK(run_on_io<std::string>(pool, [](pqxx::connection& c) {
          return pqxx::nontransaction(c).exec1("SELECT current_database()")[0].as<std::string>();
        }) == pqxx::connection(admin_dsn()).dbname());
}

TEST_CASE("pool: its connections carry the statement and lock limits; a statement past it fails") {
  db::pool pool(admin_dsn(), 1, 2, {20, 300, 200, 0, {}});
  const auto show = [&](const std::string& setting) {
    return run_on_io<std::string>(pool, [&](pqxx::connection& c) {
      return pqxx::nontransaction(c).exec1("SHOW " + setting)[0].as<std::string>();
    });
  };
  CHECK(show("statement_timeout") == "300ms");
  CHECK(show("lock_timeout") == "200ms");
  CHECK_THROWS_AS(run_on_io<int>(pool,
                                 [](pqxx::connection& c) {
                                   pqxx::nontransaction(c).exec("SELECT pg_sleep(2)");
                                   return 0;
                                 }),
                  pqxx::sql_error);
  // The connection is still good afterwards.
  CHECK(show("statement_timeout") == "300ms");
}

TEST_CASE("pool: an exception thrown inside the work reaches the coroutine") {
  db::pool pool(admin_dsn(), 1, 2);
  std::thread::id resumed_on;
  SUBCASE("the caller's own exception, type and message intact") {
    CHECK_THROWS_WITH_AS(
        run_on_io<int>(
            pool, [](pqxx::connection&) -> int { throw std::domain_error("no such thing"); },
            &resumed_on),
        "no such thing", std::domain_error);
  }
  SUBCASE("an SQL error") {
    CHECK_THROWS_AS(run_on_io<int>(
                        pool,
                        [](pqxx::connection& c) {
                          return pqxx::nontransaction(c).exec1("SELECT 1/0")[0].as<int>();
                        },
                        &resumed_on),
                    pqxx::data_exception);
  }
  CHECK(resumed_on == std::this_thread::get_id());
  CHECK(pool.in_use() == 0);
  // The thread and its connection are still good for the next job.
  CHECK(run_on_io<int>(pool, [](pqxx::connection& c) {
          return pqxx::nontransaction(c).exec1("SELECT 7")[0].as<int>();
        }) == 7);
}

TEST_CASE("pool: jobs run on several threads at once and in_use counts them") {
  db::pool pool(admin_dsn(), 2, 2);
  asio::io_context io;
  std::mutex mutex;
  std::condition_variable changed;
  int arrived = 0;
  bool release = false;
  std::set<std::thread::id> threads;
  std::vector<std::exception_ptr> failures;
  std::atomic<int> done{0};

  const std::function<int(pqxx::connection&)> job = [&](pqxx::connection& c) {
    const int one = pqxx::nontransaction(c).exec1("SELECT 1")[0].as<int>();
    std::unique_lock lock(mutex);
    ++arrived;
    threads.insert(std::this_thread::get_id());
    changed.notify_all();
    changed.wait_for(lock, 20s, [&] { return release; });  // bounded: a failure never hangs
    return one;
  };
  for (int i = 0; i < 2; ++i) {
    asio::co_spawn(
        io, [&]() -> awaitable<void> { done += co_await pool.query<int>(job); },
        [&](std::exception_ptr e) {
          if (e) {
            failures.push_back(e);
          }
        });
  }
  std::thread io_thread([&] { io.run(); });
  {
    std::unique_lock lock(mutex);
    CHECK(changed.wait_for(lock, 20s, [&] { return arrived == 2; }));  // both at once
  }
  CHECK(pool.in_use() == 2);
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  changed.notify_all();
  io_thread.join();
  CHECK(failures.empty());
  CHECK(done == 2);
  CHECK(threads.size() == 2);
  CHECK(pool.in_use() == 0);
}

TEST_CASE("pool: a server that cannot be reached fails fast with broken_connection") {
  db::pool pool("postgresql://postgres@127.0.0.1:1/x", 1, 2);
  CHECK(pool.conninfo() ==
        "postgresql://postgres@127.0.0.1:1/x?connect_timeout=2&keepalives=1&keepalives_idle=10&"
        "keepalives_interval=3&keepalives_count=3&tcp_user_timeout=20000&"
        "options=-c%20statement_timeout%3D60000%20-c%20lock_timeout%3D15000");
  for (int attempt = 0; attempt < 2; ++attempt) {  // and again: no state is left behind
    CAPTURE(attempt);
    const auto started = std::chrono::steady_clock::now();
    std::thread::id resumed_on;
    CHECK_THROWS_AS(run_on_io<int>(
                        pool, [](pqxx::connection&) { return 1; }, &resumed_on),
                    pqxx::broken_connection);
    CHECK(std::chrono::steady_clock::now() - started < 5s);
    CHECK(resumed_on == std::this_thread::get_id());
    CHECK(pool.in_use() == 0);
  }
}

TEST_CASE("pool: a connection killed by the server is replaced") {
  db::pool pool(admin_dsn(), 1, 2);  // one thread: every job uses the same connection slot
  const int killed = run_on_io<int>(pool, backend_pid);
  {
    pqxx::connection other(admin_dsn());
    CHECK(pqxx::nontransaction(other)
              .exec_params1("SELECT pg_terminate_backend($1)", killed)[0]
              .as<bool>());
    CHECK(eventually(
        [&] {
          return pqxx::nontransaction(other)
                     .exec_params1("SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                                   killed)[0]
                     .as<int>() == 0;
        },
        10s));
  }
  // The first job after the kill may find the dead session; the one after it must not.
  try {
    const int first = run_on_io<int>(pool, backend_pid);
    CHECK(first != killed);  // libpqxx may have reconnected by itself
  } catch (const pqxx::broken_connection& e) {
    MESSAGE("the first job after the kill failed as allowed: " << std::string(e.what()));
  }
  const int second = run_on_io<int>(pool, backend_pid);
  CHECK(second != killed);
  CHECK(pool.in_use() == 0);
}

TEST_CASE("pool: destroying the pool fails the calls not started and breaks the running one") {
  auto pool = std::make_unique<db::pool>(admin_dsn(), 1, 2, db::pool_limits{20, 0, 0, 0, {}});
  asio::io_context io;
  std::atomic<int> submitted{0};
  std::atomic<int> ran{0};
  std::atomic<int> failed{0};

  for (int i = 0; i < 3; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> awaitable<void> {
          ++submitted;
          co_await pool->run([&, i](pqxx::connection& c) {
            // The first holds the only thread on a server that does not answer for a minute.
            pqxx::nontransaction(c).exec(i == 0 ? "SELECT pg_sleep(60)" : "SELECT 1");
            ++ran;
          });
        },
        [&](std::exception_ptr e) {
          if (e) {
            ++failed;
          }
        });
  }
  std::thread io_thread([&] { io.run(); });
  // Asked on the io thread, where a coroutine's increment and its submission happen together.
  const auto all_submitted = [&] {
    std::promise<int> answer;
    asio::post(io, [&] { answer.set_value(submitted.load()); });
    return answer.get_future().get() == 3;
  };
  CHECK(eventually(all_submitted, 10s));
  CHECK(eventually([&] { return pool->in_use() == 1; }, 10s));

  const auto started = std::chrono::steady_clock::now();
  pool.reset();
  CHECK(std::chrono::steady_clock::now() - started < 5s);  // not the minute of the sleep
  io_thread.join();
  CHECK(ran == 0);
  CHECK(failed == 3);
}

namespace {

// run_within() from a coroutine on an io_context of its own; returns how long the wait took.
std::chrono::milliseconds run_within_on_io(db::pool& pool, std::chrono::milliseconds wait,
                                           std::function<void(pqxx::connection&)> work,
                                           std::exception_ptr& failure) {
  asio::io_context io;
  const auto started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point resumed;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        try {
          co_await pool.run_within(wait, work);
        } catch (...) {
          resumed = std::chrono::steady_clock::now();
          throw;
        }
        resumed = std::chrono::steady_clock::now();
      },
      [&](std::exception_ptr e) { failure = e; });
  io.run();  // returns when the coroutine has, not when the work has
  return std::chrono::duration_cast<std::chrono::milliseconds>(resumed - started);
}

}  // namespace

TEST_CASE("pool: run_within stops waiting after its time; the work goes on, owning its state") {
  db::pool pool(admin_dsn(), 1, 2, db::pool_limits{20, 0, 0, 0, {}});
  auto finished = std::make_shared<std::atomic<bool>>(false);
  std::exception_ptr failure;
  const auto waited = run_within_on_io(
      pool, 200ms,
      [finished](pqxx::connection& c) {
        pqxx::nontransaction(c).exec("SELECT pg_sleep(1)");
        *finished = true;
      },
      failure);
  REQUIRE(failure);
  CHECK_THROWS_AS(std::rethrow_exception(failure), db::deadline_exceeded);
  CHECK(waited >= 200ms);
  CHECK(waited < 900ms);
  CHECK_FALSE(*finished);
  CHECK(eventually([&] { return finished->load(); }, 10s));
  // A wait that the work beats returns its value.
  CHECK(run_on_io<int>(pool, [](pqxx::connection& c) {
          return pqxx::nontransaction(c).exec1("SELECT 5")[0].as<int>();
        }) == 5);
  std::exception_ptr none;
  run_within_on_io(
      pool, 10s, [](pqxx::connection& c) { pqxx::nontransaction(c).exec("SELECT 1"); }, none);
  CHECK_FALSE(none);
}

TEST_CASE("pool: a call whose waiter gave up before it started never runs") {
  db::pool pool(admin_dsn(), 1, 2, db::pool_limits{20, 0, 0, 0, {}});
  auto ran_late = std::make_shared<std::atomic<bool>>(false);
  asio::io_context io;
  std::exception_ptr first_failure;
  std::exception_ptr second_failure;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await pool.run_within(
            10s, [](pqxx::connection& c) { pqxx::nontransaction(c).exec("SELECT pg_sleep(0.5)"); });
      },
      [&](std::exception_ptr e) { first_failure = e; });
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        // Built apart from the co_await: see db::pool::query_within.
        std::function<void(pqxx::connection&)> late = [ran_late](pqxx::connection&) {
          *ran_late = true;
        };
        co_await pool.run_within(100ms, std::move(late));
      },
      [&](std::exception_ptr e) { second_failure = e; });
  io.run();
  CHECK_FALSE(first_failure);
  REQUIRE(second_failure);
  CHECK_THROWS_AS(std::rethrow_exception(second_failure), db::deadline_exceeded);
  // The queue is first in, first out: once this has run, the abandoned call had its turn.
  CHECK(run_on_io<int>(pool, [](pqxx::connection&) { return 1; }) == 1);
  CHECK_FALSE(*ran_late);
}

TEST_CASE("pool: past the call limit a call stuck on the server fails; the next one reconnects") {
  // No server-side limit: the server stays silent as one that stopped answering would.
  db::pool pool(admin_dsn(), 1, 2, db::pool_limits{20, 0, 0, 300, {}});
  const int before = run_on_io<int>(pool, backend_pid);
  asio::io_context io;
  std::vector<std::exception_ptr> failures;
  const auto started = std::chrono::steady_clock::now();
  for (const char* sql : {"SELECT pg_sleep(30)", "SELECT 1"}) {  // the second waits its turn
    asio::co_spawn(
        io,
        [&pool, sql]() -> awaitable<void> {
          co_await pool.run([sql](pqxx::connection& c) { pqxx::nontransaction(c).exec(sql); });
        },
        [&](std::exception_ptr e) { failures.push_back(e); });
  }
  io.run();
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  REQUIRE(failures.size() == 2);
  for (const auto& failure : failures) {
    REQUIRE(failure);
    CHECK_THROWS_AS(std::rethrow_exception(failure), db::deadline_exceeded);
  }
  const int after = run_on_io<int>(pool, backend_pid);
  CHECK(after != before);  // a new connection
  CHECK(pool.in_use() == 0);
}

// ---------------------------------------------------------------------------------------------
// Array literals

TEST_CASE("array literals arrive in Postgres as the values they were made of") {
  fresh_database db;
  pqxx::connection conn(db.dsn);
  pqxx::nontransaction tx(conn);
  const std::vector<std::string> texts = {"plain", "", "NULL", "a,b", "{x}", "q\"uote",
                                          "back\\slash", "sp ace", "\xc3\xa9t\xc3\xa9", "\t\n"};
  const pqxx::result rows = tx.exec_params(
      "SELECT t FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n",
      db::array_literal(texts));
  REQUIRE(rows.size() == texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    CAPTURE(i);
    CHECK_FALSE(rows[i][0].is_null());
    CHECK(rows[i][0].as<std::string>() == texts[i]);
  }
  CHECK(tx.exec_params1("SELECT array_to_string($1::bigint[], ' ')",
                        db::array_literal(std::vector<std::int64_t>{1, -2, 9'007'199'254'740'993}))
            [0].as<std::string>() == "1 -2 9007199254740993");
  CHECK(tx.exec_params1("SELECT array_to_string($1::boolean[], ' ')",
                        db::array_literal(std::vector<bool>{true, false}))[0]
            .as<std::string>() == "t f");
  CHECK(tx.exec_params1("SELECT cardinality($1::text[])",
                        db::array_literal(std::vector<std::string>{}))[0]
            .as<int>() == 0);
}
