// queue/admin against a real PostgreSQL (TEST_PG_DSN): each test case works in a freshly migrated
// database of its own, with jobs inserted in the states it needs.
#include <doctest/doctest.h>
#include <pqxx/pqxx>

#include <chrono>
#include <cstdlib>
#include <future>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "db/migrations.hpp"
#include "queue/admin.hpp"
#include "queue/queue.hpp"

using namespace archiver;
using namespace std::chrono_literals;

namespace {

std::string admin_dsn() {
  const char* dsn = std::getenv("TEST_PG_DSN");
  if (dsn == nullptr || *dsn == '\0') {
    FAIL("TEST_PG_DSN is not set: start a server with scripts/pg.sh and export it");
  }
  return dsn;
}

// A migrated database of its own, dropped at the end. TEST_PG_DSN is a URI
// (postgresql://user@host:port/db, as scripts/pg.sh prints it).
class fresh_database {
 public:
  fresh_database() {
    std::random_device random;
    name_ = "qa_" + std::to_string(random()) + std::to_string(random());
    const std::string admin = admin_dsn();
    const std::size_t slash = admin.find('/', admin.find("://") + 3);
    const std::size_t query = admin.find('?');
    dsn_ = admin.substr(0, slash) + "/" + name_ +
           (query == std::string::npos ? "" : admin.substr(query));
    pqxx::connection conn(admin);
    pqxx::nontransaction(conn).exec0("CREATE DATABASE " + name_);
    conn_.emplace(dsn_);
    db::apply_migrations(*conn_);
  }
  ~fresh_database() {
    conn_.reset();
    try {
      pqxx::connection conn(admin_dsn());
      pqxx::nontransaction(conn).exec0("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception& e) {
      MESSAGE("could not drop " << name_ << ": " << e.what());
    }
  }
  pqxx::connection& conn() { return *conn_; }
  const std::string& dsn() const { return dsn_; }

  std::string scalar(const std::string& sql) {
    pqxx::nontransaction tx(*conn_);
    const pqxx::result r = tx.exec(sql);
    return r.empty() || r[0][0].is_null() ? "" : r[0][0].as<std::string>();
  }

 private:
  std::string name_;
  std::string dsn_;
  std::optional<pqxx::connection> conn_;
};

struct job_fixture {
  std::string kind = "sync_case";
  std::string key;
  std::string state = "queued";
  int attempts = 0;
  std::optional<std::string> last_error{};
  std::optional<std::string> lease_owner{};   // with a lease expiring in a minute
  std::optional<int> finished_seconds_ago{};  // finished_at
};

std::int64_t insert_job(pqxx::connection& conn, const job_fixture& job) {
  pqxx::work tx(conn);
  const pqxx::row row = tx.exec_params1(
      "INSERT INTO jobs (kind, key, state, attempts, last_error, lease_owner, lease_expires, "
      "finished_at, run_at) VALUES ($1, $2, $3::job_state, $4, $5, $6::text, "
      "CASE WHEN $6::text IS NULL THEN NULL ELSE now() + interval '1 minute' END, "
      "now() - make_interval(secs => $7::float8), now() - interval '1 hour') RETURNING id",
      job.kind, job.key, job.state, job.attempts, job.last_error, job.lease_owner,
      job.finished_seconds_ago ? std::optional<double>(*job.finished_seconds_ago)
                               : std::optional<double>());
  tx.commit();
  return row[0].as<std::int64_t>();
}

std::string column(fresh_database& db, std::int64_t id, const std::string& expression) {
  return db.scalar("SELECT " + expression + " FROM jobs WHERE id = " + std::to_string(id));
}

// Counts NOTIFYs on the queue's channel, in order, with their payloads.
class channel_listener : public pqxx::notification_receiver {
 public:
  explicit channel_listener(pqxx::connection& conn)
      : pqxx::notification_receiver(conn, queue::notify_channel) {}
  void operator()(const std::string& payload, int) override { payloads.push_back(payload); }
  std::vector<std::string> payloads;
};

// Waits until `listener` holds `count` notifications (or 5 s pass).
void await_notifications(pqxx::connection& conn, channel_listener& listener, std::size_t count) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (listener.payloads.size() < count && std::chrono::steady_clock::now() < deadline) {
    conn.await_notification(1, 0);
  }
}

queue::retry_result retry(fresh_database& db, std::int64_t id) {
  pqxx::work tx(db.conn());
  const queue::retry_result result = queue::retry_job(tx, id);
  tx.commit();
  return result;
}

queue::cancel_result cancel(fresh_database& db, std::int64_t id) {
  pqxx::work tx(db.conn());
  const queue::cancel_result result = queue::cancel_job(tx, id);
  tx.commit();
  return result;
}

}  // namespace

