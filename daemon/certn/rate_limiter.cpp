#include "certn/rate_limiter.hpp"

#include <algorithm>
#include <stdexcept>

namespace archiver::certn {

turn_order::turn_order(ops::priority_settings settings) : settings_(settings) {}

std::uint64_t turn_order::next_turn(const std::vector<turn_waiter>& waiting,
                                    turn_clock::time_point now) {
  const turn_waiter* oldest_aged = nullptr;
  const turn_waiter* oldest_below_live = nullptr;
  const turn_waiter* most_urgent = nullptr;
  for (const turn_waiter& w : waiting) {
    if (now - w.since >= settings_.max_wait &&
        (oldest_aged == nullptr || w.ticket < oldest_aged->ticket)) {
      oldest_aged = &w;
    }
    if (w.priority != ops::priority::live &&
        (oldest_below_live == nullptr || w.ticket < oldest_below_live->ticket)) {
      oldest_below_live = &w;
    }
    if (most_urgent == nullptr || w.priority < most_urgent->priority ||
        (w.priority == most_urgent->priority && w.ticket < most_urgent->ticket)) {
      most_urgent = &w;
    }
  }
  const turn_waiter* chosen = most_urgent;
  if (oldest_aged != nullptr) {
    chosen = oldest_aged;
  } else if (oldest_below_live != nullptr && settings_.reserved_percent > 0 &&
             credit_ >= 100 - settings_.reserved_percent) {
    chosen = oldest_below_live;
    credit_ -= 100 - settings_.reserved_percent;
  }
  if (oldest_below_live == nullptr) {
    credit_ = 0;  // nothing below live waits: no credit is saved up for later
  } else if (chosen->priority == ops::priority::live) {
    // In hundredths of a turn: each live turn earns p, a turn below live costs 100 - p, so that
    // work below live gets p % of the turns.
    credit_ += settings_.reserved_percent;
  }
  return chosen->ticket;
}

rate_limiter::rate_limiter(int per_minute, int burst, const ops::clock& time,
                           ops::priority_settings priorities)
    : time_(time), order_(priorities) {
  if (per_minute < 1 || burst < 1) {
    throw std::invalid_argument("rate limiter: per_minute and burst must be at least 1");
  }
  interval_ = std::chrono::duration_cast<clock::duration>(std::chrono::minutes(1)) / per_minute;
  burst_tolerance_ = interval_ * (burst - 1);
}

rate_limiter::ticket rate_limiter::enter(ops::priority priority, clock::time_point now) {
  std::lock_guard lock(mutex_);
  const ticket mine = next_ticket_++;
  line_.push_back(line_entry{turn_waiter{mine, priority, now}, false});
  return mine;
}

// Generic cell rate algorithm as virtual scheduling: each turn occupies one interval after the
// previous one; a turn may start up to the burst tolerance before its slot. Free turns go to the
// waiters turn_order picks, not to whoever asks first.
std::optional<rate_limiter::clock::time_point> rate_limiter::try_take(ticket waiter,
                                                                      clock::time_point now) {
  std::lock_guard lock(mutex_);
  while (next_turn_end_ - burst_tolerance_ <= now) {
    std::vector<turn_waiter> waiting;
    for (const line_entry& entry : line_) {
      if (!entry.granted) {
        waiting.push_back(entry.waiter);
      }
    }
    if (waiting.empty()) {
      break;
    }
    const ticket chosen = order_.next_turn(waiting, now);
    for (line_entry& entry : line_) {
      if (entry.waiter.ticket == chosen) {
        entry.granted = true;
      }
    }
    next_turn_end_ = std::max(next_turn_end_, now) + interval_;
  }
  const auto mine = std::find_if(line_.begin(), line_.end(), [waiter](const line_entry& entry) {
    return entry.waiter.ticket == waiter;
  });
  if (mine == line_.end()) {
    throw std::logic_error("rate limiter: ticket " + std::to_string(waiter) + " is not waiting");
  }
  if (mine->granted) {
    line_.erase(mine);
    return std::nullopt;
  }
  return next_turn_end_ - burst_tolerance_;
}

void rate_limiter::leave(ticket waiter) {
  std::lock_guard lock(mutex_);
  std::erase_if(line_, [waiter](const line_entry& entry) { return entry.waiter.ticket == waiter; });
}

awaitable<rate_limiter::clock::duration> rate_limiter::acquire(ops::priority priority) {
  const clock::time_point started = time_.steady_now();
  // Leaves the line when the wait ends without a turn (the coroutine destroyed, cancelled).
  struct leave_on_exit {
    rate_limiter& limiter;
    ticket waiter;
    bool waiting = true;
    ~leave_on_exit() {
      if (waiting) {
        limiter.leave(waiter);
      }
    }
  };
  leave_on_exit line_place{*this, enter(priority, started)};
  const auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  // The timer counts real time; turns are judged on the limiter's clock.
  for (;;) {
    const clock::time_point now = time_.steady_now();
    const std::optional<clock::time_point> try_again = try_take(line_place.waiter, now);
    if (!try_again) {
      break;
    }
    timer.expires_after(*try_again - now);
    co_await timer.async_wait(asio::use_awaitable);
  }
  line_place.waiting = false;
  if (shared_.book) {
    const std::optional<clock::duration> shared_wait = co_await shared_.book();
    if (shared_wait && *shared_wait > clock::duration::zero()) {
      hold_locally_until(time_.steady_now() + *shared_wait);
      timer.expires_after(*shared_wait);
      co_await timer.async_wait(asio::use_awaitable);
    }
  }
  co_return time_.steady_now() - started;
}

void rate_limiter::hold_locally_until(clock::time_point until) {
  std::lock_guard lock(mutex_);
  // The next turn starts at `until` at the earliest, with no burst on top.
  next_turn_end_ = std::max(next_turn_end_, until + burst_tolerance_);
}

void rate_limiter::hold_until(clock::time_point until) {
  hold_locally_until(until);
  if (shared_.hold) {
    shared_.hold(std::max(clock::duration::zero(), until - time_.steady_now()));
  }
}

void rate_limiter::hold_for(clock::duration pause) { hold_until(time_.steady_now() + pause); }

}  // namespace archiver::certn
