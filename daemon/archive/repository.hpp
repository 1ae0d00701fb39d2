// Every SQL statement of the archive, each behind a typed function (the statements themselves are
// named constants in repository.cpp). Each function runs inside the caller's transaction: the
// workflows decide what commits together (an artifact row with its manifest job, a case row with
// its archive jobs). No function here decides anything; archive/policy does.
//
// Thread-safety: none needed; each call uses only the transaction it is given, on the database
// pool's thread that runs it.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "archive/layout.hpp"
#include "archive/policy.hpp"
#include "certn/model.hpp"
#include "storage/digest.hpp"
#include "storage/object_store.hpp"

namespace archiver::archive::repository {

// ---- artifacts ---------------------------------------------------------------------------------

// True when an artifact row exists at `key` (the object is whole and recorded).
bool is_archived(pqxx::transaction_base& tx, const std::string& key);

// Records (or, for the same key, replaces) what was stored at `key`, with its audit row
// (artifact_written, or artifact_rewritten for a key recorded before).
void record_artifact(pqxx::transaction_base& tx, const std::string& case_id,
                     const std::string& kind, const std::string& source_id, const std::string& key,
                     const storage::object_digest& digest, const std::string& content_type);

// What a new object of the case must be protected by on the store: its retention date (none
// while open or kept forever) and whether a legal hold is in force.
storage::object_protection protection_of(pqxx::transaction_base& tx, const std::string& case_id);

// The keys of the case's objects that are not purged, sorted.
std::vector<std::string> live_object_keys(pqxx::transaction_base& tx, const std::string& case_id);

// The sha256 recorded at `key`, when an artifact row is there.
std::optional<std::string> recorded_sha256(pqxx::transaction_base& tx, const std::string& key);

// Jobs of the case (by the case_id of their payload) queued, waiting for a retry or running,
// except those of `except_kind`; and how soon the first of them runs (0 when one runs or is due),
// before which nothing of the case can change.
struct open_jobs {
  int count = 0;
  std::chrono::seconds first_due_in{0};
};
open_jobs open_jobs_of_case(pqxx::transaction_base& tx, const std::string& case_id,
                            const std::string& except_kind);
// Of those, how many run now (a worker holds them), except those of `except_kind`.
int running_jobs_of_case(pqxx::transaction_base& tx, const std::string& case_id,
                         const std::string& except_kind);

// The case's artifacts but its manifest, for manifest.json.
std::vector<manifest_entry> manifest_entries(pqxx::transaction_base& tx,
                                             const std::string& case_id);

// ---- cases -------------------------------------------------------------------------------------

// What we held about a case, read and locked (FOR UPDATE) until the transaction ends, compared
// with the answer just fetched. `facts.new_status` and `facts.archivable` are left to the caller.
case_facts lock_case(pqxx::transaction_base& tx, const std::string& case_id,
                     const std::string& snapshot_json);

// What sync_case needs for its fence (policy sync_needs_fetch), read just before its GET.
struct fetch_fence {
  std::string now;                 // the database's clock: when the GET about to be made begins
  bool fetched_before = false;     // a saved GET of the case exists
  bool event_since_fetch = false;  // an event about the case or its checks (but
                                   // CASE_REPORT_READY) arrived at or after that GET began
};
fetch_fence fence_of(pqxx::transaction_base& tx, const std::string& case_id);

// Inserts or updates the case row; `archivable` sets closed_at (kept if set), else clears it.
// `fetch_started_at` is fetch_fence::now of the GET that gave `record`.
void save_case(pqxx::transaction_base& tx, const std::string& case_id,
               const certn::case_record& record, const std::string& snapshot_json,
               bool archivable, const std::string& fetch_started_at);

// Remembers which case each check belongs to (events may name a check instead of its case).
void save_case_checks(pqxx::transaction_base& tx, const std::string& case_id,
                      const std::vector<certn::check>& checks);

void record_status_change(pqxx::transaction_base& tx, const std::string& case_id,
                          const std::string& status, const std::string& source);

// The case a check belongs to, when a case held here listed it.
std::optional<std::string> case_of_check(pqxx::transaction_base& tx, const std::string& check_id);

// Every case held, by id: status, Certn's "modified", whether it is still open here, and how
// many days ago (UTC) it was ordered.
std::map<std::string, held_case> held_cases(pqxx::transaction_base& tx);

// Sets the order date ("YYYY-MM-DD") of held cases that had none (a listing showed it).
void record_order_dates(pqxx::transaction_base& tx,
                        const std::vector<std::pair<std::string, std::string>>& dates);

// ---- reconcile ---------------------------------------------------------------------------------

// The database's date in UTC, "YYYY-MM-DD": reconcile's listings are dated by it, as the queue's
// times are, so that every replica agrees.
std::string utc_today(pqxx::transaction_base& tx);

// How long ago each scope's listing last completed; scopes never completed are absent.
std::map<reconcile_scope, std::chrono::seconds> reconcile_history(pqxx::transaction_base& tx);

// Records that `scope`'s listing completed now; returns that moment as Unix time.
double record_reconcile_run(pqxx::transaction_base& tx, reconcile_scope scope);

// Unix time at which any listing last completed; none before the first.
std::optional<double> last_reconcile_run(pqxx::transaction_base& tx);

// ---- report files ------------------------------------------------------------------------------

// A report file Certn accepted to generate (IN_PROGRESS); nothing when it is known already.
void record_report_file(pqxx::transaction_base& tx, const std::string& report_id,
                        const std::string& case_id);

// The case a report file was requested for, when it was requested here.
std::optional<std::string> case_of_report_file(pqxx::transaction_base& tx,
                                               const std::string& report_id);

// (report id, case id) of the report file `object_id`, or of the unfinished report files of the
// case `object_id`: CASE_REPORT_READY may name either.
std::vector<std::pair<std::string, std::string>> report_files_named_by(
    pqxx::transaction_base& tx, const std::string& object_id);

// Sets the status; COMPLETE also stamps ready_at once.
void set_report_status(pqxx::transaction_base& tx, const std::string& report_id,
                       const std::string& status);

// ---- webhook events ----------------------------------------------------------------------------

// Events about `object_id` received before this transaction began are taken care of.
void mark_events_processed(pqxx::transaction_base& tx, const std::string& object_id);

// How long ago the event arrived; nullopt when it is not held here.
std::optional<std::chrono::seconds> event_age(pqxx::transaction_base& tx,
                                              const std::string& event_id);

// The same for the events about a case and about each of its checks.
void mark_case_events_processed(pqxx::transaction_base& tx, const std::string& case_id);

}  // namespace archiver::archive::repository
