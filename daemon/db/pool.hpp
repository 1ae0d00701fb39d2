// PostgreSQL access for coroutines: a fixed set of database threads, each owning one libpqxx
// connection (opened lazily, re-opened after it breaks). Work is posted to those threads and the
// awaiting coroutine resumes on its own executor, so the io_context never blocks on libpq.
// Every call ends within the pool's call limit, even against a server that accepts bytes and
// never answers (a frozen backend, a proxy that stopped forwarding): see pool_limits.
// Thread-safe. Must outlive every coroutine awaiting run().
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pqxx/connection>

#include "net/asio.hpp"

namespace archiver::db {

// What a pool adds to its connections' settings (see the constructor).
struct pool_limits {
  int dead_connection_seconds = 20;
  int statement_timeout_ms = 60'000;
  int lock_timeout_ms = 15'000;
  // A call not finished this long after it was submitted fails: not yet started, it never runs;
  // running, its connection is broken (the socket shut down, so libpq returns at once and the
  // thread reconnects on its next call). The server's statement_timeout cannot do this when the
  // server is what stopped answering. 0: no limit.
  int call_limit_ms = 0;
  // More settings for every session (name, value; plain words, no quoting needed).
  std::vector<std::pair<std::string, std::string>> session_settings;
};

// What an awaiting coroutine gets when a call ran out of time: the call limit, or the wait
// given to run_within().
class deadline_exceeded : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class pool {
 public:
  // `conninfo`: a libpq URI or key=value string; `connect_timeout_seconds`, the TCP settings of
  // with_dead_connection_limit(`dead_connection_seconds`) and the statement limits of
  // with_statement_limits are added where absent.
  pool(std::string conninfo, std::size_t threads, int connect_timeout_seconds,
       pool_limits limits = {});
  // Fails the calls not yet started, breaks the connections of those running, then joins the
  // threads: for after the io_context's stop, when no coroutine awaits them any more, and before
  // what their work refers to is destroyed. Idempotent; the destructor calls it.
  void stop();
  ~pool();
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

  // Like run(), but the awaiting coroutine stops waiting after `wait` and gets deadline_exceeded;
  // the work is then skipped if it has not started, or left to finish (within the call limit).
  // For callers that must answer in time whatever the database does (intake, readiness).
  // REQUIRES: `work` owns what it touches (captures by value): it may run after the awaiting
  // coroutine has gone. The awaiting coroutine's executor runs on one thread (or is a strand).
  awaitable<void> run_within(std::chrono::milliseconds wait,
                             std::function<void(pqxx::connection&)> work);

  // run_within() returning a value.
  template <class T>
  awaitable<T> query_within(std::chrono::milliseconds wait,
                            std::function<T(pqxx::connection&)> work) {
    auto out = std::make_shared<std::optional<T>>();
    // Built apart, not as a temporary of the co_await expression: GCC 12 may destroy such
    // temporaries twice (GCC PR 100611), harmless only for captures by reference.
    std::function<void(pqxx::connection&)> storing = storing_into(out, std::move(work));
    co_await run_within(wait, std::move(storing));
    co_return std::move(**out);
  }

  std::size_t in_use() const noexcept { return in_use_.load(); }  // jobs running right now
  std::size_t size() const noexcept { return size_; }              // threads (connections)
  const std::string& conninfo() const noexcept { return conninfo_; }

 private:
  template <class T>
  static std::function<void(pqxx::connection&)> storing_into(
      std::shared_ptr<std::optional<T>> out, std::function<T(pqxx::connection&)> work) {
    return [out = std::move(out), work = std::move(work)](pqxx::connection& c) {
      out->emplace(work(c));
    };
  }

  struct impl;
  std::size_t size_;
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

// `conninfo` with libpq `options` setting statement_timeout and lock_timeout (milliseconds; 0
// leaves one unset) and `more` settings for every statement of the connection, unless it names
// `options` already (then the server's or that value's settings apply). `more`'s names and values
// must be plain words (no spaces, quotes or backslashes).
std::string with_statement_limits(const std::string& conninfo, int statement_ms, int lock_ms,
                                  const std::vector<std::pair<std::string, std::string>>& more = {});

}  // namespace archiver::db
