#include "db/pool.hpp"

#include <pqxx/pqxx>

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

// How a finished job reaches its awaiting coroutine. Move-only, like the handler it wraps.
class completion {
 public:
  virtual ~completion() = default;
  // Posts the handler to its associated executor with `failure` (null on success). Once only.
  virtual void complete(std::exception_ptr failure) = 0;
};

template <class Handler>
class completion_for final : public completion {
 public:
  explicit completion_for(Handler handler)
      : handler_(std::move(handler)),
        // Keeps the awaiting side's executor from running out of work while the job is away.
        work_(asio::prefer(asio::get_associated_executor(handler_),
                           asio::execution::outstanding_work.tracked)) {}

  void complete(std::exception_ptr failure) override {
    // The coroutine resumes on its own executor, never on the database thread.
    asio::post(work_, [handler = std::move(handler_), failure]() mutable { handler(failure); });
  }

 private:
  Handler handler_;
  decltype(asio::prefer(std::declval<asio::associated_executor_t<Handler>>(),
                        asio::execution::outstanding_work.tracked)) work_;
};

struct job {
  std::function<void(pqxx::connection&)> work;
  std::unique_ptr<completion> done;
};

}  // namespace

// The queue and the threads. `jobs` and `stopping` are guarded by `mutex`; `threads` is touched
// only by the constructor and the destructor; each thread's connection lives on its own stack.
struct pool::impl {
  impl(const std::string& conninfo, std::atomic<std::size_t>& in_use)
      : conninfo(conninfo), in_use(in_use) {}

  const std::string& conninfo;
  std::atomic<std::size_t>& in_use;
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<job> jobs;
  bool stopping = false;
  std::vector<std::thread> threads;

  void submit(job next) {
    bool accepted = false;
    {
      std::lock_guard lock(mutex);
      if (!stopping) {
        jobs.push_back(std::move(next));
        accepted = true;
      }
    }
    if (!accepted) {
      next.done->complete(
          std::make_exception_ptr(std::logic_error("the database pool is shutting down")));
      return;
    }
    wake.notify_one();
  }

  void stop_and_join() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    wake.notify_all();
    for (std::thread& thread : threads) {
      thread.join();
    }
    threads.clear();
  }

  void thread_main() {
    std::unique_ptr<pqxx::connection> connection;  // this thread's, opened by its first job
    for (;;) {
      job next;
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [this] { return stopping || !jobs.empty(); });
        if (jobs.empty()) {
          return;  // stopping, and the work posted before is done
        }
        next = std::move(jobs.front());
        jobs.pop_front();
      }
      execute(next, connection);
    }
  }

  void execute(job& next, std::unique_ptr<pqxx::connection>& connection) {
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
      next.work(*connection);
    } catch (const pqxx::broken_connection&) {
      failure = std::current_exception();
      connection.reset();  // the next job on this thread connects afresh
    } catch (...) {
      // Anything else (sql_error, the caller's own exceptions) belongs to the coroutine.
      failure = std::current_exception();
    }
    if (connection && !connection->is_open()) {
      connection.reset();
    }
    // The work's captures refer into the coroutine frame: gone before the coroutine resumes.
    next.work = nullptr;
    --in_use;
    next.done->complete(failure);
  }
};

pool::pool(std::string conninfo, std::size_t threads, int connect_timeout_seconds,
           pool_limits limits)
    : conninfo_(with_statement_limits(
          with_dead_connection_limit(with_connect_timeout(conninfo, connect_timeout_seconds),
                                     limits.dead_connection_seconds),
          limits.statement_timeout_ms, limits.lock_timeout_ms)),
      impl_(std::make_unique<impl>(conninfo_, in_use_)) {
  if (threads == 0) {
    throw std::invalid_argument("the database pool needs at least one thread");
  }
  try {
    for (std::size_t i = 0; i < threads; ++i) {
      impl_->threads.emplace_back([this] { impl_->thread_main(); });
    }
  } catch (...) {
    impl_->stop_and_join();  // the threads already started must not outlive a failed pool
    throw;
  }
}

pool::~pool() { impl_->stop_and_join(); }

awaitable<void> pool::run(std::function<void(pqxx::connection&)> work) {
  // A completion signature whose first argument is an exception_ptr makes use_awaitable rethrow
  // it in the awaiting coroutine after it has resumed on its own executor.
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr)>(
      [this](auto&& handler, std::function<void(pqxx::connection&)> w) {
        using handler_type = std::decay_t<decltype(handler)>;
        impl_->submit(job{std::move(w), std::make_unique<completion_for<handler_type>>(
                                            std::forward<decltype(handler)>(handler))});
      },
      asio::use_awaitable, std::move(work));
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

std::string with_statement_limits(const std::string& conninfo, int statement_ms, int lock_ms) {
  std::string settings;
  for (const auto& [name, ms] :
       {std::pair{"statement_timeout", statement_ms}, std::pair{"lock_timeout", lock_ms}}) {
    if (ms > 0) {
      settings +=
          (settings.empty() ? "" : " ") + std::string("-c ") + name + "=" + std::to_string(ms);
    }
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
