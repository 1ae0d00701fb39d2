#include "db/pool.hpp"

#include <pqxx/pqxx>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace archiver::db {

namespace {

// A unit of work for a database thread, given that thread's connection slot.
using task = std::function<void(std::unique_ptr<pqxx::connection>&)>;

}  // namespace

struct pool::impl {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<task> tasks;
  bool stopping = false;
  std::vector<std::thread> threads;

  void thread_main() {
    std::unique_ptr<pqxx::connection> connection;  // this thread's, opened on first use
    for (;;) {
      task next;
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [this] { return stopping || !tasks.empty(); });
        if (tasks.empty()) {
          return;  // stopping, and all posted work is done
        }
        next = std::move(tasks.front());
        tasks.pop_front();
      }
      next(connection);
    }
  }
};

pool::pool(std::string conninfo, std::size_t threads, int connect_timeout_seconds)
    : conninfo_(with_connect_timeout(conninfo, connect_timeout_seconds)),
      impl_(std::make_unique<impl>()) {
  for (std::size_t i = 0; i < threads; ++i) {
    impl_->threads.emplace_back([this] { impl_->thread_main(); });
  }
}

pool::~pool() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  for (std::thread& thread : impl_->threads) {
    thread.join();
  }
}

awaitable<void> pool::run(std::function<void(pqxx::connection&)> work) {
  // A completion signature whose first argument is an exception_ptr makes use_awaitable rethrow
  // it in the awaiting coroutine.
  co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::exception_ptr)>(
      [this, &work](auto handler) {
        const auto executor = asio::get_associated_executor(handler);
        // Shared so that the task stays copyable for std::function; it runs exactly once.
        auto shared_handler = std::make_shared<decltype(handler)>(std::move(handler));
        task job = [this, &work, executor,
                    shared_handler](std::unique_ptr<pqxx::connection>& connection) {
          std::exception_ptr failure;
          ++in_use_;
          try {
            if (!connection || !connection->is_open()) {
              connection.reset();
              connection = std::make_unique<pqxx::connection>(conninfo_);
            }
            work(*connection);
          } catch (...) {
            failure = std::current_exception();
          }
          if (connection && !connection->is_open()) {
            connection.reset();  // reconnect on this thread's next job
          }
          --in_use_;
          // Resume the coroutine on its own executor, never on this database thread.
          asio::post(executor, [shared_handler, failure]() mutable {
            (*shared_handler)(failure);
          });
        };
        {
          std::lock_guard lock(impl_->mutex);
          impl_->tasks.push_back(std::move(job));
        }
        impl_->wake.notify_one();
      },
      asio::use_awaitable);
}

std::string with_connect_timeout(const std::string& conninfo, int seconds) {
  if (conninfo.find("connect_timeout") != std::string::npos) {
    return conninfo;
  }
  const std::string setting = "connect_timeout=" + std::to_string(seconds);
  const bool is_uri = conninfo.rfind("postgresql://", 0) == 0 || conninfo.rfind("postgres://", 0) == 0;
  if (!is_uri) {
    return conninfo.empty() ? setting : conninfo + " " + setting;
  }
  return conninfo + (conninfo.find('?') == std::string::npos ? "?" : "&") + setting;
}

}  // namespace archiver::db
