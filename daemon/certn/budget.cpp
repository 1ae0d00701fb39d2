#include "certn/budget.hpp"

#include <algorithm>

namespace archiver::certn {

int budget_cap(ops::priority priority, const budget_settings& s) {
  if (s.per_day <= 0) {
    return 0;
  }
  return priority == ops::priority::live ? s.per_day
                                         : s.per_day - s.per_day * s.live_reserve_percent / 100;
}

std::chrono::steady_clock::duration budget_wait(ops::priority priority, const budget_settings& s,
                                                const budget_facts& f) {
  using duration = std::chrono::steady_clock::duration;
  if (s.per_day <= 0) {
    return duration::zero();
  }
  const int cap = budget_cap(priority, s);
  const duration until_rollover = std::max(f.left, duration::zero());
  if (f.used >= cap) {
    return until_rollover;
  }
  if (priority != ops::priority::bulk) {
    return duration::zero();
  }
  const duration pace = until_rollover / (cap - f.used);
  return std::max(duration::zero(), pace - f.since_last_bulk);
}

std::chrono::seconds next_throttle(std::chrono::seconds previous) {
  return std::clamp(previous * 2, std::chrono::seconds(5), std::chrono::seconds(300));
}

std::optional<double> budget_runs_out_at(int used, double hours_elapsed, int per_day) {
  if (per_day <= 0 || used <= 0 || hours_elapsed <= 0) {
    return std::nullopt;
  }
  const double at = per_day / (used / hours_elapsed);
  return at < 24.0 ? std::optional<double>(at) : std::nullopt;
}

backfill_estimate estimate_backfill(std::int64_t cases, const budget_settings& s) {
  backfill_estimate out;
  out.calls = std::max<std::int64_t>(0, cases) * calls_per_archived_case;
  const int usable = budget_cap(ops::priority::bulk, s);
  if (usable > 0) {
    out.days = static_cast<double>(out.calls) / usable;
  }
  return out;
}

std::chrono::system_clock::duration left_in_utc_day(std::chrono::system_clock::time_point now) {
  const auto day_start = std::chrono::floor<std::chrono::days>(now);
  return day_start + std::chrono::days(1) - now;
}

}  // namespace archiver::certn
