#include "archive/repository.hpp"

#include "records/audit.hpp"
#include "records/holds.hpp"

namespace archiver::archive::repository {

namespace {

// ---- the statements ----------------------------------------------------------------------------

// A purged artifact's row (a tombstone) does not count: its object is gone.
constexpr const char* select_artifact_at_key =
    "SELECT 1 FROM artifacts WHERE object_key = $1 AND purged_at IS NULL";

constexpr const char* select_sha256_at_key =
    "SELECT sha256 FROM artifacts WHERE object_key = $1 AND purged_at IS NULL";

// Jobs that may still add an artifact to the case (every archive job names its case in the
// payload).
constexpr const char* count_open_jobs_of_case =
    "SELECT count(*), COALESCE(ceil(EXTRACT(EPOCH FROM "
    "min(CASE WHEN state = 'running' THEN now() ELSE GREATEST(run_at, now()) END) - now())), 0)"
    "::bigint FROM jobs WHERE payload->>'case_id' = $1 AND kind <> $2 "
    "AND state IN ('queued', 'failed', 'running')";

constexpr const char* count_running_jobs_of_case =
    "SELECT count(*) FROM jobs WHERE payload->>'case_id' = $1 AND kind <> $2 "
    "AND state = 'running'";

// The same key can only be rewritten with what is there now (the store replaced it whole).
constexpr const char* upsert_artifact =
    "INSERT INTO artifacts (case_id, kind, source_id, object_key, sha256, size_bytes, "
    "content_type) VALUES ($1, $2, $3, $4, $5, $6, $7) "
    "ON CONFLICT (object_key) DO UPDATE SET sha256 = EXCLUDED.sha256, "
    "size_bytes = EXCLUDED.size_bytes, content_type = EXCLUDED.content_type, "
    "archived_at = now(), purged_at = NULL, purge_rule = NULL RETURNING (xmax = 0)";

constexpr const char* select_manifest_entries =
    "SELECT kind, object_key, sha256, size_bytes, COALESCE(source_id, ''), "
    "COALESCE(content_type, ''), "
    "to_char(archived_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
    "FROM artifacts WHERE case_id = $1 AND kind <> 'manifest' AND purged_at IS NULL";

constexpr const char* lock_case_row =
    "SELECT overall_status, closed_at IS NOT NULL, snapshot = $2::jsonb FROM cases "
    "WHERE id = $1 FOR UPDATE";

constexpr const char* upsert_case =
    "INSERT INTO cases (id, overall_status, snapshot, certn_modified, last_synced, closed_at, "
    "fetched_at, ordered_on) VALUES ($1, $2, $3::jsonb, $4, now(), CASE WHEN $5 THEN now() END, "
    "$6::timestamptz, NULLIF($7, '')::date) "
    "ON CONFLICT (id) DO UPDATE SET overall_status = EXCLUDED.overall_status, "
    "snapshot = EXCLUDED.snapshot, certn_modified = EXCLUDED.certn_modified, "
    "last_synced = now(), closed_at = CASE WHEN $5 THEN COALESCE(cases.closed_at, now()) END, "
    "retain_until = CASE WHEN $5 THEN cases.retain_until END, purged_at = NULL, "
    "retention_rule = CASE WHEN $5 THEN cases.retention_rule END, "
    "fetched_at = EXCLUDED.fetched_at, ordered_on = COALESCE(EXCLUDED.ordered_on, "
    "cases.ordered_on)";

// clock_timestamp(): when the GET about to be made begins (now() would be the transaction's).
// CASE_REPORT_READY announces a report file, not a change of the case: it does not count.
constexpr const char* select_fetch_fence =
    "SELECT clock_timestamp()::text, c.fetched_at IS NOT NULL, "
    "EXISTS (SELECT 1 FROM webhook_events e WHERE e.received_at >= c.fetched_at "
    "AND e.event_type <> 'CASE_REPORT_READY' "
    "AND (e.object_id = $1 OR e.object_id IN "
    "(SELECT check_id FROM case_checks WHERE case_id = $1))) "
    "FROM (SELECT $1::text AS id) k LEFT JOIN cases c ON c.id = k.id";

constexpr const char* upsert_case_check =
    "INSERT INTO case_checks (check_id, case_id) VALUES ($1, $2) "
    "ON CONFLICT (check_id) DO UPDATE SET case_id = EXCLUDED.case_id";

constexpr const char* insert_status_change =
    "INSERT INTO case_status_history (case_id, status, source) VALUES ($1, $2, $3)";

constexpr const char* select_case_of_check = "SELECT case_id FROM case_checks WHERE check_id = $1";

constexpr const char* select_held_cases =
    "SELECT id, COALESCE(overall_status, ''), COALESCE(certn_modified, ''), closed_at IS NULL, "
    "COALESCE(floor(EXTRACT(EPOCH FROM now() - last_synced)), 1e9)::bigint, "
    "(now() AT TIME ZONE 'UTC')::date - ordered_on "
    "FROM cases";

constexpr const char* update_ordered_on =
    "UPDATE cases SET ordered_on = $2::date WHERE id = $1 AND ordered_on IS NULL";

constexpr const char* select_utc_today = "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')";

constexpr const char* select_reconcile_runs =
    "SELECT scope, GREATEST(0, floor(EXTRACT(EPOCH FROM now() - finished_at)))::bigint "
    "FROM reconcile_runs";

constexpr const char* upsert_reconcile_run =
    "INSERT INTO reconcile_runs (scope, finished_at) VALUES ($1, now()) "
    "ON CONFLICT (scope) DO UPDATE SET finished_at = now() "
    "RETURNING EXTRACT(EPOCH FROM finished_at)::float8";

constexpr const char* select_last_reconcile_run =
    "SELECT EXTRACT(EPOCH FROM max(finished_at))::float8 FROM reconcile_runs";

constexpr const char* insert_report_file =
    "INSERT INTO report_files (id, case_id, status) VALUES ($1, $2, 'IN_PROGRESS') "
    "ON CONFLICT (id) DO NOTHING";

constexpr const char* select_case_of_report_file =
    "SELECT case_id FROM report_files WHERE id = $1";

constexpr const char* select_report_files_named_by =
    "SELECT id, case_id FROM report_files WHERE id = $1 "
    "UNION SELECT id, case_id FROM report_files WHERE case_id = $1 AND status <> 'COMPLETE'";

constexpr const char* update_report_status =
    "UPDATE report_files SET status = $2, ready_at = CASE WHEN $2 = 'COMPLETE' "
    "THEN COALESCE(ready_at, now()) END WHERE id = $1";

constexpr const char* update_events_processed =
    "UPDATE webhook_events SET processed_at = now() "
    "WHERE object_id = $1 AND processed_at IS NULL AND received_at <= now()";

constexpr const char* select_event_age =
    "SELECT GREATEST(0, floor(EXTRACT(EPOCH FROM now() - received_at)))::bigint "
    "FROM webhook_events WHERE id = $1";

constexpr const char* update_case_events_processed =
    "UPDATE webhook_events SET processed_at = now() "
    "WHERE (object_id = $1 OR object_id IN (SELECT check_id FROM case_checks WHERE case_id = $1)) "
    "AND processed_at IS NULL AND received_at <= now()";

std::optional<std::string> first_text(const pqxx::result& rows) {
  if (rows.empty()) {
    return std::nullopt;
  }
  return rows[0][0].as<std::string>();
}

}  // namespace

bool is_archived(pqxx::transaction_base& tx, const std::string& key) {
  return !tx.exec_params(select_artifact_at_key, key).empty();
}

storage::object_protection protection_of(pqxx::transaction_base& tx, const std::string& case_id) {
  const pqxx::result found = tx.exec_params(
      "SELECT CASE WHEN retain_until = 'infinity' THEN NULL "
      "ELSE ceil(extract(epoch FROM retain_until))::bigint END FROM cases WHERE id = $1",
      case_id);
  storage::object_protection protection;
  if (!found.empty() && !found[0][0].is_null()) {
    protection.retain_until =
        std::chrono::sys_seconds(std::chrono::seconds(found[0][0].as<std::int64_t>()));
  }
  protection.legal_hold = records::is_held(tx, case_id);
  return protection;
}

std::vector<std::string> live_object_keys(pqxx::transaction_base& tx, const std::string& case_id) {
  std::vector<std::string> keys;
  for (const auto& row :
       tx.exec_params("SELECT object_key FROM artifacts WHERE case_id = $1 AND purged_at IS NULL "
                      "ORDER BY object_key",
                      case_id)) {
    keys.push_back(row[0].as<std::string>());
  }
  return keys;
}

void record_artifact(pqxx::transaction_base& tx, const std::string& case_id,
                     const std::string& kind, const std::string& source_id, const std::string& key,
                     const storage::object_digest& digest, const std::string& content_type) {
  const bool fresh =
      tx.exec_params1(upsert_artifact, case_id, kind, source_id, key, digest.sha256_hex,
                      static_cast<std::int64_t>(digest.size), content_type)[0]
          .as<bool>();
  records::append_audit(tx, records::daemon_actor(),
                        fresh ? "artifact_written" : "artifact_rewritten", case_id,
                        kind + " " + key + " sha256 " + digest.sha256_hex + " " +
                            std::to_string(digest.size) + " bytes");
}

std::optional<std::string> recorded_sha256(pqxx::transaction_base& tx, const std::string& key) {
  return first_text(tx.exec_params(select_sha256_at_key, key));
}

open_jobs open_jobs_of_case(pqxx::transaction_base& tx, const std::string& case_id,
                            const std::string& except_kind) {
  const pqxx::row row = tx.exec_params1(count_open_jobs_of_case, case_id, except_kind);
  return open_jobs{row[0].as<int>(), std::chrono::seconds(row[1].as<std::int64_t>())};
}

int running_jobs_of_case(pqxx::transaction_base& tx, const std::string& case_id,
                         const std::string& except_kind) {
  return tx.exec_params1(count_running_jobs_of_case, case_id, except_kind)[0].as<int>();
}

std::vector<manifest_entry> manifest_entries(pqxx::transaction_base& tx,
                                             const std::string& case_id) {
  std::vector<manifest_entry> out;
  for (const auto& row : tx.exec_params(select_manifest_entries, case_id)) {
    out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                   row[3].as<std::int64_t>(), row[4].as<std::string>(), row[5].as<std::string>(),
                   row[6].as<std::string>()});
  }
  return out;
}

