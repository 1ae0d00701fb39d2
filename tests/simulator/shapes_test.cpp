// certn-sim's response shapes over real sockets: the observed family, every knob, the control
// endpoint /_sim/shapes, and that a seed and a set of shapes fix the bytes of every answer.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <chrono>
#include <regex>
#include <set>
#include <stdexcept>
#include <thread>

#include "net/asio.hpp"
#include "simulator.hpp"
#include "support/sim_fixture.hpp"

namespace {

using namespace archiver;
using namespace archiver::testing;
namespace bhttp = beast::http;

using reply = sim_reply;

// One blocking request on its own connection (API requests carry the API key).
reply call(unsigned short port, bhttp::verb method, const std::string& target,
           const std::string& body = "") {
  return sim_request(port, method, target, body, target.rfind("/api/", 0) == 0 ? "sim-key" : "");
}

reply get(unsigned short port, const std::string& target) {
  return call(port, bhttp::verb::get, target);
}

reply post(unsigned short port, const std::string& target, const std::string& body = "") {
  return call(port, bhttp::verb::post, target, body);
}

certn_sim::settings observed_settings() {
  certn_sim::settings config;
  config.report_delay = std::chrono::milliseconds(50);
  config.default_file_size = 100;
  config.shapes.family = "observed";
  return config;
}

certn_sim::settings varied(std::string knob, std::string value, std::string family = "assumed") {
  certn_sim::settings config = observed_settings();
  config.shapes.family = std::move(family);
  config.shapes.vary[std::move(knob)] = std::move(value);
  return config;
}

std::string case_path(const std::string& id, const std::string& rest = "") {
  return "/api/public/cases/" + id + "/" + rest;
}

// POSTs generate-report and returns the new report file's id, whatever the answer calls it.
std::string generate_report(unsigned short port, const std::string& case_id) {
  const reply r = post(port, case_path(case_id, "generate-report/"));
  REQUIRE(r.status / 100 == 2);
  const json answer(r.body);
  for (const char* name : {"case_report_file_id", "report_file_id", "id"}) {
    if (answer.has(name)) {
      return str(answer[name]);
    }
  }
  FAIL("no report file id in " << r.body);
  return "";
}

// Polls the report file until COMPLETE; returns its last body.
std::string completed_report(unsigned short port, const std::string& report_id) {
  const std::string path = "/api/public/cases/report-files/" + report_id + "/";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::string body = get(port, path).body;
  while (body.find("\"COMPLETE\"") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    body = get(port, path).body;
  }
  REQUIRE(body.find("\"COMPLETE\"") != std::string::npos);
  return body;
}

// The webhook bodies the receiver got once at least `count` arrived (fails after 5 s).
std::vector<std::string> webhook_bodies(const running_sim& sim, std::size_t count) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (sim.hooks().bodies().size() < count && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto bodies = sim.hooks().bodies();
  REQUIRE(bodies.size() >= count);
  return bodies;
}

std::vector<std::string> check_ids(unsigned short port, const std::string& case_id) {
  std::vector<std::string> ids;
  const json c(get(port, "/_sim/cases/" + case_id).body);
  for (const auto check : c["checks"].get_array()) {
    ids.push_back(str(check["id"].value()));
  }
  return ids;
}

const std::vector<std::string> url_names = {"pdf_url",  "url",          "report_url",
                                            "file_url", "download_url", "presigned_url"};

}  // namespace

TEST_CASE("observed report files have no id and alternate {status, pdf_url} and {url, status}") {
  running_sim sim(observed_settings());
  const auto id = create_cases(sim.port(), "{}")[0];

  const reply first = post(sim.port(), case_path(id, "generate-report/"));
  CHECK(first.status == 201);
  const json first_answer(first.body);
  REQUIRE(first_answer.has("case_report_file_id"));
  CHECK_FALSE(first_answer.has("id"));
  const reply second = post(sim.port(), case_path(id, "generate-report/"));
  CHECK(second.status == 202);
  const json second_answer(second.body);
  REQUIRE(second_answer.has("id"));
  CHECK_FALSE(second_answer.has("case_report_file_id"));
  CHECK(post(sim.port(), case_path(id, "generate-report/")).status == 201);

  const std::string even = completed_report(sim.port(), str(first_answer["case_report_file_id"]));
  CHECK(even.rfind("{\"status\":\"COMPLETE\",\"pdf_url\":\"", 0) == 0);
  const json even_body(even);
  CHECK(str(even_body["pdf_url"]).find("/_downloads/reports/") != std::string::npos);
  const std::string odd = completed_report(sim.port(), str(second_answer["id"]));
  CHECK(odd.rfind("{\"url\":\"", 0) == 0);
  const json odd_body(odd);
  CHECK(str(odd_body["status"]) == "COMPLETE");
  for (const json* body : {&even_body, &odd_body}) {
    CHECK_FALSE(body->has("id"));
    CHECK_FALSE(body->has("created"));
    CHECK_FALSE(body->has("case_id"));
    CHECK(body->root().get_object().value().size() == 2);
  }
}

