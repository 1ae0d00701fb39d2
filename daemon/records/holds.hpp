// Legal holds (table legal_holds, migrations/0011_records.sql): a held case is never purged,
// whatever its retention. Placing and releasing a hold each append an audit row in the same
// transaction (records/audit.hpp). Called on a database thread.
#pragma once

#include <optional>
#include <pqxx/transaction>
#include <string>
#include <string_view>
#include <vector>

namespace archiver::records {

struct legal_hold {
  std::string case_id;
  std::string reason;
  std::string held_by;
  std::string held_at;  // UTC, "2026-12-07T05:30:00Z"
};

// Places a hold on `case_id` for `reason` by `actor` and audits it ("hold"). Returns nothing when
// it was placed; the hold already in force otherwise (nothing changes, nothing is audited).
// REQUIRES: case_id and reason not empty.
std::optional<legal_hold> place_hold(pqxx::work& tx, std::string_view case_id,
                                     std::string_view reason, std::string_view actor);

// Releases the hold in force on `case_id` and audits it ("release"). Returns false when there
// was none (nothing changes). REQUIRES: reason not empty.
bool release_hold(pqxx::work& tx, std::string_view case_id, std::string_view reason,
                  std::string_view actor);

// The holds in force, oldest first.
std::vector<legal_hold> holds_in_force(pqxx::transaction_base& tx);

bool is_held(pqxx::transaction_base& tx, std::string_view case_id);

std::string to_json(const legal_hold& hold);

}  // namespace archiver::records
