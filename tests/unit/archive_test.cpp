// The archive's storage keys (a contract with operators), safe file names, the manifest, the
// decisions of archive/policy, and the retry verdicts of archive/retry_policy.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "archive/layout.hpp"
#include "archive/policy.hpp"
#include "archive/retry_policy.hpp"

using namespace archiver::archive;

TEST_CASE("storage keys follow DESIGN.md, under the configured prefix") {
  const layout plain("");
  CHECK(plain.report("c1", "r1") == "cases/c1/report/r1.pdf");
  CHECK(plain.supplementary_file("c1", "k1", "f1", "scan.pdf") ==
        "cases/c1/supplementary-files/k1/f1-scan.pdf");
  CHECK(plain.supplementary_information("c1", "ab12") ==
        "cases/c1/supplementary-information/ab12.json");
  CHECK(plain.case_snapshot("c1", "ab12") == "cases/c1/case/ab12.json");
  CHECK(plain.certn_response("c1", "report-file", "ab12") ==
        "cases/c1/responses/report-file/ab12.json");
  CHECK(plain.manifest("c1") == "cases/c1/manifest.json");
  CHECK(layout("certn").report("c1", "r1") == "certn/cases/c1/report/r1.pdf");
  CHECK(layout("a/b/").manifest("c1") == "a/b/cases/c1/manifest.json");
}

TEST_CASE("file names become one safe key segment") {
  CHECK(safe_file_name("passport scan (1).pdf") == "passport_scan__1_.pdf");
  CHECK(safe_file_name("../../etc/passwd") == "_.._etc_passwd");
  CHECK(safe_file_name(".hidden") == "hidden");
  CHECK(safe_file_name("...") == "file");
  CHECK(safe_file_name("") == "file");
  CHECK(safe_file_name("caf\xc3\xa9.txt") == "caf__.txt");
  CHECK(safe_file_name(std::string(300, 'x')).size() == 100);
  const std::string odd = safe_file_name("a/b\\c\nd\0e");
  CHECK(odd.find('/') == std::string::npos);
  CHECK(odd.find('\\') == std::string::npos);
}

TEST_CASE("the manifest lists artifacts sorted by key as valid JSON") {
  const std::string json =
      manifest_json("c1",
                    {{"report", "cases/c1/report/r.pdf", std::string(64, 'a'), 10, "r",
                      "application/pdf", "2026-11-29T00:00:01Z"},
                     {"case_snapshot", "cases/c1/case/x.json", std::string(64, 'b'), 5, "c1",
                      "application/json", "2026-11-29T00:00:02Z"},
                     {"supplementary_file", "cases/c1/supplementary-files/k/f-\"q\".txt",
                      std::string(64, 'c'), 7, "f", "text/plain", "2026-11-29T00:00:03Z"}});
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(json).get(doc) == simdjson::SUCCESS);
  CHECK(std::string_view(doc["case_id"]) == "c1");
  simdjson::dom::array artifacts = doc["artifacts"];
  REQUIRE(artifacts.size() == 3);
  CHECK(std::string_view(artifacts.at(0)["key"]) == "cases/c1/case/x.json");
  CHECK(std::string_view(artifacts.at(1)["key"]) == "cases/c1/report/r.pdf");
  CHECK(std::string_view(artifacts.at(2)["key"]) == "cases/c1/supplementary-files/k/f-\"q\".txt");
  CHECK(int64_t(artifacts.at(1)["size_bytes"]) == 10);
  CHECK(std::string_view(doc["last_archived_at"]) == "2026-11-29T00:00:03Z");
  CHECK(json.back() == '\n');
}

