// The job queue against a real PostgreSQL: the SQL state machine (claim, finish, heartbeat,
// release, rescue, merge with a pending successor) and the worker runtime (LISTEN/NOTIFY wake-up,
// retries, drain).
#include "queue/queue.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <thread>

#include "queue/worker.hpp"
#include "support/harness.hpp"

using namespace archiver;
using namespace std::chrono_literals;
using testing::eventually;
using testing::scratch_database;

namespace {

std::int64_t add(const std::string& dsn, const std::string& kind, const std::string& key,
                 int max_attempts = 3, std::chrono::seconds delay = 0s) {
  pqxx::connection conn(dsn);
  pqxx::work tx(conn);
  queue::enqueue(tx, {kind, key, "{}", max_attempts, delay});
  tx.commit();
  pqxx::nontransaction q(conn);
  return q.exec_params("SELECT max(id) FROM jobs WHERE kind = $1 AND key = $2", kind, key)[0][0]
      .as<std::int64_t>();
}

std::string field(const scratch_database& db, std::int64_t id, const std::string& column) {
  return db.scalar("SELECT " + column + "::text FROM jobs WHERE id = " + std::to_string(id));
}

// The run of job `id` that `owner` holds now (token 0, which no claim takes, when none).
queue::lease_ref run_of(const std::string& dsn, std::int64_t id, const std::string& owner) {
  pqxx::connection conn(dsn);
  pqxx::nontransaction q(conn);
  const pqxx::result row = q.exec_params(
      "SELECT lease_token FROM jobs WHERE id = $1 AND lease_owner = $2 AND state = 'running'", id,
      owner);
  return {id, row.empty() ? 0 : row[0][0].as<std::int64_t>()};
}

bool finish(const std::string& dsn, const queue::lease_ref& run, queue::outcome result) {
  pqxx::connection conn(dsn);
  pqxx::work tx(conn);
  const bool mine = queue::finish(tx, run, result);
  tx.commit();
  return mine;
}

// finish() as the worker `owner`, for the run it holds now.
bool finish(const std::string& dsn, std::int64_t id, const std::string& owner,
            queue::outcome result) {
  return finish(dsn, run_of(dsn, id, owner), std::move(result));
}

}  // namespace

TEST_CASE("enqueue keeps one pending job per (kind, key) and may bring it forward") {
  scratch_database db;
  const auto first = add(db.dsn(), "sync_case", "c1", 3, 3600s);
  const auto again = add(db.dsn(), "sync_case", "c1");
  CHECK(first == again);
  CHECK(db.scalar("SELECT count(*) FROM jobs") == "1");
  // The duplicate asked for "now": the pending job is due now.
  CHECK(db.scalar("SELECT run_at <= now() FROM jobs") == "t");
  add(db.dsn(), "sync_case", "c2");
  add(db.dsn(), "fetch_report", "c1");
  CHECK(db.scalar("SELECT count(*) FROM jobs") == "3");
}

TEST_CASE("claim takes due jobs in batches and never two of one key at once") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  for (int i = 0; i < 5; ++i) {
    add(db.dsn(), "k", "key-" + std::to_string(i));
  }
  add(db.dsn(), "k", "later", 3, 3600s);
  auto batch = queue::claim(conn, "w1", 3, 60s);
  CHECK(batch.size() == 3);
  CHECK(batch[0].attempt == 1);
  auto rest = queue::claim(conn, "w2", 10, 60s);
  CHECK(rest.size() == 2);  // "later" is not due
  CHECK(queue::claim(conn, "w2", 10, 60s).empty());

  // An event for a running key gets a pending successor, which waits for the running job.
  const std::string running_key = batch[0].key;
  const auto successor = add(db.dsn(), "k", running_key);
  CHECK(successor != batch[0].id);
  CHECK(queue::claim(conn, "w3", 10, 60s).empty());
  CHECK(finish(db.dsn(), batch[0].id, "w1", {}));
  const auto next = queue::claim(conn, "w3", 10, 60s);
  REQUIRE(next.size() == 1);
  CHECK(next[0].id == successor);
  CHECK(field(db, batch[0].id, "state") == "succeeded");
}

