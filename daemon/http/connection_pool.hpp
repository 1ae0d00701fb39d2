// Connections of the outgoing client kept open between requests, per destination key (scheme,
// host, port, proxy): a cap on connections open at once per key (fetches beyond it wait for a
// slot), a cap on idle ones, and an idle timeout after which an idle connection is closed.
// Internal to the http module. Not thread-safe: used from the client's io_context thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "net/asio.hpp"

namespace archiver::http {

// One connection: TCP, with TLS on top once `secure` is set (the TCP stream then lives inside it).
struct connection {
  std::optional<beast::tcp_stream> plain;
  std::optional<ssl::stream<beast::tcp_stream>> secure;
  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
};

struct pool_limits {
  std::size_t max_per_host = 8;  // open at once (in use or idle); at least 1
  std::size_t max_idle_per_host = 4;
  std::chrono::milliseconds idle_timeout{30000};
};

class connection_pool;

// The right to one connection slot of a key. `conn` is an idle connection taken from the pool
// (`reused`), or null: the holder opens one and stores it. Destroying a lease closes its
// connection and frees the slot; keep() instead hands a healthy connection back as idle.
class connection_lease {
 public:
  connection_lease(std::shared_ptr<connection_pool> pool, std::string key,
                   std::unique_ptr<connection> conn);
  connection_lease(connection_lease&& other) noexcept = default;
  connection_lease& operator=(connection_lease&&) = delete;
  ~connection_lease();

  bool reused() const { return reused_; }
  std::unique_ptr<connection> conn;
  void keep();

 private:
  std::shared_ptr<connection_pool> pool_;
  std::string key_;
  bool reused_;
};

class connection_pool : public std::enable_shared_from_this<connection_pool> {
 public:
  connection_pool(asio::io_context& io, pool_limits limits);

  // A lease for `key`: an idle connection when there is one and `fresh_only` is false, else a
  // slot to open a new one (with `fresh_only`, an idle connection is closed to make room).
  // Waits for a slot until `until`; nullopt when it passed first.
  awaitable<std::optional<connection_lease>> acquire(std::string key,
                                                     std::chrono::steady_clock::time_point until,
                                                     bool fresh_only);
  void count_opened() { ++opened_; }
  std::uint64_t opened() const { return opened_; }
  std::uint64_t reused() const { return reused_; }

 private:
  friend class connection_lease;
  struct idle_connection {
    std::uint64_t id;
    std::unique_ptr<connection> conn;
    std::unique_ptr<asio::steady_timer> expiry;
  };
  struct host {
    std::size_t open = 0;
    std::list<idle_connection> idle;  // most recently used last
    std::list<asio::steady_timer*> waiters;
  };
  void release(const std::string& key, std::unique_ptr<connection> conn);
  void expire(const std::string& key, std::uint64_t id);
  void close_slot(const std::string& key);
  static void wake_waiters(host& entry);

  asio::io_context& io_;
  pool_limits limits_;
  std::map<std::string, host> hosts_;
  std::uint64_t next_id_ = 0;
  std::uint64_t opened_ = 0;
  std::uint64_t reused_ = 0;
};

}  // namespace archiver::http
