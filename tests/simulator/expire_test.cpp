// certn-sim's fault expire_next_urls over real sockets: the next N presigned URLs any API answer
// hands out are already expired (403 "Request has expired" when used); the ones after are good.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <chrono>
#include <thread>

#include "net/asio.hpp"
#include "simulator.hpp"
#include "support/sim_fixture.hpp"

namespace {

using namespace archiver;
using namespace archiver::testing;
namespace bhttp = beast::http;

using reply = sim_reply;

// Every request carries the simulator's key.
reply post(unsigned short port, const std::string& target, const std::string& body = "") {
  return sim_request(port, bhttp::verb::post, target, body, "sim-key");
}

reply get(unsigned short port, const std::string& target) {
  return sim_request(port, bhttp::verb::get, target, "", "sim-key");
}

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
