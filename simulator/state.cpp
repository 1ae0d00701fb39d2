#include "state.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>

#include "encoding/json.hpp"

namespace certn_sim {

using archiver::encoding::json_quote;
using archiver::encoding::json_writer;

namespace {

using namespace std::chrono;

constexpr std::array<std::string_view, 22> known_statuses = {
    "DRAFT", "CASE_ORDERED", "INVITE_UNDELIVERABLE", "APPLICANT_EXPIRED", "APPLICANT_INVITED",
    "APPLICANT_OPENED", "APPLICANT_STARTED", "APPLICANT_SUBMITTED", "IN_DISPUTE", "IN_PROGRESS",
    "APPLICANT_ACTION_REQUIRED", "CLIENT_ACTION_REQUIRED", "CANCELLED", "COMPLETE",
    "APPLICANT_DECLINED", "AWAITING_APPLICANT_SUBMISSION", "PENDING_FULFILLMENT",
    "SUBMITTED_TO_SOURCE", "MANUAL_REVIEW_SOURCE", "PENDING_QUALITY_REVIEW", "IN_QUALITY_REVIEW",
    "SUPERSEDED"};

// The check status a case status implies, or "" when it implies none (unknown statuses).
std::string_view check_status_for(std::string_view case_status) {
  if (case_status == "COMPLETE") {
    return "COMPLETE";
  }
  if (case_status == "CANCELLED") {
    return "CANCELLED";
  }
  if (case_status == "DRAFT" || case_status == "CASE_ORDERED" ||
      case_status == "INVITE_UNDELIVERABLE" || case_status == "APPLICANT_EXPIRED" ||
      case_status == "APPLICANT_INVITED" || case_status == "APPLICANT_OPENED" ||
      case_status == "APPLICANT_STARTED") {
    return "AWAITING_APPLICANT_SUBMISSION";
  }
  if (case_status == "APPLICANT_SUBMITTED") {
    return "PENDING_FULFILLMENT";
  }
  if (case_status == "IN_PROGRESS" || case_status == "IN_DISPUTE" ||
      case_status == "APPLICANT_ACTION_REQUIRED" || case_status == "CLIENT_ACTION_REQUIRED") {
    return "IN_PROGRESS";
  }
  return "";
}

bool contains(const std::vector<std::string>& values, std::string_view value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

bool iequal(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& ch : out) {
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  return out;
}

// Parses exactly `width` digits at text[pos], advancing pos.
bool read_digits(std::string_view text, std::size_t& pos, std::size_t width, int& out) {
  if (pos + width > text.size()) {
    return false;
  }
  out = 0;
  for (std::size_t i = 0; i < width; ++i) {
    const char ch = text[pos + i];
    if (ch < '0' || ch > '9') {
      return false;
    }
    out = out * 10 + (ch - '0');
  }
  pos += width;
  return true;
}

bool expect(std::string_view text, std::size_t& pos, char ch) {
  if (pos < text.size() && text[pos] == ch) {
    ++pos;
    return true;
  }
  return false;
}

}  // namespace

time_point now_utc() { return time_point_cast<microseconds>(system_clock::now()); }

bool is_closed_check_status(std::string_view status) {
  return status == "COMPLETE" || status == "CANCELLED" || status == "SUPERSEDED";
}

bool is_valid_status_name(std::string_view status) {
  if (std::find(known_statuses.begin(), known_statuses.end(), status) != known_statuses.end()) {
    return true;
  }
  return !status.empty() && status.size() <= 64 &&
         std::all_of(status.begin(), status.end(), [](char ch) {
           return (ch >= 'A' && ch <= 'Z') || ch == '_';
         });
}

std::string iso8601(time_point at) {
  const auto micros = at;
  const auto day = floor<days>(micros);
  const year_month_day date{day};
  const hh_mm_ss time{micros - day};
  char text[40];
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%06ldZ",
                static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                static_cast<unsigned>(date.day()), static_cast<int>(time.hours().count()),
                static_cast<int>(time.minutes().count()), static_cast<int>(time.seconds().count()),
                static_cast<long>(time.subseconds().count()));
  return text;
}

std::optional<time_point> parse_iso8601(std::string_view text, bool end_of_day) {
  std::size_t pos = 0;
  int y = 0, mo = 0, d = 0;
  if (!read_digits(text, pos, 4, y) || !expect(text, pos, '-') || !read_digits(text, pos, 2, mo) ||
      !expect(text, pos, '-') || !read_digits(text, pos, 2, d)) {
    return std::nullopt;
  }
  const year_month_day date{year{y}, month{static_cast<unsigned>(mo)},
                            day{static_cast<unsigned>(d)}};
  if (!date.ok()) {
    return std::nullopt;
  }
  const time_point midnight = sys_days{date};
  if (pos == text.size()) {
    return end_of_day ? midnight + days{1} - microseconds{1} : midnight;
  }
  int h = 0, mi = 0, s = 0;
  if (!(expect(text, pos, 'T') || expect(text, pos, ' ')) || !read_digits(text, pos, 2, h) ||
      !expect(text, pos, ':') || !read_digits(text, pos, 2, mi)) {
    return std::nullopt;
  }
  if (expect(text, pos, ':') && !read_digits(text, pos, 2, s)) {
    return std::nullopt;
  }
  if (h > 23 || mi > 59 || s > 60) {
    return std::nullopt;
  }
  microseconds fraction{0};
  if (expect(text, pos, '.')) {
    long scale = 100000;
    const std::size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      fraction += microseconds{(text[pos] - '0') * scale};
      scale /= 10;
      ++pos;
    }
    if (pos == start) {
      return std::nullopt;
    }
  }
  minutes offset{0};
  if (expect(text, pos, 'Z') || expect(text, pos, 'z')) {
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int oh = 0, om = 0;
    if (!read_digits(text, pos, 2, oh)) {
      return std::nullopt;
    }
    expect(text, pos, ':');
    if (!read_digits(text, pos, 2, om)) {
      return std::nullopt;
    }
    offset = minutes{sign * (oh * 60 + om)};
  }
  if (pos != text.size()) {
    return std::nullopt;
  }
  return midnight + hours{h} + minutes{mi} + seconds{s} + fraction - offset;
}

