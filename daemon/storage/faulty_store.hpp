// An object store that wraps another and injects faults on demand, as LevelDB's fault-injection
// Env does (db/fault_injection_test.cc): tests provoke a failed put, a slow write or a process
// dying mid-write without a full disk or a stopped server. For tests; the daemon never builds one.
//
// Every put and put_bytes is first counted; the plan then decides whether it is "selected"
// (plan.keys, all when empty) and, among the selected ones, which meet the fault (plan.nth: only
// the Nth selected since set_plan(), or every one). A selected put waits plan.delay first. The
// other operations (stage, read_digest, copy_to, remove, remove_stale_staging) go straight to
// the inner store; protect is recorded first (protect_calls()).
//
// Ownership: the inner store is borrowed and must outlive this one. Thread-safe: the plan and the
// counters sit behind a mutex that is never held across a suspension.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "storage/object_store.hpp"

namespace archiver::storage {

enum class fault {
  none,            // only the delay, if any
  fail_retryable,  // store_failure{retryable: true}, the inner store untouched
  fail_permanent,  // store_failure{retryable: false}, the inner store untouched
  // The process dies mid-write: the staging file is cut to half its bytes and left behind
  // (released, never fsynced), nothing reaches the key, the inner store is never called. The put
  // returns a retryable failure naming the staging file, which is what the queue makes of a real
  // crash (the lease expires, the job is rescued and run again). put_bytes stages and half-writes
  // a file of its own first, so that it leaves the same trace.
  crash,
};

struct fault_plan {
  std::function<bool(const std::string& key)> keys;  // which puts the plan applies to; empty: all
  std::uint64_t nth = 0;  // N >= 1: only the Nth selected put meets `what`; 0: every one does
  fault what = fault::none;
  std::chrono::milliseconds delay{0};  // every selected put waits this long (a slow disk)
};

// One protect() call, as the inner store was asked it.
struct protect_call {
  std::string key;
  object_protection protection;
};

// A `keys` matcher: the key contains `part`.
std::function<bool(const std::string& key)> key_contains(std::string part);

// Cumulative since construction (set_plan() does not reset them).
struct fault_counts {
  std::uint64_t attempted = 0;  // put + put_bytes calls
  std::uint64_t failed = 0;     // of those, returned a failure (injected, crashed or the inner's)
  std::uint64_t injected = 0;   // failures made here (fail_retryable, fail_permanent)
  std::uint64_t crashed = 0;    // crash points reached
  std::uint64_t delayed = 0;    // puts that waited plan.delay
};

class faulty_store final : public object_store {
 public:
  explicit faulty_store(object_store& inner);

  // Replaces the plan and restarts the count of selected puts that plan.nth refers to. Puts
  // already past their decision are not affected.
  void set_plan(fault_plan plan);
  void clear_plan() { set_plan({}); }
  fault_counts counts() const;
  // Every protect() call since construction, in order (protect is recorded, never faulted).
  std::vector<protect_call> protect_calls() const;

  // Forwarded to the inner store.
  std::unique_ptr<staged_file> stage(const std::string& key, std::uint64_t max_bytes) override;

  // Counted, delayed (a steady_timer on the caller's executor, never blocking a thread), then
  // failed, crashed or forwarded as the plan says. An injected failure leaves `file` untouched:
  // its destructor removes it, as after any failed put.
  awaitable<put_result> put(const std::string& key, staged_file& file,
                            const std::string& content_type,
                            const object_protection& protection) override;
  awaitable<put_result> put_bytes(const std::string& key, std::string bytes,
                                  const std::string& content_type,
                                  const object_protection& protection) override;

  awaitable<read_result> read_digest(const std::string& key) override;
  awaitable<read_result> copy_to(const std::string& key,
                                 const std::filesystem::path& destination) override;
  awaitable<remove_result> remove(const std::string& key) override;
  awaitable<list_result> list(const std::string& prefix) override;
  awaitable<std::optional<store_failure>> protect(const std::string& key,
                                                  const object_protection& protection) override;
  awaitable<std::optional<store_failure>> check_protection() override;
  awaitable<std::size_t> remove_stale_staging(std::chrono::seconds older_than) override;
  std::string describe() const override;  // "faulty <inner's description>"

 private:
  struct decision {
    fault what = fault::none;
    std::chrono::milliseconds delay{0};
  };
  decision decide(const std::string& key);
  void count_outcome(const put_result& result, fault what);

  object_store& inner_;
  mutable std::mutex mutex_;
  fault_plan plan_;
  std::uint64_t selected_ = 0;  // selected puts since set_plan()
  fault_counts counts_;
  std::vector<protect_call> protect_calls_;
};

}  // namespace archiver::storage
