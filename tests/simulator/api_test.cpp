// certn-sim's Cases API over real sockets: auth, shapes, pagination, filters, cancel, orders,
// reports, supplementary files, faults and the per-key rate limit.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <chrono>
#include <set>
#include <thread>

#include "net/asio.hpp"
#include "simulator.hpp"
#include "support/sim_fixture.hpp"

namespace {

using namespace archiver;
using namespace archiver::testing;
namespace bhttp = beast::http;

using reply = sim_reply;

// API requests carry the simulator's key unless told otherwise.
reply get(unsigned short port, const std::string& target, const std::string& key = "sim-key") {
  return sim_request(port, bhttp::verb::get, target, "", key);
}

reply post(unsigned short port, const std::string& target, const std::string& body = "",
           const std::string& key = "sim-key") {
  return sim_request(port, bhttp::verb::post, target, body, key);
}

certn_sim::settings test_settings() {
  certn_sim::settings config;
  config.report_delay = std::chrono::milliseconds(100);
  config.default_file_size = 1000;
  return config;
}

void set_status(unsigned short port, const std::string& id, const std::string& status) {
  REQUIRE(post(port, "/_sim/cases/" + id + "/status", "{\"status\":\"" + status + "\"}", "")
              .status == 200);
}

// The ids of the results of one list page.
std::vector<std::string> result_ids(const std::string& body) {
  std::vector<std::string> ids;
  const json page(body);
  for (const auto c : page["results"].get_array()) {
    ids.emplace_back(c["id"].get_string().value());
  }
  return ids;
}

std::string error_code_of(const std::string& body) {
  return str(json(body)["errors"].at(0)["code"].value());
}

std::string error_attr_of(const std::string& body) {
  const json document(body);  // the element below points into it
  const auto attr = document["errors"].at(0)["attr"].value();
  return attr.is_null() ? "null" : str(attr);
}

}  // namespace

TEST_CASE("requests without a valid API key get 401 with the error envelope") {
  running_sim sim(test_settings());
  for (const std::string key : {"", "wrong-key"}) {
    const reply r = get(sim.port(), "/api/public/cases/", key);
    CHECK(r.status == 401);
    const json body(r.body);
    CHECK(str(body["type"]) == "client_error");
    CHECK(body["errors"].at(0)["attr"].value().is_null());
  }
  CHECK(error_code_of(get(sim.port(), "/api/public/cases/", "").body) == "not_authenticated");
  CHECK(get(sim.port(), "/api/public/cases/").status == 200);
}

TEST_CASE("other API keys in the settings are accepted") {
  auto config = test_settings();
  config.api_keys = {"old-key", "new-key"};
  running_sim sim(config);
  CHECK(get(sim.port(), "/api/public/cases/", "new-key").status == 200);
  CHECK(get(sim.port(), "/api/public/cases/", "old-key").status == 200);
  CHECK(get(sim.port(), "/api/public/cases/", "sim-key").status == 401);
}

TEST_CASE("a case has the documented shape, with and without the trailing slash") {
  running_sim sim(test_settings());
  const auto ids = create_cases(sim.port(), R"({"tags":["t1"],"group":"g1","ordered_by":"boss@example.com"})");
  for (const std::string& target : {"/api/public/cases/" + ids[0] + "/",
                                   "/api/public/cases/" + ids[0]}) {
    const reply r = get(sim.port(), target);
    REQUIRE(r.status == 200);
    const json c(r.body);
    CHECK(str(c["id"]) == ids[0]);
    CHECK(str(c["id"]).size() == 36);
    CHECK(str(c["overall_status"]) == "APPLICANT_INVITED");
    CHECK(c["overall_score"].is_null());
    CHECK(str(c["email_address"]) == "applicant-1@example.com");
    CHECK(str(c["group"]) == "g1");
    CHECK(str(c["ordered_by"]) == "boss@example.com");
    CHECK(str(c["tags"].at(0).value()) == "t1");
    CHECK(str(c["created"]).back() == 'Z');
    CHECK(str(c["modified"]).back() == 'Z');
    REQUIRE(len(c["checks"]) == 2);
    const auto check = c["checks"].at(0).value();
    CHECK(str(check["type"].value()) == "IDENTITY_VERIFICATION");
    CHECK(str(check["status"].value()) == "AWAITING_APPLICANT_SUBMISSION");
    CHECK(check["result"].value().is_null());
    CHECK(str(check["id"].value()).size() == 36);
    CHECK(str(check["created"].value()).back() == 'Z');
  }
  const reply missing = get(sim.port(), "/api/public/cases/00000000-0000-4000-8000-000000000000/");
  CHECK(missing.status == 404);
  CHECK(error_code_of(missing.body) == "not_found");
  CHECK(get(sim.port(), "/api/public/nothing/").status == 404);
}

