// The claim side of the workers: construction, the LISTEN thread, the claim loop, starting and
// running jobs, and the drain. The lease keeper is in worker_lease.cpp, the outcome recorder in
// worker_outcome.cpp.
#include "queue/worker.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <pqxx/pqxx>
#include <random>
#include <thread>

#include "ops/host.hpp"
#include "ops/logging.hpp"
#include "queue/worker_detail.hpp"
#include "retry/table.hpp"

namespace archiver::queue {

using worker_detail::one_line;

namespace {
// How long a drain waits to give its unfinished jobs back; past it (a database that does not
// answer) their leases run out instead and other replicas rescue them.
constexpr std::chrono::milliseconds release_wait{5'000};
}  // namespace

std::string worker_detail::one_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  while (!text.empty() && text.back() == ' ') {
    text.pop_back();
  }
  return text;
}

std::chrono::milliseconds claim_wait(std::chrono::milliseconds poll_interval,
                                     std::optional<std::chrono::milliseconds> next_due) {
  if (!next_due) {
    return poll_interval;
  }
  // A little past run_at, so that the claim's now() has reached it.
  return std::min(poll_interval, *next_due + std::chrono::milliseconds(5));
}

std::string make_owner_name() {
  std::mt19937 engine{std::random_device{}()};
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(engine()));
  return ops::host_name() + ":" + std::to_string(::getpid()) + ":" + suffix;
}

// LISTEN on its own connection and thread (libpq blocks while it waits); each notification
// posts a wake-up to the io_context. Reconnects after a failure; the claim loop's polling covers
// the gap.
struct workers::listener {
  listener(std::string conninfo, std::function<void()> on_notify)
      : conninfo(std::move(conninfo)), on_notify(std::move(on_notify)) {
    thread = std::thread([this] { run(); });
  }
  // Asks the thread to end; it notices within 250 ms. Does not wait: the io thread may call it.
  void request_stop() { stop = true; }

  ~listener() {
    stop = true;
    // The thread notices within 250 ms, unless a server that stopped answering holds it (the
    // UNLISTEN of its way out): then its socket is shut down, so that libpq returns at once.
    for (int i = 0; i < 100 && !finished; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!finished) {
      std::lock_guard lock(socket_mutex);
      if (socket >= 0) {
        ::shutdown(socket, SHUT_RDWR);
      }
    }
    thread.join();
  }

  // Publishes a connection's socket for the destructor, from after it opens until before it
  // closes (declared between the connection and what uses it).
  struct socket_registration {
    socket_registration(listener& owner, int fd) : owner(owner) {
      std::lock_guard lock(owner.socket_mutex);
      owner.socket = fd;
    }
    ~socket_registration() {
      std::lock_guard lock(owner.socket_mutex);
      owner.socket = -1;
    }
    socket_registration(const socket_registration&) = delete;
    socket_registration& operator=(const socket_registration&) = delete;
    listener& owner;
  };

  struct receiver final : pqxx::notification_receiver {
    receiver(pqxx::connection_base& conn, std::function<void()>& on_notify)
        : pqxx::notification_receiver(conn, notify_channel), on_notify(on_notify) {}
    void operator()(const std::string&, int) override { on_notify(); }
    std::function<void()>& on_notify;
  };

