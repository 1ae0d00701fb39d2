// The outgoing HTTP/1.1 client: keep-alive connections pooled per destination with a cap, strict
// destination policy (SSRF guard), TLS with peer and host-name verification, deadlines on every
// step (name resolution included), an optional HTTP forward proxy reached with CONNECT, response
// bodies streamed into a caller's sink. Runs on the caller's io_context; a client may run many
// fetches at once, all on that io_context's thread. Expected failures are values.
//
// Through a proxy, the destination name is still resolved here and refused when any address is
// not allowed, but the proxy resolves it again for itself: a DNS answer changing between the two
// (rebinding) is not caught here; the proxy, as the operator's egress control, must refuse
// internal destinations itself. Without working local DNS, proxied fetches fail as failure::dns
// unless policy.allow_special_addresses is set (then no local resolution is done).
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/address_policy.hpp"
#include "http/failure.hpp"
#include "http/proxy.hpp"
#include "net/asio.hpp"

namespace archiver::http {

// A request body too large to hold in memory (a file, or a range of one), read chunk by chunk
// as it is sent. Not owned by the client; read() runs on the client's io_context thread, so it
// must be quick (a file read from the page cache). Exceptions thrown by it escape fetch().
class body_source {
 public:
  virtual ~body_source() = default;
  virtual std::uint64_t size() const = 0;  // sent as Content-Length; read() yields exactly this
  // Back to the first byte: a request retried on a new connection is sent again whole.
  virtual void rewind() = 0;
  // Copies the next bytes into `buffer` (at most `capacity`); returns how many, 0 at the end.
  virtual std::size_t read(char* buffer, std::size_t capacity) = 0;
};

// What to send and how long each step may take. Held by reference for the whole fetch; not
// modified by it.
struct request_options {
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;  // may replace User-Agent, not framing
  std::string body;  // sent with Content-Length (also "0" for an empty POST/PUT/PATCH)
  // When set, the body comes from here instead (then `body` must be empty). A source ending
  // before size() bytes fails the fetch as failure::protocol.
  body_source* body_stream = nullptr;
  std::chrono::milliseconds connect_timeout{10000};  // resolve + connect + TLS handshake
  std::chrono::milliseconds read_timeout{30000};     // each read (and the request write)
  std::chrono::milliseconds total_timeout{300000};   // the whole fetch, body included
};

// Receives a response body chunk by chunk, in order, on the client's io_context thread. Not owned
// by the client. Exceptions thrown by write() escape fetch(). A failed fetch may leave a partial
// body written: the sink's owner discards it.
class body_sink {
 public:
  virtual ~body_sink() = default;
  virtual void write(std::string_view chunk) = 0;
  // The most bytes this sink accepts; a longer body fails the fetch as failure::too_large before
  // the chunk that would pass the cap is written.
  virtual std::uint64_t max_bytes() const { return std::numeric_limits<std::uint64_t>::max(); }
};

// Collects the body in memory, up to `cap` bytes. Not thread-safe (one fetch at a time).
class string_sink final : public body_sink {
 public:
  explicit string_sink(std::uint64_t cap) : cap_(cap) {}
  void write(std::string_view chunk) override { data_.append(chunk); }
  std::uint64_t max_bytes() const override { return cap_; }
  const std::string& data() const { return data_; }

 private:
  std::uint64_t cap_;
  std::string data_;
};


struct response_head {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
};

// What fetch() came to: error == none on success, anything else is a failure value.
struct fetch_result {
  failure error = failure::none;
  std::string message;  // empty on success; otherwise names the host/address and the cause
  response_head head;   // filled once the response header arrived (even if the body then failed)
  std::uint64_t body_bytes = 0;  // bytes handed to the sink
};

// Fixed for the client's life; read at construction.
struct client_settings {
  bool keep_alive = true;  // pool connections; false: one request per connection (Connection: close)
  std::size_t max_connections_per_host = 8;  // open at once, in use or idle; more fetches wait
  std::size_t max_idle_per_host = 4;
  std::chrono::milliseconds idle_timeout{30000};  // an idle connection is closed after this
  proxy_settings proxy;  // see proxy.hpp; all empty = direct connections
};

// Counters since the client was made.
struct client_stats {
  std::uint64_t connections_opened = 0;  // established (TCP, tunnel and TLS done)
  std::uint64_t connections_reused = 0;  // idle connections taken for another request
};

class connection_pool;

// Not thread-safe: while its io_context runs, use it only from that io_context's thread (its pool
// has timers and sockets there). Many fetches may run at once on that thread.
class client {
 public:
  // `tls` (not owned, must outlive the client) verifies servers; nullptr refuses https URLs.
  // Throws std::invalid_argument for an unusable proxy URL or a zero connection cap.
  client(asio::io_context& io, destination_policy policy, ssl::context* tls,
         client_settings settings = {});
  // REQUIRES: no fetch in progress (they refer to the client). Closes idle pooled connections.
  ~client();

  // One request. 3xx responses are returned, not followed. error == none means a complete
  // response (any status) whose body went to `sink`. Waits for a connection slot under the
  // connect timeout. A pooled connection that fails before any response byte arrived (closed by
  // the server while idle) is retried once on a new connection, so a request may reach a server
  // twice in that case. Failed fetches never return their connection to the pool. `url`,
  // `options` and `sink` must stay valid until the returned awaitable completes.
  awaitable<fetch_result> fetch(std::string_view url, const request_options& options,
                                body_sink& sink);

  // The counters so far; cheap, no I/O.
  client_stats stats() const;
  // Note for one-shot programs: idle pooled connections keep a timer on the io_context until
  // idle_timeout, so stop the io_context when the work is done rather than wait for run() to end.

 private:
  asio::io_context& io_;
  destination_policy policy_;
  ssl::context* tls_;
  client_settings settings_;
  std::optional<proxy_endpoint> https_proxy_;
  std::optional<proxy_endpoint> http_proxy_;
  std::shared_ptr<connection_pool> pool_;
};

}  // namespace archiver::http
