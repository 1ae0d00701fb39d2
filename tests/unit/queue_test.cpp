// The queue module's pure parts: when the workers give up recording an outcome. No database.
#include <doctest/doctest.h>

#include <chrono>

#include "ops/clock.hpp"
#include "queue/worker.hpp"

using archiver::queue::give_up_recording;
using namespace std::chrono_literals;

TEST_CASE("an outcome that cannot be recorded is kept until its lease would have run out") {
  archiver::ops::manual_clock time;
  const auto finished = time.steady_now();
  CHECK_FALSE(give_up_recording(finished, 60s, time.steady_now()));
  time.advance(59s);
  CHECK_FALSE(give_up_recording(finished, 60s, time.steady_now()));
  time.advance(999ms);
  CHECK_FALSE(give_up_recording(finished, 60s, time.steady_now()));
  time.advance(1ms);  // exactly the lease: given up
  CHECK(give_up_recording(finished, 60s, time.steady_now()));
  time.advance(1h);
  CHECK(give_up_recording(finished, 60s, time.steady_now()));
  // A run that finished later has its own deadline.
  CHECK_FALSE(give_up_recording(time.steady_now(), 60s, time.steady_now()));
}
