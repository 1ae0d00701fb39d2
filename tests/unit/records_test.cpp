// The records module's pure parts: the audit trail's row hash and chain check, retention's
// periods and calendar arithmetic, and the BagIt bag's contents. No database.
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "records/audit.hpp"
#include "records/bag.hpp"
#include "records/erasure.hpp"
#include "records/purge.hpp"
#include "records/retention.hpp"

using archiver::records::audit_entry;
using archiver::records::chain_check;
using archiver::records::check_chain;
using archiver::records::entry_hash;
using archiver::records::genesis_hash;

namespace {

audit_entry entry(std::int64_t seq, std::string action, std::string prev_hash) {
  audit_entry e;
  e.seq = seq;
  e.at = "2026-12-07T05:30:00.123456Z";
  e.actor = "user:alice";
  e.action = std::move(action);
  e.case_id = "case-1";
  e.detail = "litigation: \xc3\xbc";
  e.prev_hash = std::move(prev_hash);
  e.hash = entry_hash(e);
  return e;
}

// Three rows chained from the genesis hash.
std::vector<audit_entry> chain_of_three() {
  std::vector<audit_entry> rows;
  rows.push_back(entry(1, "hold", std::string(genesis_hash)));
  rows.push_back(entry(2, "release", rows[0].hash));
  rows.push_back(entry(3, "hold", rows[1].hash));
  return rows;
}

}  // namespace

TEST_CASE("entry_hash: sha256 over length-prefixed fields, the previous hash first") {
  // Computed apart from this code: sha256 of "64:000...0;1:1;27:2026-12-07T05:30:00.123456Z;
  // 10:user:alice;4:hold;6:case-1;14:litigation: ü;" (lengths in bytes).
  CHECK(entry(1, "hold", std::string(genesis_hash)).hash ==
        "04d74e2615991265eddd6150a0064c77f09924502aa328004b589c400e3213a3");
  // Moving text from one field to the next changes the hash: the fields are delimited.
  audit_entry a = entry(1, "hold", std::string(genesis_hash));
  audit_entry b = a;
  a.case_id = "case-1x";
  b.detail = "x" + b.detail;
  b.case_id = "case-1";
  CHECK(entry_hash(a) != entry_hash(b));
}

TEST_CASE("check_chain: an intact chain, and each way a row can break it") {
  const auto rows = chain_of_three();
  SUBCASE("intact, from the start and continued from a page before") {
    const chain_check all = check_chain(rows, 0, genesis_hash);
    CHECK(all.intact());
    CHECK(all.rows == 3);
    CHECK(all.head_hash == rows[2].hash);
    const chain_check rest = check_chain({rows[1], rows[2]}, 1, rows[0].hash);
    CHECK(rest.intact());
    CHECK(rest.rows == 2);
  }
  SUBCASE("empty") {
    const chain_check none = check_chain({}, 0, genesis_hash);
    CHECK(none.intact());
    CHECK(none.rows == 0);
    CHECK(none.head_hash == genesis_hash);
  }
  SUBCASE("a row's contents changed") {
    auto changed = rows;
    changed[1].detail = "nothing to see";
    const chain_check check = check_chain(changed, 0, genesis_hash);
    CHECK(check.first_bad_seq == 2);
    CHECK(check.rows == 1);
    CHECK(check.problem.find("contents") != std::string::npos);
  }
  SUBCASE("a row changed and re-hashed: the next row's prev_hash gives it away") {
    auto changed = rows;
    changed[1].detail = "nothing to see";
    changed[1].hash = entry_hash(changed[1]);
    const chain_check check = check_chain(changed, 0, genesis_hash);
    CHECK(check.first_bad_seq == 3);
    CHECK(check.problem.find("prev_hash") != std::string::npos);
  }
  SUBCASE("a row removed") {
    const chain_check check = check_chain({rows[0], rows[2]}, 0, genesis_hash);
    CHECK(check.first_bad_seq == 3);
    CHECK(check.problem.find("missing") != std::string::npos);
  }
  SUBCASE("the first row does not start from the genesis hash") {
    const chain_check check = check_chain(rows, 0, rows[2].hash);
    CHECK(check.first_bad_seq == 1);
  }
}

// ---- retention --------------------------------------------------------------------------------

