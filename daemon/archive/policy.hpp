// The archive's decisions, as pure functions from facts to decisions: no I/O, no SQL, no clock.
// The workflows (archive/workflows) gather the facts, call these, and carry out the result.
#pragma once

#include <chrono>
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
  std::chrono::seconds since_sync{0};  // since the case was last synced (large: never)
};

// A case still open here but ordered before reconcile's listing window is asked for again once
// `recheck` has passed since its last sync: cases abandoned in an applicant status never close,
// and asking for each of them at every reconcile would spend the day's quota on them.
bool unlisted_open_case_is_due(const held_case& held, std::chrono::seconds recheck);

// The class of a job of `kind` that a run of class `parent` enqueues. Fetching what Certn has
// made (fetch_report, archive_supplementary) is archive work, above the sync and bulk work that
// led to it, so that a case once started is finished before new ones start; unless the parent is
// live, whose follow-ups stay live. Every other follow-up keeps its parent's class.
ops::priority follow_up_priority(std::string_view kind, ops::priority parent);

// A listed case needs a sync when we never saw it, or its status or modified changed; a listed
// case without a status is always synced (the sync reads it whole).
bool listed_case_is_stale(const certn::case_record& listed, const held_case* held);

}  // namespace archiver::archive
