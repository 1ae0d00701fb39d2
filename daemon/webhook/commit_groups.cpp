#include "webhook/commit_groups.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "ops/logging.hpp"

namespace archiver::webhook {

// One event waiting for its group's commit. Touched on the io thread only: the database work gets
// copies of the records, never these.
struct commit_groups::waiting {
  waiting(asio::any_io_executor executor, event_record record,
          std::chrono::steady_clock::time_point deadline)
      : record(std::move(record)), deadline(deadline), signal(executor, deadline) {}

  event_record record;
  std::chrono::steady_clock::time_point deadline;
  // Expires at the deadline; cancelled when the outcome is known.
  asio::steady_timer signal;
  bool settled = false;
  bool abandoned = false;  // its caller answered without it; not worth storing if not started
  store_result result;
};

commit_groups::commit_groups(db::pool& database, int concurrent, int max_events,
                             ops::histogram_family& group_events, ops::gauge_family& waiting)
    : database_(database),
      concurrent_(std::max(concurrent, 1)),
      max_events_(std::max(max_events, 1)),
      group_events_(group_events),
      waiting_(waiting) {}

awaitable<store_outcome> commit_groups::store(event_record record,
                                              std::chrono::milliseconds wait) {
  const auto executor = co_await asio::this_coro::executor;
  auto item = std::make_shared<waiting>(executor, std::move(record),
                                        std::chrono::steady_clock::now() + wait);
  queue_.push_back(item);
  waiting_.set({}, static_cast<double>(queue_.size()));
  start_groups();
  error_code ec;
  co_await item->signal.async_wait(with_error(ec));
  if (!item->settled) {
    item->abandoned = true;
    throw db::deadline_exceeded("not committed within " + std::to_string(wait.count()) + " ms");
  }
  if (!item->result.outcome) {
    throw std::runtime_error(item->result.failure);
  }
  co_return *item->result.outcome;
}

void commit_groups::start_groups() {
  while (committing_ < concurrent_ && !queue_.empty()) {
    std::vector<std::shared_ptr<waiting>> group;
    while (!queue_.empty() && std::ssize(group) < max_events_) {
      if (!queue_.front()->abandoned) {
        group.push_back(queue_.front());
      }
      queue_.pop_front();
    }
    waiting_.set({}, static_cast<double>(queue_.size()));
    if (group.empty()) {
      return;
    }
    ++committing_;
    const auto executor = group.front()->signal.get_executor();
    asio::co_spawn(executor, commit(std::move(group)),
                   [this](std::exception_ptr error) {
                     if (error) {
                       ops::log_exception("webhook commit group", error);
                     }
                     --committing_;
                     start_groups();  // what arrived meanwhile
                   });
  }
}

awaitable<void> commit_groups::commit(std::vector<std::shared_ptr<waiting>> group) {
  group_events_.observe({}, static_cast<double>(group.size()));
  std::vector<event_record> records;
  auto last_deadline = group.front()->deadline;
  for (const auto& item : group) {
    records.push_back(item->record);
    last_deadline = std::max(last_deadline, item->deadline);
  }
  // Each event answers at its own deadline (its timer); the group is waited for until the last.
  const auto wait = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 last_deadline - std::chrono::steady_clock::now()),
                             std::chrono::milliseconds(1));
  std::vector<store_result> results;
  try {
    // Built apart from the co_await: see db::pool::query_within.
    std::function<std::vector<store_result>(pqxx::connection&)> store =
        [records = std::move(records)](pqxx::connection& conn) {
          return store_events(conn, records);
        };
    results = co_await database_.query_within<std::vector<store_result>>(wait, std::move(store));
  } catch (const std::exception& e) {
    results.assign(group.size(), store_result{std::nullopt, e.what()});
  }
  for (std::size_t i = 0; i < group.size(); ++i) {
    group[i]->result = i < results.size()
                           ? std::move(results[i])
                           : store_result{std::nullopt, "no result for this event of the group"};
    group[i]->settled = true;
    group[i]->signal.cancel();
  }
}

}  // namespace archiver::webhook
