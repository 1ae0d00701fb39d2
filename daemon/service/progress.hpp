// A progress line for the long operator commands (backfill, verify, export): on stderr, only when
// stderr is a terminal, rewritten in place ("\r") at most five times a second and cleared at the
// end; piped or redirected, nothing, so logs and scripts see only the results.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace archiver::service {

class progress {
 public:
  // `what`: "verify: objects"; `total` 0 when unknown (then only the count shows).
  explicit progress(std::string what, std::uint64_t total = 0);
  ~progress();  // clears the line
  progress(const progress&) = delete;
  progress& operator=(const progress&) = delete;

  void set_total(std::uint64_t total) { total_ = total; }
  void update(std::uint64_t done);
  bool shown() const { return enabled_; }

 private:
  std::string what_;
  std::uint64_t total_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace archiver::service
