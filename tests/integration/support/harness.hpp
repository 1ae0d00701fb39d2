// Test support for integration tests: a scratch database on the test PostgreSQL (TEST_PG_DSN),
// the webhook listener running in-process on an ephemeral port, and small blocking HTTP clients.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "db/pool.hpp"
#include "http/server.hpp"
#include "net/asio.hpp"
#include "ops/clock.hpp"
#include "ops/metrics.hpp"
#include "webhook/intake.hpp"

namespace archiver::testing {

// TEST_PG_DSN, the database the test command started; the test fails when it is unset.
std::string admin_dsn();

// A database of its own for one test, created (and migrated) on construction, dropped after.
class scratch_database {
 public:
  explicit scratch_database(bool migrate = true);
  ~scratch_database();
  const std::string& dsn() const { return dsn_; }
  // Runs a query and returns the first column of the first row as text ("" when no row / NULL).
  std::string scalar(const std::string& sql) const;

 private:
  std::string name_;
  std::string dsn_;
};

// A configuration for in-process listeners: 127.0.0.1:0, one secret "test-secret".
config::config test_config(const std::string& dsn);

// The webhook listener with its admin routes, on its own io thread.
class listener_harness {
 public:
  // Webhook timestamps are judged by `time` (which must outlive the harness).
  explicit listener_harness(config::config cfg, const ops::clock& time = ops::real_clock());
  ~listener_harness();
  unsigned short port() const { return port_; }
  ops::registry& registry() { return registry_; }
  const config::config& cfg() const { return cfg_; }

 private:
  config::config cfg_;
  asio::io_context io_{1};
  ops::registry registry_;
  std::unique_ptr<db::pool> pool_;
  std::unique_ptr<http::server_metrics> server_metrics_;
  std::unique_ptr<webhook::intake_metrics> intake_metrics_;
  std::unique_ptr<webhook::intake> intake_;
  std::unique_ptr<http::server> server_;
  std::thread thread_;
  unsigned short port_ = 0;
};

struct reply {
  int status = 0;  // 0 when the connection failed or closed without an answer
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

// One request on a fresh connection, with a deadline.
reply http_request(unsigned short port, const std::string& method, const std::string& target,
                   const std::string& body = "", const std::map<std::string, std::string>& headers = {},
                   std::chrono::milliseconds timeout = std::chrono::seconds(10));

// POSTs `body` signed with X-Signature (hex) under `secret`.
reply post_signed(unsigned short port, const std::string& path, const std::string& body,
                  const std::string& secret = "test-secret");

// Sends raw bytes and returns everything read until the server closes or `timeout` passes.
struct raw_result {
  std::string received;
  bool closed_by_server = false;
  std::chrono::milliseconds elapsed{0};
};
raw_result raw_exchange(unsigned short port, const std::string& bytes,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5));
// The same, the bytes sent as `pieces`, `pause` apart (a request split across TCP segments).
raw_result raw_exchange_in_pieces(unsigned short port, const std::vector<std::string>& pieces,
                                  std::chrono::milliseconds pause,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(5));

// An event body as Certn sends it.
std::string event_body(const std::string& id, const std::string& type = "CASE_STATUS_CHANGED",
                       const std::string& object_id = "case-1");

// Stops / starts the test PostgreSQL (scripts/pg.sh pause|resume $TEST_PG_DIR).
void pause_postgres();
void resume_postgres();

// Polls `condition` every 20 ms until it holds or `deadline` passes; returns the last result.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds deadline = std::chrono::seconds(10));

}  // namespace archiver::testing
