// The archive's storage keys (a contract with operators), safe file names, the manifest, the
// decisions of archive/policy.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "archive/layout.hpp"
#include "archive/policy.hpp"

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
  // Zero-padded, so that the keys sort as the sequence numbers do.
  CHECK(layout("a").audit_digest(42) == "a/audit/digests/00000000000000000042.json");
  CHECK(plain.audit_digests() == "audit/digests/");
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
  CHECK(unlisted_open_case_is_due({"APPLICANT_INVITED", "m", true, day, std::nullopt}, day));
  CHECK(unlisted_open_case_is_due({"APPLICANT_INVITED", "m", true, day * 3, std::nullopt}, day));
  CHECK_FALSE(
      unlisted_open_case_is_due({"APPLICANT_INVITED", "m", true, hours(23), std::nullopt}, day));
  CHECK_FALSE(
      unlisted_open_case_is_due({"COMPLETE", "m", false, day * 3, std::nullopt}, day));  // closed
  CHECK(
      unlisted_open_case_is_due({"IN_PROGRESS", "m", true, seconds(0), std::nullopt}, seconds(0)));
}

namespace {

held_case open_case(std::string status, std::optional<int> ordered_days_ago) {
  return {std::move(status), "m", true, std::chrono::hours(24), ordered_days_ago};
}

reconcile_settings test_reconcile_settings() {
  reconcile_settings s;  // recent 3 days, window 30, old 90; full every 6 h, open daily, old weekly
  s.archive_statuses = {"COMPLETE", "CANCELLED"};
  return s;
}

std::vector<reconcile_scope> scopes_of(const std::vector<reconcile_listing>& listings) {
  std::vector<reconcile_scope> out;
  for (const reconcile_listing& l : listings) {
    out.push_back(l.scope);
  }
  return out;
}

}  // namespace

TEST_CASE("plan_reconcile: each scope at its own pace, open scopes only when cases wait there") {
  using std::chrono::hours;
  using scope = reconcile_scope;
  const reconcile_settings settings = test_reconcile_settings();
  const std::map<std::string, held_case> held = {
      {"young", open_case("IN_PROGRESS", 5)},               // inside the window: the window's
      {"mid", open_case("APPLICANT_INVITED", 40)},          // open_before
      {"mid2", open_case("IN_PROGRESS", 89)},               // open_before
      {"old", open_case("APPLICANT_INVITED", 120)},         // open_old
      {"undated", open_case("IN_PROGRESS", std::nullopt)},  // no scope can find it
      {"closed", {"COMPLETE", "m", false, hours(24), 50}},  // closed: no scope lists it
  };
  const std::map<scope, std::chrono::seconds> all_fresh = {
      {scope::window, hours(1)}, {scope::open_before, hours(1)}, {scope::open_old, hours(1)}};

  struct row {
    const char* name;
    std::map<scope, std::chrono::seconds> since_last;
    bool targeted;
    std::vector<scope> expected;
  };
  const std::vector<row> rows = {
      {"never ran: every scope", {}, false, {scope::window, scope::open_before, scope::open_old}},
      {"all fresh: the recent listing only", all_fresh, false, {scope::recent}},
      {"window due",
       {{scope::window, hours(6)}, {scope::open_before, hours(1)}, {scope::open_old, hours(1)}},
       false,
       {scope::window}},
      {"a day later: window and open_before",
       {{scope::window, hours(24)}, {scope::open_before, hours(24)}, {scope::open_old, hours(24)}},
       false,
       {scope::window, scope::open_before}},
      {"a week later: all",
       {{scope::window, hours(6)}, {scope::open_before, hours(25)}, {scope::open_old, hours(168)}},
       false,
       {scope::window, scope::open_before, scope::open_old}},
      {"targeted: the window only, even when others are due", {}, true, {scope::window}},
      {"targeted when all fresh: still the window", all_fresh, true, {scope::window}},
  };
  for (const row& r : rows) {
    CAPTURE(r.name);
    const auto planned = plan_reconcile("2026-12-06", r.since_last, held, settings, r.targeted);
    CHECK(scopes_of(planned) == r.expected);
  }

  const auto planned = plan_reconcile("2026-12-06", {}, held, settings, false);
  REQUIRE(planned.size() == 3);
  const reconcile_listing& window = planned[0];
  CHECK(window.ordered_after == "2026-11-06");
  CHECK_FALSE(window.ordered_before);
  CHECK(window.statuses.empty());
  CHECK(window.expected.empty());
  const reconcile_listing& before = planned[1];
  CHECK(before.ordered_after == "2026-09-07");
  CHECK(before.ordered_before == "2026-11-06");
  CHECK(before.statuses == std::vector<std::string>{"APPLICANT_INVITED", "IN_PROGRESS"});
  CHECK(before.expected == std::vector<std::string>{"mid", "mid2"});
  const reconcile_listing& old = planned[2];
  CHECK_FALSE(old.ordered_after);
  CHECK(old.ordered_before == "2026-09-07");
  CHECK(old.statuses == std::vector<std::string>{"APPLICANT_INVITED"});
  CHECK(old.expected == std::vector<std::string>{"old"});

  const auto recent = plan_reconcile("2026-12-06", all_fresh, held, settings, false);
  REQUIRE(recent.size() == 1);
  CHECK(recent[0].ordered_after == "2026-12-03");
  CHECK(recent[0].statuses == settings.archive_statuses);
}

