// The archive's SQL (archive/repository) against a real PostgreSQL: each statement's effect on
// the rows the workflows and policy rely on.
#include <doctest/doctest.h>

#include <pqxx/pqxx>

#include "archive/repository.hpp"
#include "archive/workflows.hpp"
#include "support/harness.hpp"

using namespace archiver;
using testing::scratch_database;
namespace repository = archive::repository;

namespace {

certn::case_record case_with(const std::string& id, const std::string& status,
                             std::vector<std::string> check_ids = {}) {
  certn::case_record record;
  record.id = id;
  record.overall_status = status;
  record.modified = "2026-12-01T10:00:00Z";
  for (auto& check_id : check_ids) {
    certn::check check;
    check.id = std::move(check_id);
    record.checks.push_back(std::move(check));
  }
  return record;
}

const std::string fetched = "2026-12-01 10:00:00+00";  // when the GET behind a saved case began

}  // namespace

TEST_CASE("lock_case tells what was held about a case; save_case keeps closed_at while closed") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  const std::string snapshot = R"({"id":"c1","overall_status":"COMPLETE"})";
  {
    pqxx::work tx(conn);
    const archive::case_facts unknown = repository::lock_case(tx, "c1", snapshot);
    CHECK_FALSE(unknown.known);
    CHECK_FALSE(unknown.was_closed);
    repository::save_case(tx, "c1", case_with("c1", "COMPLETE"), snapshot, true, fetched);
    tx.commit();
  }
  const std::string closed_at = db.scalar("SELECT closed_at::text FROM cases WHERE id = 'c1'");
  CHECK_FALSE(closed_at.empty());
  {
    pqxx::work tx(conn);
    // Key order and spacing differ: the comparison is of JSON values, not bytes.
    const archive::case_facts held =
        repository::lock_case(tx, "c1", R"({ "overall_status": "COMPLETE", "id": "c1" })");
    CHECK(held.known);
    CHECK(held.was_closed);
    CHECK(held.same_snapshot);
    CHECK(held.old_status == "COMPLETE");
    CHECK_FALSE(repository::lock_case(tx, "c1", R"({"id":"c1"})").same_snapshot);
    repository::save_case(tx, "c1", case_with("c1", "COMPLETE"), snapshot, true, fetched);
    tx.commit();
  }
  CHECK(db.scalar("SELECT closed_at::text FROM cases WHERE id = 'c1'") == closed_at);
  {
    pqxx::work tx(conn);
    repository::save_case(tx, "c1", case_with("c1", "IN_DISPUTE"), snapshot, false, fetched);
    tx.commit();
  }
  CHECK(db.scalar("SELECT closed_at IS NULL FROM cases WHERE id = 'c1'") == "t");
  CHECK(db.scalar("SELECT certn_modified FROM cases WHERE id = 'c1'") == "2026-12-01T10:00:00Z");
}

TEST_CASE("held_cases, case checks and status history") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  {
    pqxx::work tx(conn);
    repository::save_case(tx, "open", case_with("open", "APPLICANT_INVITED"), "{}", false, fetched);
    repository::save_case(tx, "done", case_with("done", "COMPLETE"), "{}", true, fetched);
    repository::save_case_checks(tx, "done", case_with("done", "COMPLETE", {"k1", "k2"}).checks);
    repository::record_status_change(tx, "done", "COMPLETE", "event e1");
    tx.commit();
  }
  pqxx::work tx(conn);
  const auto held = repository::held_cases(tx);
  REQUIRE(held.size() == 2);
  CHECK(held.at("open").open);
  CHECK(held.at("open").status == "APPLICANT_INVITED");
  CHECK_FALSE(held.at("done").open);
  CHECK(held.at("done").modified == "2026-12-01T10:00:00Z");
  CHECK(held.at("open").since_sync < std::chrono::seconds(60));  // synced just now
  CHECK(repository::case_of_check(tx, "k2") == std::optional<std::string>("done"));
  CHECK_FALSE(repository::case_of_check(tx, "k3"));
  // A check moved to another case follows it.
  repository::save_case_checks(tx, "open", case_with("open", "", {"k2"}).checks);
  CHECK(repository::case_of_check(tx, "k2") == std::optional<std::string>("open"));
  CHECK(tx.exec("SELECT source FROM case_status_history WHERE case_id = 'done'")[0][0]
            .as<std::string>() == "event e1");
}

