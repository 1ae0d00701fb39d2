// Two-person approval of erasures (records.purge_approval = "two-person", table
// erasure_requests, migrations/0012_erasure_requests.sql): a purge of one case ahead of its
// retention is first requested by one operator, with a reason, then approved by another; only
// then may it run. Each step appends an audit row in its own transaction (records/audit.hpp).
// Called on a database thread.
#pragma once

#include <cstdint>
#include <optional>
#include <pqxx/transaction>
#include <string>
#include <string_view>

namespace archiver::records {

struct erasure_request {
  std::int64_t id = 0;
  std::string case_id;
  std::string reason;
  std::string requested_by;
  std::string requested_at;  // UTC, "2026-12-07T05:30:00Z"
  std::string approved_by;   // empty until approved
};

// The person behind an actor, whom the rule counts: "alice" for "user:alice" and for
// "user:alice (via sudo as root)"; the whole text for any other actor.
std::string operator_of(std::string_view actor);

// Whether the rule serve last recorded in the audit trail (action "purge_approval", appended at
// start-up when it changed) is "two-person".
bool two_person_in_force(pqxx::transaction_base& tx);

// The request in progress on `case_id` (not yet completed), approved or not.
std::optional<erasure_request> open_erasure(pqxx::transaction_base& tx, std::string_view case_id);

// Records a request by `actor` and audits it ("erasure_request"). Returns nothing when it was
// recorded; the request already in progress otherwise (nothing changes).
// REQUIRES: case_id and reason not empty.
std::optional<erasure_request> request_erasure(pqxx::work& tx, std::string_view case_id,
                                               std::string_view reason, std::string_view actor);

enum class approval_verdict {
  approved,          // approved now by `actor`
  already_approved,  // approved before (a purge that did not finish): it may go on
  no_request,        // nothing to approve
  same_operator,     // `actor` is the person who asked: refused
};

// Approves the request in progress on `case_id` and audits it ("erasure_approval"), unless the
// verdict says otherwise. `request` receives the request when there is one.
approval_verdict approve_erasure(pqxx::work& tx, std::string_view case_id, std::string_view actor,
                                 erasure_request& request);

// The purge of the request's case is done: the request is closed.
void complete_erasure(pqxx::work& tx, std::int64_t request_id);

}  // namespace archiver::records
