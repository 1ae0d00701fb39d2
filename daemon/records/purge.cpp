#include "records/purge.hpp"

#include <pqxx/pqxx>

#include "records/audit.hpp"

namespace archiver::records {

namespace {

// Jobs that may still write to the case's objects or rows, or change their lock (protect_case,
// keyed by case: a released hold is lifted from the objects before they can be deleted).
constexpr const char* open_jobs_of_case =
    "(SELECT count(*) FROM jobs j WHERE (j.payload->>'case_id' = c.id "
    "OR (j.kind = 'protect_case' AND j.key = c.id)) "
    "AND j.state IN ('queued', 'failed', 'running'))";

constexpr const char* held_case =
    "EXISTS (SELECT 1 FROM legal_holds h WHERE h.case_id = c.id AND h.released_at IS NULL)";

}  // namespace

bool set_retention(pqxx::transaction_base& tx, std::string_view case_id,
                   const retention_policy& policy) {
  const pqxx::result due = tx.exec_params(
      "SELECT COALESCE(overall_status, ''), (EXTRACT(EPOCH FROM closed_at) * 1000000)::bigint "
      "FROM cases WHERE id = $1 AND closed_at IS NOT NULL AND retain_until IS NULL",
      std::string(case_id));
  if (due.empty()) {
    return false;  // open, or its date already set (by the policy of its closing)
  }
  const retention_rule rule = rule_for(policy, due[0][0].as<std::string>());
  const utc_time closed_at{std::chrono::microseconds(due[0][1].as<std::int64_t>())};
  const std::optional<utc_time> until = retain_until(closed_at, rule.period);
  tx.exec_params(
      "UPDATE cases SET retain_until = $2::timestamptz, retention_rule = $3 WHERE id = $1",
      std::string(case_id), until ? to_iso8601(*until) : "infinity", rule.text);
  return true;
}

std::vector<std::string> set_missing_retention(pqxx::transaction_base& tx,
                                               const retention_policy& policy, int limit) {
  const pqxx::result missing = tx.exec_params(
      "SELECT id FROM cases WHERE closed_at IS NOT NULL AND retain_until IS NULL "
      "AND purged_at IS NULL ORDER BY closed_at LIMIT $1",
      limit);
  std::vector<std::string> dated;
  for (const auto& row : missing) {
    std::string case_id = row[0].as<std::string>();
    if (set_retention(tx, case_id, policy)) {
      dated.push_back(std::move(case_id));
    }
  }
  return dated;
}

purge_verdict decide_purge(const purge_facts& facts, bool erasure) {
  if (!facts.known) {
    return purge_verdict::unknown_case;
  }
  if (facts.purged) {
    return purge_verdict::already_purged;
  }
  if (facts.held) {
    return purge_verdict::held;
  }
  if (!facts.closed) {
    return purge_verdict::open_case;
  }
  if (facts.open_jobs > 0) {
    return purge_verdict::jobs_in_flight;
  }
  if (!erasure && facts.forever) {
    return purge_verdict::kept_forever;
  }
  if (!erasure && !facts.due) {
    return purge_verdict::not_due;
  }
  if (facts.leased_by_other) {
    return purge_verdict::busy;
  }
  return purge_verdict::purge;
}

std::string_view describe(purge_verdict verdict) {
  switch (verdict) {
    case purge_verdict::purge:
      return "to purge";
    case purge_verdict::unknown_case:
      return "unknown: no such case in the archive";
    case purge_verdict::already_purged:
      return "already purged";
    case purge_verdict::held:
      return "held: a legal hold is in force";
    case purge_verdict::open_case:
      return "open: the case is not closed (or re-opened since)";
    case purge_verdict::jobs_in_flight:
      return "busy: jobs about the case are queued or running";
    case purge_verdict::not_due:
      return "kept: its retention date has not passed";
    case purge_verdict::kept_forever:
      return "kept forever by the retention policy";
    case purge_verdict::busy:
      return "busy: another purge holds the case";
  }
  return "?";
}

purge_facts facts_of(pqxx::transaction_base& tx, std::string_view case_id,
                     std::string_view purger) {
  const pqxx::result row = tx.exec_params(
      std::string("SELECT c.closed_at IS NOT NULL, COALESCE(c.retain_until <= now(), false), "
                  "COALESCE(c.retain_until = 'infinity', false), ") +
          held_case + ", c.purged_at IS NOT NULL, " + open_jobs_of_case +
          ", COALESCE(c.purge_owner <> $2 AND c.purge_lease_expires > now(), false), "
          "COALESCE(c.retention_rule, '') "
          "FROM cases c WHERE c.id = $1",
      std::string(case_id), std::string(purger));
  purge_facts facts;
  if (row.empty()) {
    return facts;
  }
  facts.known = true;
  facts.closed = row[0][0].as<bool>();
  facts.due = row[0][1].as<bool>();
  facts.forever = row[0][2].as<bool>();
  facts.held = row[0][3].as<bool>();
  facts.purged = row[0][4].as<bool>();
  facts.open_jobs = row[0][5].as<int>();
  facts.leased_by_other = row[0][6].as<bool>();
  facts.rule = row[0][7].as<std::string>();
  return facts;
}

std::vector<due_case> due_cases(pqxx::transaction_base& tx, int limit) {
  std::vector<due_case> cases;
  for (const auto& row : tx.exec_params(
           std::string("SELECT c.id, COALESCE(c.retention_rule, '') FROM cases c "
                       "WHERE c.retain_until <= now() AND c.purged_at IS NULL "
                       "AND c.closed_at IS NOT NULL AND NOT ") +
               held_case + " AND " + open_jobs_of_case +
               " = 0 AND (c.purge_lease_expires IS NULL OR c.purge_lease_expires <= now()) "
               "ORDER BY c.retain_until, c.id LIMIT $1",
           limit)) {
    cases.push_back({row[0].as<std::string>(), row[1].as<std::string>()});
  }
  return cases;
}

bool take_purge_lease(pqxx::transaction_base& tx, std::string_view case_id, std::string_view purger,
                      int lease_seconds) {
  return !tx.exec_params(
                "UPDATE cases SET purge_owner = $2, "
                "purge_lease_expires = now() + make_interval(secs => $3) "
                "WHERE id = $1 AND (purge_owner IS NULL OR purge_owner = $2 "
                "OR purge_lease_expires <= now()) RETURNING 1",
                std::string(case_id), std::string(purger), lease_seconds)
              .empty();
}

void release_purge_lease(pqxx::transaction_base& tx, std::string_view case_id,
                         std::string_view purger) {
  tx.exec_params(
      "UPDATE cases SET purge_owner = NULL, purge_lease_expires = NULL "
      "WHERE id = $1 AND purge_owner = $2",
      std::string(case_id), std::string(purger));
}

bool still_purgeable(pqxx::transaction_base& tx, std::string_view case_id,
                     std::string_view purger) {
  return !tx.exec_params(std::string("SELECT 1 FROM cases c WHERE c.id = $1 AND c.purge_owner = $2 "
                                     "AND c.purge_lease_expires > now() AND NOT ") +
                             held_case,
                         std::string(case_id), std::string(purger))
              .empty();
}

std::vector<purgeable_object> unpurged_objects(pqxx::transaction_base& tx,
                                               std::string_view case_id) {
  std::vector<purgeable_object> objects;
  for (const auto& row : tx.exec_params("SELECT id, object_key, size_bytes FROM artifacts "
                                        "WHERE case_id = $1 AND purged_at IS NULL ORDER BY id",
                                        std::string(case_id))) {
    objects.push_back(
        {row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<std::uint64_t>()});
  }
  return objects;
}

void mark_artifact_purged(pqxx::transaction_base& tx, std::int64_t artifact_id,
                          std::string_view rule) {
  tx.exec_params(
      "UPDATE artifacts SET purged_at = now(), purge_rule = $2 WHERE id = $1 AND purged_at IS NULL",
      artifact_id, std::string(rule));
}

records_status read_records_status(pqxx::transaction_base& tx) {
  const pqxx::row row = tx.exec1(
      "SELECT (SELECT count(DISTINCT case_id) FROM legal_holds WHERE released_at IS NULL), "
      "(SELECT count(*) FROM cases WHERE retain_until <= now() AND purged_at IS NULL), "
      "(SELECT count(a.id) FROM artifacts a JOIN cases c ON c.id = a.case_id "
      " WHERE a.purged_at IS NULL AND c.retain_until IS NOT NULL), "
      "(SELECT COALESCE(sum(a.size_bytes), 0) FROM artifacts a JOIN cases c ON c.id = a.case_id "
      " WHERE a.purged_at IS NULL AND c.retain_until IS NOT NULL), "
      "(SELECT count(*) FROM cases WHERE purged_at IS NOT NULL), "
      "(SELECT count(*) FROM erasure_requests WHERE approved_at IS NULL AND completed_at IS NULL), "
      "(SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
      " FROM audit_log WHERE action = 'purge' ORDER BY seq DESC LIMIT 1)");
  records_status status;
  status.held_cases = row[0].as<std::int64_t>();
  status.cases_due = row[1].as<std::int64_t>();
  status.objects_retained = row[2].as<std::int64_t>();
  status.bytes_retained = row[3].as<std::int64_t>();
  status.cases_purged = row[4].as<std::int64_t>();
  status.erasures_pending = row[5].as<std::int64_t>();
  if (!row[6].is_null()) {
    status.last_purge_at = row[6].as<std::string>();
  }
  return status;
}

void mark_case_purged(pqxx::transaction_base& tx, std::string_view case_id, std::string_view actor,
                      std::string_view detail) {
  tx.exec_params(
      "UPDATE cases SET purged_at = now(), snapshot = NULL, purge_owner = NULL, "
      "purge_lease_expires = NULL WHERE id = $1",
      std::string(case_id));
  append_audit(tx, actor, "purge", case_id, detail);
}

}  // namespace archiver::records
