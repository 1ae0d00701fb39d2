// The listener's hardening, as raw bytes on a socket: deadlines, size caps, strict framing,
// connection caps and keep-alive rules.
#include <doctest/doctest.h>

#include <vector>

#include "support/harness.hpp"

using namespace archiver;
using namespace archiver::testing;

namespace {

const std::string path = "/webhooks/certn";

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

config::config hardened_config(const std::string& dsn) {
  config::config cfg = test_config(dsn);
  cfg.server.header_timeout = std::chrono::milliseconds(400);
  cfg.server.body_timeout = std::chrono::milliseconds(400);
  cfg.server.idle_timeout = std::chrono::milliseconds(400);
  cfg.server.max_header_bytes = 4096;
  cfg.server.max_uri_bytes = 1024;
  return cfg;
}

}  // namespace

TEST_CASE("a slow header is cut off by the header deadline") {
  scratch_database db;
  listener_harness daemon(hardened_config(db.dsn()));

  SUBCASE("a client that sends half a header and waits") {
    const raw_result res =
        raw_exchange(daemon.port(), "POST " + path + " HTTP/1.1\r\nHost: x\r\n", std::chrono::seconds(5));
    CHECK(res.closed_by_server);
    CHECK(res.elapsed < std::chrono::milliseconds(2000));
    CHECK(res.received.empty());
  }
  SUBCASE("a client that connects and says nothing") {
    const raw_result res = raw_exchange(daemon.port(), "", std::chrono::seconds(5));
    CHECK(res.closed_by_server);
    CHECK(res.elapsed < std::chrono::milliseconds(2000));
  }
  SUBCASE("a body that never arrives") {
    const raw_result res = raw_exchange(
        daemon.port(), "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        std::chrono::seconds(5));
    CHECK(res.closed_by_server);
    CHECK(res.elapsed < std::chrono::milliseconds(2000));
  }
}

TEST_CASE("oversized headers and targets are refused") {
  scratch_database db;
  listener_harness daemon(hardened_config(db.dsn()));

  const raw_result big_header = raw_exchange(
      daemon.port(), "GET " + path + "?challenge=a HTTP/1.1\r\nHost: x\r\nX-Big: " +
                         std::string(5000, 'a') + "\r\n\r\n");
  CHECK(starts_with(big_header.received, "HTTP/1.1 431"));
  CHECK(big_header.closed_by_server);

  const raw_result long_uri = raw_exchange(
      daemon.port(), "GET " + path + "?challenge=" + std::string(2000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(starts_with(long_uri.received, "HTTP/1.1 414"));
  CHECK(long_uri.closed_by_server);
}

TEST_CASE("ambiguous framing is a 400 and the connection is closed") {
  scratch_database db;
  listener_harness daemon(hardened_config(db.dsn()));
  const std::string head = "POST " + path + " HTTP/1.1\r\nHost: x\r\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Content-Length with Transfer-Encoding",
       head + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"Transfer-Encoding with Content-Length",
       head + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"},
      {"conflicting Content-Length values", head + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef"},
      {"repeated equal Content-Length", head + "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}"},
      {"Content-Length list", head + "Content-Length: 2, 2\r\n\r\n{}"},
      {"non-numeric Content-Length", head + "Content-Length: abc\r\n\r\n"},
      {"Transfer-Encoding other than chunked", head + "Transfer-Encoding: gzip\r\n\r\n"},
      {"chunked not last", head + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"},
      {"two Transfer-Encoding headers",
       head + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"bad chunk size", head + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
      {"space before colon", head + "Content-Length : 2\r\n\r\n{}"},
  };
  for (const auto& [name, bytes] : cases) {
    CAPTURE(name);
    const raw_result res = raw_exchange(daemon.port(), bytes);
    CHECK(starts_with(res.received, "HTTP/1.1 400"));
    CHECK(res.received.find("Connection: close") != std::string::npos);
    CHECK(res.closed_by_server);
  }
  CHECK(std::stoul(db.scalar("SELECT count(*) FROM webhook_events")) == 0);
}

TEST_CASE("a request whose parts arrive apart is read whole, and the next one after it") {
  // Most requests arrive in one segment and are parsed from the buffer alone. The strict
  // checkers read a head, or a chunked body, whole before Beast parses it; a Content-Length body
  // split across segments is parsed in part from the buffer, then by the async read.
  scratch_database db;
  listener_harness daemon(hardened_config(db.dsn()));
  const std::string next = "GET " + path + "?challenge=next HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<std::string> pieces;
  SUBCASE("the header split, then the body") {
    pieces = {"POST /nowhere HTTP/1.1\r\nHo", "st: x\r\nContent-Length: 10\r\n\r\nabc",
              "defghij" + next};
  }
  SUBCASE("a chunked body split inside a chunk") {
    pieces = {"POST /nowhere HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe",
              "llo\r\n0\r\n\r\n" + next};
  }
  const raw_result res = raw_exchange_in_pieces(
      daemon.port(), pieces, std::chrono::milliseconds(100), std::chrono::milliseconds(1500));
  CHECK(starts_with(res.received, "HTTP/1.1 404"));
  // The body was read to its end, no further: the request after it is answered.
  CHECK(res.received.find("\r\n\r\nnext") != std::string::npos);
}

TEST_CASE("keep-alive serves several requests, up to the per-connection cap") {
  scratch_database db;
  config::config cfg = hardened_config(db.dsn());
  cfg.server.max_requests_per_connection = 2;
  listener_harness daemon(cfg);
  const std::string one = "GET " + path + "?challenge=one HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string two = "GET " + path + "?challenge=two HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string three = "GET " + path + "?challenge=three HTTP/1.1\r\nHost: x\r\n\r\n";
  const raw_result res = raw_exchange(daemon.port(), one + two + three);
  CHECK(res.received.find("\r\n\r\none") != std::string::npos);
  CHECK(res.received.find("\r\n\r\ntwo") != std::string::npos);
  CHECK(res.received.find("three") == std::string::npos);
  CHECK(res.received.find("Connection: close") != std::string::npos);
  CHECK(res.closed_by_server);
}

TEST_CASE("an idle keep-alive connection is closed after the idle timeout") {
  scratch_database db;
  listener_harness daemon(hardened_config(db.dsn()));
  const raw_result res = raw_exchange(
      daemon.port(), "GET " + path + "?challenge=x HTTP/1.1\r\nHost: x\r\n\r\n", std::chrono::seconds(5));
  CHECK(starts_with(res.received, "HTTP/1.1 200"));
  CHECK(res.closed_by_server);
  CHECK(res.elapsed < std::chrono::milliseconds(2000));
}

namespace {

tcp::socket connect_and_hold(asio::io_context& io, unsigned short port) {
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  socket.non_blocking(true);
  return socket;
}

// True once the server has closed `socket` (a non-blocking one it sent nothing on).
bool closed_by_server(tcp::socket& socket) {
  char byte = 0;
  error_code ec;
  socket.read_some(asio::buffer(&byte, 1), ec);
  return ec && ec != asio::error::would_block;
}

bool open_connections_are(listener_harness& daemon, int n) {
  return daemon.registry().expose().find("certn_archiver_http_open_connections{listener=\"main\"} " +
                                         std::to_string(n) + "\n") != std::string::npos;
}

bool shed_count_is(listener_harness& daemon, int n) {
  return daemon.registry().expose().find(
             "certn_archiver_http_refused_connections_total{listener=\"main\",reason=\"max_connections_shed\"} " +
             std::to_string(n) + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("at max_connections a new connection sheds the one waiting longest for a request") {
  scratch_database db;
  config::config cfg = test_config(db.dsn());
  cfg.server.max_connections = 2;
  listener_harness daemon(cfg);

  // Two silent clients fill the cap, the first one accepted first.
  asio::io_context io;
  tcp::socket oldest = connect_and_hold(io, daemon.port());
  REQUIRE(eventually([&] { return open_connections_are(daemon, 1); }));
  tcp::socket newer = connect_and_hold(io, daemon.port());
  REQUIRE(eventually([&] { return open_connections_are(daemon, 2); }));

  // A client with a request is served rather than refused, and the oldest silent one goes.
  CHECK(http_request(daemon.port(), "GET", path + "?challenge=served").body == "served");
  CHECK(eventually([&] { return closed_by_server(oldest); }));
  CHECK_FALSE(closed_by_server(newer));
  CHECK(shed_count_is(daemon, 1));
  CHECK(daemon.registry().expose().find("reason=\"max_connections\"}") == std::string::npos);
}

TEST_CASE("a connection that completed a request is shed after one that never did") {
  scratch_database db;
  config::config cfg = test_config(db.dsn());
  cfg.server.max_connections = 2;
  listener_harness daemon(cfg);

  asio::io_context io;
  tcp::socket keep_alive = connect_and_hold(io, daemon.port());
  REQUIRE(eventually([&] { return open_connections_are(daemon, 1); }));
  tcp::socket silent = connect_and_hold(io, daemon.port());
  REQUIRE(eventually([&] { return open_connections_are(daemon, 2); }));

  // The first-accepted connection is answered after the silent one arrived, so it has made
  // progress more recently and is no longer the one to shed.
  const std::string request = "GET " + path + "?challenge=kept HTTP/1.1\r\nHost: x\r\n\r\n";
  keep_alive.non_blocking(false);
  asio::write(keep_alive, asio::buffer(request));
  keep_alive.non_blocking(true);
  std::string answer;
  REQUIRE(eventually([&] {
    char chunk[512];
    error_code ec;
    const std::size_t n = keep_alive.read_some(asio::buffer(chunk), ec);
    answer.append(chunk, n);
    return answer.find("\r\n\r\nkept") != std::string::npos;
  }));

  CHECK(http_request(daemon.port(), "GET", path + "?challenge=third").body == "third");
  CHECK(eventually([&] { return closed_by_server(silent); }));
  CHECK_FALSE(closed_by_server(keep_alive));
  CHECK(shed_count_is(daemon, 1));
}

TEST_CASE("unknown paths are 404 and other methods 405") {
  scratch_database db;
  listener_harness daemon(test_config(db.dsn()));
  CHECK(http_request(daemon.port(), "GET", "/nope").status == 404);
  reply put = http_request(daemon.port(), "PUT", path, "{}");
  CHECK(put.status == 405);
  CHECK(put.headers["allow"] == "GET, POST");
}
