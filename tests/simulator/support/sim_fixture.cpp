#include "support/sim_fixture.hpp"

#include <doctest/doctest.h>

#include <future>

namespace archiver::testing {
namespace bhttp = beast::http;

hook_server::hook_server(asio::io_context& io, handler answer)
    : answer_(std::move(answer)), metrics_(registry_) {
  http::router routes;
  routes.add("/hook", [this](const http::request& req) -> awaitable<http::response> {
    co_return answer_(req);
  });
  server_ = std::make_unique<http::server>(io, "receiver",
                                           tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0),
                                           std::move(routes), http::limits{}, metrics_);
  server_->start();
}

std::string hook_server::url() const {
  return "http://127.0.0.1:" + std::to_string(server_->local_endpoint().port()) + "/hook";
}

webhook_recorder::webhook_recorder(asio::io_context& io)
    : server_(io, [this](const http::request& req) { return answer(req); }) {}

std::vector<std::string> webhook_recorder::bodies() const {
  const std::lock_guard lock(mutex_);
  return bodies_;
}

http::response webhook_recorder::answer(const http::request& req) {
  if (req.method() == bhttp::verb::get) {
    const std::string target(req.target());
    const std::size_t at = target.find("challenge=");
    return http::text_response(http::status::ok,
                               at == std::string::npos ? "" : target.substr(at + 10));
  }
  const std::lock_guard lock(mutex_);
  bodies_.push_back(req.body());
  return http::text_response(http::status::ok, "ok");
}

running_sim::running_sim(certn_sim::settings config, bool with_receiver)
    : receiver_(with_receiver ? std::make_unique<webhook_recorder>(io_) : nullptr),
      sim_(io_, with_webhooks(std::move(config))),
      port_(sim_.port()),
      base_url_(sim_.base_url()) {
  auto started = asio::co_spawn(io_, sim_.start(), asio::use_future);
  thread_ = std::thread([this] { io_.run(); });
  started.get();
}

running_sim::~running_sim() {
  asio::co_spawn(io_, sim_.stop(), asio::use_future).get();
  work_.reset();
  io_.stop();
  thread_.join();
}

certn_sim::settings running_sim::with_webhooks(certn_sim::settings config) const {
  if (receiver_) {
    config.webhooks.url = receiver_->url();
  }
  return config;
}

sim_reply sim_request(unsigned short port, bhttp::verb method, const std::string& target,
                      const std::string& body, const std::string& key) {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect({asio::ip::address_v4::loopback(), port});
  bhttp::request<bhttp::string_body> req{method, target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  if (!key.empty()) {
    req.set(bhttp::field::authorization, "Api-Key " + key);
  }
  if (!body.empty()) {
    req.set(bhttp::field::content_type, "application/json");
  }
  req.body() = body;
  req.prepare_payload();
  bhttp::write(socket, req);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(socket, buffer, res);
  return {static_cast<int>(res.result_int()), res.body(),
          std::string(res[bhttp::field::content_type]), std::string(res[bhttp::field::retry_after]),
          std::string(res[bhttp::field::allow])};
}

std::vector<std::string> create_cases(unsigned short port, const std::string& body) {
  const sim_reply r = sim_request(port, bhttp::verb::post, "/_sim/cases", body);
  REQUIRE(r.status == 201);
  std::vector<std::string> ids;
  const json answer(r.body);
  for (const auto id : answer["ids"].get_array()) {
    ids.emplace_back(id.get_string().value());
  }
  return ids;
}

json::json(const std::string& text) : parser_(std::make_unique<simdjson::dom::parser>()) {
  root_ = parser_->parse(text).value();
}

std::string str(simdjson::dom::element e) { return std::string(e.get_string().value()); }
std::int64_t num(simdjson::dom::element e) { return e.get_int64().value(); }
std::size_t len(simdjson::dom::element e) { return e.get_array().size(); }
bool has(simdjson::dom::element object, std::string_view key) {
  return object[key].error() == simdjson::SUCCESS;
}

}  // namespace archiver::testing
