// What a job's handler says about one run (done, retry, throttled or permanent), apart from the
// workers that act on it, so that pure code deciding a verdict (retry/table.hpp) needs no
// Asio or database header. Plain value type.
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <utility>

namespace archiver::queue {

// What a handler says about one run. `retry_after`: the remote asked for at least this wait.
struct job_result {
  enum class kind { done, retry, permanent } what = kind::done;
  std::string error;  // retry/permanent: one line for last_error and the logs
  std::optional<std::chrono::seconds> retry_after;
  bool counts_as_attempt = true;  // false: the remote only asked us to wait (a 429)

  static job_result done() { return {}; }
  static job_result retry(std::string why, std::optional<std::chrono::seconds> after = {}) {
    return {kind::retry, std::move(why), after};
  }
  // Throttled: retried after `after` without using up one of max_attempts, so that a long storm
  // of 429s delays the job but never kills it.
  static job_result throttled(std::string why, std::optional<std::chrono::seconds> after) {
    return {kind::retry, std::move(why), after, false};
  }
  static job_result permanent(std::string why) {
    return {kind::permanent, std::move(why), {}, true};
  }

  // This verdict `elapsed` after it was reached: a wait the remote asked for counts from its
  // answer, so a run that worked on meanwhile (a verdict kept until the rest was done) owes
  // only what is left of it.
  job_result aged_by(std::chrono::seconds elapsed) const {
    job_result out = *this;
    if (out.retry_after) {
      out.retry_after = std::max(std::chrono::seconds::zero(), *out.retry_after - elapsed);
    }
    return out;
  }
};

}  // namespace archiver::queue
