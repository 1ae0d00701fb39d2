#include "support/harness.hpp"

#include <doctest/doctest.h>
#include <pqxx/pqxx>

#include <cstdlib>
#include <future>
#include <random>

#include "db/migrations.hpp"
#include "webhook/signature.hpp"

namespace archiver::testing {
namespace bhttp = beast::http;

std::string admin_dsn() {
  const char* dsn = std::getenv("TEST_PG_DSN");
  if (dsn == nullptr || *dsn == '\0') {
    FAIL("TEST_PG_DSN is not set: run the tests through scripts/test.sh, which starts PostgreSQL");
  }
  return dsn;
}

namespace {

std::string random_suffix() {
  static std::mt19937_64 rng{std::random_device{}()};
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  for (int i = 0; i < 10; ++i) {
    out += alphabet[rng() % (sizeof(alphabet) - 1)];
  }
  return out;
}

// The admin DSN with its database name replaced by `name`.
std::string dsn_for(const std::string& admin, const std::string& name) {
  const auto slash = admin.rfind('/');
  const auto query = admin.find('?', slash);
  return admin.substr(0, slash + 1) + name +
         (query == std::string::npos ? "" : admin.substr(query));
}

}  // namespace

scratch_database::scratch_database(bool migrate) : name_("it_" + random_suffix()) {
  const std::string admin = admin_dsn();
  {
    pqxx::connection conn(admin);
    pqxx::nontransaction tx(conn);
    tx.exec0("CREATE DATABASE " + name_);
  }
  dsn_ = dsn_for(admin, name_);
  if (migrate) {
    pqxx::connection conn(dsn_);
    db::apply_migrations(conn);
  }
}

scratch_database::~scratch_database() {
  try {
    pqxx::connection conn(admin_dsn());
    pqxx::nontransaction tx(conn);
    tx.exec0("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception& e) {
    MESSAGE("could not drop scratch database " << name_ << ": " << e.what());
  }
}

std::string scratch_database::scalar(const std::string& sql) const {
  pqxx::connection conn(dsn_);
  pqxx::nontransaction tx(conn);
  const pqxx::result rows = tx.exec(sql);
  if (rows.empty() || rows[0][0].is_null()) {
    return "";
  }
  return rows[0][0].c_str();
}

config::config test_config(const std::string& dsn) {
  config::config cfg;
  cfg.server.listen = "127.0.0.1:0";
  cfg.webhook.secrets = {"test-secret"};
  cfg.database.url = dsn;
  cfg.database.pool_size = 4;
  cfg.database.connect_timeout = std::chrono::seconds(2);
  return cfg;
}

listener_harness::listener_harness(config::config cfg, const ops::clock& time)
    : cfg_(std::move(cfg)) {
  pool_ = std::make_unique<db::pool>(cfg_.database.url, cfg_.database.pool_size,
                                     static_cast<int>(cfg_.database.connect_timeout.count()));
  server_metrics_ = std::make_unique<http::server_metrics>(registry_);
  intake_metrics_ = std::make_unique<webhook::intake_metrics>(registry_);
  intake_ = std::make_unique<webhook::intake>(cfg_.webhook, cfg_.workers.max_attempts, *pool_,
                                              *intake_metrics_, time);
  http::router routes;
  routes.add(cfg_.server.webhook_path,
             [this](const http::request& req) { return intake_->handle(req); });
  routes.add("/metrics", [this](const http::request&) -> awaitable<http::response> {
    co_return http::text_response(http::status::ok, registry_.expose());
  });
  const http::limits limits{
      .max_body_bytes = cfg_.server.max_body_bytes,
      .max_header_bytes = cfg_.server.max_header_bytes,
      .max_uri_bytes = cfg_.server.max_uri_bytes,
      .max_connections = cfg_.server.max_connections,
      .max_requests_per_connection = cfg_.server.max_requests_per_connection,
      .header_timeout = cfg_.server.header_timeout,
      .body_timeout = cfg_.server.body_timeout,
      .idle_timeout = cfg_.server.idle_timeout,
  };
  server_ = std::make_unique<http::server>(
      io_, "main", tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), std::move(routes), limits,
      *server_metrics_);
  port_ = server_->local_endpoint().port();
  server_->start();
  thread_ = std::thread([this] { io_.run(); });
}

listener_harness::~listener_harness() {
  std::promise<void> drained;
  asio::co_spawn(io_, server_->drain(std::chrono::seconds(2)),
                 [&](std::exception_ptr) { drained.set_value(); });
  drained.get_future().wait();
  io_.stop();
  thread_.join();
}

reply http_request(unsigned short port, const std::string& method, const std::string& target,
                   const std::string& body, const std::map<std::string, std::string>& headers,
                   std::chrono::milliseconds timeout) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  reply out;
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  for (const auto& [name, value] : headers) {
    req.set(name, value);
  }
  req.body() = body;
  if (method != "GET" || !body.empty()) {
    req.prepare_payload();
  }
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  stream.expires_after(timeout);
  auto run = [&]() -> awaitable<void> {
    co_await stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                  asio::use_awaitable);
    co_await bhttp::async_write(stream, req, asio::use_awaitable);
    co_await bhttp::async_read(stream, buffer, res, asio::use_awaitable);
  };
  bool ok = false;
  asio::co_spawn(io, run(), [&](std::exception_ptr error) { ok = !error; });
  io.run();
  if (!ok) {
    return out;
  }
  out.status = res.result_int();
  out.body = res.body();
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (char& c : name) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    out.headers[name] = std::string(field.value());
  }
  return out;
}

