// The records module's pure parts: the audit trail's row hash and chain check. No database.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "records/audit.hpp"

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
