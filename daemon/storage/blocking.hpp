// Runs blocking filesystem work (fsync, rename, hashing a file back) on a small pool of threads
// so that the io_context thread never waits on a disk. The awaiting coroutine resumes on its own
// executor, not on a pool thread. Thread-safe. Must outlive every coroutine awaiting run().
#pragma once

#include <cstddef>
#include <type_traits>

#include "net/asio.hpp"

namespace archiver::storage {

class blocking_pool {
 public:
  explicit blocking_pool(std::size_t threads);
  ~blocking_pool();  // waits for the work already posted
  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  // Calls `work()` on a pool thread and returns its result; an exception it throws is rethrown
  // in the awaiting coroutine. `work` may refer to the caller's locals: the caller is suspended
  // until it has returned.
  template <class Work>
  awaitable<std::invoke_result_t<Work&>> run(Work work) {
    using result = std::invoke_result_t<Work&>;
    // co_spawn's completion is dispatched to the handler's executor: use_awaitable's handler
    // belongs to the awaiting coroutine, so it resumes where it was.
    auto on_pool = [&work]() -> awaitable<result> {
      if constexpr (std::is_void_v<result>) {
        work();
        co_return;
      } else {
        co_return work();
      }
    };
    if constexpr (std::is_void_v<result>) {
      co_await asio::co_spawn(threads_.get_executor(), on_pool, asio::use_awaitable);
    } else {
      auto out = co_await asio::co_spawn(threads_.get_executor(), on_pool, asio::use_awaitable);
      co_return out;
    }
  }

 private:
  asio::thread_pool threads_;
};

}  // namespace archiver::storage