reply post_signed(unsigned short port, const std::string& path, const std::string& body,
                  const std::string& secret) {
  return http_request(port, "POST", path, body,
                      {{"Content-Type", "application/json"},
                       {"X-Signature", webhook::sign_hex(secret, body)}});
}

raw_result raw_exchange(unsigned short port, const std::string& bytes,
                        std::chrono::milliseconds timeout) {
  return raw_exchange_in_pieces(port, {bytes}, std::chrono::milliseconds(0), timeout);
}

raw_result raw_exchange_in_pieces(unsigned short port, const std::vector<std::string>& pieces,
                                  std::chrono::milliseconds pause,
                                  std::chrono::milliseconds timeout) {
  asio::io_context io;
  tcp::socket socket(io);
  raw_result out;
  const auto started = std::chrono::steady_clock::now();
  asio::steady_timer deadline(io);
  auto run = [&]() -> awaitable<void> {
    co_await socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                  asio::use_awaitable);
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      if (i > 0) {
        asio::steady_timer gap(io, pause);
        co_await gap.async_wait(asio::use_awaitable);
      }
      co_await asio::async_write(socket, asio::buffer(pieces[i]), asio::use_awaitable);
    }
    char chunk[4096];
    for (;;) {
      error_code ec;
      const std::size_t n = co_await socket.async_read_some(
          asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
      out.received.append(chunk, n);
      if (ec) {
        out.closed_by_server = ec == asio::error::eof || ec == asio::error::connection_reset;
        break;
      }
    }
    deadline.cancel();
  };
  deadline.expires_after(timeout);
  deadline.async_wait([&](const error_code& ec) {
    if (!ec) {
      error_code ignored;
      socket.close(ignored);
    }
  });
  asio::co_spawn(io, run(), [](std::exception_ptr) {});
  io.run();
  out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  return out;
}

std::string event_body(const std::string& id, const std::string& type,
                       const std::string& object_id) {
  return R"({"id":")" + id + R"(","event_type":")" + type + R"(","object_id":")" + object_id +
         R"(","object_type":"CASE","created":"2026-11-28T12:00:00Z"})";
}

namespace {

void pg_script(const std::string& verb) {
  const char* dir = std::getenv("TEST_PG_DIR");
  if (dir == nullptr || *dir == '\0') {
    FAIL("TEST_PG_DIR is not set: run the tests through scripts/test.sh");
  }
  const std::string command =
      std::string("bash ") + ARCHIVER_SOURCE_DIR + "/scripts/pg.sh " + verb + " " + dir + " >/dev/null";
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, "failed: " << command);
}

}  // namespace

void pause_postgres() { pg_script("pause"); }
void resume_postgres() { pg_script("resume"); }

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (condition()) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= until) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace archiver::testing