TEST_CASE("ids are the same for the same seed and differ for another") {
  std::vector<std::string> first, second, other;
  {
    running_sim sim(test_settings());
    first = create_cases(sim.port(), R"({"count":3})");
  }
  {
    running_sim sim(test_settings());
    second = create_cases(sim.port(), R"({"count":3})");
  }
  {
    auto config = test_settings();
    config.seed = 2;
    running_sim sim(config);
    other = create_cases(sim.port(), R"({"count":3})");
  }
  CHECK(first == second);
  CHECK(first != other);
}

TEST_CASE("a wrong method gets 405") {
  running_sim sim(test_settings());
  const auto ids = create_cases(sim.port(), "{}");
  const reply r = post(sim.port(), "/api/public/cases/" + ids[0] + "/");
  CHECK(r.status == 405);
  CHECK(r.allow == "GET");
  CHECK(error_code_of(r.body) == "method_not_allowed");
  CHECK(get(sim.port(), "/api/public/cases/" + ids[0] + "/cancel/").status == 405);
  CHECK(get(sim.port(), "/api/public/cases/order/").status == 405);
}

TEST_CASE("the list pages through every case, newest first, with next and previous") {
  running_sim sim(test_settings());
  const auto ids = create_cases(sim.port(), R"({"count":25,"file_size":0})");
  std::vector<std::string> newest_first(ids.rbegin(), ids.rend());

  std::vector<std::string> seen;
  std::string target = "/api/public/cases/";
  std::string previous_of_last;
  int pages = 0;
  while (!target.empty()) {
    const reply r = get(sim.port(), target);
    REQUIRE(r.status == 200);
    const json page(r.body);
    CHECK(num(page["count"]) == 25);
    for (const auto& id : result_ids(r.body)) {
      seen.push_back(id);
    }
    ++pages;
    if (pages == 1) {
      CHECK(page["previous"].is_null());
    } else {
      previous_of_last = str(page["previous"]);
    }
    if (page["next"].is_null()) {
      target.clear();
    } else {
      const std::string next = str(page["next"]);
      REQUIRE(next.rfind(sim.base_url(), 0) == 0);
      CHECK(next.find("page=" + std::to_string(pages + 1)) != std::string::npos);
      target = next.substr(sim.base_url().size());
    }
  }
  CHECK(pages == 3);
  CHECK(seen == newest_first);
  CHECK(previous_of_last == sim.base_url() + "/api/public/cases/?page=2");

  const reply beyond = get(sim.port(), "/api/public/cases/?page=4");
  CHECK(beyond.status == 404);
  CHECK(str(json(beyond.body)["errors"].at(0)["detail"].value()) == "Invalid page.");
  CHECK(get(sim.port(), "/api/public/cases/?page=0").status == 404);
  CHECK(get(sim.port(), "/api/public/cases/?page=x").status == 404);
  CHECK(result_ids(get(sim.port(), "/api/public/cases/?page=last").body).size() == 5);
}

TEST_CASE("page_size is capped at 100 and must be a positive integer") {
  running_sim sim(test_settings());
  create_cases(sim.port(), R"({"count":105,"file_size":0})");
  CHECK(result_ids(get(sim.port(), "/api/public/cases/?page_size=500").body).size() == 100);
  CHECK(result_ids(get(sim.port(), "/api/public/cases/?page_size=7").body).size() == 7);
  CHECK(result_ids(get(sim.port(), "/api/public/cases/").body).size() == 10);
  for (const std::string bad : {"0", "-1", "ten"}) {
    const reply r = get(sim.port(), "/api/public/cases/?page_size=" + bad);
    CHECK(r.status == 400);
    CHECK(str(json(r.body)["type"]) == "validation_error");
    CHECK(error_attr_of(r.body) == "page_size");
  }
}

