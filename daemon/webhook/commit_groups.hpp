// Group commit for webhook intake: events that arrive while the database is busy committing wait
// and are then stored together, in one transaction (store_events), so that a burst costs one WAL
// flush per group instead of one per event. Alone, an event is committed at once: grouping only
// happens under load, and adds no wait of its own.
// Runs on one io_context thread (not thread-safe); the database work runs on `database`'s threads.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <vector>

#include "db/pool.hpp"
#include "net/asio.hpp"
#include "ops/metrics.hpp"
#include "webhook/store.hpp"

namespace archiver::webhook {

class commit_groups {
 public:
  // At most `concurrent` groups are being committed at once (no more than the pool has
  // connections: more would only wait for one), of at most `max_events` events each (1: one
  // transaction per event). `group_events` observes each group's size, `waiting` counts the events waiting
  // for a group to start. `database` and the metrics must outlive every store().
  commit_groups(db::pool& database, int concurrent, int max_events,
                ops::histogram_family& group_events, ops::gauge_family& waiting);

  // Stores `record` in the next group and returns its outcome once that group has committed.
  // Throws when it was not stored: the group failed (the database's error), or no commit came
  // within `wait` (db::deadline_exceeded; the group may still commit, so a retry of the event can
  // find a duplicate).
  awaitable<store_outcome> store(event_record record, std::chrono::milliseconds wait);

 private:
  struct waiting;
  void start_groups();
  awaitable<void> commit(std::vector<std::shared_ptr<waiting>> group);

  db::pool& database_;
  int concurrent_;
  int max_events_;
  ops::histogram_family& group_events_;
  ops::gauge_family& waiting_;
  std::deque<std::shared_ptr<waiting>> queue_;
  int committing_ = 0;
};

}  // namespace archiver::webhook