TEST_CASE("observed cases carry extra fields and checks have check_type, scores and claims") {
  running_sim sim(observed_settings());
  const auto ids = create_cases(sim.port(), R"({"count":2,"tags":["t1"]})");
  REQUIRE(
      post(sim.port(), "/_sim/cases/" + ids[0] + "/status", R"({"status":"COMPLETE"})").status ==
      200);
  const json done(get(sim.port(), case_path(ids[0])).body);
  CHECK(str(done["overall_status"]) == "COMPLETE");
  CHECK(done["overall_score"].is_int64());
  CHECK(done["ordered_by"].is_object());
  CHECK(done["custom_fields"].is_object());
  CHECK(str(done["tags"].at(0).value()) == "t1");
  REQUIRE(len(done["checks"]) == 2);
  for (const auto check : done["checks"].get_array()) {
    CHECK(str(check["id"].value()).size() == 36);
    CHECK(str(check["short_id"].value()).size() > 0);
    CHECK(str(check["check_type"].value()).size() > 0);
    CHECK(str(check["status"].value()) == "COMPLETE");
    CHECK(check["score"].value().is_int64());
    CHECK(check["sub_score"].value().is_int64());
    CHECK(check["adjudication_score"].value().is_null());
    CHECK(check["output_claims"].value().is_object());
    for (const char* absent : {"type", "result", "created", "modified"}) {
      CAPTURE(absent);
      CHECK_FALSE(has(check, absent));
    }
  }
  const json open(get(sim.port(), case_path(ids[1])).body);
  CHECK(open["overall_score"].is_null());
  CHECK(open["checks"].at(0)["score"].value().is_null());

  // The list shows the same case shape.
  const json page(get(sim.port(), "/api/public/cases/").body);
  CHECK(has(page["results"].at(0).value()["checks"].at(0).value(), "check_type"));
  // The control API keeps the assumed shape for test helpers.
  const json control(get(sim.port(), "/_sim/cases/" + ids[0]).body);
  CHECK(has(control["checks"].at(0).value(), "type"));
  CHECK(control["ordered_by"].is_string());
}

TEST_CASE("the observed list has a pagination object and no count, next or previous") {
  running_sim sim(observed_settings());
  create_cases(sim.port(), R"({"count":5})");
  const json first(get(sim.port(), "/api/public/cases/?page_size=2").body);
  for (const char* absent : {"count", "next", "previous"}) {
    CAPTURE(absent);
    CHECK_FALSE(first.has(absent));
  }
  CHECK(len(first["results"]) == 2);
  const auto pagination = first["pagination"];
  CHECK(num(pagination["page"].value()) == 1);
  CHECK(num(pagination["total_pages"].value()) == 3);
  CHECK(num(pagination["page_size"].value()) == 2);
  CHECK(pagination["previous"].value().is_null());
  const std::string next = str(pagination["next"].value());
  REQUIRE(next.rfind(sim.base_url(), 0) == 0);
  const json last(get(sim.port(), "/api/public/cases/?page_size=2&page=3").body);
  CHECK(last["pagination"]["next"].value().is_null());
  CHECK(str(last["pagination"]["previous"].value()).find("page=2") != std::string::npos);
  CHECK(len(last["results"]) == 1);
  CHECK(get(sim.port(), "/api/public/cases/?page_size=2&page=4").status == 404);
}