TEST_CASE("order dates and reconcile runs: what plan_reconcile reads, by the database's clock") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  pqxx::work tx(conn);
  const std::string today = repository::utc_today(tx);
  CHECK(today == db.scalar("SELECT (now() AT TIME ZONE 'UTC')::date::text"));
  certn::case_record dated = case_with("c1", "APPLICANT_INVITED");
  dated.created = archive::days_before(today, 40) + "T08:00:00Z";
  repository::save_case(tx, "c1", dated, "{}", false, fetched);
  repository::save_case(tx, "c2", case_with("c2", "IN_PROGRESS"), "{}", false, fetched);
  auto held = repository::held_cases(tx);
  CHECK(held.at("c1").ordered_days_ago == 40);
  CHECK_FALSE(held.at("c2").ordered_days_ago);
  // A later answer without "created" keeps the date; a listing dates a case that had none, once.
  repository::save_case(tx, "c1", case_with("c1", "APPLICANT_INVITED"), "{}", false, fetched);
  repository::record_order_dates(
      tx, {{"c2", archive::days_before(today, 3)}, {"c1", archive::days_before(today, 1)}});
  held = repository::held_cases(tx);
  CHECK(held.at("c1").ordered_days_ago == 40);
  CHECK(held.at("c2").ordered_days_ago == 3);

  CHECK(repository::reconcile_history(tx).empty());
  repository::record_reconcile_run(tx, archive::reconcile_scope::window);
  repository::record_reconcile_run(tx, archive::reconcile_scope::open_old);
  tx.exec(
      "UPDATE reconcile_runs SET finished_at = now() - interval '2 hours' "
      "WHERE scope = 'open_old'");
  const auto history = repository::reconcile_history(tx);
  REQUIRE(history.size() == 2);
  CHECK(history.at(archive::reconcile_scope::window) == std::chrono::seconds(0));
  CHECK(history.at(archive::reconcile_scope::open_old) == std::chrono::seconds(7200));
}

TEST_CASE("report files: named by their id or by their case until complete") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  {
    pqxx::work tx(conn);
    repository::save_case(tx, "c1", case_with("c1", "COMPLETE"), "{}", true, fetched);
    repository::record_report_file(tx, "r1", "c1");
    repository::record_report_file(tx, "r2", "c1");
    repository::record_report_file(tx, "r1", "other");  // known already: unchanged
    tx.commit();
  }
  pqxx::work tx(conn);
  CHECK(repository::case_of_report_file(tx, "r1") == std::optional<std::string>("c1"));
  CHECK_FALSE(repository::case_of_report_file(tx, "r9"));
  CHECK(repository::report_files_named_by(tx, "c1").size() == 2);
  CHECK(repository::report_files_named_by(tx, "r2") ==
        std::vector<std::pair<std::string, std::string>>{{"r2", "c1"}});
  repository::set_report_status(tx, "r1", "COMPLETE");
  CHECK(repository::report_files_named_by(tx, "c1") ==
        std::vector<std::pair<std::string, std::string>>{{"r2", "c1"}});
  CHECK(tx.exec("SELECT ready_at IS NOT NULL FROM report_files WHERE id = 'r1'")[0][0]
            .as<bool>());
  CHECK(tx.exec("SELECT ready_at IS NULL FROM report_files WHERE id = 'r2'")[0][0].as<bool>());
  CHECK(repository::report_files_named_by(tx, "nothing").empty());
}

TEST_CASE("artifacts: recorded once per key, the manifest lists all but itself") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  pqxx::work tx(conn);
  repository::save_case(tx, "c1", case_with("c1", "COMPLETE"), "{}", true, fetched);
  CHECK_FALSE(repository::is_archived(tx, "cases/c1/report/r1.pdf"));
  repository::record_artifact(tx, "c1", "report", "r1", "cases/c1/report/r1.pdf",
                              storage::digest_of("first"), "application/pdf");
  repository::record_artifact(tx, "c1", "report", "r1", "cases/c1/report/r1.pdf",
                              storage::digest_of("second!"), "application/pdf");
  repository::record_artifact(tx, "c1", "manifest", "c1", "cases/c1/manifest.json",
                              storage::digest_of("{}"), "application/json");
  CHECK(repository::is_archived(tx, "cases/c1/report/r1.pdf"));
  const auto entries = repository::manifest_entries(tx, "c1");
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].kind == "report");
  CHECK(entries[0].sha256 == storage::digest_of("second!").sha256_hex);
  CHECK(entries[0].size_bytes == 7);
  CHECK(entries[0].content_type == "application/pdf");
  CHECK(entries[0].archived_at.ends_with("Z"));
}

TEST_CASE("mark_events_processed marks only that object's events") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  {
    pqxx::work tx(conn);
    for (const auto& [id, object] : {std::pair{"e1", "c1"}, {"e2", "c1"}, {"e3", "c2"}}) {
      tx.exec_params(
          "INSERT INTO webhook_events (id, event_type, object_id, object_type, body, "
          "signature_scheme) VALUES ($1, 'CASE_STATUS_CHANGED', $2, 'CASE', '{}', 'auto')",
          id, object);
    }
    tx.commit();
  }
  {
    pqxx::work tx(conn);
    repository::mark_events_processed(tx, "c1");
    tx.commit();
  }
  CHECK(db.scalar("SELECT count(*) FROM webhook_events WHERE processed_at IS NOT NULL") == "2");
  CHECK(db.scalar("SELECT processed_at IS NULL FROM webhook_events WHERE id = 'e3'") == "t");
}

