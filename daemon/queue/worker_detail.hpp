// Internal to queue/: what the parts of the workers (worker.cpp, worker_lease.cpp,
// worker_outcome.cpp) share. Not to be included outside daemon/queue.
#pragma once

#include <string>

#include "ops/clock.hpp"
#include "queue/queue.hpp"
#include "queue/worker.hpp"

namespace archiver::queue {

// A run's outcome waiting to be recorded. `finished`: when the handler returned; the outcome is
// kept for recording until the lease would have run out (give_up_recording).
struct workers::pending_outcome {
  claimed_job job;
  outcome decided;
  ops::clock::steady_time started;
  ops::clock::steady_time finished;
};

namespace worker_detail {

// --- worker.cpp

// `text` on one line (line breaks as spaces, no trailing blanks): for logs and last_error.
std::string one_line(std::string text);

// --- worker_outcome.cpp

// The one place a handler's verdict becomes a queue outcome (a retry's delay: retry_delay with
// jitter).
outcome decide(const job_result& result, const claimed_job& job, const worker_settings& s);

}  // namespace worker_detail

}  // namespace archiver::queue
