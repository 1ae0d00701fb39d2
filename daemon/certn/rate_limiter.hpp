// The client-side limit on Certn API calls (default 60 per minute): every worker of the process
// shares one limiter, so the account's limit holds however many jobs run at once. A 429 with
// Retry-After holds everyone back until that time. Turns go by priority class (ops/priority.hpp):
// when a turn comes free, the waiter chosen by `next_turn` gets it, so a live call overtakes bulk
// calls that were already waiting; a reserved share of the turns still goes to the oldest waiter
// below live, and a waiter older than the maximum wait goes first. The day's budget
// (certn/budget.hpp) decides which classes may have turns at all, and a 429 holds its class back
// for a while. Thread-safe; waiting happens on the caller's executor, never blocking a thread.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "certn/budget.hpp"
#include "net/asio.hpp"
#include "ops/clock.hpp"
#include "ops/priority.hpp"

namespace archiver::certn {

using turn_clock = std::chrono::steady_clock;

// One caller waiting for a turn.
struct turn_waiter {
  std::uint64_t ticket = 0;  // in order of arrival
  ops::priority priority = ops::priority::live;
  turn_clock::time_point since;
};

// Who gets the next free turn. Pure but for its one piece of state, the reserve's credit: each
// turn given to live work while work below live waits earns that work `reserved_percent` of a
// turn (as a share of all turns); a whole credit gives the next turn to the oldest waiter below
// live. Not thread-safe.
class turn_order {
 public:
  explicit turn_order(ops::priority_settings settings = {});
  // The ticket of the waiter who gets the turn at `now`: the oldest waiter that has waited
  // `max_wait` or longer; else, with a whole credit, the oldest waiter below live; else the most
  // urgent class's oldest waiter. Updates the credit. REQUIRES: !waiting.empty().
  std::uint64_t next_turn(const std::vector<turn_waiter>& waiting, turn_clock::time_point now);

 private:
  ops::priority_settings settings_;
  int credit_ = 0;  // hundredths of a turn
};

class rate_limiter {
 public:
  using clock = turn_clock;
  using ticket = std::uint64_t;

  // `per_minute` calls a minute, evenly spaced, after a first burst of up to `burst` calls, on
  // `time`'s monotonic clock (which must outlive the limiter). Throws std::invalid_argument when
  // either number is below 1.
  explicit rate_limiter(int per_minute, int burst = 1, const ops::clock& time = ops::real_clock(),
                        ops::priority_settings priorities = {});

  // The steps of acquire(), for tests on a manual time line: enter the line; try to take a turn
  // (nullopt: taken, the caller has left the line; else the time to try again, when the next
  // turn comes free); leave the line without a turn (cancelled). Whenever turns are free, the
  // next try hands them to the waiters turn_order picks, whoever makes that try.
  ticket enter(ops::priority priority, clock::time_point now);
  std::optional<clock::time_point> try_take(ticket waiter, clock::time_point now);
  void leave(ticket waiter);

  // Waits (on the calling coroutine's executor) for a turn. A class that the day's budget or a
  // 429 holds back for longer than `give_up_after` gets no turn: acquire returns at once, not
  // granted, with how long the hold lasts, so that a job gives its worker back instead of
  // holding it until the day rolls over.
  struct turn {
    bool granted = true;
    clock::duration waited{};     // as the limiter's clock counts it
    clock::duration held_back{};  // not granted: how long the class is held back from now
  };
  awaitable<turn> acquire(ops::priority priority = ops::priority::live,
                          clock::duration give_up_after = std::chrono::seconds(30));
  // How long the day's budget, the 429 throttle and Certn's Retry-After hold `priority` back
  // from `now` (zero: not).
  clock::duration held_back(ops::priority priority, clock::time_point now);

  // Sets the day's budget (default: none). REQUIRES: before the first turn.
  void set_budget(budget_settings budget);
  // Calls charged to the day's budget in the current window (by every replica, as last heard
  // from the shared count), and when the window began.
  struct budget_view {
    int used = 0;
    int per_day = 0;  // 0: no daily budget
  };
  budget_view budget() const;