TEST_CASE("the manifest's bytes depend only on the artifacts, not on when or in what order") {
  const manifest_entry report{"report", "cases/c1/report/r.pdf", std::string(64, 'a'), 10, "r",
                              "application/pdf", "2026-11-29T00:00:01Z"};
  const manifest_entry info{"supplementary_information", "cases/c1/info.json",
                            std::string(64, 'b'), 5, "c1", "application/json",
                            "2026-11-29T00:00:02Z"};
  CHECK(manifest_json("c1", {report, info}) == manifest_json("c1", {info, report}));
  manifest_entry rewritten = report;
  rewritten.sha256 = std::string(64, 'f');
  CHECK(manifest_json("c1", {report, info}) != manifest_json("c1", {rewritten, info}));
  CHECK(manifest_json("c1", {}).find("\"last_archived_at\":\"\"") != std::string::npos);
}

TEST_CASE("archive statuses come from configuration") {
  const std::vector<std::string> on = {"COMPLETE", "CANCELLED"};
  CHECK(is_archive_status("COMPLETE", on));
  CHECK(is_archive_status("CANCELLED", on));
  CHECK_FALSE(is_archive_status("IN_DISPUTE", on));
  CHECK_FALSE(is_archive_status("complete", on));
  CHECK_FALSE(is_archive_status("COMPLETE", {}));
}

// ---- archive/policy: the decisions, table-driven ---------------------------------------------


TEST_CASE("sync_needs_fetch: a case is fetched again only when an event may bring news") {
  struct row {
    bool event_driven, fetched_before, event_since_fetch, expected;
  };
  const std::vector<row> rows = {
      {false, false, false, true},  // reconcile, backfill, an operator: always
      {false, true, false, true},
      {false, true, true, true},
      {true, false, false, true},   // never fetched: always
      {true, false, true, true},
      {true, true, true, true},     // an event arrived after the last GET began
      {true, true, false, false},   // every event predates the last GET: it showed them
  };
  for (const row& r : rows) {
    CAPTURE(r.event_driven);
    CAPTURE(r.fetched_before);
    CAPTURE(r.event_since_fetch);
    CHECK(sync_needs_fetch({r.event_driven, r.fetched_before, r.event_since_fetch}) == r.expected);
  }
}

TEST_CASE("decide_check: a check of an unknown case waits for the case's event, then reconciles") {
  using std::chrono::seconds;
  CHECK(decide_check(true, seconds(0), seconds(10)) == check_step::sync_owner);
  CHECK(decide_check(true, seconds(60), seconds(10)) == check_step::sync_owner);
  CHECK(decide_check(false, seconds(0), seconds(10)) == check_step::wait_for_case);
  CHECK(decide_check(false, seconds(9), seconds(10)) == check_step::wait_for_case);
  CHECK(decide_check(false, seconds(10), seconds(10)) == check_step::reconcile);
  CHECK(decide_check(false, seconds(0), seconds(0)) == check_step::reconcile);  // waiting off
  // No event known (enqueued by hand, pruned): nothing would ever map the check.
  CHECK(decide_check(false, std::nullopt, seconds(10)) == check_step::reconcile);
  CHECK(decide_check(true, std::nullopt, seconds(10)) == check_step::sync_owner);
}

TEST_CASE("unlisted_open_case_is_due: open cases outside the window are rechecked sparingly") {
  using std::chrono::hours;
  using std::chrono::seconds;
  const seconds day = hours(24);
  CHECK(unlisted_open_case_is_due({"APPLICANT_INVITED", "m", true, day}, day));
  CHECK(unlisted_open_case_is_due({"APPLICANT_INVITED", "m", true, day * 3}, day));
  CHECK_FALSE(unlisted_open_case_is_due({"APPLICANT_INVITED", "m", true, hours(23)}, day));
  CHECK_FALSE(unlisted_open_case_is_due({"COMPLETE", "m", false, day * 3}, day));  // closed
  CHECK(unlisted_open_case_is_due({"IN_PROGRESS", "m", true, seconds(0)}, seconds(0)));
}

TEST_CASE("decide_manifest: one write per case, after its other archive jobs") {
  CHECK(decide_manifest(1, false) == manifest_step::wait);
  CHECK(decide_manifest(3, true) == manifest_step::wait);
  CHECK(decide_manifest(0, true) == manifest_step::unchanged);
  CHECK(decide_manifest(0, false) == manifest_step::write);
}

