#include "records/erasure.hpp"

#include <pqxx/pqxx>
#include <stdexcept>

#include "records/audit.hpp"

namespace archiver::records {

namespace {

constexpr const char* request_columns =
    "id, case_id, reason, requested_by, to_char(requested_at AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), COALESCE(approved_by, '')";

erasure_request request_of(const pqxx::row& row) {
  return {row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<std::string>(),
          row[3].as<std::string>(),  row[4].as<std::string>(), row[5].as<std::string>()};
}

}  // namespace

std::string operator_of(std::string_view actor) {
  constexpr std::string_view user = "user:";
  if (actor.substr(0, user.size()) != user) {
    return std::string(actor);
  }
  const std::string_view name = actor.substr(user.size());
  return std::string(name.substr(0, name.find(" (")));
}

bool two_person_in_force(pqxx::transaction_base& tx) {
  const pqxx::result last = tx.exec(
      "SELECT detail FROM audit_log WHERE action = 'purge_approval' ORDER BY seq DESC LIMIT 1");
  return !last.empty() && last[0][0].as<std::string>() == "two-person";
}

std::optional<erasure_request> open_erasure(pqxx::transaction_base& tx, std::string_view case_id) {
  const pqxx::result found =
      tx.exec_params(std::string("SELECT ") + request_columns +
                         " FROM erasure_requests WHERE case_id = $1 AND completed_at IS NULL",
                     std::string(case_id));
  if (found.empty()) {
    return std::nullopt;
  }
  return request_of(found[0]);
}

std::optional<erasure_request> request_erasure(pqxx::work& tx, std::string_view case_id,
                                               std::string_view reason, std::string_view actor) {
  if (case_id.empty() || reason.empty()) {
    throw std::invalid_argument("an erasure request needs a case id and a reason");
  }
  const pqxx::result recorded = tx.exec_params(
      "INSERT INTO erasure_requests (case_id, reason, requested_by) VALUES ($1, $2, $3) "
      "ON CONFLICT (case_id) WHERE completed_at IS NULL DO NOTHING RETURNING id",
      std::string(case_id), std::string(reason), std::string(actor));
  if (recorded.empty()) {
    return open_erasure(tx, case_id);
  }
  append_audit(tx, actor, "erasure_request", case_id, reason);
  return std::nullopt;
}

approval_verdict approve_erasure(pqxx::work& tx, std::string_view case_id, std::string_view actor,
                                 erasure_request& request) {
  const pqxx::result found = tx.exec_params(
      std::string("SELECT ") + request_columns +
          " FROM erasure_requests WHERE case_id = $1 AND completed_at IS NULL FOR UPDATE",
      std::string(case_id));
  if (found.empty()) {
    return approval_verdict::no_request;
  }
  request = request_of(found[0]);
  if (!request.approved_by.empty()) {
    return approval_verdict::already_approved;
  }
  if (operator_of(request.requested_by) == operator_of(actor)) {
    return approval_verdict::same_operator;
  }
  tx.exec_params("UPDATE erasure_requests SET approved_by = $2, approved_at = now() WHERE id = $1",
                 request.id, std::string(actor));
  request.approved_by = std::string(actor);
  append_audit(tx, actor, "erasure_approval", case_id,
               "request " + std::to_string(request.id) + " by " + request.requested_by + ": " +
                   request.reason);
  return approval_verdict::approved;
}

void complete_erasure(pqxx::work& tx, std::int64_t request_id) {
  tx.exec_params(
      "UPDATE erasure_requests SET completed_at = now() WHERE id = $1 AND completed_at IS NULL",
      request_id);
}

}  // namespace archiver::records