namespace {

using archiver::records::keep_for;
using archiver::records::utc_time;

utc_time at(int y, unsigned m, unsigned d, int hour = 0, int minute = 0, int second = 0) {
  using namespace std::chrono;
  return utc_time(sys_days(year(y) / month(m) / day(d)) + hours(hour) + minutes(minute) +
                  seconds(second));
}

std::string until(utc_time closed, const std::string& period) {
  const auto parsed = archiver::records::parse_keep_for(period);
  REQUIRE(parsed);
  const auto result = archiver::records::retain_until(closed, *parsed);
  return result ? archiver::records::to_iso8601(*result) : "forever";
}

}  // namespace

TEST_CASE("parse_keep_for: years, months, days in that order, or forever") {
  struct row {
    const char* text;
    std::optional<keep_for> expected;
  };
  const std::vector<row> rows = {
      {"6y", keep_for{6, 0, 0, false}},
      {"18m", keep_for{0, 18, 0, false}},
      {"90d", keep_for{0, 0, 90, false}},
      {"1y6m", keep_for{1, 6, 0, false}},
      {"1y2m3d", keep_for{1, 2, 3, false}},
      {"0d", keep_for{0, 0, 0, false}},
      {"forever", keep_for{0, 0, 0, true}},
      {"", std::nullopt},
      {"6", std::nullopt},
      {"y", std::nullopt},
      {"6w", std::nullopt},
      {"6m1y", std::nullopt},
      {"1y1y", std::nullopt},
      {"-1y", std::nullopt},
      {"6 y", std::nullopt},
      {"Forever", std::nullopt},
      {"99999y", std::nullopt},
  };
  for (const row& r : rows) {
    CAPTURE(r.text);
    CHECK(archiver::records::parse_keep_for(r.text) == r.expected);
  }
  CHECK(archiver::records::to_string(keep_for{1, 6, 0, false}) == "1y6m");
  CHECK(archiver::records::to_string(keep_for{0, 0, 0, false}) == "0d");
  CHECK(archiver::records::to_string(keep_for{0, 0, 0, true}) == "forever");
}

TEST_CASE("retain_until: calendar arithmetic, never a day short") {
  struct row {
    utc_time closed;
    const char* period;
    const char* expected;
  };
  const std::vector<row> rows = {
      {at(2026, 12, 7, 5, 30, 0), "6y", "2032-12-07T05:30:00.000000Z"},
      // 29 February: a year later the calendar has none, four years later it has.
      {at(2024, 2, 29, 23, 59, 59), "1y", "2025-03-01T23:59:59.000000Z"},
      {at(2024, 2, 29), "4y", "2028-02-29T00:00:00.000000Z"},
      {at(2024, 2, 29), "6y", "2030-03-01T00:00:00.000000Z"},
      // The end of a longer month.
      {at(2025, 1, 31), "1m", "2025-03-01T00:00:00.000000Z"},
      {at(2024, 1, 31), "1m", "2024-03-01T00:00:00.000000Z"},
      {at(2025, 3, 31), "1m", "2025-05-01T00:00:00.000000Z"},
      {at(2025, 8, 31), "18m", "2027-03-01T00:00:00.000000Z"},
      // Days count after years and months, across a leap day and a year's end.
      {at(2024, 2, 1), "1m28d", "2024-03-29T00:00:00.000000Z"},
      {at(2027, 12, 20), "1y15d", "2029-01-04T00:00:00.000000Z"},
      {at(2026, 1, 1), "0d", "2026-01-01T00:00:00.000000Z"},
      {at(2026, 1, 1), "forever", "forever"},
  };
  for (const row& r : rows) {
    CAPTURE(archiver::records::to_iso8601(r.closed));
    CAPTURE(r.period);
    CHECK(until(r.closed, r.period) == r.expected);
  }
  // Sub-second parts are kept.
  const utc_time precise = at(2026, 6, 1) + std::chrono::microseconds(123456);
  CHECK(until(precise, "1d") == "2026-06-02T00:00:00.123456Z");
}