TEST_CASE("next keeps the filters and page_size") {
  running_sim sim(test_settings());
  create_cases(sim.port(), R"({"count":5,"tags":["keep"]})");
  create_cases(sim.port(), R"({"count":5})");
  const reply r = get(sim.port(), "/api/public/cases/?tag=keep&page_size=2");
  const json page(r.body);
  CHECK(num(page["count"]) == 5);
  const std::string next = str(page["next"]);
  CHECK(next.find("tag=keep") != std::string::npos);
  CHECK(next.find("page_size=2") != std::string::npos);
  CHECK(next.find("page=2") != std::string::npos);
  const reply second = get(sim.port(), next.substr(sim.base_url().size()));
  CHECK(num(json(second.body)["count"]) == 5);
  CHECK(result_ids(second.body).size() == 2);
}

TEST_CASE("each list filter selects its cases, repeated parameters match any value") {
  running_sim sim(test_settings());
  const auto a = create_cases(sim.port(), R"({"tags":["red","blue"],"group":"north","ordered_by":"ann@example.com","email_address":"x@example.com","check_types":["CREDIT_CHECK"]})");
  const auto b = create_cases(sim.port(), R"({"tags":["green"],"group":"south","ordered_by":"bob@example.com","email_address":"y@example.com"})");
  const auto c = create_cases(sim.port(), R"({"group":"south","email_address":"z@example.com"})");
  set_status(sim.port(), c[0], "COMPLETE");
  auto ids = [&](const std::string& query) {
    const reply r = get(sim.port(), "/api/public/cases/?" + query);
    REQUIRE(r.status == 200);
    const auto found = result_ids(r.body);
    return std::set<std::string>(found.begin(), found.end());
  };
  using set = std::set<std::string>;
  CHECK(ids("tag=red") == set{a[0]});
  CHECK(ids("tag=green&tag=red") == set{a[0], b[0]});
  CHECK(ids("group=south") == set{b[0], c[0]});
  CHECK(ids("ordered_by=bob%40example.com") == set{b[0]});
  CHECK(ids("email_address=Y@example.com") == set{b[0]});
  CHECK(ids("overall_status=COMPLETE") == set{c[0]});
  CHECK(ids("overall_status=COMPLETE&overall_status=APPLICANT_INVITED") == set{a[0], b[0], c[0]});
  CHECK(ids("check_type=CREDIT_CHECK") == set{a[0]});
  CHECK(ids("check_type=CRIMINAL_RECORD_CHECK") == set{b[0], c[0]});
  CHECK(ids("group=south&overall_status=COMPLETE") == set{c[0]});
  CHECK(ids("order_timeframe_after=2000-01-01") == set{a[0], b[0], c[0]});
  CHECK(ids("order_timeframe_after=2999-01-01").empty());
  CHECK(ids("order_timeframe_before=2000-01-01").empty());
  CHECK(ids("order_timeframe_before=2999-01-01T00:00:00Z") == set{a[0], b[0], c[0]});
  const std::string created_b =
      str(json(get(sim.port(), "/api/public/cases/" + b[0] + "/").body)["created"]);
  CHECK(ids("order_timeframe_after=" + created_b).count(b[0]) == 1);
  CHECK(ids("order_timeframe_after=" + created_b).count(a[0]) == 0);
  CHECK(ids("order_timeframe_before=" + created_b).count(b[0]) == 1);
  CHECK(ids("order_timeframe_before=" + created_b).count(c[0]) == 0);
  const reply bad = get(sim.port(), "/api/public/cases/?order_timeframe_after=yesterday");
  CHECK(bad.status == 400);
  CHECK(error_attr_of(bad.body) == "order_timeframe_after");
  // A case "ordered" 40 days ago: created 40 days back, found by the timeframe around then.
  const auto old = create_cases(sim.port(), R"({"ordered_days_ago":40})");
  const std::string created_old =
      str(json(get(sim.port(), "/api/public/cases/" + old[0] + "/").body)["created"]);
  CHECK(created_old < created_b);
  CHECK(ids("order_timeframe_before=" + created_old) == set{old[0]});
  CHECK(ids("order_timeframe_after=" + created_b).count(old[0]) == 0);
}