TEST_CASE("observed cancel answers 204 with no body") {
  running_sim sim(observed_settings());
  const auto id = create_cases(sim.port(), "{}")[0];
  const reply r = post(sim.port(), case_path(id, "cancel/"));
  CHECK(r.status == 204);
  CHECK(r.body.empty());
  CHECK(str(json(get(sim.port(), "/_sim/cases/" + id).body)["overall_status"]) == "CANCELLED");
}

TEST_CASE("observed supplementary files and information are the assumed ones") {
  auto config = observed_settings();
  running_sim sim(config);
  const auto id = create_cases(sim.port(), R"({"status":"COMPLETE"})")[0];
  const std::string info_path = case_path(id, "supplementary-information/");
  const std::string observed_info = get(sim.port(), info_path).body;
  const json files(get(sim.port(), case_path(id, "supplementary-files/")).body);
  const auto check = files["checks"].at(0).value();
  CHECK(has(check, "type"));
  const auto file = check["files"].at(0).value();
  for (const char* field : {"id", "name", "content_type", "size", "url", "created"}) {
    CAPTURE(field);
    CHECK(has(file, field));
  }
  REQUIRE(post(sim.port(), "/_sim/shapes", R"({"shapes":"assumed"})").status == 200);
  CHECK(get(sim.port(), info_path).body == observed_info);
}

TEST_CASE(
    "observed webhooks carry event_id, created and object_type; check events name the check") {
  running_sim sim(observed_settings(), true);
  const auto id = create_cases(sim.port(), "{}")[0];
  const auto checks = check_ids(sim.port(), id);
  REQUIRE(post(sim.port(), "/_sim/cases/" + id + "/status", R"({"status":"IN_PROGRESS"})").status ==
          200);
  // Created (1), IN_PROGRESS (1) and one per check (2).
  const auto bodies = webhook_bodies(sim, 4);
  std::set<std::string> named_checks;
  for (const std::string& text : bodies) {
    CAPTURE(text);
    const json body(text);
    CHECK(str(body["event_id"]).size() == 36);
    CHECK_FALSE(body.has("id"));
    CHECK(str(body["created"]).back() == 'Z');
    if (str(body["event_type"]) == "CHECK_STATUS_CHANGED") {
      CHECK(str(body["object_type"]) == "CHECK");
      named_checks.insert(str(body["object_id"]));
      CHECK(text.find(id) == std::string::npos);
    } else {
      CHECK(str(body["object_type"]) == "CASE");
      CHECK(str(body["object_id"]) == id);
    }
  }
  CHECK(named_checks == std::set<std::string>(checks.begin(), checks.end()));
}

TEST_CASE("knob webhook.id_name and webhook.check_object") {
  for (const std::string family : {"assumed", "observed"}) {
    CAPTURE(family);
    {
      running_sim sim(varied("webhook.id_name", "id", family), true);
      create_cases(sim.port(), "{}");
      const json body(webhook_bodies(sim, 1).at(0));
      CHECK(body.has("id"));
      CHECK_FALSE(body.has("event_id"));
    }
    {
      running_sim sim(varied("webhook.id_name", "event_id", family), true);
      create_cases(sim.port(), "{}");
      const json body(webhook_bodies(sim, 1).at(0));
      CHECK(body.has("event_id"));
      CHECK_FALSE(body.has("id"));
    }
    for (const std::string object : {"case", "check"}) {
      {
        CAPTURE(object);
        running_sim sim(varied("webhook.check_object", object, family), true);
        const auto id = create_cases(sim.port(), R"({"check_types":["CREDIT_CHECK"]})")[0];
        const auto checks = check_ids(sim.port(), id);
        REQUIRE(post(sim.port(), "/_sim/cases/" + id + "/status", R"({"status":"IN_PROGRESS"})")
                    .status == 200);
        bool found = false;
        for (const std::string& text : webhook_bodies(sim, 3)) {
          const json body(text);
          if (str(body["event_type"]) != "CHECK_STATUS_CHANGED") {
            continue;
          }
          found = true;
          CHECK(str(body["object_type"]) == (object == "case" ? "CASE" : "CHECK"));
          CHECK(str(body["object_id"]) == (object == "case" ? id : checks.at(0)));
        }
        CHECK(found);
      }
    }
  }
}

