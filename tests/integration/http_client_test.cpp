// The outgoing HTTP client against real sockets on 127.0.0.1: our own http::server for well-behaved
// responses (plain and TLS with certificates made at test time), raw acceptors for servers that
// misbehave or count connections (keep-alive pool) and a small CONNECT proxy. No database; no
// sleeps (deadlines are measured, conditions awaited with a deadline).
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "http/client.hpp"
#include "http/server.hpp"
#include "ops/metrics.hpp"

using namespace archiver;
using namespace archiver::http;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

const tcp::endpoint loopback_any_port(asio::ip::make_address("127.0.0.1"), 0);

destination_policy permissive() {
  destination_policy policy;
  policy.allow_plain_http = true;
  policy.allow_special_addresses = true;
  return policy;
}

// Runs one fetch to completion on `io`; servers sharing `io` keep serving meanwhile.
fetch_result run_fetch(asio::io_context& io, client& c, const std::string& url, body_sink& sink,
                       const request_options& options = {}) {
  std::optional<fetch_result> out;
  std::exception_ptr escaped;
  asio::co_spawn(io, c.fetch(url, options, sink),
                 [&](std::exception_ptr error, fetch_result result) {
                   escaped = error;
                   out = std::move(result);
                 });
  while (!out) {
    if (io.run_one() == 0) {
      FAIL("io_context ran out of work before the fetch finished");
    }
  }
  if (escaped) {
    std::rethrow_exception(escaped);
  }
  return *out;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string header(const fetch_result& result, const std::string& name) {
  for (const auto& [key, value] : result.head.headers) {
    if (beast::iequals(key, name)) {
      return value;
    }
  }
  return {};
}

// Our own server with a few routes, on 127.0.0.1 and an ephemeral port.
class test_server {
 public:
  explicit test_server(asio::io_context& io, std::shared_ptr<tls_credentials> tls = nullptr)
      : metrics_(registry_) {
    router routes;
    routes.add("/hello", [](const request&) -> awaitable<response> {
      co_return text_response(status::ok, "hello world");
    });
    routes.add("/echo", [](const request& req) -> awaitable<response> {
      response res = text_response(status::ok, std::string(req.method_string()) + " " + req.body());
      res.set("X-Seen-User-Agent", req[beast::http::field::user_agent]);
      res.set("X-Seen-Host", req[beast::http::field::host]);
      res.set("X-Seen-Custom", req["X-Custom"]);
      co_return res;
    });
    routes.add("/redirect", [](const request&) -> awaitable<response> {
      response res = text_response(status::found, "moved");
      res.set(beast::http::field::location, "/hello");
      co_return res;
    });
    routes.add("/big", [](const request&) -> awaitable<response> {
      co_return text_response(status::ok, std::string(100'000, 'x'));
    });
    server_ = std::make_unique<server>(io, "test", loopback_any_port, std::move(routes), limits{},
                                       metrics_, std::move(tls));
    server_->start();
  }
  unsigned short port() const { return server_->local_endpoint().port(); }

 private:
  ops::registry registry_;
  server_metrics metrics_;
  std::unique_ptr<server> server_;
};

// Accepts one connection, reads the request header, writes `reply` verbatim, then closes the
// connection, or with `hold_open` keeps it open (silent) until destroyed.
class raw_server {
 public:
  raw_server(asio::io_context& io, std::string reply, bool hold_open = false)
      : acceptor_(io, loopback_any_port), socket_(io) {
    // A failure here shows up as the client's result, which the test checks.
    asio::co_spawn(io, serve(std::move(reply), hold_open), [](std::exception_ptr) {});
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }

 private:
  awaitable<void> serve(std::string reply, bool hold_open) {
    socket_ = co_await acceptor_.async_accept(asio::use_awaitable);
    std::string received;
    co_await asio::async_read_until(socket_, asio::dynamic_buffer(received), "\r\n\r\n",
                                    asio::use_awaitable);
    if (!reply.empty()) {
      co_await asio::async_write(socket_, asio::buffer(reply), asio::use_awaitable);
    }
    if (!hold_open) {
      error_code ec;
      socket_.shutdown(tcp::socket::shutdown_both, ec);
      socket_.close(ec);
    }
  }
  tcp::acceptor acceptor_;
  tcp::socket socket_;
};

std::string local(unsigned short port, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(port) + path;
}

}  // namespace

TEST_CASE("GET streams the body into a string_sink") {
  asio::io_context io;
  test_server srv(io);
  client c(io, permissive(), nullptr);
  string_sink sink(1024);
  const fetch_result result = run_fetch(io, c, local(srv.port(), "/hello"), sink);
  CHECK_MESSAGE(result.error == failure::none, result.message);
  CHECK(result.head.status == 200);
  CHECK(sink.data() == "hello world");
  CHECK(result.body_bytes == 11);
  CHECK(contains(header(result, "Content-Type"), "text/plain"));
}

TEST_CASE("POST sends its body, Host, User-Agent and caller headers") {
  asio::io_context io;
  test_server srv(io);
  client c(io, permissive(), nullptr);
  string_sink sink(1024);
  request_options options;
  options.method = "POST";
  options.body = "payload";
  options.headers = {{"X-Custom", "yes"}};
  const fetch_result result = run_fetch(io, c, local(srv.port(), "/echo"), sink, options);
  CHECK_MESSAGE(result.error == failure::none, result.message);
  CHECK(result.head.status == 200);
  CHECK(sink.data() == "POST payload");
  CHECK(header(result, "X-Seen-User-Agent") == std::string("certn-archiver/") + ARCHIVER_VERSION);
  CHECK(header(result, "X-Seen-Host") == "127.0.0.1:" + std::to_string(srv.port()));
  CHECK(header(result, "X-Seen-Custom") == "yes");
}

TEST_CASE("a 404 is a response, not a failure") {
  asio::io_context io;
  test_server srv(io);
  client c(io, permissive(), nullptr);
  string_sink sink(1024);
  const fetch_result result = run_fetch(io, c, local(srv.port(), "/nowhere"), sink);
  CHECK(result.error == failure::none);
  CHECK(result.head.status == 404);
}

TEST_CASE("a 302 is returned as is, not followed") {
  asio::io_context io;
  test_server srv(io);
  client c(io, permissive(), nullptr);
  string_sink sink(1024);
  const fetch_result result = run_fetch(io, c, local(srv.port(), "/redirect"), sink);
  CHECK(result.error == failure::none);
  CHECK(result.head.status == 302);
  CHECK(header(result, "Location") == "/hello");
  CHECK(sink.data() == "moved");
}

TEST_CASE("loopback is refused by default and allowed with allow_special_addresses") {
  asio::io_context io;
  test_server srv(io);
  string_sink sink(1024);
  destination_policy strict;
  strict.allow_plain_http = true;
  client refusing(io, strict, nullptr);

  SUBCASE("an IP literal") {
    const fetch_result result = run_fetch(io, refusing, local(srv.port(), "/hello"), sink);
    CHECK(result.error == failure::refused_by_policy);
    CHECK(contains(result.message, "127.0.0.1"));
    CHECK(contains(result.message, "loopback"));
  }
  SUBCASE("a name resolving to loopback") {
    const fetch_result result =
        run_fetch(io, refusing, "http://localhost:" + std::to_string(srv.port()) + "/hello", sink);
    CHECK(result.error == failure::refused_by_policy);
    CHECK(contains(result.message, "localhost resolves to"));
  }
  SUBCASE("IPv6 and IPv4-mapped literals") {
    CHECK(run_fetch(io, refusing, "http://[::1]:1/", sink).error == failure::refused_by_policy);
    CHECK(run_fetch(io, refusing, "http://[::ffff:127.0.0.1]:1/", sink).error ==
          failure::refused_by_policy);
    CHECK(run_fetch(io, refusing, "http://169.254.169.254/latest/meta-data/", sink).error ==
          failure::refused_by_policy);
  }
  SUBCASE("allowed when special addresses are") {
    client allowing(io, permissive(), nullptr);
    const fetch_result result = run_fetch(io, allowing, local(srv.port(), "/hello"), sink);
    CHECK_MESSAGE(result.error == failure::none, result.message);
    CHECK(result.head.status == 200);
  }
}

TEST_CASE("plain http is refused unless allowed") {
  asio::io_context io;
  destination_policy policy;
  policy.allow_special_addresses = true;
  client c(io, policy, nullptr);
  string_sink sink(1024);
  const fetch_result result = run_fetch(io, c, "http://127.0.0.1:1/", sink);
  CHECK(result.error == failure::refused_by_policy);
  CHECK(contains(result.message, "plain http"));
}

TEST_CASE("https is refused without a TLS context") {
  asio::io_context io;
  client c(io, permissive(), nullptr);
  string_sink sink(1024);
  const fetch_result result = run_fetch(io, c, "https://127.0.0.1:1/", sink);
  CHECK(result.error == failure::refused_by_policy);
  CHECK(contains(result.message, "no TLS context"));
}

TEST_CASE("URLs with userinfo are refused") {
  asio::io_context io;
  client c(io, permissive(), nullptr);
  string_sink sink(1024);
  const fetch_result result = run_fetch(io, c, "http://user:pw@127.0.0.1:1/", sink);
  CHECK(result.error == failure::invalid_url);
  CHECK(contains(result.message, "userinfo"));
}

TEST_CASE("hosts outside allowed_hosts are refused") {
  asio::io_context io;
  test_server srv(io);
  destination_policy policy = permissive();
  policy.allowed_hosts = {"*.example.com"};
  client c(io, policy, nullptr);
  string_sink sink(1024);
  const fetch_result result = run_fetch(io, c, local(srv.port(), "/hello"), sink);
  CHECK(result.error == failure::refused_by_policy);
  CHECK(contains(result.message, "127.0.0.1"));
  CHECK(contains(result.message, "allowed hosts"));
}

TEST_CASE("headers that would inject or reframe the request are refused") {
  asio::io_context io;
  client c(io, permissive(), nullptr);
  string_sink sink(1024);
  request_options options;
  SUBCASE("CR LF in a value") { options.headers = {{"X-A", "b\r\nX-Injected: 1"}}; }
  SUBCASE("framing header") { options.headers = {{"Content-Length", "5"}}; }
  SUBCASE("bad method") { options.method = "GET /x HTTP/1.1\r\n"; }
  CHECK(run_fetch(io, c, "http://127.0.0.1:1/", sink, options).error == failure::protocol);
}

TEST_CASE("a refused connection is failure::connect") {
  asio::io_context io;
  unsigned short port = 0;
  {
    tcp::acceptor closed(io, loopback_any_port);
    port = closed.local_endpoint().port();
  }
  client c(io, permissive(), nullptr);
  string_sink sink(1024);
  const fetch_result result = run_fetch(io, c, local(port, "/"), sink);
  CHECK(result.error == failure::connect);
  CHECK(contains(result.message, "127.0.0.1"));
}

TEST_CASE("a body shorter than its Content-Length is truncated") {
  asio::io_context io;
  raw_server srv(io, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
  client c(io, permissive(), nullptr);
  string_sink sink(1024);
  const fetch_result result = run_fetch(io, c, local(srv.port(), "/"), sink);
  CHECK_MESSAGE(result.error == failure::truncated, result.message);
  CHECK(result.head.status == 200);
  CHECK(result.body_bytes <= 10);
}

TEST_CASE("a chunked body without its last chunk is truncated") {
  asio::io_context io;
  raw_server srv(io, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
  client c(io, permissive(), nullptr);
  string_sink sink(1024);
  const fetch_result result = run_fetch(io, c, local(srv.port(), "/"), sink);
  CHECK_MESSAGE(result.error == failure::truncated, result.message);
}

TEST_CASE("a complete chunked body succeeds") {
  asio::io_context io;
  raw_server srv(io,
                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                 "6\r\n world\r\n0\r\n\r\n");
  client c(io, permissive(), nullptr);
  string_sink sink(1024);
  const fetch_result result = run_fetch(io, c, local(srv.port(), "/"), sink);
  CHECK_MESSAGE(result.error == failure::none, result.message);
  CHECK(sink.data() == "hello world");
}

TEST_CASE("interim 1xx responses are skipped") {
  asio::io_context io;
  raw_server srv(io, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  client c(io, permissive(), nullptr);
  string_sink sink(1024);
  const fetch_result result = run_fetch(io, c, local(srv.port(), "/"), sink);
  CHECK_MESSAGE(result.error == failure::none, result.message);
  CHECK(result.head.status == 200);
  CHECK(sink.data() == "ok");
}

TEST_CASE("a HEAD response carries Content-Length but no body") {
  asio::io_context io;
  raw_server srv(io, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", /*hold_open=*/true);
  client c(io, permissive(), nullptr);
  string_sink sink(1024);
  request_options options;
  options.method = "HEAD";
  options.read_timeout = milliseconds(5000);
  const fetch_result result = run_fetch(io, c, local(srv.port(), "/"), sink, options);
  CHECK_MESSAGE(result.error == failure::none, result.message);
  CHECK(header(result, "Content-Length") == "5000");
  CHECK(result.body_bytes == 0);
}

TEST_CASE("a server closing without a response is a protocol failure") {
  asio::io_context io;
  raw_server srv(io, "");
  client c(io, permissive(), nullptr);
  string_sink sink(1024);
  const fetch_result result = run_fetch(io, c, local(srv.port(), "/"), sink);
  CHECK_MESSAGE(result.error == failure::protocol, result.message);
}

TEST_CASE("a server that never answers times out") {
  asio::io_context io;
  raw_server srv(io, "", /*hold_open=*/true);
  client c(io, permissive(), nullptr);
  string_sink sink(1024);
  request_options options;

  SUBCASE("within read_timeout") {
    options.read_timeout = milliseconds(200);
    const auto started = steady_clock::now();
    const fetch_result result = run_fetch(io, c, local(srv.port(), "/"), sink, options);
    const auto elapsed = steady_clock::now() - started;
    CHECK(result.error == failure::timeout);
    CHECK(contains(result.message, "read timeout"));
    CHECK(elapsed >= milliseconds(190));
    CHECK(elapsed < milliseconds(2000));
  }
  SUBCASE("within total_timeout") {
    options.total_timeout = milliseconds(200);
    const auto started = steady_clock::now();
    const fetch_result result = run_fetch(io, c, local(srv.port(), "/"), sink, options);
    CHECK(result.error == failure::timeout);
    CHECK(contains(result.message, "total timeout"));
    CHECK(steady_clock::now() - started < milliseconds(2000));
  }
}

TEST_CASE("a body longer than the sink's cap is too_large") {
  asio::io_context io;
  client c(io, permissive(), nullptr);
  string_sink sink(1000);

  SUBCASE("announced by Content-Length") {
    test_server srv(io);
    const fetch_result result = run_fetch(io, c, local(srv.port(), "/big"), sink);
    CHECK(result.error == failure::too_large);
    CHECK(result.head.status == 200);
    CHECK(sink.data().empty());
  }
  SUBCASE("found while streaming a chunked body") {
    const std::string chunk(600, 'y');
    raw_server srv(io, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n" + chunk +
                           "\r\n258\r\n" + chunk + "\r\n0\r\n\r\n");
    const fetch_result result = run_fetch(io, c, local(srv.port(), "/"), sink);
    CHECK(result.error == failure::too_large);
    CHECK(sink.data().size() <= 1000);
  }
}

namespace {

// A CA, a server certificate for "localhost" and one for "wrong.example" signed by it, and an
// unrelated CA; made once per run with the openssl command into a temporary directory.
struct test_pki {
  std::filesystem::path dir;
  test_pki() {
    std::mt19937_64 rng{std::random_device{}()};
    dir = std::filesystem::temp_directory_path() / ("archiver-pki-" + std::to_string(rng()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "localhost.ext")
        << "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n";
    std::ofstream(dir / "wrong.ext") << "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                                        "subjectAltName=DNS:wrong.example\n";
    const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string script =
        "cd '" + dir.string() + "' && " + "openssl req -x509" + key +
        " -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca && " + "openssl req -x509" + key +
        " -keyout other.key -out other.pem -days 2 -subj /CN=other && " + "openssl req" + key +
        " -keyout localhost.key -out localhost.csr -subj /CN=localhost && " +
        "openssl x509 -req -in localhost.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile localhost.ext -out localhost.pem && " +
        "openssl req" + key + " -keyout wrong.key -out wrong.csr -subj /CN=wrong.example && " +
        "openssl x509 -req -in wrong.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile wrong.ext -out wrong.pem";
    const std::string command = "(" + script + ") >'" + (dir / "openssl.log").string() + "' 2>&1";
    if (std::system(command.c_str()) != 0) {
      throw std::runtime_error("making test certificates failed; see " +
                               (dir / "openssl.log").string());
    }
  }
  ~test_pki() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

const test_pki& pki() {
  static const test_pki instance;
  return instance;
}

std::unique_ptr<ssl::context> client_context(const std::string& ca_file) {
  auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
  context->load_verify_file(ca_file);
  return context;
}

}  // namespace

TEST_CASE("TLS: verifies the server against the CA and its host name") {
  asio::io_context io;
  test_server srv(io, std::make_shared<tls_credentials>(pki().file("localhost.pem"),
                                                        pki().file("localhost.key")));
  const std::string port = std::to_string(srv.port());
  string_sink sink(1024);

  SUBCASE("trusted CA and matching name") {
    const auto trusted = client_context(pki().file("ca.pem"));
    client c(io, permissive(), trusted.get());
    const fetch_result result = run_fetch(io, c, "https://localhost:" + port + "/hello", sink);
    CHECK_MESSAGE(result.error == failure::none, result.message);
    CHECK(result.head.status == 200);
    CHECK(sink.data() == "hello world");
  }
  SUBCASE("a name the certificate does not carry") {
    const auto trusted = client_context(pki().file("ca.pem"));
    client c(io, permissive(), trusted.get());
    const fetch_result result = run_fetch(io, c, "https://127.0.0.1:" + port + "/hello", sink);
    CHECK(result.error == failure::tls);
    CHECK(contains(result.message, "TLS handshake with 127.0.0.1 failed"));
    CHECK(contains(result.message, "the certificate is not for 127.0.0.1"));
    CHECK(sink.data().empty());
  }
  SUBCASE("an untrusted CA") {
    const auto untrusted = client_context(pki().file("other.pem"));
    client c(io, permissive(), untrusted.get());
    const fetch_result result = run_fetch(io, c, "https://localhost:" + port + "/hello", sink);
    CHECK(result.error == failure::tls);
    CHECK(contains(result.message, "unable to get local issuer certificate"));
  }
}

TEST_CASE("TLS: a certificate for another host name fails") {
  asio::io_context io;
  test_server srv(
      io, std::make_shared<tls_credentials>(pki().file("wrong.pem"), pki().file("wrong.key")));
  const auto trusted = client_context(pki().file("ca.pem"));
  client c(io, permissive(), trusted.get());
  string_sink sink(1024);
  const fetch_result result =
      run_fetch(io, c, "https://localhost:" + std::to_string(srv.port()) + "/hello", sink);
  CHECK(result.error == failure::tls);
  CHECK(contains(result.message, "the certificate is not for localhost"));
}

namespace {

// A keep-alive HTTP/1.1 server on a raw acceptor that answers each request (GET, no body) as its
// script says, by the request's number across all connections: "ok"; "close" (with Connection:
// close); "drop" (answers, then closes the connection as a server ending an idle one does);
// "truncate" (half the body, then closes); "silent" (never answers). Past the script: "ok".
// Counts connections accepted, open now and at most.
class keepalive_server {
 public:
  keepalive_server(asio::io_context& io, std::vector<std::string> script = {})
      : io_(io), acceptor_(io, loopback_any_port), script_(std::move(script)) {
    asio::co_spawn(io, accept_loop(), [](std::exception_ptr) {});
  }
  ~keepalive_server() {
    error_code ignored;
    acceptor_.close(ignored);
    for (const auto& socket : sockets_) {
      socket->close(ignored);
    }
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  int accepted = 0;
  int open = 0;
  int max_open = 0;
  int closed = 0;
  std::vector<std::string> requests;

 private:
  awaitable<void> accept_loop() {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(co_await acceptor_.async_accept(asio::use_awaitable));
      sockets_.push_back(socket);
      ++accepted;
      ++open;
      max_open = std::max(max_open, open);
      asio::co_spawn(io_, serve(socket), [this](std::exception_ptr) {
        --open;
        ++closed;
      });
    }
  }
  awaitable<void> serve(std::shared_ptr<tcp::socket> socket) {
    std::string buffer;
    for (;;) {
      const std::size_t end = co_await asio::async_read_until(
          *socket, asio::dynamic_buffer(buffer), "\r\n\r\n", asio::use_awaitable);
      requests.push_back(buffer.substr(0, end));
      buffer.erase(0, end);
      const std::size_t number = requests.size() - 1;
      const std::string action = number < script_.size() ? script_[number] : "ok";
      std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
      if (action == "close") {
        reply = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
      } else if (action == "truncate") {
        reply = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234";
      } else if (action == "silent") {
        reply.clear();
      }
      if (!reply.empty()) {
        co_await asio::async_write(*socket, asio::buffer(reply), asio::use_awaitable);
      }
      if (action != "ok" && action != "silent") {
        error_code ignored;
        socket->shutdown(tcp::socket::shutdown_both, ignored);
        socket->close(ignored);
        co_return;
      }
    }
  }
  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::vector<std::string> script_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
};

// Runs `count` fetches of `url` at once; returns their results in start order.
std::vector<fetch_result> run_fetches(asio::io_context& io, client& c, const std::string& url,
                                      int count, const request_options& options = {}) {
  std::vector<std::optional<fetch_result>> out(count);
  std::vector<std::unique_ptr<string_sink>> sinks;
  int done = 0;
  for (int i = 0; i < count; ++i) {
    sinks.push_back(std::make_unique<string_sink>(1024));
    asio::co_spawn(io, c.fetch(url, options, *sinks.back()),
                   [&out, &done, i](std::exception_ptr, fetch_result result) {
                     out[i] = std::move(result);
                     ++done;
                   });
  }
  while (done < count) {
    if (io.run_one() == 0) {
      FAIL("io_context ran out of work before the fetches finished");
    }
  }
  std::vector<fetch_result> results;
  for (auto& result : out) {
    results.push_back(std::move(*result));
  }
  return results;
}

// Runs `io` until `condition` holds, failing the test after five seconds.
template <class Condition>
void run_until(asio::io_context& io, Condition condition) {
  const auto until = steady_clock::now() + std::chrono::seconds(5);
  while (!condition()) {
    REQUIRE(steady_clock::now() < until);
    io.run_one_for(milliseconds(50));
  }
}

}  // namespace

TEST_CASE("keep-alive: sequential fetches to one host share one connection") {
  asio::io_context io;
  keepalive_server srv(io);
  client c(io, permissive(), nullptr);
  for (int i = 0; i < 4; ++i) {
    string_sink sink(1024);
    const fetch_result result = run_fetch(io, c, local(srv.port(), "/n"), sink);
    REQUIRE_MESSAGE(result.error == failure::none, result.message);
    CHECK(sink.data() == "ok");
  }
  CHECK(c.stats().connections_opened == 1);
  CHECK(c.stats().connections_reused == 3);
  CHECK(srv.accepted == 1);
  CHECK_FALSE(contains(srv.requests[0], "close"));
}

TEST_CASE("keep-alive off: Connection: close and one connection per fetch") {
  asio::io_context io;
  keepalive_server srv(io);
  client_settings settings;
  settings.keep_alive = false;
  client c(io, permissive(), nullptr, settings);
  for (int i = 0; i < 2; ++i) {
    string_sink sink(1024);
    REQUIRE(run_fetch(io, c, local(srv.port(), "/"), sink).error == failure::none);
  }
  CHECK(contains(srv.requests[0], "Connection: close"));
  CHECK(c.stats().connections_opened == 2);
  CHECK(c.stats().connections_reused == 0);
  CHECK(srv.accepted == 2);
}

TEST_CASE("keep-alive: concurrent fetches beyond the per-host cap wait for a connection") {
  asio::io_context io;
  keepalive_server srv(io);
  client_settings settings;
  settings.max_connections_per_host = 2;
  client c(io, permissive(), nullptr, settings);
  const auto results = run_fetches(io, c, local(srv.port(), "/"), 5);
  for (const fetch_result& result : results) {
    CHECK_MESSAGE(result.error == failure::none, result.message);
  }
  CHECK(srv.max_open == 2);
  CHECK(srv.accepted == 2);
  CHECK(c.stats().connections_opened == 2);
  CHECK(c.stats().connections_reused == 3);
}

TEST_CASE("keep-alive: waiting for a slot is bounded by the connect timeout") {
  asio::io_context io;
  keepalive_server srv(io, {"silent"});
  client_settings settings;
  settings.max_connections_per_host = 1;
  client c(io, permissive(), nullptr, settings);
  request_options options;
  options.connect_timeout = milliseconds(200);
  options.read_timeout = milliseconds(600);
  const auto results = run_fetches(io, c, local(srv.port(), "/"), 2, options);
  CHECK(results[0].error == failure::timeout);  // the silent answer, after read_timeout
  CHECK(results[1].error == failure::timeout);
  CHECK(contains(results[1].message, "connect timeout (200 ms) passed while waiting for"));
  CHECK(srv.accepted == 1);
}

TEST_CASE("keep-alive: a connection the server closed while idle is retried once, transparently") {
  asio::io_context io;
  keepalive_server srv(io, {"drop"});
  client c(io, permissive(), nullptr);
  string_sink first(1024);
  REQUIRE(run_fetch(io, c, local(srv.port(), "/"), first).error == failure::none);
  // Make sure the server's close has happened before the connection is reused.
  run_until(io, [&] { return srv.closed == 1; });
  string_sink second(1024);
  const fetch_result result = run_fetch(io, c, local(srv.port(), "/"), second);
  CHECK_MESSAGE(result.error == failure::none, result.message);
  CHECK(second.data() == "ok");
  CHECK(c.stats().connections_reused == 1);
  CHECK(c.stats().connections_opened == 2);
  CHECK(srv.accepted == 2);
}

TEST_CASE("keep-alive: no reuse after Connection: close, a truncated body or a timeout") {
  asio::io_context io;
  std::string first_action;
  SUBCASE("Connection: close") { first_action = "close"; }
  SUBCASE("truncated body") { first_action = "truncate"; }
  SUBCASE("timeout") { first_action = "silent"; }
  keepalive_server srv(io, {first_action});
  client c(io, permissive(), nullptr);
  request_options options;
  options.read_timeout = milliseconds(200);
  string_sink first(1024);
  const fetch_result failed_or_closed = run_fetch(io, c, local(srv.port(), "/"), first, options);
  CHECK(failed_or_closed.error == (first_action == "close"      ? failure::none
                                   : first_action == "truncate" ? failure::truncated
                                                                : failure::timeout));
  string_sink second(1024);
  const fetch_result result = run_fetch(io, c, local(srv.port(), "/"), second, options);
  CHECK_MESSAGE(result.error == failure::none, result.message);
  CHECK(c.stats().connections_reused == 0);
  CHECK(c.stats().connections_opened == 2);
  CHECK(srv.accepted == 2);
}

TEST_CASE("keep-alive: an idle connection is closed after the idle timeout") {
  asio::io_context io;
  keepalive_server srv(io);
  client_settings settings;
  settings.idle_timeout = milliseconds(100);
  client c(io, permissive(), nullptr, settings);
  string_sink first(1024);
  REQUIRE(run_fetch(io, c, local(srv.port(), "/"), first).error == failure::none);
  CHECK(srv.closed == 0);
  run_until(io, [&] { return srv.closed == 1; });
  string_sink second(1024);
  REQUIRE(run_fetch(io, c, local(srv.port(), "/"), second).error == failure::none);
  CHECK(c.stats().connections_reused == 0);
  CHECK(c.stats().connections_opened == 2);
}

TEST_CASE("a connect deadline passing while resolving is a timeout") {
  asio::io_context io;
  client c(io, permissive(), nullptr);
  string_sink sink(1024);
  request_options options;
  // Deterministic only for a deadline already passed: racing the timer against an in-flight
  // getaddrinfo on a helper thread could not be made reliable here.
  options.connect_timeout = milliseconds(0);
  const fetch_result result = run_fetch(io, c, "http://localhost:1/", sink, options);
  CHECK_MESSAGE(result.error == failure::timeout, result.message);
  CHECK(contains(result.message, "connect timeout (0 ms) passed while resolving localhost"));
}

namespace {

// A CONNECT proxy on a raw acceptor: records each request head, then either refuses with 407 or
// connects to the requested host:port and pipes bytes both ways until either side closes.
class connect_proxy {
 public:
  explicit connect_proxy(asio::io_context& io, bool refuse = false)
      : io_(io), acceptor_(io, loopback_any_port), refuse_(refuse) {
    asio::co_spawn(io, accept_loop(), [](std::exception_ptr) {});
  }
  ~connect_proxy() {
    error_code ignored;
    acceptor_.close(ignored);
    for (const auto& socket : sockets_) {
      socket->close(ignored);
    }
  }
  std::string url(const std::string& userinfo = "") const {
    return "http://" + userinfo + "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  std::vector<std::string> heads;  // each CONNECT request head as received

 private:
  awaitable<void> accept_loop() {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(co_await acceptor_.async_accept(asio::use_awaitable));
      sockets_.push_back(socket);
      asio::co_spawn(io_, serve(socket), [](std::exception_ptr) {});
    }
  }
  awaitable<void> serve(std::shared_ptr<tcp::socket> client_side) {
    std::string buffer;
    const std::size_t end = co_await asio::async_read_until(
        *client_side, asio::dynamic_buffer(buffer), "\r\n\r\n", asio::use_awaitable);
    heads.push_back(buffer.substr(0, end));
    buffer.erase(0, end);
    if (refuse_) {
      const std::string reply =
          "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n"
          "Content-Length: 0\r\n\r\n";
      co_await asio::async_write(*client_side, asio::buffer(reply), asio::use_awaitable);
      client_side->close();
      co_return;
    }
    // "CONNECT host:port HTTP/1.1"
    const std::string authority = heads.back().substr(8, heads.back().find(' ', 8) - 8);
    const std::size_t colon = authority.rfind(':');
    tcp::resolver resolver(io_);
    const auto targets = co_await resolver.async_resolve(
        authority.substr(0, colon), authority.substr(colon + 1), asio::use_awaitable);
    auto server_side = std::make_shared<tcp::socket>(io_);
    sockets_.push_back(server_side);
    co_await asio::async_connect(*server_side, targets, asio::use_awaitable);
    const std::string established = "HTTP/1.1 200 Connection established\r\n\r\n";
    co_await asio::async_write(*client_side, asio::buffer(established), asio::use_awaitable);
    if (!buffer.empty()) {
      co_await asio::async_write(*server_side, asio::buffer(buffer), asio::use_awaitable);
    }
    asio::co_spawn(io_, pipe(client_side, server_side), [](std::exception_ptr) {});
    asio::co_spawn(io_, pipe(server_side, client_side), [](std::exception_ptr) {});
  }
  static awaitable<void> pipe(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to) {
    std::array<char, 4096> data;
    error_code ec;
    for (;;) {
      const std::size_t n =
          co_await from->async_read_some(asio::buffer(data), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        break;
      }
      co_await asio::async_write(*to, asio::buffer(data.data(), n),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        break;
      }
    }
    error_code ignored;
    to->shutdown(tcp::socket::shutdown_send, ignored);
  }
  asio::io_context& io_;
  tcp::acceptor acceptor_;
  bool refuse_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
};

}  // namespace

TEST_CASE("proxy: https through CONNECT verifies the target's certificate over the tunnel") {
  asio::io_context io;
  test_server srv(io, std::make_shared<tls_credentials>(pki().file("localhost.pem"),
                                                        pki().file("localhost.key")));
  connect_proxy proxy(io);
  const auto trusted = client_context(pki().file("ca.pem"));
  client_settings settings;
  settings.proxy.https_proxy = proxy.url("user:s3cret@");
  client c(io, permissive(), trusted.get(), settings);
  const std::string target = "https://localhost:" + std::to_string(srv.port()) + "/hello";
  for (int i = 0; i < 2; ++i) {
    string_sink sink(1024);
    const fetch_result result = run_fetch(io, c, target, sink);
    REQUIRE_MESSAGE(result.error == failure::none, result.message);
    CHECK(sink.data() == "hello world");
  }
  REQUIRE(proxy.heads.size() == 1);  // the second fetch reused the tunnel
  CHECK(proxy.heads[0].starts_with("CONNECT localhost:" + std::to_string(srv.port()) +
                                   " HTTP/1.1\r\n"));
  CHECK(contains(proxy.heads[0], "Host: localhost:" + std::to_string(srv.port())));
  // base64("user:s3cret")
  CHECK(contains(proxy.heads[0], "Proxy-Authorization: Basic dXNlcjpzM2NyZXQ="));
  CHECK(c.stats().connections_reused == 1);

  SUBCASE("a certificate not for the target name fails over the tunnel too") {
    string_sink sink(1024);
    const fetch_result result =
        run_fetch(io, c, "https://127.0.0.1:" + std::to_string(srv.port()) + "/hello", sink);
    CHECK(result.error == failure::tls);
    CHECK(contains(result.message, "the certificate is not for 127.0.0.1"));
  }
}

TEST_CASE("proxy: plain http goes through CONNECT as well; NO_PROXY bypasses it") {
  asio::io_context io;
  keepalive_server srv(io);
  connect_proxy proxy(io);
  client_settings settings;
  settings.proxy.http_proxy = proxy.url();
  SUBCASE("through the proxy") {
    client c(io, permissive(), nullptr, settings);
    string_sink sink(1024);
    const fetch_result result = run_fetch(io, c, local(srv.port(), "/via"), sink);
    REQUIRE_MESSAGE(result.error == failure::none, result.message);
    CHECK(sink.data() == "ok");
    REQUIRE(proxy.heads.size() == 1);
    CHECK(proxy.heads[0].starts_with("CONNECT 127.0.0.1:" + std::to_string(srv.port())));
    CHECK_FALSE(contains(proxy.heads[0], "Proxy-Authorization"));
    REQUIRE(srv.requests.size() == 1);
    CHECK(srv.requests[0].starts_with("GET /via HTTP/1.1"));
  }
  SUBCASE("bypassed by NO_PROXY") {
    settings.proxy.no_proxy = "example.com, 127.0.0.1";
    client c(io, permissive(), nullptr, settings);
    string_sink sink(1024);
    const fetch_result result = run_fetch(io, c, local(srv.port(), "/direct"), sink);
    REQUIRE_MESSAGE(result.error == failure::none, result.message);
    CHECK(proxy.heads.empty());
    CHECK(srv.requests.size() == 1);
  }
}

TEST_CASE("proxy: a refused CONNECT is failure::connect naming the proxy, not the credentials") {
  asio::io_context io;
  connect_proxy proxy(io, /*refuse=*/true);
  client_settings settings;
  settings.proxy.http_proxy = proxy.url("user:s3cret@");
  client c(io, permissive(), nullptr, settings);
  string_sink sink(1024);
  const fetch_result result = run_fetch(io, c, "http://127.0.0.1:9/", sink);
  CHECK(result.error == failure::connect);
  CHECK(contains(result.message, "proxy " + proxy.url().substr(7)));
  CHECK(contains(result.message, "HTTP/1.1 407 Proxy Authentication Required"));
  CHECK_FALSE(contains(result.message, "s3cret"));
  CHECK_FALSE(contains(result.message, "dXNlcjpzM2NyZXQ="));
  CHECK(proxy.heads.size() == 1);
}

TEST_CASE("proxy: the destination policy still applies to proxied fetches") {
  asio::io_context io;
  keepalive_server srv(io);
  connect_proxy proxy(io);
  client_settings settings;
  settings.proxy.http_proxy = proxy.url();
  destination_policy strict;
  strict.allow_plain_http = true;
  string_sink sink(1024);
  SUBCASE("a name resolving to loopback") {
    client c(io, strict, nullptr, settings);
    const fetch_result result =
        run_fetch(io, c, "http://localhost:" + std::to_string(srv.port()) + "/", sink);
    CHECK(result.error == failure::refused_by_policy);
    CHECK(contains(result.message, "localhost resolves to"));
  }
  SUBCASE("a host outside allowed_hosts") {
    destination_policy allow_list = permissive();
    allow_list.allowed_hosts = {"*.example.com"};
    client c(io, allow_list, nullptr, settings);
    const fetch_result result = run_fetch(io, c, local(srv.port(), "/"), sink);
    CHECK(result.error == failure::refused_by_policy);
  }
  CHECK(proxy.heads.empty());
  CHECK(srv.accepted == 0);
}

TEST_CASE("proxy: an unusable proxy URL is a start-up error") {
  asio::io_context io;
  client_settings settings;
  settings.proxy.https_proxy = "https://proxy:443";
  CHECK_THROWS_AS(client(io, permissive(), nullptr, settings), std::invalid_argument);
}
