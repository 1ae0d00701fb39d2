// The purge: the retention dates it reads, what may be disposed of, and the records of it. A case
// is purged when its retention date has passed (retention.hpp) or an operator asks for its erasure,
// never while it is under a legal hold, open (re-opened since it closed) or has jobs in flight. Its
// objects are deleted (object_store::remove: every version) and each artifact row becomes a
// tombstone (purged_at, purge_rule); the case loses its snapshot; the audit trail gets a "purge"
// row. A lease on the case row keeps two purgers (replicas, the daemon and an operator) off one
// case.
//
// decide_purge is pure; the rest runs SQL in the caller's transaction, on a database thread.
#pragma once

#include <cstdint>
#include <optional>
#include <pqxx/transaction>
#include <string>
#include <string_view>
#include <vector>

#include "records/retention.hpp"

namespace archiver::records {

// Sets a closed case's retention date (retain_until, retention_rule) by `policy`, counted from
// its closed_at, unless set since it closed. Nothing for an open case. Returns whether it set one.
bool set_retention(pqxx::transaction_base& tx, std::string_view case_id,
                   const retention_policy& policy);

// The same for up to `limit` closed cases without a date (closed before records.retention
// existed, or before an upgrade), oldest closed first; returns their ids.
std::vector<std::string> set_missing_retention(pqxx::transaction_base& tx,
                                               const retention_policy& policy, int limit);

// What the database says about a case, for decide_purge.
struct purge_facts {
  bool known = false;            // a row in cases
  bool closed = false;           // closed_at is set
  bool due = false;              // retain_until has passed
  bool forever = false;          // retain_until is infinity
  bool held = false;             // a legal hold is in force
  bool purged = false;           // purged_at is set
  int open_jobs = 0;             // queued, failed or running jobs about the case
  bool leased_by_other = false;  // another purger holds the case now
  std::string rule;              // retention_rule: what set its date ("" when none)
};

enum class purge_verdict {
  purge,
  unknown_case,
  already_purged,
  held,
  open_case,
  jobs_in_flight,
  not_due,
  kept_forever,
  busy,  // another purger is at it
};

// `erasure`: an operator asks to purge the case ahead of its retention (an erasure request): a
// closed case that is not held may then go whatever its date. Pure.
purge_verdict decide_purge(const purge_facts& facts, bool erasure);

// "held: a legal hold is in force", ... for `purge --dry-run` and logs.
std::string_view describe(purge_verdict verdict);

purge_facts facts_of(pqxx::transaction_base& tx, std::string_view case_id, std::string_view purger);

// Up to `limit` cases whose retention has passed and that decide_purge would purge now, oldest
// date first, with the rule that set their date.
struct due_case {
  std::string case_id;
  std::string rule;
};
std::vector<due_case> due_cases(pqxx::transaction_base& tx, int limit);

// Takes the case's purge lease for `purger` until now + lease_seconds, when it is free, expired or
// already `purger`'s. Returns whether it holds it.
bool take_purge_lease(pqxx::transaction_base& tx, std::string_view case_id, std::string_view purger,
                      int lease_seconds);
void release_purge_lease(pqxx::transaction_base& tx, std::string_view case_id,
                         std::string_view purger);

// Whether `purger` may delete the case's next object: it still holds the lease and no legal hold
// was placed since the purge began (a hold placed during a purge stops it before its next
// object).
bool still_purgeable(pqxx::transaction_base& tx, std::string_view case_id, std::string_view purger);

struct purgeable_object {
  std::int64_t artifact_id = 0;
  std::string key;
  std::uint64_t size = 0;
};
// The case's artifacts not purged yet, in id order.
std::vector<purgeable_object> unpurged_objects(pqxx::transaction_base& tx,
                                               std::string_view case_id);

// The artifact's object is gone: its row becomes a tombstone, purged by `rule`.
void mark_artifact_purged(pqxx::transaction_base& tx, std::int64_t artifact_id,
                          std::string_view rule);

// Every object of the case is gone: the case is marked purged, its snapshot dropped, its lease
// released, and the purge audited ("purge", with `detail`) by `actor`.
void mark_case_purged(pqxx::transaction_base& tx, std::string_view case_id, std::string_view actor,
                      std::string_view detail);

// What records management holds now, for `status` and the certn_archiver_records gauges.
struct records_status {
  std::int64_t held_cases = 0;
  std::int64_t cases_due = 0;         // retention passed, not purged yet
  std::int64_t objects_retained = 0;  // live objects of cases with a retention date
  std::int64_t bytes_retained = 0;
  std::int64_t cases_purged = 0;
  std::int64_t erasures_pending = 0;         // requested, not yet approved (two-person approval)
  std::optional<std::string> last_purge_at;  // the newest "purge" audit row, UTC
};
records_status read_records_status(pqxx::transaction_base& tx);

}  // namespace archiver::records