TEST_CASE("plan_reconcile: nothing held open past the window costs no open listing") {
  const reconcile_settings settings = test_reconcile_settings();
  const std::map<std::string, held_case> held = {{"young", open_case("IN_PROGRESS", 2)}};
  const auto planned = plan_reconcile("2026-12-06", {}, held, settings, false);
  REQUIRE(planned.size() == 1);
  CHECK(planned[0].scope == reconcile_scope::window);
  // With no archive status configured a recent listing would list nothing worth finding.
  reconcile_settings no_statuses = settings;
  no_statuses.archive_statuses.clear();
  const std::map<reconcile_scope, std::chrono::seconds> fresh = {
      {reconcile_scope::window, std::chrono::seconds(0)}};
  CHECK(plan_reconcile("2026-12-06", fresh, held, no_statuses, false).empty());
}

TEST_CASE("stale_after_listing: listed changes, and expected cases that left their status") {
  using std::chrono::hours;
  const std::map<std::string, held_case> held = {
      {"same", {"IN_PROGRESS", "m1", true, hours(1), 40}},
      {"changed", {"IN_PROGRESS", "m1", true, hours(1), 40}},
      {"gone", {"APPLICANT_INVITED", "m1", true, hours(1), 40}},
  };
  const auto listed_case = [](const char* id, const char* status, const char* modified) {
    archiver::certn::case_record c;
    c.id = id;
    c.overall_status = status;
    c.modified = modified;
    return c;
  };
  const std::vector<archiver::certn::case_record> listed = {
      listed_case("same", "IN_PROGRESS", "m1"), listed_case("changed", "IN_PROGRESS", "m2"),
      listed_case("stranger", "IN_PROGRESS", "m1")};

  reconcile_listing open;
  open.scope = reconcile_scope::open_before;
  open.expected = {"same", "changed", "gone"};
  // A case we never held is the window's (or backfill's) business in an open scope.
  CHECK(stale_after_listing(open, listed, held) == std::vector<std::string>{"changed", "gone"});

  reconcile_listing window;
  window.scope = reconcile_scope::window;
  CHECK(stale_after_listing(window, listed, held) ==
        std::vector<std::string>{"changed", "stranger"});
  CHECK(stale_after_listing(window, {}, held).empty());
}

TEST_CASE("days_before and leading_date: UTC calendar dates, strictly parsed") {
  CHECK(days_before("2026-12-06", 0) == "2026-12-06");
  CHECK(days_before("2026-12-06", 30) == "2026-11-06");
  CHECK(days_before("2026-03-01", 1) == "2026-02-28");
  CHECK(days_before("2028-03-01", 1) == "2028-02-29");
  CHECK(days_before("2027-01-01", 365) == "2026-01-01");
  CHECK(days_before("2026-12-06T00:00:00Z", 1).empty());
  CHECK(days_before("2026-02-30", 1).empty());
  CHECK(days_before("", 1).empty());

  CHECK(leading_date("2026-11-30T08:00:00Z") == "2026-11-30");
  CHECK(leading_date("2026-11-30T08:00:00.123456+00:00") == "2026-11-30");
  CHECK(leading_date("2026-11-30 08:00:00") == "2026-11-30");
  CHECK(leading_date("2026-11-30") == "2026-11-30");
  CHECK_FALSE(leading_date("2026-11-31T08:00:00Z"));
  CHECK_FALSE(leading_date("30/11/2026"));
  CHECK_FALSE(leading_date("2026-11-30X"));
  CHECK_FALSE(leading_date("1764489600"));
  CHECK_FALSE(leading_date(""));
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
  const held_case same{"COMPLETE", "m2", false, {}, std::nullopt};
  const held_case older{"COMPLETE", "m1", false, {}, std::nullopt};
  const held_case other_status{"IN_PROGRESS", "m2", true, {}, std::nullopt};
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