state::state(std::uint64_t seed) : random_(seed) {}

std::string state::new_id() {
  std::uint64_t high = random_();
  std::uint64_t low = random_();
  high = (high & ~0xF000ull) | 0x4000ull;                       // version 4
  low = (low & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // RFC 4122 variant
  char text[40];
  std::snprintf(text, sizeof text, "%08llx-%04llx-%04llx-%04llx-%012llx",
                static_cast<unsigned long long>(high >> 32),
                static_cast<unsigned long long>((high >> 16) & 0xFFFF),
                static_cast<unsigned long long>(high & 0xFFFF),
                static_cast<unsigned long long>(low >> 48),
                static_cast<unsigned long long>(low & 0xFFFFFFFFFFFFull));
  return text;
}

void state::add_file(check_record& check, std::uint64_t size, time_point now) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 3> kinds = {
      {{"pdf", "application/pdf"}, {"jpg", "image/jpeg"}, {"png", "image/png"}}};
  const std::size_t n = check.files.size();
  const auto& kind = kinds[n % kinds.size()];
  file_record file;
  file.id = new_id();
  file.name = lower(check.type) + "_" + std::to_string(n + 1) + "." + std::string(kind.first);
  file.content_type = kind.second;
  file.size = size;
  file.content_seed = random_();
  file.created = now;
  files_by_id_[file.id] = file;
  check.files.push_back(std::move(file));
}

case_record& state::create_case(const new_case& spec, time_point now, std::vector<event>& events) {
  auto record = std::make_unique<case_record>();
  case_record& c = *record;
  c.id = new_id();
  c.overall_status = "CASE_ORDERED";
  c.email_address = spec.email_address;
  c.group = spec.group;
  c.ordered_by = spec.ordered_by;
  c.tags = spec.tags;
  c.created = now;
  c.modified = now;
  for (const std::string& type : spec.check_types) {
    check_record check;
    check.id = new_id();
    check.type = type;
    check.status = "AWAITING_APPLICANT_SUBMISSION";
    check.created = now;
    check.modified = now;
    for (int i = 0; i < spec.files_per_check; ++i) {
      add_file(check, spec.file_size, now);
    }
    c.checks.push_back(std::move(check));
  }
  cases_by_id_[c.id] = &c;
  cases_.push_back(std::move(record));
  std::vector<event> ignored;
  set_status(c, spec.status, now, ignored);
  // A new case is one status change, whatever status it starts in.
  events.push_back({"CASE_STATUS_CHANGED", c.id, "CASE", ""});
  return c;
}

case_record* state::find_case(std::string_view id) {
  const auto found = cases_by_id_.find(std::string(id));
  return found == cases_by_id_.end() ? nullptr : found->second;
}

