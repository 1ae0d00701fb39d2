// The pure decisions of the operator commands (service/doctor.hpp).
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "service/doctor.hpp"

using namespace archiver::service::doctor;
using archiver::certn::call_failure;
using archiver::retry::failure_class;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

call_failure failure_of(failure_class kind, int status, std::string message) {
  call_failure f;
  f.kind = kind;
  f.http_status = status;
  f.message = std::move(message);
  return f;
}

}  // namespace

TEST_CASE("doctor: Certn's answer to the one call becomes ok, warn or fail with what to do") {
  const line ok = certn_check(std::nullopt, "https://api.certn.co");
  CHECK(ok.result == status::ok);
  CHECK(ok.action.empty());

  const line refused = certn_check(
      failure_of(failure_class::authentication, 401, "401 Unauthorized"), "https://api.certn.co");
  CHECK(refused.result == status::fail);
  CHECK(contains(refused.detail, "https://api.certn.co"));
  CHECK(contains(refused.action, "certn.base_url is the key's region"));

  CHECK(certn_check(failure_of(failure_class::forbidden, 403, "no"), "u").result == status::fail);
  CHECK(certn_check(failure_of(failure_class::rate_limited, 429, "slow"), "u").result ==
        status::warn);
  const line unreachable = certn_check(failure_of(failure_class::retryable, 0, "refused"), "u");
  CHECK(unreachable.result == status::fail);
  CHECK(contains(unreachable.action, "HTTPS_PROXY"));
  CHECK(contains(certn_check(failure_of(failure_class::retryable, 502, "bad gateway"), "u").detail,
                 "answered 502"));
}

TEST_CASE("doctor: the key's expiry, from certn.api_key_created") {
  using namespace std::chrono;
  const auto now = system_clock::time_point(sys_days(year(2026) / December / 7));
  CHECK(key_expiry_check("", now).result == status::warn);
  CHECK(key_expiry_check("2026-13-01", now).result == status::fail);
  CHECK(key_expiry_check("2026-06-01", now).result == status::ok);
  const line soon = key_expiry_check("2025-12-20", now);
  CHECK(soon.result == status::warn);
  CHECK(contains(soon.detail, "expires on 2026-12-20, in 13 day(s)"));
  CHECK(key_expiry_check("2025-12-01", now).result == status::fail);
}

TEST_CASE("doctor: what serve needs of the role, and the GRANT that gives it") {
  CHECK(privileges_needed("jobs", 'r') ==
        std::vector<std::string>{"SELECT", "INSERT", "UPDATE", "DELETE"});
  CHECK(privileges_needed("audit_log", 'r') == std::vector<std::string>{"SELECT", "INSERT"});
  CHECK(privileges_needed("schema_migrations", 'r') == std::vector<std::string>{"SELECT"});
  CHECK(privileges_needed("jobs_id_seq", 'S') == std::vector<std::string>{"USAGE"});

  CHECK(privileges_check({}, "archiver").result == status::ok);
  const line lacking =
      privileges_check({{"jobs", {"INSERT", "DELETE"}}, {"jobs_id_seq", {"USAGE"}}}, "archiver");
  CHECK(lacking.result == status::fail);
  CHECK(lacking.detail == "role archiver lacks INSERT, DELETE on jobs; USAGE on jobs_id_seq");
  CHECK(lacking.action ==
        "GRANT INSERT, DELETE ON jobs TO archiver; GRANT USAGE ON jobs_id_seq TO archiver");
}

TEST_CASE("doctor: a signed POST that is not an event: 400 accepted, 401 another secret") {
  const line accepted = signature_check(400, "https://h/webhooks/certn", 0, 2);
  CHECK(accepted.result == status::ok);
  CHECK(contains(accepted.detail, "webhook secret 1 of 2"));
  const line refused = signature_check(401, "https://h/webhooks/certn", 1, 2);
  CHECK(refused.result == status::fail);
  CHECK(contains(refused.detail, "webhook secret 2 of 2 (401)"));
  const line elsewhere = signature_check(404, "https://h/wrong", 0, 1);
  CHECK(elsewhere.result == status::fail);
  CHECK(contains(elsewhere.action, "server.webhook_path"));
}

TEST_CASE("doctor: the report as aligned lines or JSON, and its exit code") {
  report r;
  r.lines.push_back({"config", status::ok, "valid", ""});
  r.lines.push_back({"database schema", status::warn, "newer", "upgrade"});
  CHECK(exit_code(r) == 0);
  CHECK(to_text(r) ==
        "ok    config           valid\n"
        "warn  database schema  newer -> upgrade\n");
  r.lines.push_back({"storage", status::fail, "cannot write \"k\"", "check"});
  CHECK(exit_code(r) == 1);
  const std::string json = to_json(r);
  CHECK(contains(json, R"("ok":false)"));
  CHECK(contains(
      json,
      R"({"check":"storage","status":"fail","detail":"cannot write \"k\"","action":"check"})"));
}