case_facts lock_case(pqxx::transaction_base& tx, const std::string& case_id,
                     const std::string& snapshot_json) {
  const pqxx::result before = tx.exec_params(lock_case_row, case_id, snapshot_json);
  case_facts facts;
  facts.known = !before.empty();
  if (facts.known) {
    facts.old_status = before[0][0].as<std::string>("");
    facts.was_closed = before[0][1].as<bool>();
    facts.same_snapshot = before[0][2].as<bool>(false);
  }
  return facts;
}

fetch_fence fence_of(pqxx::transaction_base& tx, const std::string& case_id) {
  const pqxx::row row = tx.exec_params1(select_fetch_fence, case_id);
  return fetch_fence{row[0].as<std::string>(), row[1].as<bool>(), row[2].as<bool>(false)};
}

void save_case(pqxx::transaction_base& tx, const std::string& case_id,
               const certn::case_record& record, const std::string& snapshot_json, bool archivable,
               const std::string& fetch_started_at) {
  const std::string ordered_on = leading_date(record.created).value_or("");  // "": unknown
  tx.exec_params(upsert_case, case_id, record.overall_status, snapshot_json, record.modified,
                 archivable, fetch_started_at, ordered_on);
}

void save_case_checks(pqxx::transaction_base& tx, const std::string& case_id,
                      const std::vector<certn::check>& checks) {
  for (const certn::check& check : checks) {
    tx.exec_params(upsert_case_check, check.id, case_id);
  }
}

