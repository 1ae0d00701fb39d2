#include "archive/policy.hpp"

#include <algorithm>

namespace archiver::archive {

namespace {

bool one_of(std::string_view value, std::initializer_list<std::string_view> options) {
  return std::find(options.begin(), options.end(), value) != options.end();
}

}  // namespace

report_step decide_report(const certn::report_file& report) {
  const std::string_view status = report.status;
  if (one_of(status, {"FAILED", "ERROR", "CANCELLED"})) {
    return report_step::failed;
  }
  const bool ready = one_of(status, {"COMPLETE", "COMPLETED", "READY", "DONE", "SUCCESS"});
  if (ready) {
    return report.url ? report_step::download : report_step::no_url;
  }
  if (status.empty() && report.url) {
    return report_step::download;
  }
  return report_step::wait;
}

case_decision decide_case(const case_facts& facts) {
  case_decision out;
  out.record_status = !facts.known || facts.old_status != facts.new_status;
  const bool changed_while_closed = facts.was_closed && !facts.same_snapshot;
  out.archive = facts.archivable && (!facts.was_closed || changed_while_closed);
  return out;
}

bool sync_needs_fetch(const sync_facts& facts) {
  return !facts.event_driven || !facts.fetched_before || facts.event_since_fetch;
}

check_step decide_check(bool owner_known, std::optional<std::chrono::seconds> event_age,
                        std::chrono::seconds wait) {
  if (owner_known) {
    return check_step::sync_owner;
  }
  return event_age && *event_age < wait ? check_step::wait_for_case : check_step::reconcile;
}

manifest_step decide_manifest(int other_jobs_of_case, bool same_as_recorded) {
  if (other_jobs_of_case > 0) {
    return manifest_step::wait;
  }
  return same_as_recorded ? manifest_step::unchanged : manifest_step::write;
}

bool unlisted_open_case_is_due(const held_case& held, std::chrono::seconds recheck) {
  return held.open && held.since_sync >= recheck;
}

bool listed_case_is_stale(const certn::case_record& listed, const held_case* held) {
  if (held == nullptr || listed.overall_status.empty()) {
    return true;
  }
  return held->status != listed.overall_status || held->modified != listed.modified;
}

ops::priority follow_up_priority(std::string_view kind, ops::priority parent) {
  if (kind == "fetch_report" || kind == "archive_supplementary") {
    return std::min(parent, ops::priority::archive);
  }
  return parent;
}

bool is_archive_status(std::string_view status, const std::vector<std::string>& on_statuses) {
  return std::find(on_statuses.begin(), on_statuses.end(), status) != on_statuses.end();
}

}  // namespace archiver::archive
