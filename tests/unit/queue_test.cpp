// The queue module's pure parts: how long the claim loop sleeps, when the workers give up
// recording an outcome, and when the lease keeper's heartbeat, depth refresh and prune are due.
// No database.
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "ops/clock.hpp"
#include "queue/worker.hpp"

using archiver::queue::claim_wait;
using archiver::queue::give_up_recording;
using archiver::queue::maintenance_schedule;
using namespace std::chrono_literals;

TEST_CASE("the claim loop sleeps until the next job enqueued for later is due, at most a poll") {
  struct row {
    std::optional<std::chrono::milliseconds> next_due;
    std::chrono::milliseconds wait;
  };
  const std::vector<row> rows = {
      {std::nullopt, 2000ms}, {0ms, 5ms},       {300ms, 305ms},
      {1995ms, 2000ms},       {1996ms, 2000ms}, {1h, 2000ms},
  };
  for (const auto& r : rows) {
    CAPTURE(r.next_due.value_or(-1ms).count());
    CHECK(claim_wait(2000ms, r.next_due) == r.wait);
  }
}

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

TEST_CASE("the lease keeper wakes every tenth of the lease, within 200 ms and 5 s") {
  struct row {
    std::chrono::seconds lease;
    std::chrono::milliseconds tick;
  };
  const std::vector<row> rows = {
      {1s, 200ms},   {2s, 200ms},   {3s, 300ms},  {10s, 1000ms},
      {50s, 5000ms}, {60s, 5000ms}, {1h, 5000ms},
  };
  const archiver::ops::manual_clock time;
  for (const row& r : rows) {
    CAPTURE(r.lease.count());
    CHECK(maintenance_schedule(r.lease, time.steady_now()).tick() == r.tick);
  }
}

TEST_CASE("the first heartbeat falls due a quarter of the lease after the start") {
  struct row {
    std::chrono::seconds lease;
    std::chrono::milliseconds first_heartbeat;
  };
  const std::vector<row> rows = {{1s, 250ms}, {10s, 2500ms}, {60s, 15s}, {1h, 15min}};
  for (const row& r : rows) {
    CAPTURE(r.lease.count());
    archiver::ops::manual_clock time;
    const maintenance_schedule schedule(r.lease, time.steady_now());
    time.advance(r.first_heartbeat - 1ns);
    CHECK_FALSE(schedule.due(time.steady_now(), true).heartbeat);
    time.advance(1ns);
    CHECK(schedule.due(time.steady_now(), true).heartbeat);
    CHECK_FALSE(schedule.due(time.steady_now(), false).heartbeat);  // no jobs, no heartbeat
  }
}

TEST_CASE(
    "heartbeat, depth refresh and prune fall due on their schedules, counted from the pass "
    "that did them") {
  // One pass of the loop a row, in order, with a 60 s lease (heartbeat every 15 s, depth every
  // 5 s, prune a minute after the start and then hourly). `done`: the pass did what was due (it
  // calls advance); otherwise the work failed and stays due.
  struct row {
    std::string what;
    std::chrono::milliseconds at;  // since the start
    bool jobs_running;
    bool heartbeat, depth, prune;  // expected due
    bool done = true;
  };
  const std::vector<row> rows = {
      {"at the start only the depth refresh", 0s, true, false, true, false},
      {"nothing before its time", 4999ms, true, false, false, false},
      {"the depth refresh 5 s after the last one", 5s, true, false, true, false},
      {"no heartbeat without running jobs", 15s, false, false, true, false},
      {"the missed heartbeat as soon as a job runs", 16s, true, true, false, false},
      {"the next heartbeat counts from that pass", 30s, true, false, true, false},
      {"a heartbeat that fails", 31s, true, true, false, false, false},
      {"stays due on the next pass", 32s, true, true, false, false},
      {"and then counts from the pass that did it", 46999ms, true, false, true, false},
      {"15 s after it", 47s, true, true, false, false},
      {"the first prune a minute after the start", 60s, false, false, true, true},
      {"a depth refresh that fails", 65s, false, false, true, false, false},
      {"stays due on the next pass, a second later", 66s, false, false, true, false},
      {"no prune again within the hour", 3659s, false, false, true, false},
      {"a prune that fails", 3660s, false, false, false, true, false},
      {"is retried on the next pass", 3661s, false, false, false, true},
      {"and the next one counts from that pass", 7260999ms, false, false, true, false},
      {"an hour after it", 7261s, false, false, false, true},
  };
  archiver::ops::manual_clock time;
  const auto start = time.steady_now();
  maintenance_schedule schedule(60s, start);
  for (const row& r : rows) {
    CAPTURE(r.what);
    REQUIRE(start + r.at >= time.steady_now());
    time.advance(start + r.at - time.steady_now());
    const auto now = time.steady_now();
    const maintenance_schedule::due_work due = schedule.due(now, r.jobs_running);
    CHECK(due.heartbeat == r.heartbeat);
    CHECK(due.depth == r.depth);
    CHECK(due.prune == r.prune);
    if (!r.done) {
      continue;
    }
    if (due.heartbeat) {
      schedule.advance(maintenance_schedule::work::heartbeat, now);
    }
    if (due.depth) {
      schedule.advance(maintenance_schedule::work::depth, now);
    }
    if (due.prune) {
      schedule.advance(maintenance_schedule::work::prune, now);
    }
  }
}
