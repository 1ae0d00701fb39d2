// The Certn rate limit shared through PostgreSQL: two processes' limiters (two pools on one
// database) hand out turns as one limiter would; a Retry-After seen by one holds the other back;
// without the database each keeps its own limit.
#include "service/shared_rate_limit.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <future>
#include <optional>
#include <pqxx/pqxx>

#include "certn/rate_limiter.hpp"
#include "db/pool.hpp"
#include "support/harness.hpp"

using namespace archiver;
using namespace std::chrono_literals;
using testing::scratch_database;
using clock_type = certn::rate_limiter::clock;

namespace {

// `per_minute` 1200: a turn every 50 ms, no burst.
struct replica {
  replica(asio::io_context& io, const std::string& dsn)
      : database(dsn, 1, 5), limiter(1200) {
    limiter.share(service::shared_rate_limit(database, io, "certn test", 1200));
  }
  db::pool database;
  certn::rate_limiter limiter;
};

// Runs `calls` acquires on each limiter at once; returns the time the last one took.
clock_type::duration run_turns(asio::io_context& io, std::vector<certn::rate_limiter*> limiters,
                               int calls) {
  const auto started = clock_type::now();
  int left = static_cast<int>(limiters.size()) * calls;
  for (auto* limiter : limiters) {
    for (int i = 0; i < calls; ++i) {
      asio::co_spawn(io, limiter->acquire(), [&](std::exception_ptr error, certn::rate_limiter::turn) {
        REQUIRE_FALSE(error);
        --left;
      });
    }
  }
  io.restart();
  io.run();
  CHECK(left == 0);
  return clock_type::now() - started;
}

}  // namespace

TEST_CASE("two replicas share one turn sequence") {
  scratch_database db;
  asio::io_context io;
  replica a(io, db.dsn());
  replica b(io, db.dsn());
  // 20 turns 50 ms apart take at least 19 intervals; each replica alone would take 9.
  const auto both = run_turns(io, {&a.limiter, &b.limiter}, 10);
  CHECK(both >= 900ms);
  CHECK(db.scalar("SELECT count(*) FROM rate_limits WHERE name = 'certn test'") == "1");
}

TEST_CASE("a Retry-After seen by one replica holds the other back") {
  scratch_database db;
  asio::io_context io;
  replica a(io, db.dsn());
  replica b(io, db.dsn());
  a.limiter.hold_until(clock_type::now() + 600ms);
  io.restart();
  io.run();  // the hold is written by a coroutine of its own
  const auto waited = run_turns(io, {&b.limiter}, 1);
  CHECK(waited >= 500ms);
}

TEST_CASE("a Retry-After longer than a caller's patience gives the other replica's callers back") {
  scratch_database db;
  asio::io_context io;
  replica a(io, db.dsn());
  replica b(io, db.dsn());
  a.limiter.hold_until(clock_type::now() + 60s);
  io.restart();
  io.run();  // the hold is written by a coroutine of its own
  const std::string day_used =
      "SELECT COALESCE(day_used, 0) FROM rate_limits WHERE name = 'certn test'";
  const std::string used_before = db.scalar(day_used);
  const auto started = clock_type::now();
  std::optional<certn::rate_limiter::turn> turn;
  asio::co_spawn(io, b.limiter.acquire(ops::priority::live, 30s),
                 [&](std::exception_ptr error, certn::rate_limiter::turn given) {
                   REQUIRE_FALSE(error);
                   turn = given;
                 });
  io.restart();
  io.run();
  REQUIRE(turn);
  // Not granted, and at once: the job goes back to the queue for the rest of the hold instead
  // of keeping its worker a minute; nothing booked or charged for a call not sent.
  CHECK_FALSE(turn->granted);
  CHECK(turn->held_back > 50s);
  CHECK(turn->held_back <= 61s);
  CHECK(clock_type::now() - started < 20s);
  CHECK(db.scalar(day_used) == used_before);
}

TEST_CASE("without the database each process keeps its own limit") {
  asio::io_context io;
  // Nothing listens on port 1: every booking fails at once.
  replica lonely(io, "postgresql://postgres@127.0.0.1:1/none");
  const auto took = run_turns(io, {&lonely.limiter}, 5);
  CHECK(took >= 190ms);  // 4 intervals of the local limit
  CHECK(took < 5s);
}

TEST_CASE("the row name is the account's, per base URL, whatever the key") {
  const auto name = service::rate_limit_name("https://api.certn.co", "");
  CHECK(name.rfind("certn ", 0) == 0);
  CHECK(name.size() == 6 + 16);
  CHECK(name != service::rate_limit_name("https://api.certn.co", "second-account"));
  CHECK(name != service::rate_limit_name("https://api.ca.certn.co", ""));
  CHECK(name == service::rate_limit_name("https://api.certn.co", ""));
}

TEST_CASE("every booked turn is charged to the account's day, by every replica") {
  scratch_database db;
  asio::io_context io;
  replica a(io, db.dsn());
  replica b(io, db.dsn());
  run_turns(io, {&a.limiter, &b.limiter}, 5);
  CHECK(db.scalar("SELECT day_used FROM rate_limits WHERE name = 'certn test'") == "10");
  CHECK(db.scalar("SELECT day = (now() AT TIME ZONE 'UTC')::date FROM rate_limits") == "t");
  // Each limiter counts everyone's calls, as the shared count answered its last booking.
  CHECK(std::max(a.limiter.budget().used, b.limiter.budget().used) == 10);
  {
    pqxx::connection conn(db.dsn());
    pqxx::read_transaction tx(conn);
    const auto today = service::read_budget_today(tx, "certn test");
    REQUIRE(today);
    CHECK(today->used == 10);
    CHECK(today->hours_elapsed >= 0);
    CHECK(today->hours_elapsed <= 24);
    CHECK_FALSE(service::read_budget_today(tx, "another account"));
  }
  // A new UTC day starts the count again.
  db.scalar("UPDATE rate_limits SET day = day - 1 RETURNING 1");
  run_turns(io, {&a.limiter}, 1);
  CHECK(db.scalar("SELECT day_used FROM rate_limits WHERE name = 'certn test'") == "1");
}
