#include "db/pool.hpp"

#include <pqxx/pqxx>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

namespace archiver::db {

namespace {

using steady = std::chrono::steady_clock;

// The one-shot resumption of a call's awaiting coroutine. The database thread (the work done,
// failed or refused) and, for run_within(), the wait's timer race for it: the first to claim it
// resumes the coroutine; the other does nothing.
class call {
 public:
  virtual ~call() = default;
  bool claim() noexcept { return !claimed_.exchange(true); }
  bool claimed() const noexcept { return claimed_.load(); }
  // Posts the coroutine's resumption to its executor with `failure` (null on success).
  // REQUIRES: claim() returned true to this caller.
  virtual void resume(std::exception_ptr failure) = 0;

 private:
  std::atomic<bool> claimed_{false};
};

template <class Handler>
class call_for final : public call, public std::enable_shared_from_this<call_for<Handler>> {
 public:
  explicit call_for(Handler handler)
      : handler_(std::move(handler)),
        // Keeps the awaiting side's executor from running out of work while the call is away.
        work_(asio::prefer(asio::get_associated_executor(handler_),
                           asio::execution::outstanding_work.tracked)) {}

  // On the awaiting coroutine's executor, before the call is submitted. The timer is touched
  // only there (here, in its handler and in resume's posted function), and gone once its
  // handler has run, so the database thread never destroys a live timer.
  void start_timer(std::chrono::milliseconds wait) {
    timer_.emplace(asio::get_associated_executor(handler_), wait);
    timer_->async_wait([self = this->shared_from_this(), wait](const error_code& ec) {
      if (!ec && self->claim()) {
        self->resume(std::make_exception_ptr(deadline_exceeded(
            "no answer from the database within " + std::to_string(wait.count()) + " ms")));
      }
      self->timer_.reset();
    });
  }

  void resume(std::exception_ptr failure) override {
    // The coroutine resumes on its own executor, never on the database thread.
    asio::post(*work_, [self = this->shared_from_this(), handler = std::move(handler_),
                        failure]() mutable {
      if (self->timer_) {
        self->timer_->cancel();
      }
      handler(failure);
    });
    // The posted function holds the executor's work now; an abandoned call's work, still
    // running, must not keep the io_context from running out of work.
    work_.reset();
  }

 private:
  Handler handler_;
  std::optional<decltype(asio::prefer(std::declval<asio::associated_executor_t<Handler>>(),
                                      asio::execution::outstanding_work.tracked))>
      work_;
  std::optional<asio::steady_timer> timer_;
};

struct job {
  std::function<void(pqxx::connection&)> work;
  std::shared_ptr<call> done;
  steady::time_point expires;  // the call limit; time_point::max() without one
};

// Resumes `ended`'s coroutine with `failure` (null: success), unless its wait has run out.
void finish(job& ended, std::exception_ptr failure) {
  if (ended.done->claim()) {
    ended.done->resume(std::move(failure));
  }
}

// What one thread's call is doing, for the watchdog and the destructor.
struct running_call {
  std::mutex mutex;
  int socket = -1;  // the connection's socket while a call runs; -1 otherwise
  steady::time_point expires;
  bool broken = false;  // its socket was shut down
};

std::exception_ptr shutting_down() {
  return std::make_exception_ptr(std::logic_error("the database pool is shutting down"));
}

}  // namespace

// The queue, the threads and the watchdog. `jobs` is guarded by `mutex`; each running_call by
// its own; `threads`, `calls` and `watchdog` are touched only by the constructor and destructor.
// Lock order: `mutex`, then a running_call's.
struct pool::impl {
  impl(const std::string& conninfo, std::atomic<std::size_t>& in_use, int call_limit_ms)
      : conninfo(conninfo), in_use(in_use), call_limit(call_limit_ms) {}

  const std::string& conninfo;
  std::atomic<std::size_t>& in_use;
  const std::chrono::milliseconds call_limit;
  std::mutex mutex;
  std::condition_variable wake;           // the database threads'
  std::condition_variable watchdog_wake;  // the watchdog's (a notify_one must reach a thread)
  std::deque<job> jobs;
  std::atomic<bool> stopping{false};
  std::vector<std::unique_ptr<running_call>> calls;  // one per thread
  std::vector<std::thread> threads;
  std::thread watchdog;

