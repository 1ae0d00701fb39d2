// Webhook intake against a real PostgreSQL: challenge, signatures, durable storage with its job,
// duplicates (also concurrent), malformed bodies, body cap, and Postgres going away and back.
#include <doctest/doctest.h>
#include <pqxx/pqxx>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <future>
#include <sstream>
#include <vector>

#include "support/harness.hpp"
#include "webhook/signature.hpp"
#include "queue/queue.hpp"
#include "webhook/store.hpp"

using namespace archiver;
using namespace archiver::testing;

namespace {

const std::string path = "/webhooks/certn";

std::size_t count_rows(const scratch_database& db, const std::string& table,
                       const std::string& where = "true") {
  return std::stoul(db.scalar("SELECT count(*) FROM " + table + " WHERE " + where));
}

}  // namespace

TEST_CASE("the challenge is echoed as plain text with nosniff") {
  scratch_database db;
  listener_harness daemon(test_config(db.dsn()));

  reply res = http_request(daemon.port(), "GET", path + "?challenge=abc-123_XYZ");
  CHECK(res.status == 200);
  CHECK(res.body == "abc-123_XYZ");
  CHECK(res.headers["content-type"] == "text/plain");
  CHECK(res.headers["x-content-type-options"] == "nosniff");

  SUBCASE("percent-encoded values are decoded") {
    CHECK(http_request(daemon.port(), "GET", path + "?x=1&challenge=a%2Fb%20c").body == "a/b c");
  }
  SUBCASE("a missing or empty challenge is a 400") {
    CHECK(http_request(daemon.port(), "GET", path).status == 400);
    CHECK(http_request(daemon.port(), "GET", path + "?challenge=").status == 400);
    CHECK(http_request(daemon.port(), "GET", path + "?other=1").status == 400);
  }
  SUBCASE("an oversized challenge is a 400") {
    const std::string big(daemon.cfg().webhook.max_challenge_bytes + 1, 'a');
    CHECK(http_request(daemon.port(), "GET", path + "?challenge=" + big).status == 400);
    const std::string fits(daemon.cfg().webhook.max_challenge_bytes, 'a');
    CHECK(http_request(daemon.port(), "GET", path + "?challenge=" + fits).body == fits);
  }
}

TEST_CASE("a signed event is stored with its job before the 200") {
  scratch_database db;
  listener_harness daemon(test_config(db.dsn()));
  const std::string body = event_body("evt-1", "CASE_STATUS_CHANGED", "case-42");

  reply res = post_signed(daemon.port(), path, body);
  CHECK(res.status == 200);
  CHECK(res.body == "accepted\n");
  CHECK(db.scalar("SELECT convert_from(body, 'UTF8') FROM webhook_events WHERE id = 'evt-1'") ==
        body);
  CHECK(db.scalar("SELECT event_type || ' ' || object_id || ' ' || object_type || ' ' || "
                  "signature_scheme FROM webhook_events") ==
        "CASE_STATUS_CHANGED case-42 CASE x-signature-hex");
  CHECK(db.scalar("SELECT kind || ' ' || key || ' ' || state FROM jobs") ==
        "sync_case case-42 queued");
  CHECK(db.scalar("SELECT payload->>'source_event' FROM jobs") == "evt-1");

  SUBCASE("the same event again is a 200 that creates nothing") {
    reply again = post_signed(daemon.port(), path, body);
    CHECK(again.status == 200);
    CHECK(again.body == "duplicate\n");
    CHECK(count_rows(db, "webhook_events") == 1);
    CHECK(count_rows(db, "jobs") == 1);
  }
  SUBCASE("another event for the same case while its job is pending adds no job") {
    CHECK(post_signed(daemon.port(), path, event_body("evt-2", "CHECK_STATUS_CHANGED", "case-42"))
              .status == 200);
    CHECK(count_rows(db, "webhook_events") == 2);
    CHECK(count_rows(db, "jobs") == 1);
  }
}

TEST_CASE("the same event posted concurrently gives one row and two 200s") {
  scratch_database db;
  listener_harness daemon(test_config(db.dsn()));
  for (int round = 0; round < 20; ++round) {
    const std::string body = event_body("evt-race-" + std::to_string(round), "CASE_STATUS_CHANGED",
                                        "case-" + std::to_string(round));
    auto first = std::async(std::launch::async, [&] { return post_signed(daemon.port(), path, body); });
    auto second = std::async(std::launch::async, [&] { return post_signed(daemon.port(), path, body); });
    reply a = first.get();
    reply b = second.get();
    CHECK(a.status == 200);
    CHECK(b.status == 200);
    CHECK(((a.body == "accepted\n" && b.body == "duplicate\n") ||
           (a.body == "duplicate\n" && b.body == "accepted\n")));
  }
  CHECK(count_rows(db, "webhook_events") == 20);
  CHECK(count_rows(db, "jobs") == 20);
}

