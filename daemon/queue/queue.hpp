// The job queue's writing side used by intake: enqueue within the caller's transaction.
// Generic: knows nothing about Certn. Thread-safe (stateless); the transaction is the caller's.
#pragma once

#include <chrono>
#include <string>

#include <pqxx/transaction>

namespace archiver::queue {

struct job_spec {
  std::string kind;              // e.g. "sync_case"
  std::string key;               // what it is about; one pending job per (kind, key)
  std::string payload = "{}";    // JSON object
  int max_attempts = 10;
  std::chrono::seconds delay{0};  // run_at = now() + delay
};

enum class enqueue_outcome { enqueued, already_pending };

// Inserts the job unless a pending (queued or failed) job of the same (kind, key) exists; then it
// does nothing and says so. Notifies listeners on channel "archiver_jobs" at commit.
enqueue_outcome enqueue(pqxx::work& tx, const job_spec& job);

}  // namespace archiver::queue