TEST_CASE("claims go by priority class, then run_at; a live duplicate raises a pending job") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  const auto enqueue = [&](const std::string& key, ops::priority p) {
    pqxx::work tx(conn);
    queue::enqueue(tx, {.kind = "k", .key = key, .priority = p});
    tx.commit();
  };
  // Bulk work queued first, then sync, archive and live work: claims take the most urgent first.
  enqueue("bulk-1", ops::priority::bulk);
  enqueue("bulk-2", ops::priority::bulk);
  enqueue("sync-1", ops::priority::sync);
  enqueue("archive-1", ops::priority::archive);
  enqueue("live-1", ops::priority::live);
  // A live event about a case the backfill already queued: that job becomes live.
  enqueue("bulk-2", ops::priority::live);
  CHECK(db.scalar("SELECT priority FROM jobs WHERE key = 'bulk-2'") == "0");
  // ... and a bulk duplicate never lowers a job.
  enqueue("live-1", ops::priority::bulk);
  CHECK(db.scalar("SELECT priority FROM jobs WHERE key = 'live-1'") == "0");

  const auto keys = [](const std::vector<queue::claimed_job>& jobs) {
    std::vector<std::string> out;
    for (const auto& job : jobs) {
      out.push_back(job.key + ":" + std::string(ops::name_of(job.priority)));
    }
    return out;
  };
  SUBCASE("strict order without a reserve") {
    CHECK(keys(queue::claim(conn, "w", 2, 60s)) ==
          std::vector<std::string>{"bulk-2:live", "live-1:live"});
    CHECK(keys(queue::claim(conn, "w", 1, 60s)) == std::vector<std::string>{"archive-1:archive"});
    CHECK(keys(queue::claim(conn, "w", 5, 60s)) ==
          std::vector<std::string>{"sync-1:sync", "bulk-1:bulk"});
  }
  SUBCASE("the reserve takes the oldest job below live first, then the most urgent") {
    CHECK(keys(queue::claim(conn, "w", 2, 60s, 1)) ==
          std::vector<std::string>{"bulk-1:bulk", "bulk-2:live"});
    // With nothing below live due, the reserved slot goes to live work.
    CHECK(keys(queue::claim(conn, "w", 1, 60s, 0)) == std::vector<std::string>{"live-1:live"});
    CHECK(keys(queue::claim(conn, "w", 3, 60s, 3)) ==
          std::vector<std::string>{"sync-1:sync", "archive-1:archive"});
  }
  SUBCASE("a paused class is passed over; the others keep their order") {
    {
      pqxx::work tx(conn);
      tx.exec0("INSERT INTO paused_classes (priority, paused_by) VALUES (0, 'test'), (3, 'test')");
      tx.commit();
    }
    CHECK(keys(queue::claim(conn, "w", 5, 60s, 1)) ==
          std::vector<std::string>{"sync-1:sync", "archive-1:archive"});
    CHECK(queue::claim(conn, "w", 5, 60s).empty());
  }
  SUBCASE("with every class below live paused, the reserve's share goes to live work") {
    {
      pqxx::work tx(conn);
      tx.exec0(
          "INSERT INTO paused_classes (priority, paused_by) VALUES (1, 't'), (2, 't'), (3, 't')");
      tx.commit();
    }
    CHECK(keys(queue::claim(conn, "w", 5, 60s, 2)) ==
          std::vector<std::string>{"bulk-2:live", "live-1:live"});
    {
      pqxx::work tx(conn);
      tx.exec0("INSERT INTO paused_classes (priority, paused_by) VALUES (0, 't')");
      tx.commit();
    }
    enqueue("live-2", ops::priority::live);
    CHECK(queue::claim(conn, "w", 5, 60s, 2).empty());
  }
}