TEST_CASE("cancel is allowed before fulfilment starts and rejected after") {
  running_sim sim(test_settings());
  const auto ids = create_cases(sim.port(), R"({"count":3})");
  SUBCASE("awaiting the applicant") {
    const reply r = post(sim.port(), "/api/public/cases/" + ids[0] + "/cancel/");
    REQUIRE(r.status == 200);
    const json c(r.body);
    CHECK(str(c["overall_status"]) == "CANCELLED");
    for (const auto check : c["checks"].get_array()) {
      CHECK(str(check["status"].value()) == "CANCELLED");
    }
  }
  SUBCASE("pending fulfilment") {
    set_status(sim.port(), ids[1], "APPLICANT_SUBMITTED");
    CHECK(post(sim.port(), "/api/public/cases/" + ids[1] + "/cancel/").status == 200);
  }
  SUBCASE("in progress or closed") {
    set_status(sim.port(), ids[1], "IN_PROGRESS");
    set_status(sim.port(), ids[2], "COMPLETE");
    for (const auto& id : {ids[1], ids[2]}) {
      const reply r = post(sim.port(), "/api/public/cases/" + id + "/cancel/");
      CHECK(r.status == 400);
      CHECK(str(json(r.body)["type"]) == "validation_error");
      CHECK(error_code_of(r.body) == "invalid");
    }
    CHECK(str(json(get(sim.port(), "/api/public/cases/" + ids[1] + "/").body)["overall_status"]) ==
          "IN_PROGRESS");
  }
}

TEST_CASE("order creates an invited case and validates its body") {
  running_sim sim(test_settings());
  const std::string path = "/api/public/cases/order/";
  const reply ok = post(sim.port(), path,
                        R"({"email_address":"new@example.com","check_types_with_arguments":{"CRIMINAL_RECORD_CHECK":{},"CREDIT_CHECK":{"x":1}},"send_invite_email":false,"return_invite_link":true,"input_claims":{"name":"A"}})");
  REQUIRE(ok.status == 201);
  const json c(ok.body);
  CHECK(str(c["overall_status"]) == "APPLICANT_INVITED");
  CHECK(str(c["email_address"]) == "new@example.com");
  CHECK(len(c["checks"]) == 2);
  CHECK(str(c["checks"].at(0)["status"].value()) == "AWAITING_APPLICANT_SUBMISSION");
  CHECK(str(c["invite_link"]).find(str(c["id"])) != std::string::npos);
  CHECK(get(sim.port(), "/api/public/cases/" + str(c["id"]) + "/").status == 200);

  const reply no_link = post(sim.port(), path,
                             R"({"email_address":"n2@example.com","check_types_with_arguments":{"CREDIT_CHECK":{}}})");
  REQUIRE(no_link.status == 201);
  CHECK(json(no_link.body).root()["invite_link"].error() == simdjson::NO_SUCH_FIELD);

  struct bad_case {
    std::string body;
    std::string attr;
  };
  for (const bad_case& bad : std::vector<bad_case>{
           {R"({"check_types_with_arguments":{"CREDIT_CHECK":{}}})", "email_address"},
           {R"({"email_address":"not-an-email","check_types_with_arguments":{"CREDIT_CHECK":{}}})", "email_address"},
           {R"({"email_address":7,"check_types_with_arguments":{"CREDIT_CHECK":{}}})", "email_address"},
           {R"({"email_address":"a@example.com"})", "check_types_with_arguments"},
           {R"({"email_address":"a@example.com","check_types_with_arguments":{}})", "check_types_with_arguments"},
           {R"({"email_address":"a@example.com","check_types_with_arguments":["CREDIT_CHECK"]})", "check_types_with_arguments"},
           {R"({"email_address":"a@example.com","check_types_with_arguments":{"bad type":{}}})", "check_types_with_arguments"},
           {R"({"email_address":"a@example.com","check_types_with_arguments":{"CREDIT_CHECK":{}},"send_invite_email":"yes"})", "send_invite_email"},
           {R"([1,2])", "non_field_errors"}}) {
    CAPTURE(bad.body);
    const reply r = post(sim.port(), path, bad.body);
    CHECK(r.status == 400);
    CHECK(str(json(r.body)["type"]) == "validation_error");
    CHECK(error_attr_of(r.body) == bad.attr);
  }
  CHECK(post(sim.port(), path, "{not json").status == 400);
  CHECK(num(json(get(sim.port(), "/api/public/cases/").body)["count"]) == 2);
}

