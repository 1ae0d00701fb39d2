// The archive's decisions, as pure functions from facts to decisions: no I/O, no SQL, no clock.
// The workflows (archive/workflows) gather the facts, call these, and carry out the result.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "certn/model.hpp"
#include "ops/priority.hpp"

namespace archiver::archive {

// What to do with a report file's metadata (GET /cases/report-files/{id}/).
enum class report_step {
  wait,      // not ready yet: poll again later
  download,  // ready and has a URL
  failed,    // Certn says the report failed: a dead job
  no_url,    // ready but no URL under any accepted name: retried, then a dead job naming it
};

// COMPLETE (or COMPLETED, READY, DONE, SUCCESS) with a URL: download; FAILED (or ERROR,
// CANCELLED): failed; no status at all but a URL: download (the URL is the readiness); no status
// and no URL, or any other status: wait.
report_step decide_report(const certn::report_file& report);

// True when `status` is one of `on_statuses` (archive.on_statuses), exactly as written.
bool is_archive_status(std::string_view status, const std::vector<std::string>& on_statuses);

// What sync_case learns from comparing the case as fetched with what we held.
struct case_facts {
  bool known = false;            // we held this case before
  bool was_closed = false;       // closed_at was set
  bool same_snapshot = false;    // the fetched body equals the stored snapshot (as JSON)
  std::string old_status;
  std::string new_status;
  bool archivable = false;       // new_status is one of archive.on_statuses
};

struct case_decision {
  bool record_status = false;    // a new case_status_history row
  bool archive = false;          // request the report and the supplementary data now
};

// A case is archived when it enters an archive status, and again when it was closed and its
// content changed (a dispute reopened and closed it between two syncs, or we missed the
// reopening event).
case_decision decide_case(const case_facts& facts);

// What sync_case knows before it spends a Certn call on the case.
struct sync_facts {
  bool event_driven = false;        // a webhook event asked for it (not reconcile, backfill, CLI)
  bool fetched_before = false;      // a GET of this case started and was saved earlier
  bool event_since_fetch = false;   // an event about the case or its checks arrived at or after
                                    // the start of that GET
};

// GET the case unless every event that asked for this sync arrived before the last GET started:
// that answer already showed what they announced (a burst of events for one case while a sync
// ran, duplicates). Syncs not driven by events (reconcile found a change, backfill, an
// operator) always fetch.
bool sync_needs_fetch(const sync_facts& facts);

// What check_changed does with an event about a check.
enum class check_step {
  sync_owner,     // the check's case is held here: sync it
  wait_for_case,  // not yet: the case's own event, sent with its checks', usually maps it soon
  reconcile,      // still unknown: list recent cases to find it (a Certn call)
};
// `event_age`: how long ago the check's event arrived; nullopt when no event is known (a job
// enqueued by hand, an event pruned): nothing to wait for.
check_step decide_check(bool owner_known, std::optional<std::chrono::seconds> event_age,
                        std::chrono::seconds wait);

// What write_manifest does.
enum class manifest_step {
  wait,       // other archive jobs of the case are pending or running: write once they are done
  unchanged,  // the manifest recorded has exactly this content: no write
  write,
};
manifest_step decide_manifest(int other_jobs_of_case, bool same_as_recorded);

// What reconcile holds about a case.
struct held_case {
  std::string status;
  std::string modified;  // Certn's "modified" (any accepted name), "" when it had none
  bool open = false;
  std::chrono::seconds since_sync{0};   // since the case was last synced (large: never)
  std::optional<int> ordered_days_ago;  // from Certn's "created"; nullopt when it had none
};

// Reconcile finds what webhooks missed by listing cases, so that a run costs list pages, not a GET
// per case. It lists in four ways ("scopes"), each at its own pace:
enum class reconcile_scope {
  recent,       // cases ordered in the last recent_days that are in an archive status: every
                // run. Finds a missed completion within one interval; open cases cost nothing.
  window,       // every case ordered in the last lookback_days: every full_interval. Status and
                // "modified" are compared, so open-status changes and disputes are found too.
  open_before,  // cases open here ordered lookback_days to old_case_days ago, listed with the
                // statuses we hold for them: every recheck_open (daily)
  open_old,     // the same for cases ordered before old_case_days: every recheck_old (weekly)
};
std::string_view scope_name(reconcile_scope scope);

struct reconcile_settings {
  int recent_days = 3;
  int lookback_days = 30;
  int old_case_days = 90;
  std::chrono::seconds full_interval{21'600};
  std::chrono::seconds recheck_open{86'400};
  std::chrono::seconds recheck_old{604'800};
  std::vector<std::string> archive_statuses;  // archive.on_statuses
};

// One listing of a run: the scope, and what GET /cases/ is asked for (order_timeframe_after and
// _before as UTC dates, overall_status). `expected`: for the open scopes, the cases held open here
// that were ordered inside the timeframe; one that is not listed has left the statuses we hold for
// it, so it is synced.
struct reconcile_listing {
  reconcile_scope scope = reconcile_scope::recent;
  std::optional<std::string> ordered_after;
  std::optional<std::string> ordered_before;
  std::vector<std::string> statuses;  // empty: any
  std::vector<std::string> expected;
};

// The listings a run makes, in order. `today`: the UTC date "YYYY-MM-DD" (the database's clock);
// `since_last`: how long ago each scope last completed (absent: never). A targeted run (an event
// named a check we do not know) lists the window only. A window listing makes the recent one
// needless; an open scope with no case held open in its timeframe costs nothing and is left out.
std::vector<reconcile_listing> plan_reconcile(
    const std::string& today, const std::map<reconcile_scope, std::chrono::seconds>& since_last,
    const std::map<std::string, held_case>& held, const reconcile_settings& settings,
    bool targeted);

// The cases a listing shows need syncing: those listed and stale (listed_case_is_stale), and,
// for an open scope, those expected but not listed.
std::vector<std::string> stale_after_listing(const reconcile_listing& listing,
                                             const std::vector<certn::case_record>& listed,
                                             const std::map<std::string, held_case>& held);

// Cases open here that no scope can find (no order date, or no status, from Certn) are asked
// for one by one, once `recheck` has passed since their last sync.
bool unlisted_open_case_is_due(const held_case& held, std::chrono::seconds recheck);

// "YYYY-MM-DD" of the date `days` before `date` ("YYYY-MM-DD"); "" when `date` is not one. Pure.
std::string days_before(const std::string& date, int days);

// The UTC date that an ISO 8601 timestamp or date begins with ("2026-11-30T08:00:00Z" gives
// "2026-11-30"); nullopt when it does not begin with a valid date. Pure.
std::optional<std::string> leading_date(std::string_view timestamp);

// The class of a job of `kind` that a run of class `parent` enqueues. Fetching what Certn has
// made (fetch_report, archive_supplementary) is archive work, above the sync and bulk work that
// led to it, so that a case once started is finished before new ones start; unless the parent is
// live, whose follow-ups stay live. Every other follow-up keeps its parent's class.
ops::priority follow_up_priority(std::string_view kind, ops::priority parent);

// A listed case needs a sync when we never saw it, or its status or modified changed; a listed
// case without a status is always synced (the sync reads it whole).
bool listed_case_is_stale(const certn::case_record& listed, const held_case* held);

}  // namespace archiver::archive