  awaitable<void> call(std::function<void(pqxx::connection&)> work,
                       std::optional<std::chrono::milliseconds> wait) {
    // A completion signature whose first argument is an exception_ptr makes use_awaitable
    // rethrow it in the awaiting coroutine after it has resumed on its own executor.
    co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr)>(
        [this, wait](auto&& handler, std::function<void(pqxx::connection&)> w) {
          using handler_type = std::decay_t<decltype(handler)>;
          auto done =
              std::make_shared<call_for<handler_type>>(std::forward<decltype(handler)>(handler));
          if (wait) {
            done->start_timer(*wait);
          }
          submit(job{std::move(w), std::move(done),
                     call_limit.count() > 0 ? steady::now() + call_limit
                                            : steady::time_point::max()});
        },
        asio::use_awaitable, std::move(work));
  }

  void submit(job next) {
    {
      std::lock_guard lock(mutex);
      if (!stopping) {
        jobs.push_back(std::move(next));
        next.done = nullptr;
      }
    }
    if (next.done) {
      finish(next, shutting_down());
      return;
    }
    wake.notify_one();
  }

  void start(std::size_t thread_count) {
    for (std::size_t i = 0; i < thread_count; ++i) {
      calls.push_back(std::make_unique<running_call>());
    }
    for (std::size_t i = 0; i < thread_count; ++i) {
      threads.emplace_back([this, i] { thread_main(*calls[i]); });
    }
    if (call_limit.count() > 0) {
      watchdog = std::thread([this] { watchdog_main(); });
    }
  }

  void stop_and_join() {
    std::deque<job> unstarted;
    {
      std::lock_guard lock(mutex);
      stopping = true;
      unstarted.swap(jobs);
    }
    wake.notify_all();
    watchdog_wake.notify_all();
    for (job& refused : unstarted) {
      finish(refused, shutting_down());
    }
    // Threads stuck on a server that does not answer would otherwise keep the join waiting.
    for (const auto& running : calls) {
      break_connection(*running, [](const running_call&) { return true; });
    }
    for (std::thread& thread : threads) {
      thread.join();
    }
    threads.clear();
    if (watchdog.joinable()) {
      watchdog.join();
    }
  }

  // Shuts down the socket of `running`'s call, if one runs and `when` says so. Returns whether
  // it did. Closing is left to the owning thread, so the descriptor cannot be reused meanwhile.
  template <class Predicate>
  static bool break_connection(running_call& running, Predicate when) {
    std::lock_guard lock(running.mutex);
    if (running.socket < 0 || running.broken || !when(running)) {
      return false;
    }
    ::shutdown(running.socket, SHUT_RDWR);
    running.broken = true;
    return true;
  }

  void watchdog_main() {
    const auto tick = std::clamp(call_limit / 4, std::chrono::milliseconds(10),
                                 std::chrono::milliseconds(1000));
    std::unique_lock lock(mutex);
    while (!stopping) {
      watchdog_wake.wait_for(lock, tick);
      const auto now = steady::now();
      std::vector<job> expired;
      for (auto it = jobs.begin(); it != jobs.end();) {
        if (it->expires <= now) {
          expired.push_back(std::move(*it));
          it = jobs.erase(it);
        } else {
          ++it;
        }
      }
      lock.unlock();
      for (job& late : expired) {
        finish(late, std::make_exception_ptr(deadline_exceeded(
                       "no database connection free within " +
                       std::to_string(call_limit.count()) + " ms (database.call_limit_ms)")));
      }
      for (const auto& running : calls) {
        if (break_connection(*running,
                             [now](const running_call& r) { return r.expires <= now; })) {
          spdlog::warn(
              "database: a call ran longer than {} ms (database.call_limit_ms): its connection "
              "was broken",
              call_limit.count());
        }
      }
      lock.lock();
    }
  }

