// Where the daemon reads the time: a webhook's timestamp tolerance, a SigV4 request date, the
// Certn rate limiter's turns and the workers' timing decisions (a run's duration, giving up an
// outcome that cannot be recorded, the heartbeat, depth and prune schedules, the drain deadline:
// queue/worker.hpp) ask a `clock` they were given, so that tests can use a manual_clock and move
// time on instead of sleeping. Timers that actually sleep stay asio's steady_timer. The job queue
// is the exception on purpose: run_at, leases and backoff are judged by PostgreSQL's now(), the
// one clock every replica shares (queue/queue.hpp).
#pragma once

#include <chrono>
#include <mutex>

namespace archiver::ops {

class clock {
 public:
  using wall_time = std::chrono::system_clock::time_point;
  using steady_time = std::chrono::steady_clock::time_point;

  virtual ~clock() = default;
  // Calendar time: for timestamps exchanged with others (webhook signatures, SigV4 dates).
  virtual wall_time wall_now() const = 0;
  // Monotonic time: for intervals and deadlines inside this process.
  virtual steady_time steady_now() const = 0;
};

// The operating system's clocks. Thread-safe; lives for the whole program.
const clock& real_clock();

// A clock that stands still until told to move (tests). Starts at the real time of its
// construction. Thread-safe: a test thread may advance it while the daemon's threads read it.
class manual_clock final : public clock {
 public:
  manual_clock();
  wall_time wall_now() const override;
  steady_time steady_now() const override;

  // Moves both clocks forward by `step` (REQUIRES: step >= 0).
  void advance(std::chrono::nanoseconds step);
  // Sets the calendar time alone, as a clock that is off would be (the monotonic one stays).
  void set_wall(wall_time now);

 private:
  mutable std::mutex mutex_;
  wall_time wall_;
  steady_time steady_;
};

}  // namespace archiver::ops
