// The outgoing HTTP client against real sockets on 127.0.0.1: our own http::server for well-behaved
// responses (plain and TLS with certificates made at test time), and a raw acceptor for servers
// that misbehave. No database; no sleeps (deadlines are measured, not waited for).
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>

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