  // Certn answered a call of class `priority` with 429 and no Retry-After: that class and every
  // less urgent one get no turn for a while (next_throttle, growing while 429s repeat).
  void throttle(ops::priority priority);
  // A call of class `priority` went through: its class's throttle starts again from nothing.
  void relieve(ops::priority priority);

  // No turn before `until`: Certn said so with Retry-After. Every class counts as held back
  // until then (held_back), so that acquire gives up at once when that is beyond its
  // `give_up_after`.
  void hold_until(clock::time_point until);
  // No turn for `pause` from now.
  void hold_for(clock::duration pause);

  // A limit shared with other processes (service/shared_rate_limit), honoured after this
  // process's own. `book` returns how long the caller must still wait for its shared turn, or
  // nullopt when the shared limit cannot be reached (this process's limit then applies alone);
  // `hold` passes a Retry-After on (no shared turn for that long from now). Set before the first
  // acquire(). While a shared turn is awaited, this process gives out no turn either, so that its
  // waiters stay in its own priority order instead of queueing in the shared one.
  // `book(cap, max_wait)` also charges the call to the shared day's count. It books nothing
  // (`charged` false) when `cap` calls (0: no cap) are charged already, or when a Retry-After
  // passed on by `hold` lasts longer than `max_wait`: `wait` then says how long, and the caller
  // gives its job back to the queue as for a hold of its own. Its answer
  // carries the calls charged in the shared day so far, ours included: the shared count decides,
  // since this process's view of it is only as fresh as its last booking.
  struct shared_booking {
    clock::duration wait{};
    int used_today = 0;
    bool charged = true;
  };
  struct shared_limit {
    std::function<awaitable<std::optional<shared_booking>>(int cap, clock::duration max_wait)> book;
    std::function<void(clock::duration from_now)> hold;
  };
  void share(shared_limit shared) { shared_ = std::move(shared); }

 private:
  struct line_entry {
    turn_waiter waiter;
    bool granted = false;
  };
  void hold_locally_until(clock::time_point until);
  // A Retry-After in this process alone: no turn, and every class held back, until `until`.
  void hold_here_until(clock::time_point until);
  // The calls of the day after which `priority` gets no more (0: no budget).
  int budget_cap(ops::priority priority) const;
  // REQUIRES: mutex_ held.
  void roll_budget_window();
  clock::duration budget_wait_of(ops::priority priority, clock::time_point now) const;
  void charge(ops::priority priority, clock::time_point now);
  // Once an hour at most: work of `priority` waits for the next day (the budget is spent but
  // for what it may not use).
  void warn_if_spent(ops::priority priority, clock::time_point now, clock::duration held_back);

  const ops::clock& time_;
  shared_limit shared_;
  mutable std::mutex mutex_;
  clock::duration interval_;
  clock::duration burst_tolerance_;   // (burst - 1) turns may go early
  clock::time_point next_turn_end_{};  // when the last given turn's slot ends
  std::vector<line_entry> line_;
  ticket next_ticket_ = 1;
  turn_order order_;
  // The day's budget: calls charged in the window that began on `budget_day_` (days since the
  // epoch, UTC), this process's or, when known, everyone's.
  budget_settings budget_{.per_day = 0};
  int budget_used_ = 0;
  std::int64_t budget_day_ = -1;
  std::optional<clock::time_point> last_bulk_turn_;
  std::optional<clock::time_point> last_budget_warning_;
  std::array<clock::time_point, ops::priority_count> throttled_until_{};
  std::array<std::chrono::seconds, ops::priority_count> throttle_{};
  // Certn's last Retry-After: every class is held back until then (as by the budget), so that a
  // long one sends the jobs back to the queue rather than keep their workers waiting.
  clock::time_point retry_after_until_{};
};

}  // namespace archiver::certn
