// The HTTP/1.1 server: one accept loop per listener, one coroutine per connection, every I/O step
// under a deadline, strict framing, size caps, and a graceful drain. Runs on a single io_context
// thread; none of its members may be called from another thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/asio.hpp"
#include "ops/metrics.hpp"

namespace archiver::http {

using request = beast::http::request<beast::http::string_body>;
using response = beast::http::response<beast::http::string_body>;
using status = beast::http::status;

// A plain-text response with the given status and body (Content-Type text/plain).
response text_response(status code, std::string body);

struct limits {
  std::size_t max_body_bytes = 64 * 1024;  // 413 from Content-Length, or as a chunked body passes it
  std::size_t max_header_bytes = 16 * 1024;  // 431 (request line included)
  std::size_t max_uri_bytes = 8 * 1024;      // 414
  std::size_t max_connections = 1024;        // more are accepted and closed at once
  std::size_t max_requests_per_connection = 1000;
  std::chrono::milliseconds header_timeout{10'000};  // first byte to end of headers
  std::chrono::milliseconds body_timeout{10'000};    // end of headers to end of body; also writes
  std::chrono::milliseconds idle_timeout{30'000};    // keep-alive wait for the next request
};

// A request handler. Exceptions escaping it become a 500 (logged, not sent).
using handler = std::function<awaitable<response>(const request&)>;

// Exact-path routing (the query string is ignored). Method checks are the handler's job.
class router {
 public:
  void add(std::string path, handler on_request);
  // The route matching `target`'s path, or nullptr.
  const std::pair<std::string, handler>* find(std::string_view target) const;

 private:
  std::vector<std::pair<std::string, handler>> routes_;
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
  ops::counter_family& refused_connections;  // {listener, reason}
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
  template <class Stream>
  awaitable<void> serve_connection(Stream& stream, connection& state);
  awaitable<void> run_plain(tcp::socket socket);
  awaitable<void> run_tls(tcp::socket socket, std::shared_ptr<ssl::context> context);
  awaitable<response> dispatch(const request& req, std::string& route_label);

  asio::io_context& io_;
  std::string name_;
  tcp::acceptor acceptor_;
  router routes_;
  limits limits_;
  server_metrics& metrics_;
  std::shared_ptr<tls_credentials> tls_;
  std::list<connection*> connections_;
  bool draining_ = false;
};

}  // namespace archiver::http
