// PostgreSQL access for coroutines: a fixed set of database threads, each owning one libpqxx
// connection (opened lazily, re-opened after it breaks). Work is posted to those threads and the
// awaiting coroutine resumes on its own executor, so the io_context never blocks on libpq.
// Thread-safe. Must outlive every coroutine awaiting run().
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <pqxx/connection>

#include "net/asio.hpp"

namespace archiver::db {

class pool {
 public:
  // `conninfo`: a libpq URI or key=value string; `connect_timeout_seconds`, and the TCP settings
  // of with_dead_connection_limit(`dead_connection_seconds`), are added where absent.
  pool(std::string conninfo, std::size_t threads, int connect_timeout_seconds,
       int dead_connection_seconds = 20);
  ~pool();  // stops the threads after the work already posted
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  // Runs `work` on a database thread with that thread's connection. An exception thrown by
  // `work` (pqxx::broken_connection when Postgres is down, sql_error, ...) is rethrown in the
  // awaiting coroutine. After a broken connection the thread reconnects on its next job.
  awaitable<void> run(std::function<void(pqxx::connection&)> work);

  // Convenience: run() returning a value.
  template <class T>
  awaitable<T> query(std::function<T(pqxx::connection&)> work) {
    std::optional<T> out;
    co_await run([&](pqxx::connection& c) { out.emplace(work(c)); });
    co_return std::move(*out);
  }

  std::size_t in_use() const noexcept { return in_use_.load(); }  // jobs running right now
  const std::string& conninfo() const noexcept { return conninfo_; }

 private:
  struct impl;
  std::string conninfo_;
  std::atomic<std::size_t> in_use_{0};
  std::unique_ptr<impl> impl_;
};

// `conninfo` with `key`=`value` added unless it already names `key` (in a URI's query string or
// as a key=value keyword). `value` must need no quoting or escaping.
std::string with_parameter(const std::string& conninfo, std::string_view key,
                           const std::string& value);

// `conninfo` with connect_timeout set to `seconds` unless it already names one.
std::string with_connect_timeout(const std::string& conninfo, int seconds);

// `conninfo` with TCP keepalives and tcp_user_timeout (each unless already named) such that a
// server that stops answering without closing the connection (a partition, a frozen VM) fails the
// connection's calls within about `seconds`, instead of the kernel's ~15 minutes. 0: unchanged.
std::string with_dead_connection_limit(const std::string& conninfo, int seconds);

}  // namespace archiver::db
