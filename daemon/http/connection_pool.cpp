#include "http/connection_pool.hpp"

namespace archiver::http {

connection_lease::connection_lease(std::shared_ptr<connection_pool> pool, std::string key,
                                   std::unique_ptr<connection> conn)
    : conn(std::move(conn)), pool_(std::move(pool)), key_(std::move(key)), reused_(this->conn != nullptr) {}

connection_lease::~connection_lease() {
  if (pool_) {
    conn.reset();
    pool_->close_slot(key_);
  }
}

void connection_lease::keep() {
  if (pool_) {
    pool_->release(key_, std::move(conn));
    pool_.reset();
  }
}

connection_pool::connection_pool(asio::io_context& io, pool_limits limits)
    : io_(io), limits_(limits) {}

awaitable<std::optional<connection_lease>> connection_pool::acquire(
    std::string key, std::chrono::steady_clock::time_point until, bool fresh_only) {
  // Keeps the pool alive while this coroutine holds references into it.
  const auto self = shared_from_this();
  for (;;) {
    host& entry = hosts_[key];
    if (!fresh_only && !entry.idle.empty()) {
      // The most recently used connection is the likeliest to be still open at the server.
      std::unique_ptr<connection> conn = std::move(entry.idle.back().conn);
      entry.idle.pop_back();
      ++reused_;
      co_return connection_lease(self, key, std::move(conn));
    }
    if (entry.open < limits_.max_per_host) {
      ++entry.open;
      co_return connection_lease(self, key, nullptr);
    }
    if (fresh_only && !entry.idle.empty()) {
      entry.idle.pop_front();
      --entry.open;
      continue;
    }
    if (std::chrono::steady_clock::now() >= until) {
      if (entry.open == 0 && entry.waiters.empty()) {
        hosts_.erase(key);
      }
      co_return std::nullopt;
    }
    // Woken (cancelled) whenever a slot frees or a connection turns idle; then look again. The
    // entry is not erased while this waiter is listed in it.
    asio::steady_timer wait(io_, until);
    struct waiter_guard {
      host& entry;
      std::list<asio::steady_timer*>::iterator position;
      ~waiter_guard() { entry.waiters.erase(position); }
    } guard{entry, entry.waiters.insert(entry.waiters.end(), &wait)};
    error_code ignored;
    co_await wait.async_wait(with_error(ignored));
  }
}

void connection_pool::release(const std::string& key, std::unique_ptr<connection> conn) {
  host& entry = hosts_[key];
  if (!conn || entry.idle.size() >= limits_.max_idle_per_host) {
    conn.reset();
    close_slot(key);
    return;
  }
  conn->lowest().expires_never();
  const std::uint64_t id = next_id_++;
  auto expiry = std::make_unique<asio::steady_timer>(io_, limits_.idle_timeout);
  // The timer dies with its idle entry (taking or closing it cancels the wait); the weak pointer
  // covers a handler that runs after the whole pool is gone.
  expiry->async_wait([pool = weak_from_this(), key, id](const error_code& ec) {
    if (!ec) {
      if (const auto self = pool.lock()) {
        self->expire(key, id);
      }
    }
  });
  entry.idle.push_back(idle_connection{id, std::move(conn), std::move(expiry)});
  wake_waiters(entry);
}

void connection_pool::expire(const std::string& key, std::uint64_t id) {
  const auto found = hosts_.find(key);
  if (found == hosts_.end()) {
    return;
  }
  auto& idle = found->second.idle;
  for (auto it = idle.begin(); it != idle.end(); ++it) {
    if (it->id == id) {
      idle.erase(it);
      close_slot(key);
      return;
    }
  }
}

void connection_pool::close_slot(const std::string& key) {
  const auto found = hosts_.find(key);
  if (found == hosts_.end()) {
    return;
  }
  host& entry = found->second;
  --entry.open;
  wake_waiters(entry);
  if (entry.open == 0 && entry.idle.empty() && entry.waiters.empty()) {
    hosts_.erase(found);
  }
}

void connection_pool::wake_waiters(host& entry) {
  for (asio::steady_timer* waiter : entry.waiters) {
    waiter->cancel();
  }
}

}  // namespace archiver::http
