// The client-side limit on Certn API calls (default 60 per minute): every worker of the process
// shares one limiter, so the account's limit holds however many jobs run at once. A 429 with
// Retry-After holds everyone back until that time. Thread-safe; waiting happens on the caller's
// executor, never blocking a thread.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>

#include "net/asio.hpp"
#include "ops/clock.hpp"

namespace archiver::certn {

class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;

  // `per_minute` calls a minute, evenly spaced, after a first burst of up to `burst` calls, on
  // `time`'s monotonic clock (which must outlive the limiter). Throws std::invalid_argument when
  // either number is below 1.
  explicit rate_limiter(int per_minute, int burst = 1, const ops::clock& time = ops::real_clock());

  // Books the caller's turn and returns when it may go (`now` when at once). Turns are handed
  // out first come, first served; a booked turn is never given back.
  clock::time_point reserve(clock::time_point now);

  // Waits (on the calling coroutine's executor) until the caller's turn; returns how long the
  // limiter made it wait (as the clock counts it).
  awaitable<clock::duration> acquire();

  // No turn before `until`: Certn said so with Retry-After.
  void hold_until(clock::time_point until);
  // No turn for `pause` from now.
  void hold_for(clock::duration pause);

  // A limit shared with other processes (service/shared_rate_limit), honoured after this
  // process's own. `book` returns how long the caller must still wait for its shared turn, or
  // nullopt when the shared limit cannot be reached (this process's limit then applies alone);
  // `hold` passes a Retry-After on (no shared turn for that long from now). Set before the first
  // acquire().
  struct shared_limit {
    std::function<awaitable<std::optional<clock::duration>>()> book;
    std::function<void(clock::duration from_now)> hold;
  };
  void share(shared_limit shared) { shared_ = std::move(shared); }

 private:
  const ops::clock& time_;
  shared_limit shared_;
  std::mutex mutex_;
  clock::duration interval_;
  clock::duration burst_tolerance_;   // (burst - 1) turns may go early
  clock::time_point next_turn_end_{};  // when the last booked turn's slot ends
};

}  // namespace archiver::certn