TEST_CASE("knob report_file.id and report_file.url_name") {
  for (const std::string family : {"assumed", "observed"}) {
    CAPTURE(family);
    for (const std::string presence : {"present", "absent"}) {
      CAPTURE(presence);
      running_sim sim(varied("report_file.id", presence, family));
      const auto id = create_cases(sim.port(), "{}")[0];
      const std::string report = generate_report(sim.port(), id);
      const json body(get(sim.port(), "/api/public/cases/report-files/" + report + "/").body);
      CHECK(body.has("id") == (presence == "present"));
    }
    for (const std::string& name : url_names) {
      CAPTURE(name);
      running_sim sim(varied("report_file.url_name", name, family));
      const auto id = create_cases(sim.port(), "{}")[0];
      // Two reports: the name must not alternate once a knob fixes it.
      for (int i = 0; i < 2; ++i) {
        const json body(completed_report(sim.port(), generate_report(sim.port(), id)));
        CHECK(str(body[name]).find("/_downloads/reports/") != std::string::npos);
        for (const std::string& other : url_names) {
          if (other != name) {
            CHECK_FALSE(body.has(other));
          }
        }
      }
    }
  }
}

TEST_CASE("knob generate_report.id_name, generate_report.status and generate_report.body") {
  for (const std::string family : {"assumed", "observed"}) {
    CAPTURE(family);
    for (const std::string name : {"case_report_file_id", "report_file_id", "id"}) {
      CAPTURE(name);
      running_sim sim(varied("generate_report.id_name", name, family));
      const auto id = create_cases(sim.port(), "{}")[0];
      for (int i = 0; i < 2; ++i) {
        const json body(post(sim.port(), case_path(id, "generate-report/")).body);
        CHECK(body.has(name));
        CHECK(body.root().get_object().value().size() == 1);
      }
    }
    for (const int status : {200, 201, 202}) {
      CAPTURE(status);
      running_sim sim(varied("generate_report.status", std::to_string(status), family));
      const auto id = create_cases(sim.port(), "{}")[0];
      CHECK(post(sim.port(), case_path(id, "generate-report/")).status == status);
      CHECK(post(sim.port(), case_path(id, "generate-report/")).status == status);
    }
    {
      running_sim sim(varied("generate_report.body", "empty", family));
      const auto id = create_cases(sim.port(), "{}")[0];
      const reply r = post(sim.port(), case_path(id, "generate-report/"));
      CHECK(r.status / 100 == 2);
      CHECK(r.body.empty());
    }
  }
}

TEST_CASE("knob check.type_name, case.status_name and case.created_name") {
  for (const std::string family : {"assumed", "observed"}) {
    CAPTURE(family);
    for (const std::string name : {"type", "check_type"}) {
      running_sim sim(varied("check.type_name", name, family));
      const auto id = create_cases(sim.port(), "{}")[0];
      const json c(get(sim.port(), case_path(id)).body);
      const auto check = c["checks"].at(0).value();
      CHECK(str(check[name].value()) == "IDENTITY_VERIFICATION");
      CHECK_FALSE(has(check, name == "type" ? "check_type" : "type"));
    }
    {
      running_sim sim(varied("case.status_name", "status", family));
      const auto id = create_cases(sim.port(), "{}")[0];
      const json c(get(sim.port(), case_path(id)).body);
      CHECK(str(c["status"]) == "APPLICANT_INVITED");
      CHECK_FALSE(c.has("overall_status"));
      const reply page = get(sim.port(), "/api/public/cases/");
      CHECK(page.body.find("\"overall_status\"") == std::string::npos);
      CHECK(page.body.find("\"status\":\"APPLICANT_INVITED\"") != std::string::npos);
    }
    {
      running_sim sim(varied("case.status_name", "overall_status", family));
      const auto id = create_cases(sim.port(), "{}")[0];
      CHECK(json(get(sim.port(), case_path(id)).body).has("overall_status"));
    }
    for (const std::string name : {"created", "created_at"}) {
      running_sim sim(varied("case.created_name", name, family));
      const auto id = create_cases(sim.port(), R"({"ordered_days_ago":40})")[0];
      const json c(get(sim.port(), case_path(id)).body);
      CHECK(c.has(name));
      CHECK_FALSE(c.has(name == "created" ? "created_at" : "created"));
    }
    {
      running_sim sim(varied("case.created_name", "absent", family));
      const auto id = create_cases(sim.port(), "{}")[0];
      const json c(get(sim.port(), case_path(id)).body);
      CHECK_FALSE(c.has("created"));
      CHECK_FALSE(c.has("created_at"));
    }
  }
}