void record_status_change(pqxx::transaction_base& tx, const std::string& case_id,
                          const std::string& status, const std::string& source) {
  tx.exec_params(insert_status_change, case_id, status, source);
}

std::optional<std::string> case_of_check(pqxx::transaction_base& tx, const std::string& check_id) {
  return first_text(tx.exec_params(select_case_of_check, check_id));
}

std::map<std::string, held_case> held_cases(pqxx::transaction_base& tx) {
  std::map<std::string, held_case> out;
  for (const auto& row : tx.exec(select_held_cases)) {
    held_case& held = out[row[0].as<std::string>()];
    held.status = row[1].as<std::string>();
    held.modified = row[2].as<std::string>();
    held.open = row[3].as<bool>();
    held.since_sync = std::chrono::seconds(row[4].as<std::int64_t>());
    if (!row[5].is_null()) {
      held.ordered_days_ago = row[5].as<int>();
    }
  }
  return out;
}

void record_order_dates(pqxx::transaction_base& tx,
                        const std::vector<std::pair<std::string, std::string>>& dates) {
  for (const auto& [case_id, date] : dates) {
    tx.exec_params(update_ordered_on, case_id, date);
  }
}

std::string utc_today(pqxx::transaction_base& tx) {
  return tx.exec1(select_utc_today)[0].as<std::string>();
}