TEST_CASE("reserved_claims keeps a share of the workers for work below live") {
  struct row {
    int wanted, concurrency, percent, running_below_live, expected;
  };
  const std::vector<row> rows = {
      {4, 4, 0, 0, 0},   // no reserve: strict priority
      {4, 4, 10, 0, 1},  // 10 % of 4 workers rounds down to 0, but a reserve is at least 1
      {4, 4, 10, 1, 0},  // already running one job below live
      {8, 20, 10, 0, 2},
      {8, 20, 10, 1, 1},
      {1, 20, 50, 0, 1},  // never more than the claim wants
      {0, 20, 50, 0, 0},
      {4, 20, 25, 9, 0},  // above the reserve: nothing more reserved
  };
  for (const row& r : rows) {
    CAPTURE(r.wanted);
    CAPTURE(r.concurrency);
    CAPTURE(r.percent);
    CAPTURE(r.running_below_live);
    CHECK(queue::reserved_claims(r.wanted, r.concurrency, r.percent, r.running_below_live) ==
          r.expected);
  }
}

TEST_CASE("concurrent claimers take every job exactly once") {
  scratch_database db;
  {
    pqxx::connection conn(db.dsn());
    pqxx::work tx(conn);
    for (int i = 0; i < 400; ++i) {
      queue::enqueue(tx, {"k", "key-" + std::to_string(i), "{}", 3, 0s});
    }
    tx.commit();
  }
  std::mutex mutex;
  std::multiset<std::int64_t> seen;
  std::vector<std::thread> claimers;
  for (int t = 0; t < 4; ++t) {
    claimers.emplace_back([&, t] {
      pqxx::connection conn(db.dsn());
      for (;;) {
        const auto jobs = queue::claim(conn, "w" + std::to_string(t), 7, 60s);
        if (jobs.empty()) {
          return;
        }
        std::lock_guard lock(mutex);
        for (const auto& job : jobs) {
          seen.insert(job.id);
        }
      }
    });
  }
  for (auto& c : claimers) {
    c.join();
  }
  CHECK(seen.size() == 400);
  CHECK(std::set<std::int64_t>(seen.begin(), seen.end()).size() == 400);
}

TEST_CASE("a claim locks only the jobs it takes: another claim meanwhile gets the rest") {
  scratch_database db;
  pqxx::connection first_conn(db.dsn());
  pqxx::connection second_conn(db.dsn());
  // One transaction each, so that each job has a run_at of its own: archive is the oldest.
  const auto enqueue = [&](const std::string& key, ops::priority p) {
    pqxx::work tx(first_conn);
    queue::enqueue(tx, {.kind = "k", .key = key, .priority = p});
    tx.commit();
  };
  for (const ops::priority p : {ops::priority::archive, ops::priority::sync, ops::priority::bulk}) {
    enqueue(std::string(ops::name_of(p)), p);
  }
  for (int i = 0; i < 6; ++i) {
    enqueue("live-" + std::to_string(i), ops::priority::live);
  }
  // The first claim's transaction stays open, holding its locks, while the second one claims.
  // It takes one job below live (the reserve: the oldest, archive) and two live ones.
  pqxx::work first(first_conn);
  const auto taken_first = queue::claim(first, "a", 3, 60s, 1);
  REQUIRE(taken_first.size() == 3);
  CHECK(taken_first[0].key == "archive");
  const auto taken_second = queue::claim(second_conn, "b", 10, 60s);
  std::set<std::string> keys;
  for (const auto& job : taken_first) {
    keys.insert(job.key);
  }
  for (const auto& job : taken_second) {
    keys.insert(job.key);
  }
  // Every job once: the second claim passed over the three the first one holds, and nothing more.
  CHECK(taken_second.size() == 6);
  CHECK(keys.size() == 9);
  first.commit();
}