TEST_CASE("decide_report: what to do with a report file's metadata") {
  struct row {
    std::string status;
    std::optional<std::string> url;
    report_step expected;
  };
  const std::vector<row> rows = {
      {"COMPLETE", "https://s/r.pdf", report_step::download},
      {"COMPLETED", "https://s/r.pdf", report_step::download},
      {"READY", "https://s/r.pdf", report_step::download},
      {"", "https://s/r.pdf", report_step::download},  // no status: the URL is the readiness
      {"COMPLETE", std::nullopt, report_step::no_url},
      {"IN_PROGRESS", std::nullopt, report_step::wait},
      {"IN_PROGRESS", "https://s/partial", report_step::wait},
      {"", std::nullopt, report_step::wait},
      {"SOMETHING_NEW", std::nullopt, report_step::wait},
      {"FAILED", std::nullopt, report_step::failed},
      {"ERROR", "https://s/r.pdf", report_step::failed},
  };
  for (const row& r : rows) {
    CAPTURE(r.status);
    CAPTURE(r.url.value_or("(none)"));
    archiver::certn::report_file report;
    report.id = "r1";
    report.status = r.status;
    report.url = r.url;
    CHECK(decide_report(report) == r.expected);
  }
}

TEST_CASE("decide_case: archive on entering an archive status, again when closed content changed") {
  struct row {
    const char* what;
    case_facts facts;
    bool record_status;
    bool archive;
  };
  const auto facts = [](bool known, bool was_closed, bool same, const char* old_status,
                        const char* new_status, bool archivable) {
    return case_facts{known, was_closed, same, old_status, new_status, archivable};
  };
  const std::vector<row> rows = {
      {"first seen, open", facts(false, false, false, "", "APPLICANT_INVITED", false), true, false},
      {"first seen, complete", facts(false, false, false, "", "COMPLETE", true), true, true},
      {"open, unchanged", facts(true, false, true, "IN_PROGRESS", "IN_PROGRESS", false), false,
       false},
      {"closes", facts(true, false, false, "IN_PROGRESS", "COMPLETE", true), true, true},
      {"closed, synced again unchanged", facts(true, true, true, "COMPLETE", "COMPLETE", true),
       false, false},
      {"closed, content changed between syncs",
       facts(true, true, false, "COMPLETE", "COMPLETE", true), false, true},
      {"reopened by a dispute", facts(true, true, false, "COMPLETE", "IN_DISPUTE", false), true,
       false},
  };
  for (const row& r : rows) {
    CAPTURE(r.what);
    const case_decision decided = decide_case(r.facts);
    CHECK(decided.record_status == r.record_status);
    CHECK(decided.archive == r.archive);
  }
}

TEST_CASE("listed_case_is_stale: sync what we never saw or what changed") {
  archiver::certn::case_record listed;
  listed.id = "c1";
  listed.overall_status = "COMPLETE";
  listed.modified = "m2";
  const held_case same{"COMPLETE", "m2", false};
  const held_case older{"COMPLETE", "m1", false};
  const held_case other_status{"IN_PROGRESS", "m2", true};
  CHECK(listed_case_is_stale(listed, nullptr));
  CHECK_FALSE(listed_case_is_stale(listed, &same));
  CHECK(listed_case_is_stale(listed, &older));
  CHECK(listed_case_is_stale(listed, &other_status));
  listed.overall_status.clear();  // a list entry without a status: read the case whole
  CHECK(listed_case_is_stale(listed, &same));
}

TEST_CASE("follow_up_priority: fetching what Certn made is archive work, live stays live") {
  using archiver::ops::priority;
  struct row {
    const char* kind;
    priority parent;
    priority expected;
  };
  const std::vector<row> rows = {
      {"fetch_report", priority::live, priority::live},
      {"fetch_report", priority::sync, priority::archive},
      {"fetch_report", priority::bulk, priority::archive},
      {"archive_supplementary", priority::bulk, priority::archive},
      {"archive_supplementary", priority::live, priority::live},
      {"request_report", priority::bulk, priority::bulk},
      {"request_report", priority::live, priority::live},
      {"sync_case", priority::sync, priority::sync},
      {"reconcile", priority::live, priority::live},
  };
  for (const row& r : rows) {
    CAPTURE(r.kind);
    CAPTURE(archiver::ops::name_of(r.parent));
    CHECK(follow_up_priority(r.kind, r.parent) == r.expected);
  }
}