std::vector<const case_record*> state::list(const case_filter& filter) const {
  std::vector<const case_record*> out;
  for (auto it = cases_.rbegin(); it != cases_.rend(); ++it) {
    const case_record& c = **it;
    if (!filter.statuses.empty() && !contains(filter.statuses, c.overall_status)) {
      continue;
    }
    if (!filter.email_addresses.empty() &&
        std::none_of(filter.email_addresses.begin(), filter.email_addresses.end(),
                     [&](const std::string& e) { return iequal(e, c.email_address); })) {
      continue;
    }
    if (!filter.groups.empty() && !contains(filter.groups, c.group)) {
      continue;
    }
    if (!filter.ordered_by.empty() && !contains(filter.ordered_by, c.ordered_by)) {
      continue;
    }
    if (!filter.tags.empty() && std::none_of(c.tags.begin(), c.tags.end(), [&](const auto& tag) {
          return contains(filter.tags, tag);
        })) {
      continue;
    }
    if (!filter.check_types.empty() &&
        std::none_of(c.checks.begin(), c.checks.end(),
                     [&](const auto& check) { return contains(filter.check_types, check.type); })) {
      continue;
    }
    if (filter.created_after && c.created < *filter.created_after) {
      continue;
    }
    if (filter.created_before && c.created > *filter.created_before) {
      continue;
    }
    out.push_back(&c);
  }
  // Newest first; the reverse walk already orders equal timestamps newest-created first.
  std::stable_sort(out.begin(), out.end(), [](const case_record* a, const case_record* b) {
    return a->created > b->created;
  });
  return out;
}

void state::set_status(case_record& c, const std::string& status, time_point now,
                       std::vector<event>& events) {
  const bool case_changed = c.overall_status != status;
  c.overall_status = status;
  c.overall_score = status == "COMPLETE" ? std::optional<std::string>("CLEAR") : std::nullopt;
  const std::string_view implied = check_status_for(status);
  std::vector<event> check_events;
  if (!implied.empty()) {
    for (check_record& check : c.checks) {
      if (check.status == "SUPERSEDED" || check.status == implied) {
        continue;
      }
      // Closing (COMPLETE/CANCELLED) leaves already-closed checks as they are.
      if (is_closed_check_status(implied) && is_closed_check_status(check.status)) {
        continue;
      }
      check.status = implied;
      check.result = implied == "COMPLETE" ? std::optional<std::string>("CLEAR") : std::nullopt;
      check.modified = now;
      check_events.push_back({"CHECK_STATUS_CHANGED", c.id, "CASE", check.id});
    }
  }
  if (case_changed || !check_events.empty()) {
    c.modified = now;
  }
  if (case_changed) {
    events.push_back({"CASE_STATUS_CHANGED", c.id, "CASE", ""});
  }
  events.insert(events.end(), check_events.begin(), check_events.end());
}

bool state::can_cancel(const case_record& c) {
  if (c.overall_status == "COMPLETE" || c.overall_status == "CANCELLED") {
    return false;
  }
  return std::all_of(c.checks.begin(), c.checks.end(), [](const check_record& check) {
    return is_closed_check_status(check.status) ||
           check.status == "AWAITING_APPLICANT_SUBMISSION" ||
           check.status == "PENDING_FULFILLMENT";
  });
}

void state::reclose(case_record& c, std::uint64_t file_size, time_point now,
                    std::vector<event>& events) {
  ++c.revision;
  for (check_record& check : c.checks) {
    add_file(check, file_size, now);
  }
  set_status(c, "COMPLETE", now, events);
}

report_file& state::create_report(const case_record& c, time_point now) {
  report_file report;
  report.id = new_id();
  report.case_id = c.id;
  report.created = now;
  report.number = reports_by_id_.size();
  const std::string id = report.id;
  return reports_by_id_[id] = std::move(report);
}

report_file* state::find_report(std::string_view id) {
  const auto found = reports_by_id_.find(std::string(id));
  return found == reports_by_id_.end() ? nullptr : &found->second;
}

const file_record* state::find_file(std::string_view id) const {
  const auto found = files_by_id_.find(std::string(id));
  return found == files_by_id_.end() ? nullptr : &found->second;
}

std::string supplementary_information_json(const case_record& c, const check_record& check) {
  const std::string reference =
      "SIM-" + check.id.substr(0, 8) + "-R" + std::to_string(c.revision);
  json_writer out;
  out.begin_object();
  out.key("check_type").value(check.type);
  out.key("reference").value(reference);
  out.key("revision").number(c.revision);
  out.key("source").value("certn-sim");
  out.key("subject").begin_object();
  out.key("email_address").value(c.email_address);
  out.end_object();
  out.key("findings").begin_array();
  if (is_closed_check_status(check.status)) {
    out.begin_object();
    out.key("code").value(check.result.value_or(check.status));
    out.key("detail").value("Result of " + check.type + " (revision " +
                            std::to_string(c.revision) + ")");
    out.end_object();
  }
  out.end_array();
  out.end_object();
  return out.str();
}

}  // namespace certn_sim
