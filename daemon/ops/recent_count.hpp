// How many events happened in the last window (e.g. Certn calls in the last hour), counted in
// one-minute buckets on the clock the caller passes: a gauge's source where Prometheus's
// increase() is not at hand (the calls per archived case over the last hour). Thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>

namespace archiver::ops {

class recent_count {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  static constexpr int window_minutes = 60;

  // Counts `n` events at `now`.
  void add(std::int64_t n, time_point now);
  // The events counted in the `window_minutes` minutes up to `now` (the current minute included,
  // the oldest one partly).
  std::int64_t sum(time_point now) const;

 private:
  static std::int64_t minute_of(time_point t);
  mutable std::mutex mutex_;
  std::array<std::int64_t, window_minutes> counts_{};
  std::array<std::int64_t, window_minutes> minutes_{};  // which minute each bucket holds
};

}  // namespace archiver::ops
