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

TEST_CASE("connections past max_connections are closed at once") {
  scratch_database db;
  config::config cfg = test_config(db.dsn());
  cfg.server.max_connections = 2;
  listener_harness daemon(cfg);

  asio::io_context io;
  std::vector<tcp::socket> held;
  for (int i = 0; i < 2; ++i) {
    held.emplace_back(io);
    held.back().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), daemon.port()));
  }
  // Let the server accept both before the third arrives.
  REQUIRE(eventually([&] {
    return daemon.registry().expose().find("certn_archiver_http_open_connections{listener=\"main\"} 2") !=
           std::string::npos;
  }));
  const raw_result refused = raw_exchange(
      daemon.port(), "GET " + path + "?challenge=x HTTP/1.1\r\nHost: x\r\n\r\n", std::chrono::seconds(3));
  CHECK(refused.received.empty());
  CHECK(refused.closed_by_server);
  CHECK(daemon.registry().expose().find(
            "certn_archiver_http_refused_connections_total{listener=\"main\",reason=\"max_connections\"} 1") !=
        std::string::npos);

  held.clear();  // closing them frees the slots
  CHECK(eventually([&] {
    return http_request(daemon.port(), "GET", path + "?challenge=back").body == "back";
  }));
}

TEST_CASE("unknown paths are 404 and other methods 405") {
  scratch_database db;
  listener_harness daemon(test_config(db.dsn()));
  CHECK(http_request(daemon.port(), "GET", "/nope").status == 404);
  reply put = http_request(daemon.port(), "PUT", path, "{}");
  CHECK(put.status == 405);
  CHECK(put.headers["allow"] == "GET, POST");
}
