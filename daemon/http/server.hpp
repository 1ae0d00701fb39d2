// The HTTP/1.1 server: one accept loop per listener, one coroutine per connection, every I/O step
// under a deadline, strict framing, size caps, and a graceful drain. Runs on a single io_context
// thread; none of its members may be called from another thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/asio.hpp"
#include "ops/metrics.hpp"

namespace archiver::http {

using request = beast::http::request<beast::http::string_body>;
using response = beast::http::response<beast::http::string_body>;
using response_header = beast::http::response_header<>;
using status = beast::http::status;

// A plain-text response with the given status and body (Content-Type text/plain).
response text_response(status code, std::string body);

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

// A request handler. Exceptions escaping it become a 500 (logged, not sent).
using handler = std::function<awaitable<response>(const request&)>;

// The sending side of a streamed response, for bodies too large to hold whole. The server owns it
// and it is valid while the streaming handler runs. Memory is bounded by the chunks the handler
// passes to write(): nothing is buffered beyond the one being sent.
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
  awaitable<bool> write(std::string_view chunk);
  // Ends the response where it is and closes the connection: a body shorter than the promised
  // Content-Length tells the peer it was truncated.
  void abort() { aborted_ = true; }
  bool head_only() const { return head_only_; }

 protected:
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

// A handler that streams its response. Exceptions escaping it become a 500 when no header was
// sent yet, and close the connection otherwise; so do a short body and abort().
using streaming_handler = std::function<awaitable<void>(const request&, response_stream&)>;

// Routing on the path (the query string is ignored): an exact route wins, then the longest
// prefix route. Method checks are the handler's job.
class router {
 public:
  void add(std::string path, handler on_request);
  // Every path starting with `prefix`; the route (and its metrics label) is the prefix itself,
  // so the label set stays bounded however many paths it serves.
  void add_prefix(std::string prefix, handler on_request);
  // As add_prefix, for a handler that streams its response.
  void add_prefix_streaming(std::string prefix, streaming_handler on_request);

  // The plain (non-streaming) route matching `target`'s path, or nullptr.
  const std::pair<std::string, handler>* find(std::string_view target) const;

  // The route matching `target`'s path, of either kind. `label` is the route's path or prefix.
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

// The path part of a request target ("/a?b" -> "/a").
std::string_view target_path(std::string_view target);

// Certificate and key for TLS termination, re-read on demand (SIGHUP). New connections use the
// context loaded last; connections already open keep theirs.
class tls_credentials {
 public:
  tls_credentials(std::string cert_file, std::string key_file);  // throws std::runtime_error
  void reload();  // throws std::runtime_error and keeps the previous context on failure
  std::shared_ptr<ssl::context> current() const { return context_; }

 private:
  std::shared_ptr<ssl::context> load() const;
  std::string cert_file_;
  std::string key_file_;
  std::shared_ptr<ssl::context> context_;
};

// Metric families shared by every listener of the process (labelled by listener name).
struct server_metrics {
  explicit server_metrics(ops::registry& registry);
  ops::counter_family& requests;             // {listener, route, status}
  ops::gauge_family& open_connections;       // {listener}
  // {listener, reason}: "max_connections" (a new one refused), "max_connections_shed" (an old
  // one closed to make room for a new one)
  ops::counter_family& refused_connections;
};

class server {
 public:
  // Binds and listens on `endpoint` now (throws boost::system::system_error when it cannot).
  server(asio::io_context& io, std::string name, tcp::endpoint endpoint, router routes,
         limits limits, server_metrics& metrics, std::shared_ptr<tls_credentials> tls = nullptr);
  ~server();

  tcp::endpoint local_endpoint() const;
  void start();  // spawns the accept loop

  // Stops accepting, closes idle keep-alive connections, lets requests in flight finish (their
  // responses carry Connection: close), and closes what is left once `deadline` has passed.
  awaitable<void> drain(std::chrono::milliseconds deadline);

  std::size_t open_connections() const { return connections_.size(); }

 private:
  struct connection;
  awaitable<void> accept_loop();
  // Makes room for one more connection at the cap; false when every open one is busy.
  bool shed_longest_waiting();
  // A request on `state` was answered: it goes to the back of the shedding order.
  void note_progress(connection& state);
  template <class Stream>
  awaitable<void> serve_connection(Stream& stream, connection& state);
  awaitable<void> run_plain(tcp::socket socket);
  awaitable<void> run_tls(tcp::socket socket, std::shared_ptr<ssl::context> context);
  awaitable<response> dispatch(const request& req, std::string& route_label);
  template <class Stream>
  awaitable<bool> serve_streamed(Stream& stream, const request& req,
                                 const streaming_handler& on_stream, bool keep_alive,
                                 const std::string& route_label);

  asio::io_context& io_;
  std::string name_;
  tcp::acceptor acceptor_;
  router routes_;
  limits limits_;
  server_metrics& metrics_;
  std::shared_ptr<tls_credentials> tls_;
  // Open connections, longest without a completed request (or since the accept) first.
  std::list<connection*> connections_;
  std::size_t shed_unwinding_ = 0;  // shed, closed, but not yet off connections_
  bool draining_ = false;
};

}  // namespace archiver::http