TEST_CASE("order-package uses the package's checks and refuses unknown or inactive packages") {
  running_sim sim(test_settings());
  const std::string path = "/api/public/cases/order-package/";
  const reply ok = post(sim.port(), path, R"({"package":"pkg-basic","email_address":"p@example.com"})");
  REQUIRE(ok.status == 201);
  const json c(ok.body);
  CHECK(str(c["overall_status"]) == "APPLICANT_INVITED");
  CHECK(len(c["checks"]) == 2);

  const reply inactive = post(sim.port(), path, R"({"package":"pkg-retired","email_address":"p@example.com"})");
  CHECK(inactive.status == 400);
  CHECK(error_attr_of(inactive.body) == "package");
  CHECK(error_code_of(inactive.body) == "inactive");

  const reply unknown = post(sim.port(), path, R"({"package":"nope","email_address":"p@example.com"})");
  CHECK(unknown.status == 400);
  CHECK(str(json(unknown.body)["type"]) == "validation_error");
  CHECK(error_attr_of(unknown.body) == "package");

  const reply missing = post(sim.port(), path, R"({"email_address":"p@example.com"})");
  CHECK(missing.status == 400);
  CHECK(error_code_of(missing.body) == "required");
}

TEST_CASE("generate-report answers 201 and the report file completes after the delay") {
  running_sim sim(test_settings());
  const auto ids = create_cases(sim.port(), "{}");
  const reply r = post(sim.port(), "/api/public/cases/" + ids[0] + "/generate-report/",
                       R"({"language":"en-CA"})");
  REQUIRE(r.status == 201);
  const std::string report_id = str(json(r.body)["case_report_file_id"]);
  CHECK(report_id.size() == 36);

  const std::string path = "/api/public/cases/report-files/" + report_id + "/";
  const json pending(get(sim.port(), path).body);
  CHECK(str(pending["id"]) == report_id);
  CHECK(str(pending["status"]) == "IN_PROGRESS");
  CHECK(pending["pdf_url"].is_null());
  CHECK(str(pending["created"]).back() == 'Z');

  std::string status;
  std::string body;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (status != "COMPLETE" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    body = get(sim.port(), path).body;
    status = str(json(body)["status"]);
  }
  REQUIRE(status == "COMPLETE");
  const std::string url = str(json(body)["pdf_url"]);
  CHECK(url.rfind(sim.base_url() + "/_downloads/reports/" + report_id + "?", 0) == 0);
  CHECK(url.find("X-Amz-Signature=") != std::string::npos);

  CHECK(post(sim.port(), "/api/public/cases/" + ids[0] + "/generate-report/").status == 201);
  CHECK(post(sim.port(), "/api/public/cases/" + ids[0] + "/generate-report/",
             R"({"language":5})").status == 400);
  CHECK(get(sim.port(), "/api/public/cases/report-files/nope/").status == 404);
  CHECK(post(sim.port(), "/api/public/cases/nope/generate-report/").status == 404);
}

TEST_CASE("supplementary files are listed only for closed checks, with presigned URLs") {
  running_sim sim(test_settings());
  const auto ids = create_cases(sim.port(), R"({"files_per_check":2,"file_size":1234})");
  const std::string path = "/api/public/cases/" + ids[0] + "/supplementary-files/";
  {
    const json open(get(sim.port(), path).body);
    CHECK(str(open["id"]) == ids[0]);
    REQUIRE(len(open["checks"]) == 2);
    for (const auto check : open["checks"].get_array()) {
      CHECK(str(check["status"].value()) == "AWAITING_APPLICANT_SUBMISSION");
      CHECK(len(check["files"].value()) == 0);
    }
  }
  set_status(sim.port(), ids[0], "COMPLETE");
  const json closed(get(sim.port(), path).body);
  std::set<std::string> file_ids;
  for (const auto check : closed["checks"].get_array()) {
    CHECK(str(check["status"].value()) == "COMPLETE");
    CHECK(str(check["type"].value()).size() > 0);
    REQUIRE(len(check["files"].value()) == 2);
    for (const auto file : check["files"].get_array()) {
      const std::string id = str(file["id"].value());
      file_ids.insert(id);
      CHECK(num(file["size"].value()) == 1234);
      CHECK(str(file["name"].value()).size() > 0);
      CHECK(str(file["content_type"].value()).find('/') != std::string::npos);
      CHECK(str(file["created"].value()).back() == 'Z');
      const std::string url = str(file["url"].value());
      CHECK(url.rfind(sim.base_url() + "/_downloads/files/" + id + "?", 0) == 0);
      CHECK(url.find("X-Amz-Expires=") != std::string::npos);
    }
  }
  CHECK(file_ids.size() == 4);
  CHECK(get(sim.port(), "/api/public/cases/nope/supplementary-files/").status == 404);
}

