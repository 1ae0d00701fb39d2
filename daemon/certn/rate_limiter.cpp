#include "certn/rate_limiter.hpp"

#include <spdlog/spdlog.h>

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
  roll_budget_window();
  while (next_turn_end_ - burst_tolerance_ <= now) {
    // Only the classes the budget and the 429 throttle let through compete for the turn.
    std::vector<turn_waiter> waiting;
    for (const line_entry& entry : line_) {
      if (!entry.granted && budget_wait_of(entry.waiter.priority, now) == clock::duration::zero()) {
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
        charge(entry.waiter.priority, now);
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
  const clock::time_point next_free = next_turn_end_ - burst_tolerance_;
  const clock::duration held_back = budget_wait_of(mine->waiter.priority, now);
  if (held_back == clock::duration::zero()) {
    return next_free;
  }
  warn_if_spent(mine->waiter.priority, now, held_back);
  // The shared count and the window move on without us: look again within a minute.
  return std::max(next_free, now + std::min<clock::duration>(held_back, std::chrono::minutes(1)));
}

void rate_limiter::warn_if_spent(ops::priority priority, clock::time_point now,
                                 clock::duration held_back) {
  const bool waits_for_next_day =
      budget_.per_day > 0 && budget_used_ >= certn::budget_cap(priority, budget_);
  if (!waits_for_next_day ||
      (last_budget_warning_ && now - *last_budget_warning_ < std::chrono::hours(1))) {
    return;
  }
  last_budget_warning_ = now;
  spdlog::warn(
      "Certn daily budget: {} of {} calls used today (UTC), {} kept for live work; {} work waits "
      "until the day rolls over in {} min",
      budget_used_, budget_.per_day,
      budget_.per_day - certn::budget_cap(ops::priority::bulk, budget_), ops::name_of(priority),
      std::chrono::duration_cast<std::chrono::minutes>(held_back).count());
}

int rate_limiter::budget_cap(ops::priority priority) const {
  std::lock_guard lock(mutex_);
  return certn::budget_cap(priority, budget_);
}

void rate_limiter::set_budget(budget_settings budget) {
  std::lock_guard lock(mutex_);
  budget_ = budget;
}

rate_limiter::budget_view rate_limiter::budget() const {
  std::lock_guard lock(mutex_);
  return {budget_used_, budget_.per_day};
}

void rate_limiter::roll_budget_window() {
  const std::int64_t today =
      std::chrono::floor<std::chrono::days>(time_.wall_now()).time_since_epoch().count();
  if (today != budget_day_) {
    budget_day_ = today;
    budget_used_ = 0;
  }
}

rate_limiter::clock::duration rate_limiter::budget_wait_of(ops::priority priority,
                                                           clock::time_point now) const {
  const budget_facts facts{
      budget_used_,
      std::chrono::duration_cast<clock::duration>(left_in_utc_day(time_.wall_now())),
      last_bulk_turn_ ? now - *last_bulk_turn_ : clock::duration(std::chrono::hours(24 * 365))};
  return std::max({budget_wait(priority, budget_, facts),
                   throttled_until_[static_cast<std::size_t>(ops::index_of(priority))] - now,
                   retry_after_until_ - now});
}

void rate_limiter::charge(ops::priority priority, clock::time_point now) {
  ++budget_used_;
  if (priority == ops::priority::bulk) {
    last_bulk_turn_ = now;
  }
}

void rate_limiter::throttle(ops::priority priority) {
  std::lock_guard lock(mutex_);
  const clock::time_point now = time_.steady_now();
  for (int c = ops::index_of(priority); c < ops::priority_count; ++c) {
    const auto i = static_cast<std::size_t>(c);
    throttle_[i] = next_throttle(throttle_[i]);
    throttled_until_[i] = std::max(throttled_until_[i], now + throttle_[i]);
  }
  spdlog::warn("Certn answered 429 to {} work: it and less urgent work wait {} s", 
               ops::name_of(priority),
               throttle_[static_cast<std::size_t>(ops::index_of(priority))].count());
}

void rate_limiter::relieve(ops::priority priority) {
  std::lock_guard lock(mutex_);
  throttle_[static_cast<std::size_t>(ops::index_of(priority))] = std::chrono::seconds::zero();
}

void rate_limiter::leave(ticket waiter) {
  std::lock_guard lock(mutex_);
  std::erase_if(line_, [waiter](const line_entry& entry) { return entry.waiter.ticket == waiter; });
}

rate_limiter::clock::duration rate_limiter::held_back(ops::priority priority,
                                                      clock::time_point now) {
  std::lock_guard lock(mutex_);
  roll_budget_window();
  return budget_wait_of(priority, now);
}

awaitable<rate_limiter::turn> rate_limiter::acquire(ops::priority priority,
                                                    clock::duration give_up_after) {
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
    if (const clock::duration hold = held_back(priority, now); hold > give_up_after) {
      co_return turn{false, now - started, hold};  // leaves the line on the way out
    }
    timer.expires_after(*try_again - now);
    co_await timer.async_wait(asio::use_awaitable);
  }
  line_place.waiting = false;
  if (shared_.book) {
    const std::optional<shared_booking> booking =
        co_await shared_.book(budget_cap(priority), give_up_after);
    if (booking) {
      {
        std::lock_guard lock(mutex_);
        budget_used_ = booking->used_today;  // everyone's calls, ours included
      }
      if (!booking->charged && booking->wait > give_up_after) {
        // Another process's Retry-After: nothing booked, and no worker kept waiting for it.
        // Held here too, so that the next callers give up without asking the database.
        const clock::time_point now = time_.steady_now();
        hold_here_until(now + booking->wait);
        co_return turn{false, now - started, booking->wait};
      }
      if (!booking->charged) {
        // Other processes spent what this one still thought was left.
        const clock::time_point now = time_.steady_now();
        const clock::duration hold =
            std::max<clock::duration>(held_back(priority, now), std::chrono::seconds(1));
        {
          std::lock_guard lock(mutex_);
          warn_if_spent(priority, now, hold);
        }
        co_return turn{false, now - started, hold};
      }
      if (booking->wait > clock::duration::zero()) {
        hold_locally_until(time_.steady_now() + booking->wait);
        timer.expires_after(booking->wait);
        co_await timer.async_wait(asio::use_awaitable);
      }
    }
  }
  co_return turn{true, time_.steady_now() - started, clock::duration::zero()};
}

void rate_limiter::hold_locally_until(clock::time_point until) {
  std::lock_guard lock(mutex_);
  // The next turn starts at `until` at the earliest, with no burst on top.
  next_turn_end_ = std::max(next_turn_end_, until + burst_tolerance_);
}

void rate_limiter::hold_here_until(clock::time_point until) {
  hold_locally_until(until);
  std::lock_guard lock(mutex_);
  retry_after_until_ = std::max(retry_after_until_, until);
}

void rate_limiter::hold_until(clock::time_point until) {
  hold_here_until(until);
  if (shared_.hold) {
    shared_.hold(std::max(clock::duration::zero(), until - time_.steady_now()));
  }
}

void rate_limiter::hold_for(clock::duration pause) { hold_until(time_.steady_now() + pause); }

}  // namespace archiver::certn
