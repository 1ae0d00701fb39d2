#include "archive/policy.hpp"

#include <algorithm>
#include <cstdio>
#include <set>

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

std::string_view scope_name(reconcile_scope scope) {
  switch (scope) {
    case reconcile_scope::recent:
      return "recent";
    case reconcile_scope::window:
      return "window";
    case reconcile_scope::open_before:
      return "open_before";
    case reconcile_scope::open_old:
      return "open_old";
  }
  return "unknown";
}

namespace {

// The cases held open here with a status, ordered more than `newer_than` and fewer than
// `older_than` days ago (nullopt: no bound), and their statuses (sorted, each once).
void open_cases_between(const std::map<std::string, held_case>& held, int newer_than,
                        std::optional<int> older_than, reconcile_listing& listing) {
  std::set<std::string> statuses;
  for (const auto& [id, c] : held) {
    if (!c.open || c.status.empty() || !c.ordered_days_ago) {
      continue;
    }
    const int age = *c.ordered_days_ago;
    if (age > newer_than && (!older_than || age < *older_than)) {
      listing.expected.push_back(id);
      statuses.insert(c.status);
    }
  }
  listing.statuses.assign(statuses.begin(), statuses.end());
}

}  // namespace

std::vector<reconcile_listing> plan_reconcile(
    const std::string& today, const std::map<reconcile_scope, std::chrono::seconds>& since_last,
    const std::map<std::string, held_case>& held, const reconcile_settings& settings,
    bool targeted) {
  const auto due = [&](reconcile_scope scope, std::chrono::seconds every) {
    const auto found = since_last.find(scope);
    return found == since_last.end() || found->second >= every;
  };
  std::vector<reconcile_listing> out;
  if (targeted || due(reconcile_scope::window, settings.full_interval)) {
    reconcile_listing window;
    window.scope = reconcile_scope::window;
    window.ordered_after = days_before(today, settings.lookback_days);
    out.push_back(std::move(window));
  } else if (!settings.archive_statuses.empty()) {
    reconcile_listing recent;
    recent.scope = reconcile_scope::recent;
    recent.ordered_after = days_before(today, settings.recent_days);
    recent.statuses = settings.archive_statuses;
    out.push_back(std::move(recent));
  }
  if (targeted) {
    return out;
  }
  if (due(reconcile_scope::open_before, settings.recheck_open)) {
    reconcile_listing open;
    open.scope = reconcile_scope::open_before;
    open.ordered_after = days_before(today, settings.old_case_days);
    open.ordered_before = days_before(today, settings.lookback_days);
    open_cases_between(held, settings.lookback_days, settings.old_case_days, open);
    if (!open.expected.empty()) {
      out.push_back(std::move(open));
    }
  }
  if (due(reconcile_scope::open_old, settings.recheck_old)) {
    reconcile_listing old;
    old.scope = reconcile_scope::open_old;
    old.ordered_before = days_before(today, settings.old_case_days);
    open_cases_between(held, settings.old_case_days, std::nullopt, old);
    if (!old.expected.empty()) {
      out.push_back(std::move(old));
    }
  }
  return out;
}

std::vector<std::string> stale_after_listing(const reconcile_listing& listing,
                                             const std::vector<certn::case_record>& listed,
                                             const std::map<std::string, held_case>& held) {
  // Cases we never held are the window's business (and backfill's): an open scope lists by the
  // statuses of our old cases, and every old case of the account in those statuses would follow.
  const bool open_scope =
      listing.scope == reconcile_scope::open_before || listing.scope == reconcile_scope::open_old;
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const certn::case_record& c : listed) {
    seen.insert(c.id);
    const auto found = held.find(c.id);
    if (found == held.end() && open_scope) {
      continue;
    }
    if (listed_case_is_stale(c, found == held.end() ? nullptr : &found->second)) {
      out.push_back(c.id);
    }
  }
  for (const std::string& id : listing.expected) {
    if (!seen.count(id)) {
      out.push_back(id);
    }
  }
  return out;
}

namespace {

std::optional<std::chrono::sys_days> parse_date(std::string_view text) {
  if (text.size() < 10 || text[4] != '-' || text[7] != '-') {
    return std::nullopt;
  }
  const auto number = [&](std::size_t from, std::size_t count) -> std::optional<int> {
    int value = 0;
    for (std::size_t i = from; i < from + count; ++i) {
      if (text[i] < '0' || text[i] > '9') {
        return std::nullopt;
      }
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  const auto y = number(0, 4);
  const auto m = number(5, 2);
  const auto d = number(8, 2);
  if (!y || !m || !d) {
    return std::nullopt;
  }
  const std::chrono::year_month_day date{std::chrono::year(*y),
                                         std::chrono::month(static_cast<unsigned>(*m)),
                                         std::chrono::day(static_cast<unsigned>(*d))};
  if (!date.ok()) {
    return std::nullopt;
  }
  return std::chrono::sys_days(date);
}

std::string format_date(std::chrono::sys_days day) {
  const std::chrono::year_month_day date(day);
  char text[16];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()));
  return text;
}

}  // namespace

std::string days_before(const std::string& date, int days) {
  const auto day = parse_date(date);
  if (!day || date.size() != 10) {
    return "";
  }
  return format_date(*day - std::chrono::days(days));
}

std::optional<std::string> leading_date(std::string_view timestamp) {
  const auto day = parse_date(timestamp);
  if (!day || (timestamp.size() > 10 && timestamp[10] != 'T' && timestamp[10] != 't' &&
               timestamp[10] != ' ')) {
    return std::nullopt;
  }
  return format_date(*day);
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