TEST_CASE("finish: retry waits, the last attempt and permanent errors are dead with the reason") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  const auto id = add(db.dsn(), "k", "a", 2);
  auto job = queue::claim(conn, "w", 1, 60s);
  REQUIRE(job.size() == 1);
  CHECK(finish(
      db.dsn(), id, "w",
      {queue::outcome::kind::retry, "HTTP 503 from api", std::chrono::milliseconds(60'000)}));
  CHECK(field(db, id, "state") == "failed");
  CHECK(field(db, id, "last_error") == "HTTP 503 from api");
  CHECK(db.scalar("SELECT run_at > now() + interval '50 seconds' FROM jobs WHERE id = " +
                  std::to_string(id)) == "t");
  CHECK(queue::claim(conn, "w", 1, 60s).empty());  // not due yet
  pqxx::nontransaction(conn).exec("UPDATE jobs SET run_at = now()");
  job = queue::claim(conn, "w", 1, 60s);
  REQUIRE(job.size() == 1);
  CHECK(job[0].attempt == 2);
  CHECK(finish(db.dsn(), id, "w", {queue::outcome::kind::retry, "HTTP 503 again", 0ms}));
  CHECK(field(db, id, "state") == "dead");
  CHECK(field(db, id, "last_error") == "HTTP 503 again (gave up after 2 attempts)");
  CHECK_FALSE(field(db, id, "finished_at").empty());

  const auto other = add(db.dsn(), "k", "b", 5);
  queue::claim(conn, "w", 1, 60s);
  CHECK(finish(db.dsn(), other, "w", {queue::outcome::kind::dead, "report FAILED at Certn", 0ms}));
  CHECK(field(db, other, "state") == "dead");
  CHECK(field(db, other, "last_error") == "report FAILED at Certn");
  // Someone else's job, or a finished one: nothing changes.
  CHECK_FALSE(finish(db.dsn(), other, "w", {}));
}

TEST_CASE("a retry with a pending successor merges into it and hands on its attempts") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  const auto id = add(db.dsn(), "k", "a", 5);
  REQUIRE(queue::claim(conn, "w", 1, 60s).size() == 1);
  const auto successor = add(db.dsn(), "k", "a", 5);
  // The running job was live work, its successor sync: the merged job stays live.
  db.scalar("UPDATE jobs SET priority = 0 WHERE id = " + std::to_string(id) + " RETURNING 1");
  CHECK(finish(db.dsn(), id, "w", {queue::outcome::kind::retry, "timeout", 30'000ms}));
  CHECK(field(db, successor, "priority") == "0");
  CHECK(field(db, id, "state") == "cancelled");
  CHECK(field(db, id, "last_error") ==
        "timeout; merged into pending job " + std::to_string(successor));
  CHECK(field(db, successor, "state") == "queued");
  CHECK(field(db, successor, "attempts") == "1");
  CHECK(db.scalar("SELECT run_at > now() + interval '20 seconds' FROM jobs WHERE id = " +
                  std::to_string(successor)) == "t");
}

TEST_CASE("finish_all records many outcomes in one transaction, and only the held ones") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  const auto a = add(db.dsn(), "k", "a");
  const auto b = add(db.dsn(), "k", "b");
  const auto c = add(db.dsn(), "k", "c");
  const auto d = add(db.dsn(), "k", "d");
  REQUIRE(queue::claim(conn, "w", 4, 60s).size() == 4);
  const auto run_a = run_of(db.dsn(), a, "w");
  const auto run_b = run_of(db.dsn(), b, "w");
  const auto run_c = run_of(db.dsn(), c, "w");
  const auto run_d = run_of(db.dsn(), d, "w");
  // d was cancelled meanwhile: its lease is lost.
  pqxx::nontransaction(conn).exec("UPDATE jobs SET state = 'cancelled', lease_owner = NULL "
                                  "WHERE id = " + std::to_string(d));
  std::vector<bool> recorded;
  {
    pqxx::work tx(conn);
    recorded = queue::finish_all(
        tx, {{run_a, {}},
             {run_b, {queue::outcome::kind::retry, "HTTP 503", 60'000ms}},
             {run_c, {queue::outcome::kind::dead, "report FAILED", 0ms}},
             {run_d, {}}});
    tx.commit();
  }
  CHECK(recorded == std::vector<bool>{true, true, true, false});
  CHECK(field(db, a, "state") == "succeeded");
  CHECK(field(db, b, "state") == "failed");
  CHECK(field(db, b, "last_error") == "HTTP 503");
  CHECK(field(db, c, "state") == "dead");
  CHECK(field(db, d, "state") == "cancelled");
  // Runs are named by their token: a token e's run does not hold, or a's ended run, change
  // nothing.
  const auto e = add(db.dsn(), "k", "e");
  const auto claimed_e = queue::claim(conn, "other", 1, 60s);
  REQUIRE(claimed_e.size() == 1);
  pqxx::work tx(conn);
  CHECK(queue::finish_all(tx, {{{e, claimed_e[0].lease_token + 1}, {}}, {run_a, {}}}) ==
        std::vector<bool>{false, false});
  tx.commit();
  CHECK(field(db, e, "state") == "running");
}

TEST_CASE("fencing: a run whose lease expired cannot record over the run claimed since") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  const auto id = add(db.dsn(), "k", "a", 5);
  const auto first = queue::claim(conn, "w", 1, 60s);
  REQUIRE(first.size() == 1);
  // The first run's worker loses the database past its lease; the job is rescued and claimed
  // again, here by the same worker name (as after a reconnect of the same process).
  pqxx::nontransaction(conn).exec("UPDATE jobs SET lease_expires = now() - interval '1 second'");
  CHECK(queue::rescue_expired(conn) == 1);
  const auto second = queue::claim(conn, "w", 1, 60s);
  REQUIRE(second.size() == 1);
  CHECK(second[0].id == id);
  CHECK(second[0].lease_token != first[0].lease_token);
  // Heartbeats of the old run do not keep the lease alive; the new run's do.
  CHECK(queue::heartbeat(conn, {first[0].lease(), second[0].lease()}, 60s) ==
        std::vector<queue::lease_ref>{first[0].lease()});
  // The old run's late success is refused while the new one runs, and after it ended.
  CHECK_FALSE(finish(db.dsn(), first[0].lease(), {}));
  CHECK(field(db, id, "state") == "running");
  CHECK(finish(db.dsn(), second[0].lease(),
               {queue::outcome::kind::dead, "report FAILED (second run)", 0ms}));
  CHECK_FALSE(finish(db.dsn(), first[0].lease(), {}));
  CHECK(field(db, id, "state") == "dead");
  CHECK(field(db, id, "last_error") == "report FAILED (second run)");
  // A release by the old run gives nothing back either.
  CHECK(queue::release(conn, "w", {first[0].lease()}) == 0);
}

TEST_CASE("heartbeat extends held leases and names the lost ones") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  const auto a = add(db.dsn(), "k", "a");
  const auto b = add(db.dsn(), "k", "b");
  REQUIRE(queue::claim(conn, "w", 2, 5s).size() == 2);
  const queue::lease_ref run_a = run_of(db.dsn(), a, "w");
  const queue::lease_ref run_b = run_of(db.dsn(), b, "w");
  pqxx::nontransaction(conn).exec("UPDATE jobs SET state = 'cancelled' WHERE id = " +
                                  std::to_string(b));
  const auto lost = queue::heartbeat(conn, {run_a, run_b}, 120s);
  CHECK(lost == std::vector<queue::lease_ref>{run_b});
  CHECK(db.scalar("SELECT lease_expires > now() + interval '100 seconds' FROM jobs WHERE id = " +
                  std::to_string(a)) == "t");
}

TEST_CASE("release gives jobs back at once without counting the attempt") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  const auto a = add(db.dsn(), "k", "a");
  const auto claimed = queue::claim(conn, "w", 1, 60s);
  REQUIRE(claimed.size() == 1);
  CHECK(queue::release(conn, "w", {claimed[0].lease()}) == 1);
  CHECK(field(db, a, "state") == "queued");
  CHECK(field(db, a, "attempts") == "0");
  CHECK(field(db, a, "lease_owner").empty());
  const auto again = queue::claim(conn, "other", 1, 60s);
  REQUIRE(again.size() == 1);
  CHECK(again[0].attempt == 1);
}

TEST_CASE("rescue returns expired leases, and kills a job whose last attempt expired") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  const auto a = add(db.dsn(), "k", "a", 3);
  const auto b = add(db.dsn(), "k", "b", 1);
  REQUIRE(queue::claim(conn, "gone", 2, 60s).size() == 2);
  CHECK(queue::rescue_expired(conn) == 0);  // leases still valid
  pqxx::nontransaction(conn).exec("UPDATE jobs SET lease_expires = now() - interval '1 second'");
  CHECK(queue::rescue_expired(conn) == 2);
  CHECK(field(db, a, "state") == "failed");
  CHECK(field(db, a, "last_error") == "lease of gone expired (worker gone or stuck)");
  CHECK(field(db, b, "state") == "dead");
  const auto again = queue::claim(conn, "w", 5, 60s);
  REQUIRE(again.size() == 1);
  CHECK(again[0].id == a);
  CHECK(again[0].attempt == 2);
  // The finishing call of the worker that lost the lease changes nothing.
  CHECK_FALSE(finish(db.dsn(), a, "gone", {}));
}

TEST_CASE("retry_delay: doubling with jitter, capped, Retry-After as a floor") {
  using queue::retry_delay;
  CHECK(retry_delay(1, 10s, 3600s, std::nullopt, 0.0) == 5000ms);
  CHECK(retry_delay(1, 10s, 3600s, std::nullopt, 1.0) == 10000ms);
  CHECK(retry_delay(3, 10s, 3600s, std::nullopt, 1.0) == 40000ms);
  CHECK(retry_delay(3, 10s, 3600s, std::nullopt, 0.5) == 30000ms);
  CHECK(retry_delay(30, 10s, 3600s, std::nullopt, 1.0) == 3600000ms);
  CHECK(retry_delay(1000, 10s, 60s, std::nullopt, 0.0) == 30000ms);
  CHECK(retry_delay(1, 10s, 3600s, 120s, 0.0) == 120000ms);
}

namespace {

// The worker runtime on its own io thread.
struct runtime {
  explicit runtime(const std::string& dsn, queue::worker_settings settings)
      : database(dsn, 2, 5),
        metrics(registry),
        workers(io, database, dsn, std::move(settings), metrics) {}
  ~runtime() { stop(); }
  void start() {
    workers.start();
    thread = std::thread([this] { io.run(); });
  }
  void drain() {
    std::promise<void> done;
    asio::co_spawn(io, workers.drain(), [&](std::exception_ptr) { done.set_value(); });
    done.get_future().wait();
  }
  void stop() {
    if (thread.joinable()) {
      drain();
      io.stop();
      thread.join();
    }
  }
  asio::io_context io{1};
  ops::registry registry;
  db::pool database;
  queue::worker_metrics metrics;
  queue::workers workers;
  std::thread thread;
};

queue::worker_settings fast_settings(std::string owner) {
  queue::worker_settings s;
  s.owner = std::move(owner);
  s.concurrency = 4;
  s.lease = 6s;
  s.poll_interval = 30'000ms;  // long: pickups must come from NOTIFY
  s.backoff_base = 0s;
  s.backoff_max = 0s;
  s.drain_timeout = 2s;
  return s;
}

}  // namespace

TEST_CASE("workers run every job once, woken by NOTIFY, retrying what throws") {
  scratch_database db;
  std::atomic<int> runs{0};
  std::atomic<int> flaky_runs{0};
  int in_flight = 0;  // handlers run on the io thread
  int most_in_flight = 0;
  runtime rt(db.dsn(), fast_settings("worker-a"));
  rt.workers.add("noop", [&](const queue::claimed_job&) -> awaitable<queue::job_result> {
    ++runs;
    most_in_flight = std::max(most_in_flight, ++in_flight);
    const auto executor = co_await asio::this_coro::executor;
    asio::steady_timer pause(executor, 2ms);
    co_await pause.async_wait(asio::use_awaitable);
    --in_flight;
    co_return queue::job_result::done();
  });
  rt.workers.add("flaky", [&](const queue::claimed_job& job) -> awaitable<queue::job_result> {
    ++flaky_runs;
    if (job.attempt < 3) {
      throw std::runtime_error("transient failure " + std::to_string(job.attempt));
    }
    co_return queue::job_result::done();
  });
  rt.start();
  // Jobs enqueued after start: only a notification can wake the workers within the test's time.
  std::this_thread::sleep_for(300ms);
  {
    // In one transaction, so that all are due at once and the concurrency cap is what limits.
    pqxx::connection conn(db.dsn());
    pqxx::work tx(conn);
    for (int i = 0; i < 30; ++i) {
      queue::enqueue(tx, {"noop", "n" + std::to_string(i), "{}", 3, 0s});
    }
    tx.commit();
  }
  add(db.dsn(), "flaky", "f", 5);
  add(db.dsn(), "unknown-kind", "u");
  CHECK(eventually(
      [&] {
        return db.scalar(
                   "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed')") ==
               "0";
      },
      10s));
  CHECK(runs == 30);
  // Slots freed by recorded outcomes are refilled in the same transaction, never beyond the cap.
  CHECK(most_in_flight == 4);
  CHECK(flaky_runs == 3);
  CHECK(db.scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'") == "31");
  CHECK(db.scalar("SELECT last_error FROM jobs WHERE kind = 'unknown-kind'") ==
        "no handler for job kind \"unknown-kind\"");
  CHECK(rt.metrics.runs.value({"noop", "succeeded"}) == 30);
  CHECK(rt.metrics.runs.value({"flaky", "retry"}) == 2);
}

TEST_CASE("workers wake for a job enqueued for later when it is due, not at their next poll") {
  scratch_database db;
  std::atomic<int> runs{0};
  runtime rt(db.dsn(), fast_settings("worker-a"));  // polls every 30 s
  rt.workers.add("noop", [&](const queue::claimed_job&) -> awaitable<queue::job_result> {
    ++runs;
    co_return queue::job_result::done();
  });
  auto due_soon = [&](const std::string& key) {
    pqxx::connection conn(db.dsn());
    pqxx::work tx(conn);
    queue::enqueue_many(tx, {{"noop", key, "{}", 3, 1s}});  // not due yet: no NOTIFY
    tx.commit();
  };
  // Enqueued before the first claim: that claim finds it is due in 1 s and sleeps until then.
  due_soon("before-start");
  rt.start();
  CHECK(eventually([&] { return runs == 1; }, 5s));
  // Enqueued while the loop sleeps (nothing else due): only due_in() can wake it in time, as
  // serve's intake calls it for a coalesced job.
  std::this_thread::sleep_for(200ms);
  due_soon("while-asleep");
  asio::post(rt.io, [&] { rt.workers.due_in(1s); });
  CHECK(eventually([&] { return runs == 2; }, 5s));
  // The outcome is recorded after the handler returns: awaited, not read at once.
  CHECK(eventually(
      [&] { return db.scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'") == "2"; }, 5s));
}

TEST_CASE("workers: database errors by the retry table, refused data dead at once") {
  scratch_database db;
  runtime rt(db.dsn(), fast_settings("worker-a"));
  rt.workers.add("bad_data", [&](const queue::claimed_job&) -> awaitable<queue::job_result> {
    co_await rt.database.run(
        [](pqxx::connection& conn) { pqxx::work(conn).exec0("SELECT 'not a number'::int"); });
    co_return queue::job_result::done();
  });
  rt.workers.add("slow_once", [&](const queue::claimed_job& job) -> awaitable<queue::job_result> {
    if (job.attempt == 1) {
      co_await rt.database.run([](pqxx::connection& conn) {
        pqxx::work tx(conn);
        tx.exec0("SET LOCAL statement_timeout = 10");
        tx.exec0("SELECT pg_sleep(1)");
      });
    }
    co_return queue::job_result::done();
  });
  rt.start();
  add(db.dsn(), "bad_data", "b", 5);
  add(db.dsn(), "slow_once", "s", 5);
  CHECK(eventually([&] {
    return db.scalar("SELECT count(*) FROM jobs WHERE state IN ('dead', 'succeeded')") == "2";
  }));
  // SQLSTATE 22P02: the same data is refused again, so one attempt is enough.
  CHECK(db.scalar("SELECT state || ' ' || attempts FROM jobs WHERE kind = 'bad_data'") == "dead 1");
  CHECK(db.scalar("SELECT last_error FROM jobs WHERE kind = 'bad_data'")
            .starts_with("database: ERROR:  invalid input syntax for type integer"));
  // 57014, a statement cancelled by its time limit: retried.
  CHECK(db.scalar("SELECT state || ' ' || attempts FROM jobs WHERE kind = 'slow_once'") ==
        "succeeded 2");
}

TEST_CASE("drain releases a job that outlives the deadline, and another worker takes it at once") {
  scratch_database db;
  std::atomic<bool> started{false};
  auto slow = std::make_unique<runtime>(db.dsn(), fast_settings("slow-worker"));
  slow->workers.add("long", [&](const queue::claimed_job&) -> awaitable<queue::job_result> {
    started = true;
    asio::steady_timer forever(co_await asio::this_coro::executor, 1h);
    error_code ec;
    co_await forever.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return queue::job_result::done();
  });
  slow->start();
  const auto id = add(db.dsn(), "long", "x");
  REQUIRE(eventually([&] { return started.load(); }, 5s));
  slow->drain();
  CHECK(field(db, id, "state") == "queued");
  CHECK(field(db, id, "attempts") == "0");

  std::atomic<bool> done{false};
  runtime other(db.dsn(), fast_settings("other-worker"));
  other.workers.add("long", [&](const queue::claimed_job&) -> awaitable<queue::job_result> {
    done = true;
    co_return queue::job_result::done();
  });
  other.start();
  CHECK(eventually([&] { return field(db, id, "state") == "succeeded"; }, 5s));
  other.stop();
  slow->io.stop();
  slow->thread.join();
}

TEST_CASE("workers: a run that lost its lease finishes late; its outcome is refused and counted") {
  scratch_database db;
  std::atomic<bool> started{false};
  std::atomic<bool> let_finish{false};
  // One slot: busy with the first run, this worker cannot claim the rescued job itself.
  queue::worker_settings settings = fast_settings("worker-a");
  settings.concurrency = 1;
  runtime rt(db.dsn(), settings);
  rt.workers.add("slow", [&](const queue::claimed_job&) -> awaitable<queue::job_result> {
    started = true;
    const auto executor = co_await asio::this_coro::executor;
    while (!let_finish) {
      asio::steady_timer pause(executor, 10ms);
      co_await pause.async_wait(asio::use_awaitable);
    }
    co_return queue::job_result::done();
  });
  rt.start();
  const auto id = add(db.dsn(), "slow", "x", 5);
  REQUIRE(eventually([&] { return started.load(); }, 5s));

  // The lease runs out (as while this worker could not reach the database) and a rescuer takes
  // the job back; the worker's heartbeats may renew it in between, so expire it until a rescue
  // catches it.
  pqxx::connection conn(db.dsn());
  bool rescued = false;
  for (int i = 0; i < 50 && !rescued; ++i) {
    pqxx::nontransaction(conn).exec(
        "UPDATE jobs SET lease_expires = now() - interval '1 second' WHERE state = 'running'");
    rescued = queue::rescue_expired(conn) == 1;
  }
  REQUIRE(rescued);
  // The job runs again, here under the same worker name (as after a reconnect).
  const auto second = queue::claim(conn, "worker-a", 1, 60s);
  REQUIRE(second.size() == 1);
  CHECK(second[0].id == id);

  // The first run finishes while the second one runs: its success is refused and counted, and
  // the second run's lease and outcome stand.
  let_finish = true;
  CHECK(eventually([&] { return rt.metrics.stale_outcomes.value({"slow"}) == 1; }, 5s));
  CHECK(field(db, id, "state") == "running");
  CHECK(finish(db.dsn(), second[0].lease(),
               {queue::outcome::kind::dead, "the second run's verdict", 0ms}));
  CHECK(field(db, id, "state") == "dead");
  CHECK(field(db, id, "last_error") == "the second run's verdict");
}

TEST_CASE("a throttled run gives its attempt back and is never the last") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  const auto id = add(db.dsn(), "k", "a", 1);
  for (int run = 0; run < 3; ++run) {
    pqxx::nontransaction(conn).exec("UPDATE jobs SET run_at = now()");
    const auto job = queue::claim(conn, "w", 1, 60s);
    REQUIRE(job.size() == 1);
    CHECK(job[0].attempt == 1);
    queue::outcome throttled{queue::outcome::kind::retry, "HTTP 429", 0ms};
    throttled.counts_as_attempt = false;
    CHECK(finish(db.dsn(), id, "w", throttled));
    CHECK(field(db, id, "state") == "failed");
    CHECK(field(db, id, "attempts") == "0");
  }
  pqxx::nontransaction(conn).exec("UPDATE jobs SET run_at = now()");
  REQUIRE(queue::claim(conn, "w", 1, 60s).size() == 1);
  CHECK(finish(db.dsn(), id, "w", {queue::outcome::kind::retry, "HTTP 503", 0ms}));
  CHECK(field(db, id, "state") == "dead");
}