TEST_CASE("list_jobs filters by state and kind, newest first, up to the limit") {
  fresh_database db;
  const auto a = insert_job(db.conn(), {.key = "a", .state = "dead"});
  const auto b = insert_job(db.conn(), {.key = "b", .state = "queued"});
  const auto c = insert_job(db.conn(), {.kind = "poll_report", .key = "c", .state = "dead"});
  const auto d = insert_job(db.conn(), {.key = "d", .state = "dead"});
  pqxx::read_transaction tx(db.conn());

  const auto ids = [](const std::vector<queue::job_row>& jobs) {
    std::vector<std::int64_t> out;
    for (const auto& job : jobs) {
      out.push_back(job.id);
    }
    return out;
  };
  CHECK(ids(queue::list_jobs(tx, {})) == std::vector<std::int64_t>{d, c, b, a});
  CHECK(ids(queue::list_jobs(tx, {.state = "dead"})) == std::vector<std::int64_t>{d, c, a});
  CHECK(ids(queue::list_jobs(tx, {.state = "dead", .kind = "sync_case"})) ==
        std::vector<std::int64_t>{d, a});
  CHECK(ids(queue::list_jobs(tx, {.limit = 2})) == std::vector<std::int64_t>{d, c});
  CHECK(queue::list_jobs(tx, {.state = "no-such-state"}).empty());
}

TEST_CASE("show_job returns every column, absent values as nullopt") {
  fresh_database db;
  const auto id = insert_job(db.conn(), {.key = "case-1",
                                         .state = "running",
                                         .attempts = 2,
                                         .last_error = "HTTP 500",
                                         .lease_owner = "worker-1"});
  pqxx::read_transaction tx(db.conn());
  const auto job = queue::show_job(tx, id);
  REQUIRE(job);
  CHECK(job->id == id);
  CHECK(job->kind == "sync_case");
  CHECK(job->key == "case-1");
  CHECK(job->payload == "{}");
  CHECK(job->state == "running");
  CHECK(job->attempts == 2);
  CHECK(job->max_attempts == 10);
  CHECK(job->lease_owner == "worker-1");
  REQUIRE(job->lease_expires);
  CHECK(job->lease_expires->ends_with("Z"));
  CHECK(job->last_error == "HTTP 500");
  CHECK(job->run_at.size() == std::string("2026-11-29T08:13:32.123456Z").size());
  CHECK(job->created_at.ends_with("Z"));
  CHECK(job->updated_at.ends_with("Z"));
  CHECK_FALSE(job->finished_at);
  CHECK(queue::to_json(*job).find("\"lease_owner\":\"worker-1\"") != std::string::npos);
  CHECK(queue::to_json(*job).find("\"finished_at\":null") != std::string::npos);
  CHECK_FALSE(queue::show_job(tx, id + 1000));
}

TEST_CASE("retry_job queues a dead, failed or cancelled job now, keeping its last error") {
  fresh_database db;
  pqxx::connection listen_conn(db.dsn());
  channel_listener listener(listen_conn);
  std::size_t notified = 0;
  for (const std::string state : {"dead", "failed", "cancelled"}) {
    CAPTURE(state);
    const auto id = insert_job(db.conn(), {.key = "case-" + state,
                                           .state = state,
                                           .attempts = 10,
                                           .last_error = "HTTP 503 from Certn",
                                           .finished_seconds_ago = 60});

    const queue::retry_result result = retry(db, id);
    CHECK(result.outcome == queue::retry_outcome::queued);
    REQUIRE(result.before);
    CHECK(result.before->state == state);
    CHECK(column(db, id, "state") == "queued");
    CHECK(column(db, id, "attempts") == "0");
    CHECK(column(db, id, "run_at <= now() AND run_at > now() - interval '1 minute'") == "t");
    CHECK(column(db, id, "finished_at IS NULL AND lease_owner IS NULL") == "t");
    CHECK(column(db, id, "last_error") ==
          "retried by operator after 10 attempts as " + state + ": HTTP 503 from Certn");
    await_notifications(listen_conn, listener, ++notified);
    CHECK(listener.payloads.size() == notified);
  }
}