TEST_CASE("certn_failure_result: every failure class has one verdict, with its reason") {
  using archiver::certn::failure_class;
  using archiver::queue::job_result;
  using std::chrono::seconds;
  struct row {
    failure_class kind;
    std::optional<seconds> retry_after;  // as Certn sent it
    std::string kept_at;
    job_result::kind what;
    bool counts_as_attempt;
    std::optional<seconds> expected_after;
    std::string error;
  };
  const std::string why = "GET /cases/c1/: 503 server_error";
  constexpr auto retry = job_result::kind::retry;
  constexpr auto permanent = job_result::kind::permanent;
  const std::optional<seconds> none;
  const std::vector<row> rows = {
      {failure_class::retryable, none, "", retry, true, none, why},
      {failure_class::retryable, seconds(30), "", retry, true, seconds(30), why},
      {failure_class::expired_url, none, "", retry, true, none, why},
      // A 429 waits for Certn's window and never uses up an attempt.
      {failure_class::rate_limited, seconds(7), "", retry, false, seconds(7), why},
      {failure_class::rate_limited, none, "", retry, false, none, why},
      // An operator can replace the key file: the job keeps its place meanwhile, without using
      // up attempts, trying again every 5 minutes.
      {failure_class::authentication, none, "", retry, false, seconds(300),
       why + " (check certn.api_key)"},
      {failure_class::authentication, seconds(20), "", retry, false, seconds(20),
       why + " (check certn.api_key)"},
      {failure_class::forbidden, seconds(5), "", permanent, true, none,
       why + " (the API key lacks permission for this endpoint)"},
      {failure_class::permanent, seconds(5), "", permanent, true, none, why},
      // An unreadable answer names where it was kept.
      {failure_class::permanent, none, "certn/c1/get_case/ab.json", permanent, true, none,
       why + " (answer kept at certn/c1/get_case/ab.json)"},
      {failure_class::authentication, none, "k", retry, false, seconds(300),
       why + " (check certn.api_key) (answer kept at k)"},
  };
  std::set<failure_class> covered;
  for (const row& r : rows) {
    CAPTURE(archiver::certn::to_string(r.kind));
    CAPTURE(r.kept_at);
    const job_result result = certn_failure_result(r.kind, why, r.retry_after, r.kept_at);
    CHECK(result.what == r.what);
    CHECK(result.counts_as_attempt == r.counts_as_attempt);
    CHECK(result.retry_after == r.expected_after);
    CHECK(result.error == r.error);
    covered.insert(r.kind);
  }
  // Every class certn knows (to_string names each, "unknown" past the last) has a row above.
  for (int value = 0;; ++value) {
    const auto kind = static_cast<failure_class>(value);
    if (std::string_view(archiver::certn::to_string(kind)) == "unknown") {
      break;
    }
    CAPTURE(archiver::certn::to_string(kind));
    CHECK(covered.count(kind) == 1);
  }
}

TEST_CASE("store_failure_result: a store's retryable failure is retried, any other is dead") {
  using archiver::queue::job_result;
  const job_result retried = store_failure_result(true, "put a/b: No space left on device");
  CHECK(retried.what == job_result::kind::retry);
  CHECK(retried.counts_as_attempt);
  CHECK_FALSE(retried.retry_after.has_value());
  CHECK(retried.error == "put a/b: No space left on device");
  const job_result dead = store_failure_result(false, "s3 put a/b: AccessDenied");
  CHECK(dead.what == job_result::kind::permanent);
  CHECK(dead.error == "s3 put a/b: AccessDenied");
}