TEST_CASE("events that fail the signature check are refused and not stored") {
  scratch_database db;
  config::config cfg = test_config(db.dsn());
  cfg.webhook.secrets = {"old-secret", "new-secret"};
  listener_harness daemon(cfg);
  const std::string body = event_body("evt-sig");

  CHECK(post_signed(daemon.port(), path, body, "wrong-secret").status == 401);
  CHECK(http_request(daemon.port(), "POST", path, body).status == 401);  // no header
  CHECK(http_request(daemon.port(), "POST", path, body,
                     {{"X-Signature", webhook::sign_hex("new-secret", body + " ")}})
            .status == 401);  // signed over other bytes
  CHECK(count_rows(db, "webhook_events") == 0);

  SUBCASE("either of two configured secrets is accepted (rotation)") {
    CHECK(post_signed(daemon.port(), path, body, "new-secret").status == 200);
    CHECK(post_signed(daemon.port(), path, event_body("evt-sig-2"), "old-secret").status == 200);
    CHECK(count_rows(db, "webhook_events") == 2);
  }
}

TEST_CASE("certn-signature events are accepted within the timestamp tolerance") {
  scratch_database db;
  config::config cfg = test_config(db.dsn());
  cfg.webhook.scheme = config::signature_scheme::certn_signature;
  listener_harness daemon(cfg);
  const std::string body = event_body("evt-certn");
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  CHECK(http_request(daemon.port(), "POST", path, body,
                     {{"Certn-Signature", webhook::sign_certn("test-secret", body, now - 1000)}})
            .status == 401);
  CHECK(http_request(daemon.port(), "POST", path, body,
                     {{"Certn-Signature", webhook::sign_certn("test-secret", body, now)}})
            .status == 200);
  CHECK(db.scalar("SELECT signature_scheme FROM webhook_events") == "certn-signature");
}

TEST_CASE("a certn-signature timestamp goes stale when the clock passes the tolerance") {
  scratch_database db;
  config::config cfg = test_config(db.dsn());
  cfg.webhook.scheme = config::signature_scheme::certn_signature;
  cfg.webhook.timestamp_tolerance = std::chrono::seconds(300);
  archiver::ops::manual_clock manual;
  listener_harness daemon(cfg, manual);
  const auto signed_at =
      std::chrono::duration_cast<std::chrono::seconds>(manual.wall_now().time_since_epoch()).count();
  const auto post_signed_at = [&](const std::string& id) {
    const std::string body = event_body(id);
    return http_request(daemon.port(), "POST", path, body,
                        {{"Certn-Signature", webhook::sign_certn("test-secret", body, signed_at)}})
        .status;
  };
  manual.advance(std::chrono::seconds(299));
  CHECK(post_signed_at("evt-fresh") == 200);
  manual.advance(std::chrono::seconds(2));
  CHECK(post_signed_at("evt-stale") == 401);
  CHECK(count_rows(db, "webhook_events") == 1);
}

TEST_CASE("malformed events get a 400 naming what is wrong") {
  scratch_database db;
  listener_harness daemon(test_config(db.dsn()));

  reply not_json = post_signed(daemon.port(), path, "{\"id\": ");
  CHECK(not_json.status == 400);
  CHECK(not_json.body.find("malformed event: body") != std::string::npos);

  reply no_type = post_signed(daemon.port(), path, R"({"id":"e1","object_id":"c","object_type":"CASE"})");
  CHECK(no_type.status == 400);
  CHECK(no_type.body.find("event_type") != std::string::npos);

  reply bad_object = post_signed(
      daemon.port(), path,
      R"({"id":"e1","event_type":"CASE_STATUS_CHANGED","object_id":"../etc","object_type":"CASE"})");
  CHECK(bad_object.status == 400);
  CHECK(bad_object.body.find("object_id") != std::string::npos);
  CHECK(count_rows(db, "webhook_events") == 0);
}

TEST_CASE("unknown event types are stored and acknowledged without a job") {
  scratch_database db;
  listener_harness daemon(test_config(db.dsn()));
  CHECK(post_signed(daemon.port(), path, event_body("evt-new", "CASE_SOMETHING_NEW")).status == 200);
  CHECK(count_rows(db, "webhook_events", "processed_at IS NOT NULL") == 1);
  CHECK(count_rows(db, "jobs") == 0);

  SUBCASE("CASE_REPORT_READY asks for a report_ready job") {
    CHECK(post_signed(daemon.port(), path, event_body("evt-rr", "CASE_REPORT_READY", "rf-9"))
              .status == 200);
    CHECK(db.scalar("SELECT kind || ' ' || key FROM jobs") == "report_ready rf-9");
  }
}