std::map<reconcile_scope, std::chrono::seconds> reconcile_history(pqxx::transaction_base& tx) {
  constexpr reconcile_scope scopes[] = {reconcile_scope::recent, reconcile_scope::window,
                                        reconcile_scope::open_before, reconcile_scope::open_old};
  std::map<reconcile_scope, std::chrono::seconds> out;
  for (const auto& row : tx.exec(select_reconcile_runs)) {
    const std::string name = row[0].as<std::string>();
    for (const reconcile_scope scope : scopes) {
      if (scope_name(scope) == name) {
        out[scope] = std::chrono::seconds(row[1].as<std::int64_t>());
      }
    }
  }
  return out;
}

double record_reconcile_run(pqxx::transaction_base& tx, reconcile_scope scope) {
  return tx.exec_params1(upsert_reconcile_run, std::string(scope_name(scope)))[0].as<double>();
}

std::optional<double> last_reconcile_run(pqxx::transaction_base& tx) {
  const pqxx::row row = tx.exec1(select_last_reconcile_run);
  if (row[0].is_null()) {
    return std::nullopt;
  }
  return row[0].as<double>();
}

void record_report_file(pqxx::transaction_base& tx, const std::string& report_id,
                        const std::string& case_id) {
  tx.exec_params(insert_report_file, report_id, case_id);
}

std::optional<std::string> case_of_report_file(pqxx::transaction_base& tx,
                                               const std::string& report_id) {
  return first_text(tx.exec_params(select_case_of_report_file, report_id));
}

std::vector<std::pair<std::string, std::string>> report_files_named_by(
    pqxx::transaction_base& tx, const std::string& object_id) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& row : tx.exec_params(select_report_files_named_by, object_id)) {
    out.emplace_back(row[0].as<std::string>(), row[1].as<std::string>());
  }
  return out;
}

void set_report_status(pqxx::transaction_base& tx, const std::string& report_id,
                       const std::string& status) {
  tx.exec_params(update_report_status, report_id, status);
}

void mark_events_processed(pqxx::transaction_base& tx, const std::string& object_id) {
  tx.exec_params(update_events_processed, object_id);
}

std::optional<std::chrono::seconds> event_age(pqxx::transaction_base& tx,
                                              const std::string& event_id) {
  const pqxx::result rows = tx.exec_params(select_event_age, event_id);
  if (rows.empty()) {
    return std::nullopt;
  }
  return std::chrono::seconds(rows[0][0].as<std::int64_t>());
}

void mark_case_events_processed(pqxx::transaction_base& tx, const std::string& case_id) {
  tx.exec_params(update_case_events_processed, case_id);
}

}  // namespace archiver::archive::repository
