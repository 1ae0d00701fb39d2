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

bool listed_case_is_stale(const certn::case_record& listed, const held_case* held) {
  if (held == nullptr || listed.overall_status.empty()) {
    return true;
  }
  return held->status != listed.overall_status || held->modified != listed.modified;
}

bool is_archive_status(std::string_view status, const std::vector<std::string>& on_statuses) {
  return std::find(on_statuses.begin(), on_statuses.end(), status) != on_statuses.end();
}

}  // namespace archiver::archive
