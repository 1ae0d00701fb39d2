// The HTTP/1.1 server: one accept loop per listener, one coroutine per connection, every I/O step
// under a deadline, strict framing, size caps, and a graceful drain. Runs on a single io_context
// thread; none of its members may be called from another thread. Implemented by server_*.cpp;
// their shared internals are in server_detail.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/asio.hpp"
#include "ops/metrics.hpp"

namespace archiver::http {

// What handlers receive and return: whole messages with string bodies.
using request = beast::http::request<beast::http::string_body>;
using response = beast::http::response<beast::http::string_body>;
using response_header = beast::http::response_header<>;
using status = beast::http::status;

// Returns an HTTP/1.1 response with status `code`, `body` as its body and Content-Type
// text/plain; charset=utf-8. The server sets Content-Length and Connection when sending it.
// Pure; thread-safe.
response text_response(status code, std::string body);

// Caps and deadlines of one listener; a plain value the server copies. Each cap names the status a
// request over it is answered with.
struct limits {
  std::size_t max_body_bytes = 64 * 1024;  // 413 from Content-Length, or as a chunked body passes it
  std::size_t max_header_bytes = 16 * 1024;  // 431 (request line included)
  std::size_t max_uri_bytes = 8 * 1024;      // 414
  // At the cap a new connection sheds the open one that has gone longest without completing a
  // request (never one whose handler is running); it is refused only when none can be shed.
  std::size_t max_connections = 1024;
  std::size_t max_requests_per_connection = 1000;
  std::chrono::milliseconds header_timeout{10'000};  // first byte to end of headers
  std::chrono::milliseconds body_timeout{10'000};    // end of headers to end of body; also writes
  std::chrono::milliseconds idle_timeout{30'000};    // keep-alive wait for the next request
};

// A request handler: returns the answer to the request, which stays valid until the returned
// awaitable completes. Runs on the server's io_context thread. Exceptions escaping it become a
// 500 (logged, not sent).
using handler = std::function<awaitable<response>(const request&)>;

// The sending side of a streamed response, for bodies too large to hold whole. The server owns it
// and it is valid while the streaming handler runs. Memory is bounded by the chunks the handler
// passes to write(): nothing is buffered beyond the one being sent. Not thread-safe: used from
// the server's io_context thread only.
class response_stream {
 public:
  virtual ~response_stream() = default;

  // Sends the status line and headers, once, before any write(). `head` must carry Content-Length
  // (std::logic_error otherwise); the server sets the version and Connection. False when the peer
  // went away or the write deadline passed: the handler should then just return.
  awaitable<bool> send_header(response_header head);
  // Sends the next part of the body and returns once the socket took it (backpressure), each
  // write under the listener's body_timeout. Passing Content-Length is a std::logic_error. For a
  // HEAD request nothing is sent. False as for send_header.
  // REQUIRES: send_header() was called (std::logic_error otherwise).
  awaitable<bool> write(std::string_view chunk);
  // Ends the response where it is and closes the connection: a body shorter than the promised
  // Content-Length tells the peer it was truncated.
  void abort() { aborted_ = true; }
  // True for a HEAD request: write() sends nothing, and a handler may skip producing the body.
  bool head_only() const { return head_only_; }

 protected:
  // For the server's own implementation (server_routing.cpp), which writes to the connection.
  // `draining` (may be null) is read when the header goes out: once set, the connection closes.
  response_stream(unsigned version, bool head_only, bool keep_alive, const bool* draining)
      : version_(version), head_only_(head_only), keep_alive_(keep_alive), draining_(draining) {}
  virtual awaitable<error_code> write_header(
      beast::http::response<beast::http::empty_body>& head) = 0;
  virtual awaitable<error_code> write_bytes(asio::const_buffer bytes) = 0;

 private:
  friend class server;
  unsigned version_;
  bool head_only_;
  bool keep_alive_;
  const bool* draining_;
  bool header_sent_ = false;
  bool failed_ = false;
  bool aborted_ = false;
  unsigned status_ = 0;
  std::uint64_t content_length_ = 0;
  std::uint64_t bytes_sent_ = 0;
};

// A handler that streams its response through `out`, valid until the returned awaitable
// completes. Exceptions escaping it become a 500 when no header was sent yet, and close the
// connection otherwise; so do a short body and abort().
using streaming_handler = std::function<awaitable<void>(const request&, response_stream& out)>;

// Routing on the path (the query string is ignored): an exact route wins, then the longest
// prefix route; among equal paths the one added first. Method checks are the handler's job.
// Built before the server starts, then moved into it. Not thread-safe.
class router {
 public:
  // Routes exactly `path` to `on_request`.
  void add(std::string path, handler on_request);
  // Every path starting with `prefix`; the route (and its metrics label) is the prefix itself,
  // so the label set stays bounded however many paths it serves.
  void add_prefix(std::string prefix, handler on_request);
  // As add_prefix, for a handler that streams its response.
  void add_prefix_streaming(std::string prefix, streaming_handler on_request);

  // The plain (non-streaming) route matching `target`'s path, or nullptr. The pointer is into
  // the router: valid until it is changed or destroyed.
  const std::pair<std::string, handler>* find(std::string_view target) const;

  // The route matching `target`'s path, of either kind, or nullopt. `label` is the route's path
  // or prefix; it and the handler point into the router, valid as for find().
  struct match_result {
    std::string_view label;
    const handler* on_request = nullptr;  // exactly one of the two is set
    const streaming_handler* on_stream = nullptr;
  };
  std::optional<match_result> match(std::string_view target) const;

 private:
  std::vector<std::pair<std::string, handler>> routes_;
  std::vector<std::pair<std::string, handler>> prefixes_;
  std::vector<std::pair<std::string, streaming_handler>> streaming_prefixes_;
};

// The path part of a request target ("/a?b" -> "/a"), a view into `target`. Pure; thread-safe.
std::string_view target_path(std::string_view target);

// Certificate and key for TLS termination, re-read on demand (SIGHUP). New connections use the
// context loaded last; connections already open keep theirs. Shared (std::shared_ptr) by the
// servers that terminate TLS and whoever reloads it. Not thread-safe: reload() on the servers'
// io_context thread.
class tls_credentials {
 public:
  // Loads both files now; throws std::runtime_error naming the file that cannot be loaded.
  tls_credentials(std::string cert_file, std::string key_file);
  // Loads both files again; throws std::runtime_error and keeps the previous context on failure.
  void reload();
  // The context loaded last; the caller shares its ownership.
  std::shared_ptr<ssl::context> current() const { return context_; }

 private:
  std::shared_ptr<ssl::context> load() const;
  std::string cert_file_;
  std::string key_file_;
  std::shared_ptr<ssl::context> context_;
};

// Metric families shared by every listener of the process (labelled by listener name). Registers
// them in `registry`, which must outlive this. Thread-safe, as the metrics are.
struct server_metrics {
  explicit server_metrics(ops::registry& registry);
  ops::counter_family& requests;             // {listener, route, status}
  ops::gauge_family& open_connections;       // {listener}
  // {listener, reason}: "max_connections" (a new one refused), "max_connections_shed" (an old
  // one closed to make room for a new one)
  ops::counter_family& refused_connections;
};

// One listener. Not thread-safe: every member on the io_context thread. Neither copied nor moved.
class server {
 public:
  // Binds and listens on `endpoint` now (throws boost::system::system_error when it cannot);
  // accepts nothing before start(). `name` labels its metrics and log lines; `tls` (null: plain
  // HTTP) is shared. REQUIRES: `io` and `metrics` outlive the server.
  server(asio::io_context& io, std::string name, tcp::endpoint endpoint, router routes,
         limits limits, server_metrics& metrics, std::shared_ptr<tls_credentials> tls = nullptr);
  // Closes the listening socket. REQUIRES: `io` runs the server's coroutines no more (it has
  // stopped, or drain() completed and every connection ended): they refer to the server.
  ~server();

  // Where it listens (the port chosen when bound to port 0).
  tcp::endpoint local_endpoint() const;
  // Spawns the accept loop on `io`. REQUIRES: called once.
  void start();

  // Stops accepting, closes idle keep-alive connections, lets requests in flight finish (their
  // responses carry Connection: close), and closes what is left once `deadline` has passed.
  awaitable<void> drain(std::chrono::milliseconds deadline);

  // Connections open now, shed ones still unwinding included.
  std::size_t open_connections() const;

 private:
  struct impl;  // server_detail.hpp
  std::unique_ptr<impl> impl_;
};

}  // namespace archiver::http