  void thread_main(running_call& running) {
    std::unique_ptr<pqxx::connection> connection;  // this thread's, opened by its first job
    for (;;) {
      job next;
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [this] { return stopping || !jobs.empty(); });
        if (jobs.empty()) {
          return;  // stopping
        }
        next = std::move(jobs.front());
        jobs.pop_front();
      }
      if (next.done->claimed()) {
        continue;  // its waiter gave up before it started: never run
      }
      if (steady::now() >= next.expires) {
        finish(next, std::make_exception_ptr(deadline_exceeded(
                       "no database connection free within " +
                       std::to_string(call_limit.count()) + " ms (database.call_limit_ms)")));
        continue;
      }
      execute(next, connection, running);
    }
  }

  void execute(job& next, std::unique_ptr<pqxx::connection>& connection, running_call& running) {
    std::exception_ptr failure;
    ++in_use;
    try {
      if (connection && !connection->is_open()) {
        connection.reset();
      }
      if (!connection) {
        // Throws pqxx::broken_connection when the server cannot be reached.
        connection = std::make_unique<pqxx::connection>(conninfo);
      }
      {
        // Under the lock, so that the destructor either sees this socket or we see `stopping`.
        std::lock_guard lock(running.mutex);
        if (stopping) {
          std::rethrow_exception(shutting_down());
        }
        running.socket = connection->sock();
        running.expires = next.expires;
        running.broken = false;
      }
      next.work(*connection);
    } catch (const pqxx::broken_connection&) {
      failure = std::current_exception();
      connection.reset();  // the next job on this thread connects afresh
    } catch (...) {
      // Anything else (sql_error, the caller's own exceptions) belongs to the coroutine.
      failure = std::current_exception();
    }
    bool broken = false;
    {
      std::lock_guard lock(running.mutex);
      broken = running.broken;
      running.socket = -1;
      running.broken = false;
    }
    if (broken) {
      if (failure && stopping) {
        failure = std::make_exception_ptr(
            std::logic_error("the database pool is shutting down: the call was interrupted"));
      } else if (failure) {
        failure = std::make_exception_ptr(deadline_exceeded(
            "the database call took longer than " + std::to_string(call_limit.count()) +
            " ms (database.call_limit_ms): its connection was broken"));
      }
      connection.reset();
    }
    if (connection && !connection->is_open()) {
      connection.reset();
    }
    // The work's captures may refer into the coroutine frame: gone before the coroutine resumes.
    next.work = nullptr;
    --in_use;
    finish(next, failure);
  }
};

pool::pool(std::string conninfo, std::size_t threads, int connect_timeout_seconds,
           pool_limits limits)
    : size_(threads),
      conninfo_(with_statement_limits(
          with_dead_connection_limit(with_connect_timeout(conninfo, connect_timeout_seconds),
                                     limits.dead_connection_seconds),
          limits.statement_timeout_ms, limits.lock_timeout_ms, limits.session_settings)),
      impl_(std::make_unique<impl>(conninfo_, in_use_, limits.call_limit_ms)) {
  if (threads == 0) {
    throw std::invalid_argument("the database pool needs at least one thread");
  }
  try {
    impl_->start(threads);
  } catch (...) {
    impl_->stop_and_join();  // the threads already started must not outlive a failed pool
    throw;
  }
}

void pool::stop() { impl_->stop_and_join(); }

pool::~pool() { impl_->stop_and_join(); }

awaitable<void> pool::run(std::function<void(pqxx::connection&)> work) {
  co_await impl_->call(std::move(work), std::nullopt);
}

awaitable<void> pool::run_within(std::chrono::milliseconds wait,
                                 std::function<void(pqxx::connection&)> work) {
  co_await impl_->call(std::move(work), wait);
}

namespace {

bool is_uri(std::string_view conninfo) {
  return conninfo.starts_with("postgresql://") || conninfo.starts_with("postgres://");
}

// Whether a URI's query string (after '?', '&'-separated key=value pairs) names `key`.
bool uri_has_parameter(std::string_view uri, std::string_view key) {
  const std::size_t question = uri.find('?');
  if (question == std::string_view::npos) {
    return false;
  }
  std::string_view query = uri.substr(question + 1);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.substr(0, pair.find('=')) == key) {
      return true;
    }
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
  }
  return false;
}

