#include "ops/recent_count.hpp"

namespace archiver::ops {

std::int64_t recent_count::minute_of(time_point t) {
  return std::chrono::duration_cast<std::chrono::minutes>(t.time_since_epoch()).count();
}

void recent_count::add(std::int64_t n, time_point now) {
  const std::int64_t minute = minute_of(now);
  const auto slot = static_cast<std::size_t>(((minute % window_minutes) + window_minutes) %
                                             window_minutes);
  std::lock_guard lock(mutex_);
  if (minutes_[slot] != minute) {
    minutes_[slot] = minute;  // the bucket held a minute that has left the window
    counts_[slot] = 0;
  }
  counts_[slot] += n;
}

std::int64_t recent_count::sum(time_point now) const {
  const std::int64_t minute = minute_of(now);
  std::lock_guard lock(mutex_);
  std::int64_t total = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    if (minutes_[i] > minute - window_minutes && minutes_[i] <= minute) {
      total += counts_[i];
    }
  }
  return total;
}

}  // namespace archiver::ops
