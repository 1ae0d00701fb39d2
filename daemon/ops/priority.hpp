// The priority classes of work, shared by the job queue (jobs.priority: workers claim by class,
// then run_at) and the Certn rate limiter (turns go by class), so that a live event's calls go
// first even when bulk jobs already wait for turns. Most urgent first; the numbers are stored.
#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <string_view>

namespace archiver::ops {

enum class priority : int {
  live = 0,     // asked for by a webhook event, or by an operator's command
  archive = 1,  // finishing what is known: reports and files to fetch, manifests to write
  sync = 2,     // reconcile's follow-ups
  bulk = 3,     // backfill
};

inline constexpr int priority_count = 4;
inline constexpr std::array<priority, priority_count> all_priorities = {
    priority::live, priority::archive, priority::sync, priority::bulk};

constexpr int index_of(priority p) { return static_cast<int>(p); }

// "live", "archive", "sync", "bulk": metrics labels and `status`.
constexpr std::string_view name_of(priority p) {
  constexpr std::array<std::string_view, priority_count> names = {"live", "archive", "sync",
                                                                  "bulk"};
  return names[static_cast<std::size_t>(index_of(p))];
}

// The class stored as `value`, or nullopt when it is none.
constexpr std::optional<priority> priority_of(int value) {
  if (value < 0 || value >= priority_count) {
    return std::nullopt;
  }
  return static_cast<priority>(value);
}

// How much of the scarce resources (workers, Certn turns) stays open to work below live while
// live work is steady, and how long anything may wait before it goes first whatever its class.
struct priority_settings {
  int reserved_percent = 10;  // 0: strict priority
  std::chrono::seconds max_wait{300};
};

}  // namespace archiver::ops