TEST_CASE("knob list.form: django, pagination and a bare array paged until a short page") {
  for (const std::string family : {"assumed", "observed"}) {
    CAPTURE(family);
    {
      running_sim sim(varied("list.form", "django", family));
      create_cases(sim.port(), R"({"count":3})");
      const json page(get(sim.port(), "/api/public/cases/?page_size=2").body);
      CHECK(num(page["count"]) == 3);
      CHECK(page["next"].is_string());
      CHECK(page["previous"].is_null());
      CHECK_FALSE(page.has("pagination"));
    }
    {
      running_sim sim(varied("list.form", "pagination", family));
      create_cases(sim.port(), R"({"count":3})");
      const json page(get(sim.port(), "/api/public/cases/?page_size=2").body);
      CHECK(num(page["pagination"]["total_pages"].value()) == 2);
      CHECK_FALSE(page.has("count"));
    }
    {
      running_sim sim(varied("list.form", "bare", family));
      const auto ids = create_cases(sim.port(), R"({"count":4})");
      std::set<std::string> seen;
      std::size_t last_size = 2;
      int page = 1;
      while (last_size == 2) {
        const reply r =
            get(sim.port(), "/api/public/cases/?page_size=2&page=" + std::to_string(page++));
        REQUIRE(r.status == 200);
        const json body(r.body);
        REQUIRE(body.root().is_array());
        last_size = len(body.root());
        for (const auto c : body.root().get_array()) {
          seen.insert(str(c["id"].value()));
        }
        REQUIRE(page < 10);
      }
      // Four cases in pages of two: the third page is the short (empty) one.
      CHECK(page == 4);
      CHECK(seen == std::set<std::string>(ids.begin(), ids.end()));
    }
  }
}

TEST_CASE("knob list.bad_entry=first drops the id of each page's first entry") {
  for (const std::string form : {"django", "pagination", "bare"}) {
    CAPTURE(form);
    auto config = varied("list.bad_entry", "first");
    config.shapes.vary["list.form"] = form;
    running_sim sim(config);
    create_cases(sim.port(), R"({"count":5})");
    for (const std::string page : {"1", "2", "3"}) {
      const json body(get(sim.port(), "/api/public/cases/?page_size=2&page=" + page).body);
      const auto entries = form == "bare" ? body.root() : body["results"];
      REQUIRE(len(entries) > 0);
      CHECK_FALSE(has(entries.at(0).value(), "id"));
      if (len(entries) > 1) {
        CHECK(has(entries.at(1).value(), "id"));
      }
    }
  }
  running_sim sim(varied("list.bad_entry", "none"));
  create_cases(sim.port(), R"({"count":2})");
  const json page(get(sim.port(), "/api/public/cases/").body);
  CHECK(has(page["results"].at(0).value(), "id"));
}

TEST_CASE("knobs files.key, file.name_name, file.id and file.url_name") {
  auto first_check = [](const running_sim& sim) {
    const auto id = create_cases(sim.port(), R"({"status":"COMPLETE"})")[0];
    return get(sim.port(), case_path(id, "supplementary-files/")).body;
  };
  for (const std::string family : {"assumed", "observed"}) {
    CAPTURE(family);
    for (const std::string key : {"files", "supplementary_files", "documents"}) {
      running_sim sim(varied("files.key", key, family));
      const json body(first_check(sim));
      const auto check = body["checks"].at(0).value();
      CHECK(len(check[key].value()) == 1);
      CHECK(check.get_object().value().size() == 4);
    }
    for (const std::string name : {"name", "file_name", "filename"}) {
      running_sim sim(varied("file.name_name", name, family));
      const json body(first_check(sim));
      const auto file = body["checks"].at(0)["files"].at(0).value();
      CHECK(str(file[name].value()).size() > 0);
      CHECK(file.get_object().value().size() == 6);
    }
    for (const std::string presence : {"present", "absent"}) {
      running_sim sim(varied("file.id", presence, family));
      const json body(first_check(sim));
      CHECK(has(body["checks"].at(0)["files"].at(0).value(), "id") == (presence == "present"));
    }
    for (const std::string name : {"url", "file_url", "download_url", "presigned_url"}) {
      running_sim sim(varied("file.url_name", name, family));
      const json body(first_check(sim));
      const auto file = body["checks"].at(0)["files"].at(0).value();
      CHECK(str(file[name].value()).find("/_downloads/files/") != std::string::npos);
      CHECK(file.get_object().value().size() == 6);
    }
  }
}