TEST_CASE("bodies over max_body_bytes are refused with 413") {
  scratch_database db;
  config::config cfg = test_config(db.dsn());
  cfg.server.max_body_bytes = 1024;
  listener_harness daemon(cfg);

  SUBCASE("from Content-Length, before the body is sent") {
    const raw_result res = raw_exchange(
        daemon.port(), "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
    CHECK(res.received.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(res.closed_by_server);
  }
  SUBCASE("as soon as a chunked body passes the cap") {
    std::string request = "POST " + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i) {
      request += "200\r\n" + std::string(0x200, 'a') + "\r\n";
    }
    const raw_result res = raw_exchange(daemon.port(), request);  // 1536 bytes, no final chunk
    CHECK(res.received.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(res.closed_by_server);
  }
  SUBCASE("a body at the cap is read (and then judged by its signature)") {
    const std::string body(1024, ' ');
    CHECK(post_signed(daemon.port(), path, body, "wrong").status == 401);
  }
}

TEST_CASE("Postgres stopped mid-run gives 503, and intake recovers without a restart") {
  scratch_database db;
  listener_harness daemon(test_config(db.dsn()));
  REQUIRE(post_signed(daemon.port(), path, event_body("evt-before")).status == 200);

  pause_postgres();
  reply during = post_signed(daemon.port(), path, event_body("evt-during"));
  CHECK(during.status == 503);
  CHECK(during.headers["retry-after"] == "5");

  // The challenge needs no database and answers at once.
  const auto started = std::chrono::steady_clock::now();
  CHECK(http_request(daemon.port(), "GET", path + "?challenge=still-here").body == "still-here");
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::milliseconds(500));
  resume_postgres();

  // The sender retries; the first retries may still meet the old, broken connections.
  CHECK(eventually([&] {
    return post_signed(daemon.port(), path, event_body("evt-during")).status == 200;
  }));
  CHECK(count_rows(db, "webhook_events") == 2);
  CHECK(daemon.registry().expose().find(
            "certn_archiver_webhook_events_total{type=\"CASE_STATUS_CHANGED\",outcome=\"store_failed\"}") !=
        std::string::npos);
}

TEST_CASE("metrics count events by type and outcome, and the intake latency") {
  scratch_database db;
  listener_harness daemon(test_config(db.dsn()));
  const std::string body = event_body("evt-m");
  post_signed(daemon.port(), path, body);
  post_signed(daemon.port(), path, body);
  post_signed(daemon.port(), path, body, "wrong");
  post_signed(daemon.port(), path, "[]");

  const std::string text = http_request(daemon.port(), "GET", "/metrics").body;
  CHECK(text.find("certn_archiver_webhook_events_total{type=\"CASE_STATUS_CHANGED\",outcome=\"accepted\"} 1") != std::string::npos);
  CHECK(text.find("certn_archiver_webhook_events_total{type=\"CASE_STATUS_CHANGED\",outcome=\"duplicate\"} 1") != std::string::npos);
  CHECK(text.find("certn_archiver_webhook_events_total{type=\"unknown\",outcome=\"bad_signature\"} 1") != std::string::npos);
  CHECK(text.find("certn_archiver_webhook_events_total{type=\"unknown\",outcome=\"malformed\"} 1") != std::string::npos);
  CHECK(text.find("certn_archiver_webhook_intake_seconds_count{outcome=\"accepted\"} 1") != std::string::npos);
  CHECK(text.find("certn_archiver_http_requests_total{listener=\"main\",route=\"/webhooks/certn\",status=\"401\"} 1") != std::string::npos);
}

TEST_CASE("no secret or signature appears in the log") {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  spdlog::default_logger()->sinks().push_back(sink);
  spdlog::set_level(spdlog::level::trace);
  {
    scratch_database db;
    listener_harness daemon(test_config(db.dsn()));
    const std::string body = event_body("evt-log");
    post_signed(daemon.port(), path, body);
    post_signed(daemon.port(), path, body, "another-secret-value");
    post_signed(daemon.port(), path, "not json");
    pause_postgres();
    post_signed(daemon.port(), path, event_body("evt-log-2"));
    resume_postgres();
  }
  spdlog::default_logger()->sinks().pop_back();
  const std::string log = captured.str();
  CHECK(log.find("evt-log") != std::string::npos);  // the capture works
  CHECK(log.find("test-secret") == std::string::npos);
  CHECK(log.find("another-secret-value") == std::string::npos);
  CHECK(log.find(webhook::sign_hex("test-secret", event_body("evt-log"))) == std::string::npos);
  CHECK(log.find(webhook::sign_hex("another-secret-value", event_body("evt-log"))) ==
        std::string::npos);
}

TEST_CASE("retention deletes old processed events in batches and keeps unprocessed ones") {
  scratch_database db;
  const auto insert = [&](const std::string& id, const std::string& received,
                          const std::string& processed) {
    db.scalar("INSERT INTO webhook_events (id, event_type, object_id, object_type, body, "
              "signature_scheme, received_at, processed_at) VALUES ('" +
              id + "', 'CASE_STATUS_CHANGED', 'c1', 'CASE', '\\x7b7d', 'x-signature-hex', " +
              received + ", " + processed + ") RETURNING 1");
  };
  insert("old-done-1", "now() - interval '100 days'", "now() - interval '99 days'");
  insert("old-done-2", "now() - interval '95 days'", "now() - interval '95 days'");
  insert("old-pending", "now() - interval '100 days'", "NULL");  // its job pending or dead
  insert("recent-done", "now() - interval '10 days'", "now() - interval '10 days'");
  pqxx::connection conn(db.dsn());
  const std::chrono::seconds ninety_days = std::chrono::hours(24 * 90);
  CHECK(webhook::prune_processed_events(conn, ninety_days, 1) == 1);
  // The oldest first.
  CHECK(count_rows(db, "webhook_events", "id = 'old-done-1'") == 0);
  CHECK(webhook::prune_processed_events(conn, ninety_days, 1) == 1);
  CHECK(webhook::prune_processed_events(conn, ninety_days, 1) == 0);
  CHECK(count_rows(db, "webhook_events") == 2);
  CHECK(count_rows(db, "webhook_events", "id IN ('old-pending', 'recent-done')") == 2);
}

namespace {

webhook::event_record record_of(const std::string& id, const std::string& case_id,
                                std::chrono::seconds coalesce = std::chrono::seconds(0)) {
  webhook::event received;
  received.id = id;
  received.event_type = "CASE_STATUS_CHANGED";
  received.object_id = case_id;
  received.object_type = "CASE";
  auto job = webhook::job_for(received, 10, coalesce);
  return {received, event_body(id, "CASE_STATUS_CHANGED", case_id), "x-signature-hex", job};
}

// Counts NOTIFYs on the queue's channel.
class notifications : public pqxx::notification_receiver {
 public:
  explicit notifications(pqxx::connection& conn)
      : pqxx::notification_receiver(conn, queue::notify_channel) {}
  void operator()(const std::string&, int) override { ++count; }
  int count = 0;
};

// The notifications received within `wait`.
int notified_within(pqxx::connection& conn, notifications& counted,
                    std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    conn.await_notification(0, 50'000);
  }
  return counted.count;
}

}  // namespace

TEST_CASE("a group of events is stored in one transaction, duplicates told apart") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  REQUIRE(webhook::store_events(conn, {record_of("evt-old", "case-0")}).front().outcome ==
          webhook::store_outcome::stored);

  const std::vector<webhook::event_record> group = {
      record_of("evt-a", "case-1"), record_of("evt-b", "case-1"),  // one job for case-1
      record_of("evt-old", "case-0"),                               // stored before
      record_of("evt-c", "case-2"), record_of("evt-a", "case-1"),  // evt-a given twice
  };
  const std::vector<webhook::store_result> results = webhook::store_events(conn, group);
  REQUIRE(results.size() == group.size());
  using enum webhook::store_outcome;
  const std::vector<std::optional<webhook::store_outcome>> expected = {stored, stored, duplicate,
                                                                       stored, duplicate};
  for (std::size_t i = 0; i < results.size(); ++i) {
    CAPTURE(i);
    CHECK(results[i].outcome == expected[i]);
  }
  CHECK(count_rows(db, "webhook_events") == 4);
  CHECK(db.scalar("SELECT count(DISTINCT xmin::text) FROM webhook_events WHERE id <> 'evt-old'") == "1");
  CHECK(db.scalar("SELECT string_agg(key, ',' ORDER BY key) FROM jobs WHERE state = 'queued'") ==
        "case-0,case-1,case-2");
  // The first event of a case names the job; the body is stored as received.
  CHECK(db.scalar("SELECT payload->>'source_event' FROM jobs WHERE key = 'case-1'") == "evt-a");
  CHECK(db.scalar("SELECT convert_from(body, 'UTF8') FROM webhook_events WHERE id = 'evt-c'") ==
        event_body("evt-c", "CASE_STATUS_CHANGED", "case-2"));
}