TEST_CASE("supplementary information is a deterministic object per check") {
  running_sim sim(test_settings());
  const auto ids = create_cases(sim.port(), R"({"status":"COMPLETE"})");
  const std::string path = "/api/public/cases/" + ids[0] + "/supplementary-information/";
  const reply first = get(sim.port(), path);
  REQUIRE(first.status == 200);
  const json info(first.body);
  CHECK(str(info["id"]) == ids[0]);
  REQUIRE(len(info["checks"]) == 2);
  for (const auto check : info["checks"].get_array()) {
    CHECK(str(check["status"].value()) == "COMPLETE");
    CHECK(check["supplementary_information"].value().is_object());
  }
  CHECK(get(sim.port(), path).body == first.body);
}

TEST_CASE("injected 429s and 500s follow the seed") {
  auto statuses = [](std::uint64_t seed) {
    auto config = test_settings();
    config.seed = seed;
    config.faults.rate_429 = 0.3;
    config.faults.retry_after_rate = 0.5;
    config.faults.rate_500 = 0.2;
    running_sim sim(config);
    std::vector<std::string> out;
    for (int i = 0; i < 40; ++i) {
      const reply r = get(sim.port(), "/api/public/cases/");
      out.push_back(std::to_string(r.status) + "/" + r.retry_after);
      // The control API is never faulted.
      CHECK(get(sim.port(), "/_sim/stats", "").status == 200);
    }
    const json stats(get(sim.port(), "/_sim/stats", "").body);
    CHECK(num(stats["responses_429"]) ==
          std::count_if(out.begin(), out.end(), [](const auto& s) { return s.rfind("429", 0) == 0; }));
    return out;
  };
  const auto first = statuses(7);
  CHECK(first == statuses(7));
  CHECK(first != statuses(8));
  CHECK(std::count(first.begin(), first.end(), "429/1") > 0);
  CHECK(std::count(first.begin(), first.end(), "429/") > 0);
  CHECK(std::count(first.begin(), first.end(), "500/") > 0);
  CHECK(std::count(first.begin(), first.end(), "200/") > 0);

  auto config = test_settings();
  config.faults.rate_500 = 1;
  running_sim sim(config);
  const reply r = get(sim.port(), "/api/public/cases/");
  CHECK(r.status == 500);
  CHECK(str(json(r.body)["type"]) == "server_error");
}

TEST_CASE("slow responses wait the configured delay") {
  auto config = test_settings();
  config.faults.slow_rate = 1;
  config.faults.slow_delay = std::chrono::milliseconds(200);
  running_sim sim(config);
  const auto start = std::chrono::steady_clock::now();
  CHECK(get(sim.port(), "/api/public/cases/").status == 200);
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(200));
}

TEST_CASE("the per-key rate limit answers 429 with Retry-After until a slot frees") {
  auto config = test_settings();
  config.api_keys = {"a", "b"};
  config.faults.requests_per_minute_per_key = 3;
  running_sim sim(config);
  for (int i = 0; i < 3; ++i) {
    CHECK(get(sim.port(), "/api/public/cases/", "a").status == 200);
  }
  const reply limited = get(sim.port(), "/api/public/cases/", "a");
  CHECK(limited.status == 429);
  CHECK(error_code_of(limited.body) == "throttled");
  const int wait = std::stoi(limited.retry_after);
  CHECK(wait >= 1);
  CHECK(wait <= 60);
  CHECK(get(sim.port(), "/api/public/cases/", "b").status == 200);
  const json stats(get(sim.port(), "/_sim/stats", "").body);
  CHECK(num(stats["rate_limited"]) == 1);
  CHECK(num(stats["requests"]["cases.list"]["429"].value()) == 1);
  CHECK(num(stats["requests"]["cases.list"]["200"].value()) == 4);
}