TEST_CASE("knob supplementary_information.body=invalid answers 200 with a body that is not JSON") {
  running_sim sim(varied("supplementary_information.body", "invalid", "observed"));
  const auto id = create_cases(sim.port(), R"({"status":"COMPLETE"})")[0];
  const reply r = get(sim.port(), case_path(id, "supplementary-information/"));
  CHECK(r.status == 200);
  CHECK(r.body.rfind("{\"id\":", 0) == 0);
  simdjson::dom::parser parser;
  CHECK(parser.parse(r.body).error() != simdjson::SUCCESS);
}

TEST_CASE("knob cancel.status") {
  for (const std::string family : {"assumed", "observed"}) {
    CAPTURE(family);
    for (const int status : {200, 202, 204}) {
      CAPTURE(status);
      running_sim sim(varied("cancel.status", std::to_string(status), family));
      const auto id = create_cases(sim.port(), "{}")[0];
      const reply r = post(sim.port(), case_path(id, "cancel/"));
      CHECK(r.status == status);
      if (status == 204) {
        CHECK(r.body.empty());
      } else {
        CHECK(str(json(r.body)["id"]) == id);
      }
    }
  }
}

TEST_CASE("knob forbidden answers 403 with Certn's envelope for the endpoints it lists") {
  running_sim sim(varied("forbidden", "supplementary_files,cases.report_file", "observed"));
  const auto id = create_cases(sim.port(), R"({"status":"COMPLETE"})")[0];
  const std::string envelope =
      R"({"type":"client_error","errors":[{"code":"permission_denied","detail":"You do not have permission to perform this action.","attr":null}]})";
  for (const std::string& target : {case_path(id, "supplementary-files/"),
                                    std::string("/api/public/cases/report-files/nope/")}) {
    CAPTURE(target);
    const reply r = get(sim.port(), target);
    CHECK(r.status == 403);
    CHECK(r.body == envelope);
  }
  CHECK(get(sim.port(), case_path(id)).status == 200);
  CHECK(get(sim.port(), case_path(id, "supplementary-information/")).status == 200);
  const json stats(get(sim.port(), "/_sim/stats").body);
  CHECK(num(stats["requests"]["cases.supplementary_files"]["403"].value()) == 1);
  // An empty list forbids nothing.
  REQUIRE(post(sim.port(), "/_sim/shapes", R"({"vary":{"forbidden":""}})").status == 200);
  CHECK(get(sim.port(), case_path(id, "supplementary-files/")).status == 200);
}