// Whether a libpq key=value string names `key`. Values may be single-quoted with backslash
// escapes, so a quoted value that merely contains the key's text does not count.
bool keyword_has_parameter(std::string_view conninfo, std::string_view key) {
  std::size_t i = 0;
  const auto skip_spaces = [&] {
    while (i < conninfo.size() && std::isspace(static_cast<unsigned char>(conninfo[i]))) {
      ++i;
    }
  };
  for (;;) {
    skip_spaces();
    if (i >= conninfo.size()) {
      return false;
    }
    const std::size_t key_start = i;
    while (i < conninfo.size() && conninfo[i] != '=' &&
           !std::isspace(static_cast<unsigned char>(conninfo[i]))) {
      ++i;
    }
    if (conninfo.substr(key_start, i - key_start) == key) {
      return true;
    }
    skip_spaces();
    if (i < conninfo.size() && conninfo[i] == '=') {
      ++i;
    }
    skip_spaces();
    if (i < conninfo.size() && conninfo[i] == '\'') {
      for (++i; i < conninfo.size() && conninfo[i] != '\''; ++i) {
        if (conninfo[i] == '\\') {
          ++i;
        }
      }
      ++i;  // the closing quote
    } else {
      while (i < conninfo.size() && !std::isspace(static_cast<unsigned char>(conninfo[i]))) {
        if (conninfo[i] == '\\') {
          ++i;
        }
        ++i;
      }
    }
  }
}

}  // namespace

std::string with_connect_timeout(const std::string& conninfo, int seconds) {
  return with_parameter(conninfo, "connect_timeout", std::to_string(seconds));
}

std::string with_dead_connection_limit(const std::string& conninfo, int seconds) {
  if (seconds <= 0) {
    return conninfo;
  }
  // Idle: the first probe after half the limit, then three a sixth apart; busy: unacknowledged
  // data fails the connection after the limit.
  std::string out = with_parameter(conninfo, "keepalives", "1");
  out = with_parameter(out, "keepalives_idle", std::to_string(std::max(1, seconds / 2)));
  out = with_parameter(out, "keepalives_interval", std::to_string(std::max(1, seconds / 6)));
  out = with_parameter(out, "keepalives_count", "3");
  return with_parameter(out, "tcp_user_timeout", std::to_string(seconds * 1000));
}

std::string with_statement_limits(const std::string& conninfo, int statement_ms, int lock_ms,
                                  const std::vector<std::pair<std::string, std::string>>& more) {
  std::vector<std::pair<std::string, std::string>> all;
  if (statement_ms > 0) {
    all.emplace_back("statement_timeout", std::to_string(statement_ms));
  }
  if (lock_ms > 0) {
    all.emplace_back("lock_timeout", std::to_string(lock_ms));
  }
  all.insert(all.end(), more.begin(), more.end());
  std::string settings;
  for (const auto& [name, value] : all) {
    settings += (settings.empty() ? "" : " ") + std::string("-c ") + name + "=" + value;
  }
  if (settings.empty()) {
    return conninfo;
  }
  if (is_uri(conninfo)) {
    std::string encoded;  // a URI's query value: spaces and '=' percent-encoded
    for (const char c : settings) {
      encoded += c == ' ' ? "%20" : c == '=' ? "%3D" : std::string(1, c);
    }
    return with_parameter(conninfo, "options", encoded);
  }
  return with_parameter(conninfo, "options", "'" + settings + "'");
}

std::string with_parameter(const std::string& conninfo, std::string_view key,
                           const std::string& value) {
  const std::string setting = std::string(key) + "=" + value;
  if (is_uri(conninfo)) {
    if (uri_has_parameter(conninfo, key)) {
      return conninfo;
    }
    if (conninfo.find('?') == std::string::npos) {
      return conninfo + "?" + setting;
    }
    const char last = conninfo.back();
    return conninfo + (last == '?' || last == '&' ? "" : "&") + setting;
  }
  if (keyword_has_parameter(conninfo, key)) {
    return conninfo;
  }
  return conninfo.empty() ? setting : conninfo + " " + setting;
}

}  // namespace archiver::db
