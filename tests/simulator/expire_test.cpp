// certn-sim's fault expire_next_urls over real sockets: the next N presigned URLs any API answer
// hands out are already expired (403 "Request has expired" when used); the ones after are good.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <chrono>
#include <future>
#include <thread>

#include "net/asio.hpp"
#include "simulator.hpp"

namespace {

using namespace archiver;
namespace bhttp = beast::http;

// A simulator served by its own io_context thread, stopped and joined on destruction.
class running_sim {
 public:
  explicit running_sim(certn_sim::settings config)
      : sim_(io_, std::move(config)), port_(sim_.port()), base_url_(sim_.base_url()) {
    auto started = asio::co_spawn(io_, sim_.start(), asio::use_future);
    thread_ = std::thread([this] { io_.run(); });
    started.get();
  }
  ~running_sim() {
    asio::co_spawn(io_, sim_.stop(), asio::use_future).get();
    work_.reset();
    io_.stop();
    thread_.join();
  }
  // Read before the io_context thread starts: the simulator is not thread-safe.
  unsigned short port() const { return port_; }
  const std::string& base_url() const { return base_url_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  certn_sim::simulator sim_;
  unsigned short port_;
  std::string base_url_;
  std::thread thread_;
};

struct reply {
  int status = 0;
  std::string body;
};

reply call(unsigned short port, bhttp::verb method, const std::string& target,
           const std::string& body = "") {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect({asio::ip::address_v4::loopback(), port});
  bhttp::request<bhttp::string_body> req{method, target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  req.set(bhttp::field::authorization, "Api-Key sim-key");
  req.body() = body;
  req.prepare_payload();
  bhttp::write(socket, req);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(socket, buffer, res);
  return {static_cast<int>(res.result_int()), res.body()};
}

reply post(unsigned short port, const std::string& target, const std::string& body = "") {
  return call(port, bhttp::verb::post, target, body);
}

reply get(unsigned short port, const std::string& target) {
  return call(port, bhttp::verb::get, target);
}

// One parsed JSON document (the parser lives as long as the elements read from it).
class json {
 public:
  explicit json(const std::string& text) : parser_(std::make_unique<simdjson::dom::parser>()) {
    root_ = parser_->parse(text).value();
  }
  simdjson::dom::element operator[](std::string_view key) const { return root_[key].value(); }

 private:
  std::unique_ptr<simdjson::dom::parser> parser_;
  simdjson::dom::element root_;
};

std::int64_t num(simdjson::dom::element e) { return e.get_int64().value(); }

// Every file URL of a case's supplementary-files answer, in order.
std::vector<std::string> file_urls(unsigned short port, const std::string& id) {
  const reply r = get(port, "/api/public/cases/" + id + "/supplementary-files/");
  REQUIRE(r.status == 200);
  const json files(r.body);
  std::vector<std::string> urls;
  for (const auto check : files["checks"].get_array()) {
    for (const auto file : check["files"].get_array()) {
      urls.emplace_back(file["url"].get_string().value());
    }
  }
  return urls;
}

// GET of a presigned URL handed out by `sim`.
reply download(const running_sim& sim, const std::string& url) {
  REQUIRE(url.rfind(sim.base_url(), 0) == 0);
  return get(sim.port(), url.substr(sim.base_url().size()));
}

std::string closed_case(unsigned short port) {
  const reply created = post(port, "/_sim/cases", R"({"files_per_check":1})");
  REQUIRE(created.status == 201);
  const std::string id(json(created.body)["ids"].at(0).get_string().value());
  REQUIRE(post(port, "/_sim/cases/" + id + "/status", R"({"status":"COMPLETE"})").status == 200);
  return id;
}

}  // namespace

TEST_CASE("expire_next_urls: the next N file URLs are expired, the ones after are good") {
  certn_sim::settings config;
  config.default_file_size = 100;
  running_sim sim(config);
  const std::string id = closed_case(sim.port());

  const reply set = post(sim.port(), "/_sim/faults", R"({"expire_next_urls":3})");
  REQUIRE(set.status == 200);
  CHECK(num(json(set.body)["expire_next_urls"]) == 3);
  CHECK(post(sim.port(), "/_sim/faults", R"({"expire_next_urls":-1})").status == 400);

  // Two checks, one file each: the first listing uses two, the second one and then good ones.
  const std::vector<std::string> first = file_urls(sim.port(), id);
  const std::vector<std::string> second = file_urls(sim.port(), id);
  const std::vector<std::string> third = file_urls(sim.port(), id);
  REQUIRE(first.size() == 2);
  const std::vector<std::pair<std::string, int>> expected = {
      {first[0], 403}, {first[1], 403}, {second[0], 403},
      {second[1], 200}, {third[0], 200}, {third[1], 200}};
  for (const auto& [url, status] : expected) {
    CAPTURE(url);
    const reply r = download(sim, url);
    CHECK(r.status == status);
    if (status == 403) {
      CHECK(r.body.find("<Code>AccessDenied</Code><Message>Request has expired</Message>") !=
            std::string::npos);
    } else {
      CHECK(r.body.size() == 100);
    }
  }
  const json stats(get(sim.port(), "/_sim/stats").body);
  CHECK(num(stats["expired_urls"]) == 3);
  CHECK(num(json(post(sim.port(), "/_sim/faults", "{}").body)["expire_next_urls"]) == 0);
}

TEST_CASE("expire_next_urls from the settings (--fault-expire-next-urls) applies to report URLs") {
  certn_sim::settings config;
  config.report_delay = std::chrono::milliseconds(0);
  config.faults.expire_next_urls = 1;
  running_sim sim(config);
  const std::string id = closed_case(sim.port());
  const reply requested = post(sim.port(), "/api/public/cases/" + id + "/generate-report/");
  REQUIRE(requested.status == 201);
  const std::string path = "/api/public/cases/report-files/" +
                           std::string(json(requested.body)["case_report_file_id"].get_string().value()) +
                           "/";
  // The report completes on the simulator's thread right after the request.
  std::string body = get(sim.port(), path).body;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (json(body)["status"].get_string().value() != "COMPLETE" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    body = get(sim.port(), path).body;
  }
  const json expired(body);
  REQUIRE(expired["status"].get_string().value() == "COMPLETE");
  CHECK(download(sim, std::string(expired["pdf_url"].get_string().value())).status == 403);
  const json fresh(get(sim.port(), path).body);
  const reply pdf = download(sim, std::string(fresh["pdf_url"].get_string().value()));
  CHECK(pdf.status == 200);
  CHECK(pdf.body.rfind("%PDF-", 0) == 0);
  CHECK(num(json(get(sim.port(), "/_sim/stats").body)["expired_urls"]) == 1);
}