TEST_CASE("POST /_sim/shapes switches the family and knobs at run time") {
  certn_sim::settings config;
  running_sim sim(config);
  const json initial(get(sim.port(), "/_sim/shapes").body);
  CHECK(str(initial["shapes"]) == "assumed");
  CHECK(initial["vary"].get_object().value().size() == 0);
  CHECK(str(initial["knobs"]["list.form"].value()) == "django");

  const reply changed =
      post(sim.port(), "/_sim/shapes",
           R"({"shapes":"observed","vary":{"list.form":"bare","file.id":"absent"}})");
  REQUIRE(changed.status == 200);
  const json answer(changed.body);
  CHECK(str(answer["shapes"]) == "observed");
  CHECK(str(answer["vary"]["list.form"].value()) == "bare");
  CHECK(str(answer["knobs"]["list.form"].value()) == "bare");
  CHECK(str(answer["knobs"]["file.id"].value()) == "absent");
  CHECK(str(answer["knobs"]["cancel.status"].value()) == "204");
  CHECK(json(get(sim.port(), "/api/public/cases/").body).root().is_array());

  // Overrides merge; null removes one, "vary": null removes them all.
  const json merged(post(sim.port(), "/_sim/shapes", R"({"vary":{"list.form":null}})").body);
  CHECK_FALSE(has(merged["vary"], "list.form"));
  CHECK(str(merged["vary"]["file.id"].value()) == "absent");
  CHECK(str(merged["knobs"]["list.form"].value()) == "pagination");
  const json cleared(post(sim.port(), "/_sim/shapes", R"({"vary":null})").body);
  CHECK(cleared["vary"].get_object().value().size() == 0);
  CHECK(str(cleared["shapes"]) == "observed");

  struct bad_body {
    std::string body;
    std::string named;  // what the error message must name
  };
  for (const bad_body& bad :
       std::vector<bad_body>{{R"({"vary":{"no.such.knob":"x"}})", "no.such.knob"},
                             {R"({"vary":{"no.such.knob":null}})", "no.such.knob"},
                             {R"({"vary":{"list.form":"xml"}})", "xml"},
                             {R"({"vary":{"cancel.status":"201"}})", "cancel.status"},
                             {R"({"vary":{"forbidden":"cases.nothing"}})", "cases.nothing"},
                             {R"({"vary":{"list.form":3}})", "list.form"},
                             {R"({"shapes":"imagined"})", "imagined"},
                             {R"({"shape":"observed"})", "shape"},
                             {R"({"vary":["list.form"]})", "vary"},
                             {"{oops", "JSON"}}) {
    CAPTURE(bad.body);
    const reply r = post(sim.port(), "/_sim/shapes", bad.body);
    CHECK(r.status == 400);
    CHECK(str(json(r.body)["error"]).find(bad.named) != std::string::npos);
  }
  // A rejected change changes nothing, even its valid parts.
  CHECK(post(sim.port(), "/_sim/shapes", R"({"shapes":"assumed","vary":{"list.form":"xml"}})")
            .status == 400);
  CHECK(str(json(get(sim.port(), "/_sim/shapes").body)["shapes"]) == "observed");
  CHECK(call(sim.port(), bhttp::verb::put, "/_sim/shapes").status == 405);
}

TEST_CASE("the simulator refuses unknown families, knobs and values at start") {
  asio::io_context io;
  for (const auto& [knob, value] : std::vector<std::pair<std::string, std::string>>{
           {"nope", "x"}, {"list.form", "xml"}, {"forbidden", "everything"}}) {
    CAPTURE(knob);
    certn_sim::settings config;
    config.shapes.vary[knob] = value;
    CHECK_THROWS_AS(certn_sim::simulator(io, config), std::invalid_argument);
  }
  certn_sim::settings config;
  config.shapes.family = "imagined";
  CHECK_THROWS_AS(certn_sim::simulator(io, config), std::invalid_argument);
}

TEST_CASE("the same seed and shapes give the same bytes") {
  // Wall-clock times and the signatures over them are the only differences allowed.
  auto transcript = [](const std::string& family, std::uint64_t seed) {
    auto config = observed_settings();
    config.shapes.family = family;
    config.seed = seed;
    running_sim sim(config);
    std::string out;
    const auto ids = create_cases(sim.port(), R"({"count":3,"status":"COMPLETE"})");
    out += get(sim.port(), "/api/public/cases/?page_size=2").body;
    out += get(sim.port(), case_path(ids[0])).body;
    out += get(sim.port(), case_path(ids[0], "supplementary-files/")).body;
    out += get(sim.port(), case_path(ids[0], "supplementary-information/")).body;
    for (int i = 0; i < 3; ++i) {
      const reply r = post(sim.port(), case_path(ids[1], "generate-report/"));
      out += std::to_string(r.status) + r.body;
      const std::string report = generate_report(sim.port(), ids[1]);
      out += completed_report(sim.port(), report);
    }
    const std::regex varying(
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z|X-Amz-Date=[0-9TZ]+|X-Amz-Signature=[0-9a-f]+|"
        "127\\.0\\.0\\.1:[0-9]+");
    return std::regex_replace(out, varying, "*");
  };
  const std::string observed = transcript("observed", 3);
  CHECK(observed == transcript("observed", 3));
  CHECK(observed != transcript("observed", 4));
  CHECK(observed != transcript("assumed", 3));
}