TEST_CASE("parse_retention: per status and a default; a bad entry is named") {
  const auto policy =
      archiver::records::parse_retention({"COMPLETE=6y", "CANCELLED=1y", "default=90d"});
  CHECK(archiver::records::to_string(policy) == "CANCELLED=1y COMPLETE=6y default=90d");
  CHECK(archiver::records::rule_for(policy, "COMPLETE").text == "COMPLETE=6y");
  CHECK(archiver::records::rule_for(policy, "CANCELLED").period == keep_for{1, 0, 0, false});
  CHECK(archiver::records::rule_for(policy, "EXPIRED").text == "default=90d");
  // None given: everything is kept forever.
  const auto empty = archiver::records::parse_retention({});
  CHECK(archiver::records::rule_for(empty, "COMPLETE").text == "default=forever");
  CHECK(archiver::records::rule_for(empty, "COMPLETE").period.forever);

  auto error_of = [](std::vector<std::string> entries) {
    try {
      archiver::records::parse_retention(entries);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error_of({"COMPLETE"}) == "\"COMPLETE\": expected STATUS=PERIOD (e.g. COMPLETE=6y)");
  CHECK(error_of({"=6y"}) == "\"=6y\": expected STATUS=PERIOD (e.g. COMPLETE=6y)");
  CHECK(error_of({"COMPLETE=6q"}) ==
        "\"COMPLETE=6q\": the period must be like 6y, 18m, 90d, 1y6m or forever");
  CHECK(error_of({"COMPLETE=6y", "COMPLETE=1y"}) == "\"COMPLETE=1y\": COMPLETE is given twice");
  CHECK(error_of({"default=1y", "default=2y"}) == "\"default=2y\": default is given twice");
}

// ---- BagIt ------------------------------------------------------------------------------------

TEST_CASE("bag: the current version of each artifact, and the tag files' text") {
  using archiver::records::artifact_version;
  using archiver::records::bag_file;
  const std::vector<artifact_version> rows = {
      {1, "report", "r1", "cases/c/report/r1.pdf", "a", 10},
      {2, "supplementary_information", "c", "cases/c/si/v1.json", "b", 5},
      {3, "manifest", "c", "cases/c/manifest-1.json", "c", 3},
      {4, "supplementary_information", "c", "cases/c/si/v2.json", "d", 6},
      {5, "manifest", "c", "cases/c/manifest-2.json", "e", 4},
      {6, "report", "r2", "cases/c/report/r2.pdf", "f", 11},
  };
  std::vector<std::string> keys;
  for (const auto& row : archiver::records::current_versions(rows)) {
    keys.push_back(row.key);
  }
  CHECK(keys == std::vector<std::string>{"cases/c/manifest-2.json", "cases/c/report/r1.pdf",
                                         "cases/c/report/r2.pdf", "cases/c/si/v2.json"});

  CHECK(archiver::records::payload_path("cases/c/100%.pdf") == "data/cases/c/100%25.pdf");
  CHECK(archiver::records::payload_path("a\nb\rc") == "data/a%0Ab%0Dc");
  const std::vector<bag_file> files = {{"data/b.json", "bb", 5}, {"data/a.pdf", "aa", 10}};
  CHECK(archiver::records::payload_oxum(files) == "15.2");
  CHECK(archiver::records::payload_oxum({}) == "0.0");
  CHECK(archiver::records::manifest_text(files) == "aa  data/a.pdf\nbb  data/b.json\n");
  CHECK(archiver::records::bagit_txt() ==
        "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n");
  const std::string info = archiver::records::bag_info_text(
      {"case\n1", "2026-12-07T05:30:00Z", "filesystem /x", "certn-archiver 0.1.0", false}, files);
  CHECK(info ==
        "Source-Organization: certn-archiver\n"
        "External-Identifier: case 1\n"
        "External-Description: Certn case case 1, its current artifacts\n"
        "Bagging-Date: 2026-12-07\n"
        "Export-Time: 2026-12-07T05:30:00Z\n"
        "Export-Source: filesystem /x\n"
        "Bag-Software-Agent: certn-archiver 0.1.0\n"
        "Payload-Oxum: 15.2\n");
}

// ---- purge ------------------------------------------------------------------------------------

TEST_CASE("decide_purge: a hold, an open case and jobs in flight always keep a case") {
  using archiver::records::decide_purge;
  using archiver::records::purge_facts;
  using archiver::records::purge_verdict;
  purge_facts due;
  due.known = true;
  due.closed = true;
  due.due = true;
  struct row {
    const char* what;
    purge_facts facts;
    bool erasure;
    purge_verdict expected;
  };
  auto with = [&](auto change) {
    purge_facts facts = due;
    change(facts);
    return facts;
  };
  const std::vector<row> rows = {
      {"due", due, false, purge_verdict::purge},
      {"due, erasure", due, true, purge_verdict::purge},
      {"unknown", purge_facts{}, true, purge_verdict::unknown_case},
      {"purged", with([](purge_facts& f) { f.purged = true; }), false,
       purge_verdict::already_purged},
      {"held", with([](purge_facts& f) { f.held = true; }), false, purge_verdict::held},
      {"held, erasure", with([](purge_facts& f) { f.held = true; }), true, purge_verdict::held},
      {"open", with([](purge_facts& f) { f.closed = false; }), true, purge_verdict::open_case},
      {"jobs", with([](purge_facts& f) { f.open_jobs = 1; }), true, purge_verdict::jobs_in_flight},
      {"not due", with([](purge_facts& f) { f.due = false; }), false, purge_verdict::not_due},
      {"not due, erasure", with([](purge_facts& f) { f.due = false; }), true, purge_verdict::purge},
      {"forever", with([](purge_facts& f) { f.due = false, f.forever = true; }), false,
       purge_verdict::kept_forever},
      {"forever, erasure", with([](purge_facts& f) { f.due = false, f.forever = true; }), true,
       purge_verdict::purge},
      {"another purger", with([](purge_facts& f) { f.leased_by_other = true; }), false,
       purge_verdict::busy},
      {"held and another purger", with([](purge_facts& f) { f.held = f.leased_by_other = true; }),
       false, purge_verdict::held},
  };
  for (const row& r : rows) {
    CAPTURE(r.what);
    CHECK(decide_purge(r.facts, r.erasure) == r.expected);
    CHECK_FALSE(archiver::records::describe(r.expected).empty());
  }
}

TEST_CASE("operator_of: the person behind an actor, through sudo") {
  using archiver::records::operator_of;
  CHECK(operator_of("user:alice") == "alice");
  CHECK(operator_of("user:alice (via sudo as root)") == "alice");
  CHECK(operator_of("user:root") == "root");
  CHECK(operator_of("daemon:host-1:42") == "daemon:host-1:42");
  CHECK(operator_of("user:uid 1001") == "uid 1001");
}

TEST_CASE(
    "audit digests: the same head gives the same bytes; a trail cut short or rewritten fails") {
  using archiver::records::audit_digest;
  using archiver::records::check_digests;
  using archiver::records::digest_json;
  using archiver::records::parse_digest;
  const std::string h1(64, 'a');
  const std::string h2(64, 'b');
  const audit_digest first{5, h1, "2026-12-07T10:00:00.000001Z"};
  CHECK(digest_json(first) ==
        "{\"seq\":5,\"hash\":\"" + h1 + "\",\"at\":\"2026-12-07T10:00:00.000001Z\"}\n");
  CHECK(parse_digest(digest_json(first)) == first);
  CHECK_FALSE(parse_digest("{\"seq\":5,\"hash\":\"abc\",\"at\":\"x\"}"));  // not a sha256
  CHECK_FALSE(parse_digest("{\"seq\":\"5\",\"hash\":\"" + h1 + "\",\"at\":\"x\"}"));
  CHECK_FALSE(parse_digest("{\"hash\":\"" + h1 + "\",\"at\":\"x\"}"));
  CHECK_FALSE(parse_digest("not json"));

  const audit_digest second{9, h2, "2026-12-07T11:00:00.000001Z"};
  CHECK(check_digests({first, second}, {{5, h1}, {9, h2}}, 12).empty());
  const auto cut = check_digests({first, second}, {{5, h1}}, 7);
  REQUIRE(cut.size() == 1);
  CHECK(cut[0] ==
        "the digest of seq 9 (2026-12-07T11:00:00.000001Z, hash bbbbbbbbbbbb...) names a "
        "row the trail no longer has (it ends at seq 7: cut short)");
  const auto rewritten = check_digests({first}, {{5, h2}}, 12);
  REQUIRE(rewritten.size() == 1);
  CHECK(rewritten[0].find("does not match the row, whose hash is now bbbbbbbbbbbb") !=
        std::string::npos);
  CHECK(check_digests({first}, {}, 12).size() == 1);  // a row removed from the middle
}
