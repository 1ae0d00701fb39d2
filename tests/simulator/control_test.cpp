// certn-sim's control API over real sockets: creating cases, moving them through statuses,
// disputes and re-closing, faults at run time, statistics and the recorded webhooks.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <thread>

#include "net/asio.hpp"
#include "simulator.hpp"
#include "support/sim_fixture.hpp"

namespace {

using namespace archiver;
using namespace archiver::testing;
namespace bhttp = beast::http;

using reply = sim_reply;

// Control API requests carry no key; a Cases API GET is given one.
reply post(unsigned short port, const std::string& target, const std::string& body = "") {
  return sim_request(port, bhttp::verb::post, target, body);
}

reply get(unsigned short port, const std::string& target, const std::string& key = "") {
  return sim_request(port, bhttp::verb::get, target, "", key);
}

certn_sim::settings test_settings() {
  certn_sim::settings config;
  config.default_file_size = 100;
  return config;
}

// How many recorded webhooks have this event type and object id.
int webhooks(unsigned short port, const std::string& type, const std::string& object_id) {
  const reply r = get(port, "/_sim/webhooks");
  REQUIRE(r.status == 200);
  int n = 0;
  const json body(r.body);
  for (const auto d : body["webhooks"].get_array()) {
    if (str(d["event_type"].value()) == type && str(d["object_id"].value()) == object_id) {
      ++n;
    }
  }
  return n;
}

std::size_t file_count(unsigned short port, const std::string& id) {
  const json files(
      get(port, "/api/public/cases/" + id + "/supplementary-files/", "sim-key").body);
  std::size_t n = 0;
  for (const auto check : files["checks"].get_array()) {
    n += len(check["files"].value());
  }
  return n;
}

}  // namespace

TEST_CASE("POST /_sim/cases creates cases with defaults and sends CASE_STATUS_CHANGED") {
  running_sim sim(test_settings());
  const auto ids = create_cases(sim.port(), "");
  REQUIRE(ids.size() == 1);
  const json c(get(sim.port(), "/_sim/cases/" + ids[0]).body);
  CHECK(str(c["overall_status"]) == "APPLICANT_INVITED");
  CHECK(str(c["email_address"]) == "applicant-1@example.com");
  REQUIRE(len(c["checks"]) == 2);
  CHECK(str(c["checks"].at(0)["type"].value()) == "IDENTITY_VERIFICATION");
  CHECK(str(c["checks"].at(1)["type"].value()) == "CRIMINAL_RECORD_CHECK");
  CHECK(webhooks(sim.port(), "CASE_STATUS_CHANGED", ids[0]) == 1);

  const auto more = create_cases(sim.port(), R"({"count":3,"check_types":["CREDIT_CHECK"],"email_address":"same@example.com","status":"IN_PROGRESS"})");
  REQUIRE(more.size() == 3);
  for (const auto& id : more) {
    const json m(get(sim.port(), "/_sim/cases/" + id).body);
    CHECK(str(m["overall_status"]) == "IN_PROGRESS");
    CHECK(str(m["email_address"]) == "same@example.com");
    REQUIRE(len(m["checks"]) == 1);
    CHECK(str(m["checks"].at(0)["status"].value()) == "IN_PROGRESS");
    CHECK(webhooks(sim.port(), "CASE_STATUS_CHANGED", id) == 1);
  }
}

TEST_CASE("POST /_sim/cases rejects bad bodies") {
  running_sim sim(test_settings());
  for (const std::string body : {R"({"count":0})", R"({"count":"x"})", R"({"check_types":"A"})",
                                 R"({"status":"not a status"})", R"({"files_per_check":-1})",
                                 "[1]", "{oops"}) {
    CAPTURE(body);
    const reply r = post(sim.port(), "/_sim/cases", body);
    CHECK(r.status == 400);
    CHECK(str(json(r.body)["error"]).size() > 0);
  }
  CHECK(get(sim.port(), "/_sim/cases").status == 405);
  CHECK(get(sim.port(), "/_sim/nothing").status == 404);
}

TEST_CASE("status changes move the checks and send one webhook per change") {
  running_sim sim(test_settings());
  const auto id = create_cases(sim.port(), "{}")[0];
  const std::string path = "/_sim/cases/" + id + "/status";

  const reply progress = post(sim.port(), path, R"({"status":"IN_PROGRESS"})");
  REQUIRE(progress.status == 200);
  {
    const json c(progress.body);
    CHECK(str(c["overall_status"]) == "IN_PROGRESS");
    for (const auto check : c["checks"].get_array()) {
      CHECK(str(check["status"].value()) == "IN_PROGRESS");
      CHECK(check["result"].value().is_null());
    }
  }
  CHECK(webhooks(sim.port(), "CASE_STATUS_CHANGED", id) == 2);
  CHECK(webhooks(sim.port(), "CHECK_STATUS_CHANGED", id) == 2);

  const reply complete = post(sim.port(), path, R"({"status":"COMPLETE"})");
  REQUIRE(complete.status == 200);
  const json c(complete.body);
  CHECK(str(c["overall_status"]) == "COMPLETE");
  CHECK(!c["overall_score"].is_null());
  for (const auto check : c["checks"].get_array()) {
    CHECK(str(check["status"].value()) == "COMPLETE");
    CHECK(str(check["result"].value()) == "CLEAR");
  }
  CHECK(webhooks(sim.port(), "CASE_STATUS_CHANGED", id) == 3);
  CHECK(webhooks(sim.port(), "CHECK_STATUS_CHANGED", id) == 4);

  // The same status again changes nothing and sends nothing.
  CHECK(post(sim.port(), path, R"({"status":"COMPLETE"})").status == 200);
  CHECK(webhooks(sim.port(), "CASE_STATUS_CHANGED", id) == 3);

  // An unknown status is stored as it is; the checks stay.
  const json odd(post(sim.port(), path, R"({"status":"SOMETHING_NEW"})").body);
  CHECK(str(odd["overall_status"]) == "SOMETHING_NEW");
  CHECK(str(odd["checks"].at(0)["status"].value()) == "COMPLETE");

  CHECK(post(sim.port(), path, R"({})").status == 400);
  CHECK(post(sim.port(), "/_sim/cases/nope/status", R"({"status":"COMPLETE"})").status == 404);
  CHECK(get(sim.port(), path).status == 405);
}