TEST_CASE("fence_of: a sync knows whether an event arrived since the last GET of the case began") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  const auto event = [&](const std::string& id, const std::string& object,
                         const std::string& received_at) {
    db.scalar("INSERT INTO webhook_events (id, event_type, object_id, object_type, body, "
            "signature_scheme, received_at) VALUES ('" + id + "', 'CASE_STATUS_CHANGED', '" +
            object + "', 'CASE', '', 'x', '" + received_at + "')");
  };
  {
    pqxx::work tx(conn);
    const repository::fetch_fence unknown = repository::fence_of(tx, "c1");
    CHECK_FALSE(unknown.fetched_before);
    CHECK_FALSE(unknown.event_since_fetch);
    CHECK_FALSE(unknown.now.empty());
    repository::save_case(tx, "c1", case_with("c1", "COMPLETE", {"k1"}), "{}", true, fetched);
    repository::save_case_checks(tx, "c1", case_with("c1", "COMPLETE", {"k1"}).checks);
    tx.commit();
  }
  event("before", "c1", "2026-12-01 09:59:59+00");
  db.scalar("INSERT INTO webhook_events (id, event_type, object_id, object_type, body, "
            "signature_scheme, received_at) VALUES ('report', 'CASE_REPORT_READY', 'c1', 'CASE', "
            "'', 'x', '2026-12-01 10:00:03+00')");
  event("elsewhere", "c2", "2026-12-01 10:00:05+00");
  {
    pqxx::work tx(conn);
    const repository::fetch_fence held = repository::fence_of(tx, "c1");
    CHECK(held.fetched_before);
    // Only an older event, one about another case, and a report's: none says the case changed.
    CHECK_FALSE(held.event_since_fetch);
    CHECK(repository::event_age(tx, "before") > std::chrono::seconds(3600));  // from 2026-12-01
    CHECK_FALSE(repository::event_age(tx, "no-such-event"));
  }
  event("check-after", "k1", "2026-12-01 10:00:01+00");  // names a check of the case
  {
    pqxx::work tx(conn);
    CHECK(repository::fence_of(tx, "c1").event_since_fetch);
    // The GET that begins now covers it; the one after that has nothing new to read.
    const std::string now = repository::fence_of(tx, "c1").now;
    repository::save_case(tx, "c1", case_with("c1", "COMPLETE"), "{}", true, now);
    CHECK_FALSE(repository::fence_of(tx, "c1").event_since_fetch);
    repository::mark_case_events_processed(tx, "c1");
    tx.commit();
  }
  CHECK(db.scalar("SELECT string_agg(id, ',' ORDER BY id) FROM webhook_events "
                  "WHERE processed_at IS NULL") == "elsewhere");  // 'report' too was about c1
}

TEST_CASE("open_jobs_of_case and recorded_sha256: what write_manifest decides on") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  db.scalar("INSERT INTO jobs (kind, key, payload, state, run_at) VALUES "
          "('fetch_report', 'r1', '{\"case_id\":\"c1\"}', 'queued', now() + interval '1 hour'), "
          "('archive_supplementary', 'c1', '{\"case_id\":\"c1\"}', 'running', now()), "
          "('sync_case', 'c1', '{\"case_id\":\"c1\"}', 'succeeded', now()), "
          "('write_manifest', 'c1', '{\"case_id\":\"c1\"}', 'queued', now()), "
          "('fetch_report', 'r2', '{\"case_id\":\"c2\"}', 'failed', now() + interval '60 s')");
  pqxx::work tx(conn);
  const repository::open_jobs c1 = repository::open_jobs_of_case(tx, "c1", "write_manifest");
  CHECK(c1.count == 2);
  CHECK(c1.first_due_in == std::chrono::seconds(0));  // one is running
  const repository::open_jobs c2 = repository::open_jobs_of_case(tx, "c2", "write_manifest");
  CHECK(c2.count == 1);
  CHECK(c2.first_due_in > std::chrono::seconds(55));  // a retry in a minute: no look before
  CHECK(c2.first_due_in <= std::chrono::seconds(60));
  CHECK(repository::open_jobs_of_case(tx, "c3", "write_manifest").count == 0);
  CHECK_FALSE(repository::recorded_sha256(tx, "cases/c1/manifest.json"));
  repository::record_artifact(tx, "c1", "manifest", "c1", "cases/c1/manifest.json",
                              storage::digest_of("{}"), "application/json");
  CHECK(repository::recorded_sha256(tx, "cases/c1/manifest.json") ==
        std::optional<std::string>(storage::digest_of("{}").sha256_hex));
}

