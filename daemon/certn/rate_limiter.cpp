#include "certn/rate_limiter.hpp"

#include <algorithm>
#include <stdexcept>

namespace archiver::certn {

rate_limiter::rate_limiter(int per_minute, int burst, const ops::clock& time) : time_(time) {
  if (per_minute < 1 || burst < 1) {
    throw std::invalid_argument("rate limiter: per_minute and burst must be at least 1");
  }
  interval_ = std::chrono::duration_cast<clock::duration>(std::chrono::minutes(1)) / per_minute;
  burst_tolerance_ = interval_ * (burst - 1);
}

// Generic cell rate algorithm as virtual scheduling: each turn occupies one interval after the
// previous one; a turn may start up to the burst tolerance before its slot.
rate_limiter::clock::time_point rate_limiter::reserve(clock::time_point now) {
  std::lock_guard lock(mutex_);
  const clock::time_point slot_start = std::max(next_turn_end_, now);
  next_turn_end_ = slot_start + interval_;
  return std::max(now, slot_start - burst_tolerance_);
}

awaitable<rate_limiter::clock::duration> rate_limiter::acquire() {
  const clock::time_point now = time_.steady_now();
  const clock::time_point turn = reserve(now);
  const auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  // The timer counts real time; the wait is measured on the limiter's clock.
  if (turn > now) {
    timer.expires_after(turn - now);
    co_await timer.async_wait(asio::use_awaitable);
  }
  if (shared_.book) {
    const std::optional<clock::duration> shared_wait = co_await shared_.book();
    if (shared_wait && *shared_wait > clock::duration::zero()) {
      timer.expires_after(*shared_wait);
      co_await timer.async_wait(asio::use_awaitable);
    }
  }
  co_return time_.steady_now() - now;
}

void rate_limiter::hold_until(clock::time_point until) {
  {
    std::lock_guard lock(mutex_);
    // The next turn starts at `until` at the earliest, with no burst on top.
    next_turn_end_ = std::max(next_turn_end_, until + burst_tolerance_);
  }
  if (shared_.hold) {
    shared_.hold(std::max(clock::duration::zero(), until - time_.steady_now()));
  }
}

void rate_limiter::hold_for(clock::duration pause) { hold_until(time_.steady_now() + pause); }

}  // namespace archiver::certn
