#include "records/retention.hpp"

#include <charconv>
#include <cstdio>
#include <stdexcept>

namespace archiver::records {

std::optional<keep_for> parse_keep_for(std::string_view text) {
  if (text == "forever") {
    return keep_for{0, 0, 0, true};
  }
  keep_for period;
  const std::string_view units = "ymd";
  std::size_t next_unit = 0;  // units must come in order, each at most once
  std::size_t at = 0;
  if (text.empty()) {
    return std::nullopt;
  }
  while (at < text.size()) {
    int value = 0;
    const auto [end, error] = std::from_chars(text.data() + at, text.data() + text.size(), value);
    if (error != std::errc() || end == text.data() + at || value < 0 || value > 10'000) {
      return std::nullopt;
    }
    at = static_cast<std::size_t>(end - text.data());
    if (at >= text.size()) {
      return std::nullopt;  // a number without its unit
    }
    const std::size_t unit = units.find(text[at], next_unit);
    if (unit == std::string_view::npos) {
      return std::nullopt;
    }
    (unit == 0 ? period.years : unit == 1 ? period.months : period.days) = value;
    next_unit = unit + 1;
    ++at;
  }
  return period;
}

std::string to_string(const keep_for& period) {
  if (period.forever) {
    return "forever";
  }
  std::string text;
  if (period.years > 0) {
    text += std::to_string(period.years) + "y";
  }
  if (period.months > 0) {
    text += std::to_string(period.months) + "m";
  }
  if (period.days > 0 || text.empty()) {
    text += std::to_string(period.days) + "d";
  }
  return text;
}

retention_policy parse_retention(const std::vector<std::string>& entries) {
  retention_policy policy;
  bool default_given = false;
  for (const std::string& entry : entries) {
    const std::size_t equals = entry.find('=');
    const std::string status = equals == std::string::npos ? "" : entry.substr(0, equals);
    if (status.empty()) {
      throw std::invalid_argument("\"" + entry + "\": expected STATUS=PERIOD (e.g. COMPLETE=6y)");
    }
    const std::optional<keep_for> period =
        parse_keep_for(std::string_view(entry).substr(equals + 1));
    if (!period) {
      throw std::invalid_argument("\"" + entry +
                                  "\": the period must be like 6y, 18m, 90d, 1y6m or forever");
    }
    if (status == "default") {
      if (default_given) {
        throw std::invalid_argument("\"" + entry + "\": default is given twice");
      }
      default_given = true;
      policy.otherwise = *period;
    } else if (!policy.by_status.emplace(status, *period).second) {
      throw std::invalid_argument("\"" + entry + "\": " + status + " is given twice");
    }
  }
  return policy;
}

std::string to_string(const retention_policy& policy) {
  std::string text;
  for (const auto& [status, period] : policy.by_status) {
    text += status + "=" + to_string(period) + " ";
  }
  return text + "default=" + to_string(policy.otherwise);
}

retention_rule rule_for(const retention_policy& policy, std::string_view status) {
  if (const auto found = policy.by_status.find(std::string(status));
      found != policy.by_status.end()) {
    return {found->second, found->first + "=" + to_string(found->second)};
  }
  return {policy.otherwise, "default=" + to_string(policy.otherwise)};
}

std::optional<utc_time> retain_until(utc_time closed_at, const keep_for& period) {
  using namespace std::chrono;
  if (period.forever) {
    return std::nullopt;
  }
  const sys_days day = floor<days>(closed_at);
  const auto time_of_day = closed_at - day;
  year_month_day date{day};
  year_month month_of = date.year() / date.month() + years(period.years) + months(period.months);
  year_month_day moved = month_of / date.day();
  if (!moved.ok()) {
    // The month is shorter: the first day of the next month, never a day early.
    moved = (month_of + months(1)) / 1d;
  }
  return sys_days(moved) + days(period.days) + time_of_day;
}

std::string to_iso8601(utc_time at) {
  using namespace std::chrono;
  const sys_days day = floor<days>(at);
  const year_month_day date{day};
  const hh_mm_ss<microseconds> time{at - day};
  char text[40];
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%06lldZ",
                static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                static_cast<unsigned>(date.day()), static_cast<int>(time.hours().count()),
                static_cast<int>(time.minutes().count()), static_cast<int>(time.seconds().count()),
                static_cast<long long>(time.subseconds().count()));
  return text;
}

}  // namespace archiver::records