TEST_CASE("protection_of: the case's retention date, rounded up, and its legal hold") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  pqxx::work tx(conn);
  repository::save_case(tx, "c1", case_with("c1", "COMPLETE"), "{}", true, fetched);
  const storage::object_protection open = repository::protection_of(tx, "c1");
  CHECK_FALSE(open.retain_until);
  CHECK_FALSE(open.legal_hold);
  CHECK_FALSE(repository::protection_of(tx, "unknown").retain_until);

  tx.exec("UPDATE cases SET retain_until = '2032-12-01 10:00:00.25+00' WHERE id = 'c1'");
  tx.exec("INSERT INTO legal_holds (case_id, reason, held_by) VALUES ('c1', 'dispute', 'x')");
  const storage::object_protection held = repository::protection_of(tx, "c1");
  REQUIRE(held.retain_until);
  // Never a moment short of the case's date.
  CHECK(*held.retain_until == std::chrono::sys_days(std::chrono::year(2032) / 12 / 1) +
                                  std::chrono::hours(10) + std::chrono::seconds(1));
  CHECK(held.legal_hold);

  tx.exec("UPDATE cases SET retain_until = 'infinity' WHERE id = 'c1'");
  CHECK_FALSE(repository::protection_of(tx, "c1").retain_until);  // kept forever: no date

  const std::string sha(64, 'a');
  tx.exec(
      "INSERT INTO artifacts (case_id, kind, source_id, object_key, sha256, size_bytes) VALUES "
      "('c1', 'report', 'r', 'k/b', '" +
      sha + "', 1), ('c1', 'report', 'r2', 'k/a', '" + sha +
      "', 1), "
      "('c1', 'report', 'r3', 'k/gone', '" +
      sha + "', 1), ('c2', 'report', 'r', 'k/c', '" + sha + "', 1)");
  tx.exec(
      "UPDATE artifacts SET purged_at = now(), purge_rule = 'test' WHERE object_key = 'k/gone'");
  CHECK(repository::live_object_keys(tx, "c1") == std::vector<std::string>{"k/a", "k/b"});
}

TEST_CASE("date_closed_cases: undated closed cases get a date; protect_case where S3 locks") {
  scratch_database db;
  pqxx::connection conn(db.dsn());
  const records::retention_policy policy =
      records::parse_retention({"COMPLETE=6y"});  // else forever
  {
    pqxx::work tx(conn);
    repository::save_case(tx, "c-closed", case_with("c-closed", "COMPLETE"), "{}", true, fetched);
    repository::save_case(tx, "c-old", case_with("c-old", "COMPLETE"), "{}", true, fetched);
    repository::save_case(tx, "c-kept", case_with("c-kept", "CANCELLED"), "{}", true, fetched);
    repository::save_case(tx, "c-open", case_with("c-open", "IN_PROGRESS"), "{}", false, fetched);
    tx.exec("UPDATE cases SET closed_at = now() - interval '7 years' WHERE id = 'c-old'");
    tx.commit();
  }
  const auto date_them = [&](bool protect_objects) {
    pqxx::work tx(conn);
    const int dated = archive::date_closed_cases(tx, policy, 10, protect_objects, 5);
    tx.commit();
    return dated;
  };
  const std::string dates =
      "SELECT string_agg(id || ' ' || CASE WHEN retain_until IS NULL THEN 'none' "
      "WHEN retain_until = 'infinity' THEN 'forever' WHEN retain_until > now() + interval "
      "'5 years' THEN 'ahead' WHEN retain_until < now() THEN 'passed' END, ',' ORDER BY id) "
      "FROM cases";
  const std::string protect_jobs =
      "SELECT COALESCE(string_agg(key || ' ' || payload::text || ' ' || max_attempts, ','), '') "
      "FROM jobs WHERE kind = 'protect_case'";

  CHECK(date_them(false) == 3);  // a filesystem archive, or S3 without Object Lock
  CHECK(db.scalar(dates) == "c-closed ahead,c-kept forever,c-old passed,c-open none");
  CHECK(db.scalar(protect_jobs).empty());

  pqxx::nontransaction(conn).exec("UPDATE cases SET retain_until = NULL, retention_rule = NULL");
  CHECK(date_them(true) == 3);
  CHECK(db.scalar(dates) == "c-closed ahead,c-kept forever,c-old passed,c-open none");
  // Only a date ahead changes a lock; a passed one is the purge's, which a job would hold back.
  CHECK(db.scalar(protect_jobs) == "c-closed {} 5");
  CHECK(date_them(true) == 0);  // dated once: nothing more to queue
  CHECK(db.scalar(protect_jobs) == "c-closed {} 5");
}