  void run() {
    bool warned = false;
    while (!stop) {
      try {
        pqxx::connection conn(conninfo);
        const socket_registration registered(*this, conn.sock());
        receiver listening(conn, on_notify);
        if (warned) {
          spdlog::info("job notifications: listening again");
          warned = false;
        }
        on_notify();  // jobs may have arrived while we were not listening
        while (!stop) {
          conn.await_notification(0, 250'000);
        }
      } catch (const std::exception& e) {
        if (!warned) {
          spdlog::warn("job notifications: {}; polling until the database is back",
                       one_line(e.what()));
          warned = true;
        }
        for (int i = 0; i < 10 && !stop; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    }
    finished = true;
  }

  std::string conninfo;
  std::function<void()> on_notify;
  std::atomic<bool> stop{false};
  std::atomic<bool> finished{false};
  std::mutex socket_mutex;
  int socket = -1;  // guarded by socket_mutex
  std::thread thread;
};

workers::workers(asio::io_context& io, db::pool& database, std::string conninfo,
                 worker_settings settings, worker_metrics& metrics, const ops::clock& time)
    : io_(io),
      database_(database),
      conninfo_(std::move(conninfo)),
      settings_(std::move(settings)),
      metrics_(metrics),
      time_(time),
      wake_timer_(io),
      idle_timer_(io),
      maintenance_timer_(io) {}

workers::~workers() { listener_.reset(); }

void workers::add(std::string kind, handler run) {
  // Every outcome's series exists from the start, at 0: a rate or increase() over it then sees
  // the first dead job too (a series born at 1 shows no increase).
  for (const char* outcome : {"succeeded", "retry", "dead", "lease_lost"}) {
    metrics_.runs.inc({kind, outcome}, 0);
  }
  handlers_[std::move(kind)] = std::move(run);
}

void workers::wake() {
  wake_pending_ = true;
  wake_timer_.cancel();
}

void workers::due_in(std::chrono::milliseconds delay) {
  // A little past run_at, so that the claim's now() has reached it.
  const auto at = std::chrono::steady_clock::now() + delay + std::chrono::milliseconds(5);
  wake_hint_ = std::min(wake_hint_, at);
  if (at < wake_timer_.expiry()) {
    wake_timer_.expires_at(at);  // ends the claim loop's current wait, which then waits again
  }
}

void workers::add_housekeeping(housekeeping_task task) { housekeeping_.push_back(std::move(task)); }

void workers::start() {
  listener_ =
      std::make_unique<listener>(conninfo_, [this] { asio::post(io_, [this] { wake(); }); });
  auto log_failure = [](const char* what) {
    return [what](std::exception_ptr error) { ops::log_exception(what, error); };
  };
  asio::co_spawn(io_, claim_loop(), log_failure("job claim loop"));
  asio::co_spawn(io_, maintenance_loop(), log_failure("job maintenance loop"));
  spdlog::info("workers: {} as {}, lease {} s", settings_.concurrency, settings_.owner,
               settings_.lease.count());
}

awaitable<void> workers::claim_loop() {
  ++loops_alive_;
  bool database_failing = false;
  while (!stopping_) {
    wake_pending_ = false;
    const int wanted = std::min(free_slots(), settings_.claim_batch);
    const int below_live = reserved_claims(
        wanted, settings_.concurrency, settings_.priorities.reserved_percent, running_below_live_);
    bool maybe_more = false;
    std::optional<std::chrono::milliseconds> next_due;
    if (wanted > 0) {
      std::vector<claimed_job> jobs;
      reserved_ += wanted;
      try {
        jobs = co_await database_.query<std::vector<claimed_job>>([&](pqxx::connection& conn) {
          pqxx::work tx(conn, "claim");
          auto claimed = claim(tx, settings_.owner, wanted, settings_.lease, below_live);
          if (static_cast<int>(claimed.size()) < wanted) {
            next_due = next_due_in(tx);
          }
          tx.commit();
          return claimed;
        });
        if (database_failing) {
          spdlog::info("workers: claiming jobs again");
          database_failing = false;
        }
      } catch (const std::exception& e) {
        if (!database_failing) {
          spdlog::warn("workers: cannot claim jobs: {}; retrying every {} ms", one_line(e.what()),
                       settings_.poll_interval.count());
          database_failing = true;
        }
      }
      reserved_ -= wanted;
      maybe_more = static_cast<int>(jobs.size()) == wanted;
      co_await start_jobs(std::move(jobs));
      if (stopping_) {
        break;
      }
    }
    if ((maybe_more || wake_pending_) && free_slots() > 0) {
      continue;
    }
    wake_timer_.expires_at(
        std::min(std::chrono::steady_clock::now() + claim_wait(settings_.poll_interval, next_due),
                 wake_hint_));
    // Ends when the timer expires or wake() cancels it; due_in() moving it earlier only ends the
    // current wait.
    for (;;) {
      error_code ec;
      co_await wake_timer_.async_wait(with_error(ec));
      if (!ec || wake_pending_ || stopping_) {
        break;
      }
    }
    if (wake_hint_ <= std::chrono::steady_clock::now()) {
      wake_hint_ = std::chrono::steady_clock::time_point::max();
    }
  }
  --loops_alive_;
  idle_timer_.cancel();
}

awaitable<void> workers::start_jobs(std::vector<claimed_job> jobs) {
  if (stopping_) {
    // Claimed during the drain's first moments: give them straight back (or, without a database,
    // let their leases run out).
    std::vector<lease_ref> runs;
    for (const auto& job : jobs) {
      runs.push_back(job.lease());
    }
    if (!runs.empty()) {
      try {
        // Built apart from the co_await: see db::pool::query_within.
        std::function<void(pqxx::connection&)> give_back =
            [owner = settings_.owner, runs](pqxx::connection& conn) { release(conn, owner, runs); };
        co_await database_.run_within(release_wait, std::move(give_back));
      } catch (const std::exception& e) {
        spdlog::warn("workers: could not release {} job(s) claimed while draining: {}", runs.size(),
                     one_line(e.what()));
      }
    }
    co_return;
  }
  for (claimed_job& job : jobs) {
    running_[job.lease_token] = job.id;
    if (job.priority != ops::priority::live) {
      ++running_below_live_;
    }
    asio::co_spawn(io_, run_one(std::move(job)),
                   [](std::exception_ptr error) { ops::log_exception("job", error); });
  }
}

awaitable<void> workers::run_one(claimed_job job) {
  const auto started = time_.steady_now();
  job_result result;
  const auto found = handlers_.find(job.kind);
  if (found == handlers_.end()) {
    result = job_result::permanent("no handler for job kind \"" + job.kind + "\"");
  } else {
    try {
      result = co_await found->second(job);
    } catch (const pqxx::sql_error& e) {
      result = retry::database_verdict(e.sqlstate(), one_line(e.what()));
    } catch (const std::exception& e) {
      result = job_result::retry(one_line(e.what()));
    }
  }
  const outcome decided = worker_detail::decide(result, job, settings_);
  finishing_.insert(job.lease_token);
  // While the database is away the outcome is kept for recording until the lease would have run
  // out anyway (then a rescuer re-runs the job: at least once, never lost).
  to_record_.push_back(pending_outcome{std::move(job), decided, started, time_.steady_now()});
  if (!recording_) {
    recording_ = true;
    asio::co_spawn(io_, record_outcomes(),
                   [](std::exception_ptr error) { ops::log_exception("job outcomes", error); });
  }
}

awaitable<void> workers::drain() {
  if (stopping_) {
    co_return;
  }
  stopping_ = true;
  wake_timer_.cancel();
  maintenance_timer_.cancel();
  // The deadline is judged by `time_`; the wait itself is a real timer's, until the deadline as
  // `time_` saw it when the wait began.
  const auto deadline = time_.steady_now() + settings_.drain_timeout;
  if (!running_.empty()) {
    spdlog::info("workers: waiting up to {} s for {} running job(s)",
                 settings_.drain_timeout.count(), running_.size());
  }
  while (!running_.empty() || loops_alive_ > 0 || recording_) {
    const auto now = time_.steady_now();
    if (now >= deadline) {
      break;
    }
    idle_timer_.expires_after(deadline - now);
    error_code ec;
    co_await idle_timer_.async_wait(with_error(ec));
  }
  if (!running_.empty()) {
    std::vector<lease_ref> runs;
    for (const auto& [token, id] : running_) {
      runs.push_back({id, token});
    }
    try {
      std::function<int(pqxx::connection&)> give_back =
          [owner = settings_.owner, runs](pqxx::connection& conn) {
            return release(conn, owner, runs);
          };
      const int released = co_await database_.query_within<int>(release_wait, std::move(give_back));
      spdlog::info("workers: released {} unfinished job(s) for other replicas", released);
    } catch (const std::exception& e) {
      spdlog::warn("workers: could not release {} job(s) ({}); their leases expire in {} s",
                   runs.size(), one_line(e.what()), settings_.lease.count());
    }
  }
  // Joined by the destructor, once the io_context no longer runs: waiting here would block it.
  if (listener_) {
    listener_->request_stop();
  }
}

}  // namespace archiver::queue