TEST_CASE("a completed case can be disputed and closed again with new content") {
  running_sim sim(test_settings());
  const auto id = create_cases(sim.port(), R"({"status":"COMPLETE","files_per_check":1})")[0];
  const std::string info_path = "/api/public/cases/" + id + "/supplementary-information/";
  const std::string info_before = get(sim.port(), info_path, "sim-key").body;
  CHECK(file_count(sim.port(), id) == 2);

  CHECK(post(sim.port(), "/_sim/cases/" + id + "/close").status == 409);
  const reply disputed = post(sim.port(), "/_sim/cases/" + id + "/dispute");
  REQUIRE(disputed.status == 200);
  CHECK(str(json(disputed.body)["overall_status"]) == "IN_DISPUTE");
  CHECK(post(sim.port(), "/_sim/cases/" + id + "/dispute").status == 409);
  // Reopened checks list no files.
  CHECK(file_count(sim.port(), id) == 0);

  const reply closed = post(sim.port(), "/_sim/cases/" + id + "/close");
  REQUIRE(closed.status == 200);
  CHECK(str(json(closed.body)["overall_status"]) == "COMPLETE");
  CHECK(file_count(sim.port(), id) == 4);
  const std::string info_after = get(sim.port(), info_path, "sim-key").body;
  CHECK(info_after != info_before);
  // created COMPLETE (1), IN_DISPUTE (2), COMPLETE again (3).
  CHECK(webhooks(sim.port(), "CASE_STATUS_CHANGED", id) == 3);
}

TEST_CASE("report readiness is announced for the case or the report file, as configured") {
  for (const std::string object_type : {"CASE", "CASE_REPORT_FILE"}) {
    CAPTURE(object_type);
    auto config = test_settings();
    config.report_delay = std::chrono::milliseconds(50);
    config.report_ready_object_type = object_type;
    running_sim sim(config);
    const auto id = create_cases(sim.port(), "{}")[0];
    const reply r = sim_request(sim.port(), bhttp::verb::post,
                                "/api/public/cases/" + id + "/generate-report/", "", "sim-key");
    REQUIRE(r.status == 201);
    const std::string report_id = str(json(r.body)["case_report_file_id"]);
    const std::string expected = object_type == "CASE" ? id : report_id;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (webhooks(sim.port(), "CASE_REPORT_READY", expected) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(webhooks(sim.port(), "CASE_REPORT_READY", expected) == 1);
    const json status(get(sim.port(), "/api/public/cases/report-files/" + report_id + "/",
                          "sim-key").body);
    CHECK(str(status["status"]) == "COMPLETE");
  }
}

TEST_CASE("faults can be changed at run time and statistics count API requests") {
  running_sim sim(test_settings());
  CHECK(get(sim.port(), "/api/public/cases/", "sim-key").status == 200);
  CHECK(get(sim.port(), "/api/public/cases/", "bad").status == 401);
  const reply changed = post(sim.port(), "/_sim/faults", R"({"rate_429":1,"retry_after_rate":0})");
  REQUIRE(changed.status == 200);
  const reply limited = get(sim.port(), "/api/public/cases/", "sim-key");
  CHECK(limited.status == 429);
  CHECK(post(sim.port(), "/_sim/faults", R"({"rate_429":2})").status == 400);
  CHECK(post(sim.port(), "/_sim/faults", R"({"rate_429":0})").status == 200);
  CHECK(get(sim.port(), "/api/public/cases/", "sim-key").status == 200);

  const json stats(get(sim.port(), "/_sim/stats").body);
  CHECK(num(stats["requests"]["cases.list"]["200"].value()) == 2);
  CHECK(num(stats["requests"]["cases.list"]["401"].value()) == 1);
  CHECK(num(stats["requests"]["cases.list"]["429"].value()) == 1);
  CHECK(num(stats["responses_429"]) == 1);
  CHECK(num(stats["injected_429"]) == 1);
  CHECK(num(stats["total_requests"]) == 4);
}

TEST_CASE("cases asked for at start exist once started") {
  auto config = test_settings();
  config.initial_cases = 4;
  running_sim sim(config);
  const json list(get(sim.port(), "/api/public/cases/", "sim-key").body);
  CHECK(num(list["count"]) == 4);
}
