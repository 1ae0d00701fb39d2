#include "records/holds.hpp"

#include <pqxx/pqxx>
#include <stdexcept>

#include "encoding/json.hpp"
#include "records/audit.hpp"

namespace archiver::records {

namespace {

constexpr const char* hold_columns =
    "case_id, reason, held_by, to_char(held_at AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";

legal_hold hold_of(const pqxx::row& row) {
  return {row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
          row[3].as<std::string>()};
}

void require_text(std::string_view value, const char* what) {
  if (value.empty()) {
    throw std::invalid_argument(std::string(what) + " must not be empty");
  }
}

}  // namespace

std::optional<legal_hold> place_hold(pqxx::work& tx, std::string_view case_id,
                                     std::string_view reason, std::string_view actor) {
  require_text(case_id, "case id");
  require_text(reason, "reason");
  const pqxx::result placed = tx.exec_params(
      "INSERT INTO legal_holds (case_id, reason, held_by) VALUES ($1, $2, $3) "
      "ON CONFLICT (case_id) WHERE released_at IS NULL DO NOTHING RETURNING id",
      std::string(case_id), std::string(reason), std::string(actor));
  if (placed.empty()) {
    return hold_of(
        tx.exec_params1(std::string("SELECT ") + hold_columns +
                            " FROM legal_holds WHERE case_id = $1 AND released_at IS NULL",
                        std::string(case_id)));
  }
  append_audit(tx, actor, "hold", case_id, reason);
  return std::nullopt;
}

bool release_hold(pqxx::work& tx, std::string_view case_id, std::string_view reason,
                  std::string_view actor) {
  require_text(reason, "reason");
  const pqxx::result released = tx.exec_params(
      "UPDATE legal_holds SET released_at = now(), released_by = $2, release_reason = $3 "
      "WHERE case_id = $1 AND released_at IS NULL RETURNING id",
      std::string(case_id), std::string(actor), std::string(reason));
  if (released.empty()) {
    return false;
  }
  append_audit(tx, actor, "release", case_id, reason);
  return true;
}

std::vector<legal_hold> holds_in_force(pqxx::transaction_base& tx) {
  std::vector<legal_hold> holds;
  for (const auto& row :
       tx.exec(std::string("SELECT ") + hold_columns +
               " FROM legal_holds WHERE released_at IS NULL ORDER BY held_at, id")) {
    holds.push_back(hold_of(row));
  }
  return holds;
}

bool is_held(pqxx::transaction_base& tx, std::string_view case_id) {
  return tx
      .exec_params1(
          "SELECT EXISTS (SELECT 1 FROM legal_holds WHERE case_id = $1 "
          "AND released_at IS NULL)",
          std::string(case_id))[0]
      .as<bool>();
}

std::string to_json(const legal_hold& hold) {
  encoding::json_writer out;
  out.begin_object();
  out.key("case_id").value(hold.case_id);
  out.key("reason").value(hold.reason);
  out.key("held_by").value(hold.held_by);
  out.key("held_at").value(hold.held_at);
  out.end_object();
  return out.str();
}

}  // namespace archiver::records