TEST_CASE("retry_job leaves a job whose (kind, key) already has a pending job") {
  fresh_database db;
  pqxx::connection listen_conn(db.dsn());
  channel_listener listener(listen_conn);
  std::vector<std::pair<std::int64_t, std::int64_t>> dead_and_pending;
  for (const std::string pending_state : {"queued", "failed"}) {
    CAPTURE(pending_state);
    const std::string key = "case-" + pending_state;
    const auto dead = insert_job(db.conn(), {.key = key, .state = "dead", .attempts = 3,
                                             .last_error = "boom", .finished_seconds_ago = 60});
    const auto pending = insert_job(db.conn(), {.key = key, .state = pending_state});
    dead_and_pending.emplace_back(dead, pending);

    const queue::retry_result result = retry(db, dead);
    CHECK(result.outcome == queue::retry_outcome::already_pending);
    CHECK(result.pending_id == pending);
    CHECK(column(db, dead, "state") == "dead");
    CHECK(column(db, dead, "attempts") == "3");
    CHECK(column(db, dead, "last_error") == "boom");
  }
  // No NOTIFY for them: the first notification to arrive is the marker sent after them.
  pqxx::nontransaction(db.conn()).exec0("NOTIFY archiver_jobs, 'marker'");
  await_notifications(listen_conn, listener, 1);
  REQUIRE(listener.payloads.size() == 1);
  CHECK(listener.payloads[0] == "marker");

  // A running job of the same key is not pending: the dead one is queued beside it.
  const auto [dead, pending] = dead_and_pending.front();
  pqxx::nontransaction(db.conn())
      .exec0("UPDATE jobs SET state = 'running' WHERE id = " + std::to_string(pending));
  CHECK(retry(db, dead).outcome == queue::retry_outcome::queued);
  CHECK(column(db, dead, "state") == "queued");
}