TEST_CASE("one bad event of a group fails alone") {
  scratch_database db;
  // A stand-in for whatever one event might do wrong: a trigger refusing one id.
  db.scalar(
      "CREATE FUNCTION refuse_evt_bad() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "IF NEW.id = 'evt-bad' THEN RAISE EXCEPTION 'refused %', NEW.id; END IF; RETURN NEW; END $$; "
      "CREATE TRIGGER refuse_evt_bad BEFORE INSERT ON webhook_events FOR EACH ROW "
      "EXECUTE FUNCTION refuse_evt_bad(); SELECT 1");
  pqxx::connection conn(db.dsn());
  const auto results = webhook::store_events(
      conn, {record_of("evt-1", "case-1"), record_of("evt-bad", "case-2"),
             record_of("evt-3", "case-3")});
  REQUIRE(results.size() == 3);
  CHECK(results[0].outcome == webhook::store_outcome::stored);
  CHECK_FALSE(results[1].outcome.has_value());
  CHECK(results[1].failure.find("refused evt-bad") != std::string::npos);
  CHECK(results[2].outcome == webhook::store_outcome::stored);
  CHECK(db.scalar("SELECT string_agg(id, ',' ORDER BY id) FROM webhook_events") == "evt-1,evt-3");
  CHECK(db.scalar("SELECT string_agg(key, ',' ORDER BY key) FROM jobs") == "case-1,case-3");
}

