#include "ops/clock.hpp"

#include <cassert>

namespace archiver::ops {

namespace {

class system_clocks final : public clock {
 public:
  wall_time wall_now() const override { return std::chrono::system_clock::now(); }
  steady_time steady_now() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace

const clock& real_clock() {
  static const system_clocks instance;
  return instance;
}

manual_clock::manual_clock()
    : wall_(std::chrono::system_clock::now()), steady_(std::chrono::steady_clock::now()) {}

clock::wall_time manual_clock::wall_now() const {
  std::lock_guard lock(mutex_);
  return wall_;
}

clock::steady_time manual_clock::steady_now() const {
  std::lock_guard lock(mutex_);
  return steady_;
}

void manual_clock::advance(std::chrono::nanoseconds step) {
  assert(step.count() >= 0);
  std::lock_guard lock(mutex_);
  wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(step);
  steady_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(step);
}

void manual_clock::set_wall(wall_time now) {
  std::lock_guard lock(mutex_);
  wall_ = now;
}

}  // namespace archiver::ops