TEST_CASE("retry_job reports a pending job enqueued while it ran as already pending") {
  fresh_database db;
  const auto dead = insert_job(db.conn(), {.key = "case-1", .state = "dead"});
  // An enqueue of the same key, not yet committed: retry_job cannot see it, and its update then
  // waits on the unique index until the enqueue commits and makes the update a violation.
  pqxx::connection enqueuer(db.dsn());
  pqxx::work enqueue_tx(enqueuer);
  REQUIRE(queue::enqueue(enqueue_tx, {.kind = "sync_case", .key = "case-1"}) ==
          queue::enqueue_outcome::enqueued);

  pqxx::connection retrier(db.dsn());
  std::future<queue::retry_result> retried = std::async(std::launch::async, [&] {
    pqxx::work tx(retrier);
    queue::retry_result result = queue::retry_job(tx, dead);
    tx.commit();  // still usable: the failed update was rolled back to its savepoint
    return result;
  });
  const std::string waiting =
      "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
      "AND wait_event_type = 'Lock'";
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (db.scalar(waiting) == "0" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(db.scalar(waiting) == "1");  // not REQUIRE: the retrier must be let go in any case
  enqueue_tx.commit();

  const queue::retry_result result = retried.get();
  CHECK(result.outcome == queue::retry_outcome::already_pending);
  CHECK(result.pending_id == std::stoll(db.scalar(
                                 "SELECT id FROM jobs WHERE key = 'case-1' AND state = 'queued'")));
  CHECK(column(db, dead, "state") == "dead");
}

TEST_CASE("retry_job refuses queued, running and succeeded jobs, and unknown ids") {
  fresh_database db;
  for (const std::string state : {"queued", "running", "succeeded"}) {
    CAPTURE(state);
    const auto id = insert_job(db.conn(), {.key = "case-" + state, .state = state, .attempts = 1});
    const queue::retry_result result = retry(db, id);
    CHECK(result.outcome == queue::retry_outcome::not_retryable);
    REQUIRE(result.before);
    CHECK(result.before->state == state);
    CHECK(column(db, id, "state") == state);
    CHECK(column(db, id, "attempts") == "1");
  }
  CHECK(retry(db, 999'999).outcome == queue::retry_outcome::not_found);
}

TEST_CASE("retry_all_dead queues each dead job unless its key is pending") {
  fresh_database db;
  const auto older = insert_job(db.conn(), {.key = "k1", .state = "dead"});
  const auto newer = insert_job(db.conn(), {.key = "k1", .state = "dead"});
  const auto blocked = insert_job(db.conn(), {.key = "k2", .state = "dead"});
  const auto pending = insert_job(db.conn(), {.key = "k2", .state = "queued"});
  const auto lone = insert_job(db.conn(), {.kind = "poll_report", .key = "k1", .state = "dead"});
  const auto succeeded = insert_job(db.conn(), {.key = "k3", .state = "succeeded"});

  pqxx::work tx(db.conn());
  const queue::retry_counts counts = queue::retry_all_dead(tx);
  tx.commit();
  CHECK(counts.queued == 2);
  CHECK(counts.already_pending == 2);
  CHECK(column(db, older, "state") == "queued");
  CHECK(column(db, newer, "state") == "dead");
  CHECK(column(db, blocked, "state") == "dead");
  CHECK(column(db, pending, "state") == "queued");
  CHECK(column(db, lone, "state") == "queued");
  CHECK(column(db, succeeded, "state") == "succeeded");

  pqxx::work again(db.conn());
  const queue::retry_counts second = queue::retry_all_dead(again);
  again.commit();
  CHECK(second.queued == 0);
  CHECK(second.already_pending == 2);
}

TEST_CASE("cancel_job cancels pending and running jobs, never finished ones") {
  fresh_database db;
  for (const std::string state : {"queued", "failed"}) {
    CAPTURE(state);
    const std::string key = "case-" + state;
    const auto id = insert_job(db.conn(), {.key = key, .state = state});
    const queue::cancel_result result = cancel(db, id);
    CHECK(result.outcome == queue::cancel_outcome::cancelled);
    CHECK(result.previous_state == state);
    CHECK(column(db, id, "state") == "cancelled");
    CHECK(column(db, id, "finished_at IS NOT NULL") == "t");
    // Its key is free again: a new job can be enqueued.
    pqxx::work tx(db.conn());
    CHECK(queue::enqueue(tx, {.kind = "sync_case", .key = key}) ==
          queue::enqueue_outcome::enqueued);
    tx.commit();
  }

  // A running job loses its lease, so its worker's finishing calls change nothing.
  const auto running = insert_job(db.conn(), {.key = "case-running", .state = "running",
                                              .attempts = 1, .lease_owner = "worker-1"});
  const queue::cancel_result result = cancel(db, running);
  CHECK(result.outcome == queue::cancel_outcome::cancelled);
  CHECK(result.previous_state == "running");
  CHECK(column(db, running, "state") == "cancelled");
  CHECK(column(db, running, "lease_owner IS NULL AND lease_expires IS NULL") == "t");

  for (const std::string state : {"succeeded", "dead", "cancelled"}) {
    CAPTURE(state);
    const auto id = insert_job(db.conn(), {.key = "done-" + state, .state = state,
                                           .finished_seconds_ago = 60});
    const queue::cancel_result finished = cancel(db, id);
    CHECK(finished.outcome == queue::cancel_outcome::already_finished);
    CHECK(finished.previous_state == state);
    CHECK(column(db, id, "state") == state);
    CHECK(column(db, id, "finished_at < now() - interval '59 seconds'") == "t");
  }
  CHECK(cancel(db, 999'999).outcome == queue::cancel_outcome::not_found);
}

TEST_CASE("prune_finished deletes old succeeded and cancelled jobs and keeps dead ones") {
  fresh_database db;
  constexpr int day = 86'400;
  const auto old_succeeded = insert_job(db.conn(), {.key = "a", .state = "succeeded",
                                                    .finished_seconds_ago = 10 * day});
  const auto old_cancelled = insert_job(db.conn(), {.key = "b", .state = "cancelled",
                                                    .finished_seconds_ago = 10 * day});
  const auto old_dead = insert_job(db.conn(), {.key = "c", .state = "dead",
                                               .finished_seconds_ago = 100 * day});
  const auto recent = insert_job(db.conn(), {.key = "d", .state = "succeeded",
                                             .finished_seconds_ago = 1 * day});
  const auto queued = insert_job(db.conn(), {.key = "e", .state = "queued"});

  const auto exists = [&](std::int64_t id) { return column(db, id, "count(*)") == "1"; };
  {
    // A batch deletes no more than its limit.
    pqxx::work tx(db.conn());
    CHECK(queue::prune_finished(tx, std::chrono::days(7), 1) == 1);
    tx.commit();
  }
  CHECK(exists(old_succeeded) != exists(old_cancelled));
  {
    pqxx::work tx(db.conn());
    CHECK(queue::prune_finished(tx, std::chrono::days(7), 1) == 1);
    CHECK(queue::prune_finished(tx, std::chrono::days(7), 1) == 0);
    tx.commit();
  }
  CHECK_FALSE(exists(old_succeeded));
  CHECK_FALSE(exists(old_cancelled));
  CHECK(exists(old_dead));
  CHECK(exists(recent));
  CHECK(exists(queued));
}

TEST_CASE("read_status counts events, jobs by state and kind, due age and artifacts") {
  fresh_database db;
  {
    pqxx::read_transaction tx(db.conn());
    const queue::status_counts empty = queue::read_status(tx);
    CHECK(empty.events_total == 0);
    CHECK(empty.jobs_by_state.size() == 6);
    CHECK(empty.jobs_by_state.at("dead") == 0);
    CHECK(empty.jobs_by_kind.empty());
    CHECK_FALSE(empty.oldest_due_seconds);
    CHECK(empty.artifact_bytes == 0);
    CHECK(queue::to_json(empty) ==
          R"({"events":{"total":0,"unprocessed":0},"jobs":{"by_state":{"queued":0,"running":0,)"
          R"("succeeded":0,"failed":0,"dead":0,"cancelled":0},"dead":0,"oldest_due_seconds":null,)"
          R"("by_kind":{}},"artifacts":{"count":0,"total_bytes":0}})");
  }
  pqxx::nontransaction(db.conn())
      .exec0("INSERT INTO webhook_events (id, event_type, object_id, object_type, body, "
             "signature_scheme, processed_at) VALUES "
             "('e1', 'CASE_STATUS_CHANGED', 'c1', 'CASE', 'x', 'hex', now()), "
             "('e2', 'CASE_STATUS_CHANGED', 'c1', 'CASE', 'x', 'hex', NULL), "
             "('e3', 'CASE_STATUS_CHANGED', 'c2', 'CASE', 'x', 'hex', NULL)");
  pqxx::nontransaction(db.conn())
      .exec0("INSERT INTO artifacts (case_id, kind, object_key, sha256, size_bytes) VALUES "
             "('c1', 'report', 'k1', repeat('a', 64), 1000), "
             "('c1', 'manifest', 'k2', repeat('b', 64), 24)");
  insert_job(db.conn(), {.key = "a", .state = "queued"});  // due an hour ago
  insert_job(db.conn(), {.key = "b", .state = "dead"});
  insert_job(db.conn(), {.key = "c", .state = "dead"});
  insert_job(db.conn(), {.kind = "poll_report", .key = "a", .state = "running",
                         .lease_owner = "w"});
  pqxx::nontransaction(db.conn())
      .exec0("INSERT INTO jobs (kind, key, run_at) VALUES ('poll_report', 'later', "
             "now() + interval '1 hour')");  // queued but not due

  pqxx::read_transaction tx(db.conn());
  const queue::status_counts status = queue::read_status(tx);
  CHECK(status.events_total == 3);
  CHECK(status.events_unprocessed == 2);
  CHECK(status.jobs_by_state.at("queued") == 2);
  CHECK(status.jobs_by_state.at("dead") == 2);
  CHECK(status.jobs_by_state.at("running") == 1);
  CHECK(status.jobs_by_state.at("succeeded") == 0);
  CHECK(status.jobs_by_kind.at("sync_case").at("queued") == 1);
  CHECK(status.jobs_by_kind.at("sync_case").at("dead") == 2);
  CHECK(status.jobs_by_kind.at("poll_report").at("queued") == 1);
  CHECK(status.jobs_by_kind.at("poll_report").at("running") == 1);
  CHECK(status.jobs_by_kind.at("poll_report").at("cancelled") == 0);
  REQUIRE(status.oldest_due_seconds);
  CHECK(*status.oldest_due_seconds >= 3599);
  CHECK(*status.oldest_due_seconds < 3700);
  CHECK(status.artifacts == 2);
  CHECK(status.artifact_bytes == 1024);
  const std::string json = queue::to_json(status);
  CHECK(json.find(R"("events":{"total":3,"unprocessed":2})") != std::string::npos);
  CHECK(json.find(R"("poll_report":{"queued":1,"running":1,)") != std::string::npos);
  CHECK(json.find(R"("dead":2,"oldest_due_seconds":36)") != std::string::npos);
}