// (Postgres folds a transaction's identical NOTIFYs into one, so the first count is about the group
// being one transaction; the second is the choice not to notify.)
TEST_CASE("a group notifies the workers once, and not at all when its jobs are not yet due") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  pqxx::connection listening(db.dsn());
  notifications counted(listening);
  webhook::store_events(conn, {record_of("evt-1", "case-1"), record_of("evt-2", "case-2"),
                               record_of("evt-3", "case-3")});
  CHECK(notified_within(listening, counted, std::chrono::milliseconds(300)) == 1);
  webhook::store_events(conn, {record_of("evt-4", "case-4", std::chrono::seconds(2)),
                               record_of("evt-5", "case-5", std::chrono::seconds(2))});
  CHECK(notified_within(listening, counted, std::chrono::milliseconds(300)) == 1);
  CHECK(count_rows(db, "jobs") == 5);
}

TEST_CASE("events that arrive while the intake's connections are busy share a commit") {
  scratch_database db;
  config::config cfg = test_config(db.dsn());
  cfg.database.pool_size = 1;  // the harness's intake pool
  listener_harness daemon(cfg);

  // The first event's commit waits on a lock; the others arrive meanwhile.
  pqxx::connection locker(db.dsn());
  pqxx::work lock(locker);
  lock.exec0("LOCK TABLE webhook_events IN EXCLUSIVE MODE");
  auto first = std::async(std::launch::async, [&] {
    return post_signed(daemon.port(), path, event_body("evt-g0", "CASE_STATUS_CHANGED", "case-g0"));
  });
  REQUIRE(eventually([&] {
    return db.scalar("SELECT count(*) FROM pg_locks WHERE relation = 'webhook_events'::regclass "
                     "AND NOT granted") == "1";
  }));
  constexpr int later = 9;
  std::vector<std::future<reply>> others;
  for (int i = 1; i <= later; ++i) {
    others.push_back(std::async(std::launch::async, [&, i] {
      const std::string n = std::to_string(i);
      return post_signed(daemon.port(), path,
                         event_body("evt-g" + n, "CASE_STATUS_CHANGED", "case-g" + n));
    }));
  }
  REQUIRE(eventually([&] {
    return daemon.registry().expose().find("certn_archiver_webhook_events_waiting_commit " +
                                           std::to_string(later)) != std::string::npos;
  }));
  lock.abort();

  CHECK(first.get().body == "accepted\n");
  for (auto& other : others) {
    CHECK(other.get().body == "accepted\n");
  }
  // Two transactions: the first event's, and one for the nine that waited.
  CHECK(db.scalar("SELECT count(DISTINCT xmin::text) FROM webhook_events") == "2");
  CHECK(count_rows(db, "jobs") == later + 1);
  const std::string metrics = daemon.registry().expose();
  CHECK(metrics.find("certn_archiver_webhook_commit_group_events_count 2") != std::string::npos);
  CHECK(metrics.find("certn_archiver_webhook_commit_group_events_sum 10") != std::string::npos);
  CHECK(metrics.find("certn_archiver_webhook_events_waiting_commit 0") != std::string::npos);
}
