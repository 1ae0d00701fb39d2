// Signature schemes and event parsing: pure functions, no I/O.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "webhook/event.hpp"
#include "webhook/signature.hpp"
#include "webhook/store.hpp"

using namespace archiver::webhook;
using archiver::config::signature_scheme;
using clock_type = std::chrono::system_clock;

namespace {

const std::string body =
    R"({"id":"4f7c9a2e-1d3b-4e5f-8a6b-7c8d9e0f1a2b","event_type":"CASE_STATUS_CHANGED","object_id":"c-1","object_type":"CASE"})";
const std::vector<std::string> one_secret = {"s3cret"};
const auto now = clock_type::time_point(std::chrono::seconds(1'790'000'000));
constexpr std::chrono::seconds tolerance{300};

signature_verdict check(signature_scheme scheme, const std::string& header,
                        const std::vector<std::string>& secrets = one_secret,
                        const std::string& signed_body = body) {
  return verify_signature(scheme, header, signed_body, secrets, now, tolerance).verdict;
}

std::string upper(std::string text) {
  for (char& c : text) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return text;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
}

}  // namespace

TEST_CASE("HMAC-SHA256 matches RFC 4231 test case 2") {
  CHECK(sign_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(sign_base64("Jefe", "what do ya want for nothing?") ==
        "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
}

TEST_CASE("each header scheme names its header") {
  CHECK(signature_header(signature_scheme::x_signature_hex) == "X-Signature");
  CHECK(signature_header(signature_scheme::x_signature_base64) == "X-Signature");
  CHECK(signature_header(signature_scheme::certn_signature) == "Certn-Signature");
}

TEST_CASE("x-signature-hex accepts the right MAC and rejects everything else") {
  const auto scheme = signature_scheme::x_signature_hex;
  const std::string good = sign_hex("s3cret", body);
  CHECK(check(scheme, good) == signature_verdict::valid);
  CHECK(check(scheme, "sha256=" + good) == signature_verdict::valid);
  CHECK(check(scheme, "SHA256=" + good) == signature_verdict::valid);
  CHECK(check(scheme, upper(good)) == signature_verdict::valid);  // hex is case-insensitive
  CHECK(check(scheme, "") == signature_verdict::missing);
  CHECK(check(scheme, sign_hex("other", body)) == signature_verdict::mismatch);
  CHECK(check(scheme, good, {"wrong"}) == signature_verdict::mismatch);
  CHECK(check(scheme, good, {}) == signature_verdict::mismatch);
  CHECK(check(scheme, good, one_secret, body + " ") == signature_verdict::mismatch);
  CHECK(check(scheme, good.substr(0, good.size() - 1)) == signature_verdict::malformed);
  CHECK(check(scheme, good.substr(0, good.size() / 2)) == signature_verdict::malformed);
  CHECK(check(scheme, good + "00") == signature_verdict::malformed);
  CHECK(check(scheme, "zz" + good.substr(2)) == signature_verdict::malformed);
  CHECK(check(scheme, sign_base64("s3cret", body)) == signature_verdict::malformed);

  SUBCASE("with two secrets, either matches, and the match is reported") {
    const std::vector<std::string> two = {"old", "s3cret"};
    const signature_check result =
        verify_signature(scheme, good, body, two, now, tolerance);
    CHECK(result.verdict == signature_verdict::valid);
    CHECK(result.secret_index == 1);
    CHECK(verify_signature(scheme, sign_hex("old", body), body, two, now, tolerance).secret_index ==
          0);
    CHECK(check(scheme, sign_hex("removed", body), two) == signature_verdict::mismatch);
  }
}

TEST_CASE("x-signature-base64 accepts the right MAC and rejects everything else") {
  const auto scheme = signature_scheme::x_signature_base64;
  const std::string good = sign_base64("s3cret", body);
  REQUIRE(good.size() == 44);
  REQUIRE(good.back() == '=');
  CHECK(check(scheme, good) == signature_verdict::valid);
  CHECK(check(scheme, "sha256=" + good) == signature_verdict::valid);
  CHECK(check(scheme, good.substr(0, 43)) == signature_verdict::valid);  // padding optional
  CHECK(check(scheme, "") == signature_verdict::missing);
  CHECK(check(scheme, sign_base64("other", body)) == signature_verdict::mismatch);
  CHECK(check(scheme, good, {"wrong"}) == signature_verdict::mismatch);
  CHECK(check(scheme, good.substr(0, 40)) == signature_verdict::malformed);
  CHECK(check(scheme, good.substr(0, 22)) == signature_verdict::malformed);
  CHECK(check(scheme, sign_hex("s3cret", body)) == signature_verdict::malformed);
  // Base64 is case-sensitive: upper-casing changes the bytes.
  const signature_verdict upper_case = check(scheme, upper(good));
  CHECK((upper_case == signature_verdict::mismatch || upper_case == signature_verdict::malformed));

  const std::vector<std::string> two = {"old", "s3cret"};
  CHECK(verify_signature(scheme, good, body, two, now, tolerance).secret_index == 1);
}

TEST_CASE("certn-signature checks the MAC over t.body and the timestamp window") {
  const auto scheme = signature_scheme::certn_signature;
  const std::int64_t t = unix_now();
  const std::string good = sign_certn("s3cret", body, t);
  CHECK(good == "t=" + std::to_string(t) + ",v1=" + sign_hex("s3cret", std::to_string(t) + "." + body));
  CHECK(check(scheme, good) == signature_verdict::valid);
  CHECK(check(scheme, "t=" + std::to_string(t) + ", v1=" + upper(sign_hex("s3cret", std::to_string(t) + "." + body))) ==
        signature_verdict::valid);
  CHECK(check(scheme, "") == signature_verdict::missing);
  CHECK(check(scheme, good, {"wrong"}) == signature_verdict::mismatch);
  CHECK(check(scheme, good, one_secret, body + "x") == signature_verdict::mismatch);

  SUBCASE("timestamps") {
    CHECK(check(scheme, sign_certn("s3cret", body, t - 301)) == signature_verdict::timestamp_too_old);
    CHECK(check(scheme, sign_certn("s3cret", body, t + 301)) ==
          signature_verdict::timestamp_in_future);
    CHECK(check(scheme, sign_certn("s3cret", body, t - 300)) == signature_verdict::valid);
    CHECK(check(scheme, sign_certn("s3cret", body, t + 300)) == signature_verdict::valid);
    // A MAC over another timestamp does not verify under this one.
    const std::string mac_for_other_t = sign_hex("s3cret", std::to_string(t - 1) + "." + body);
    CHECK(check(scheme, "t=" + std::to_string(t) + ",v1=" + mac_for_other_t) ==
          signature_verdict::mismatch);
  }
  SUBCASE("malformed headers") {
    const std::string mac = sign_hex("s3cret", std::to_string(t) + "." + body);
    for (const std::string& header :
         {std::string("v1=") + mac, "t=abc,v1=" + mac, "t=,v1=" + mac,
          "t=99999999999999999999999,v1=" + mac, "t=" + std::to_string(t),
          "t=" + std::to_string(t) + ",v1=" + mac.substr(0, 10), std::string("garbage"),
          "t=-5,v1=" + mac}) {
      CAPTURE(header);
      CHECK(check(scheme, header) == signature_verdict::malformed);
    }
  }
  SUBCASE("several v1 values: one matching is enough") {
    const std::string mac = sign_hex("s3cret", std::to_string(t) + "." + body);
    const std::string other = sign_hex("old", std::to_string(t) + "." + body);
    CHECK(check(scheme, "t=" + std::to_string(t) + ",v1=" + other + ",v1=" + mac) ==
          signature_verdict::valid);
    CHECK(check(scheme, "t=" + std::to_string(t) + ",v0=ignored,v1=" + mac) ==
          signature_verdict::valid);
  }
}

TEST_CASE("a valid event body is parsed into its four fields") {
  const parsed_event parsed = parse_event(body);
  REQUIRE(parsed.value);
  CHECK(parsed.value->id == "4f7c9a2e-1d3b-4e5f-8a6b-7c8d9e0f1a2b");
  CHECK(parsed.value->event_type == "CASE_STATUS_CHANGED");
  CHECK(parsed.value->object_id == "c-1");
  CHECK(parsed.value->object_type == "CASE");
  CHECK(parsed.error.empty());

  SUBCASE("event_id when id is absent; id wins when both are present") {
    auto fallback = parse_event(
        R"({"event_id":"e-2","event_type":"CASE_REPORT_READY","object_id":"rf-1","object_type":"CASE_REPORT_FILE"})");
    REQUIRE(fallback.value);
    CHECK(fallback.value->id == "e-2");
    auto both = parse_event(
        R"({"id":"e-1","event_id":"e-2","event_type":"X","object_id":"o","object_type":"CASE"})");
    REQUIRE(both.value);
    CHECK(both.value->id == "e-1");
  }
  SUBCASE("unknown fields, nested or not, are ignored") {
    auto extra = parse_event(
        R"({"id":"e","event_type":"CASE_STATUS_CHANGED","object_id":"o","object_type":"CASE","created":"2026-01-01T00:00:00Z","case_status":"COMPLETE","meta":{"a":[1,2,{"b":null}]}})");
    CHECK(extra.value);
  }
  SUBCASE("unknown event types parse; is_known_event_type tells them apart") {
    auto unknown = parse_event(R"({"id":"e","event_type":"SOMETHING_NEW","object_id":"o","object_type":"CASE"})");
    REQUIRE(unknown.value);
    CHECK_FALSE(is_known_event_type(unknown.value->event_type));
    for (const char* type : {"CASE_STATUS_CHANGED", "CHECK_STATUS_CHANGED", "CASE_REPORT_READY",
                             "CASE_INPUT_CLAIMS_AUTOMATICALLY_GENERATED"}) {
      CHECK(is_known_event_type(type));
    }
  }
}

TEST_CASE("malformed event bodies are refused with a message naming the problem") {
  struct bad_case {
    std::string body;
    std::string expected;  // a substring of the error
  };
  const std::string long_id(129, 'a');
  const std::vector<bad_case> cases = {
      {"", "body: empty"},
      {"not json", "body: not valid JSON"},
      {R"({"id":"e")", "body: not valid JSON"},
      {R"({"id":"e","event_type":"X","object_id":"o","object_type":"CASE"} trailing)", "body: not valid JSON"},
      {R"([1,2])", "body: expected a JSON object"},
      {R"("text")", "body: expected a JSON object"},
      {R"({"event_type":"X","object_id":"o","object_type":"CASE"})", "id: missing"},
      {R"({"id":5,"event_id":"e","event_type":"X","object_id":"o","object_type":"CASE"})", "id: expected a string"},
      {R"({"id":"","event_type":"X","object_id":"o","object_type":"CASE"})", "id: empty"},
      {R"({"id":")" + long_id + R"(","event_type":"X","object_id":"o","object_type":"CASE"})", "id: longer than 128"},
      {R"({"id":"a b","event_type":"X","object_id":"o","object_type":"CASE"})", "id: contains characters"},
      {R"({"id":"e","object_id":"o","object_type":"CASE"})", "event_type: missing"},
      {R"({"id":"e","event_type":null,"object_id":"o","object_type":"CASE"})", "event_type: expected a string"},
      {R"({"id":"e","event_type":"A/B","object_id":"o","object_type":"CASE"})", "event_type: contains characters"},
      {R"({"id":"e","event_type":"X","object_type":"CASE"})", "object_id: missing"},
      {R"({"id":"e","event_type":"X","object_id":"../../etc","object_type":"CASE"})", "object_id: contains characters"},
      {R"({"id":"e","event_type":"X","object_id":"caf\u00e9","object_type":"CASE"})", "object_id: contains characters"},
      {R"({"id":"e","event_type":"X","object_id":"a\nb","object_type":"CASE"})", "object_id: contains characters"},
      {R"({"id":"e","event_type":"X","object_id":"o"})", "object_type: missing"},
      {R"({"id":"e","event_type":"X","object_id":"o","object_type":["CASE"]})", "object_type: expected a string"},
  };
  for (const bad_case& c : cases) {
    CAPTURE(c.body);
    const parsed_event parsed = parse_event(c.body);
    CHECK_FALSE(parsed.value);
    CHECK(parsed.error.find(c.expected) != std::string::npos);
    CHECK(parsed.error.find('\n') == std::string::npos);
  }
}

TEST_CASE("events map to the job they ask for") {
  const auto job_of = [](const std::string& type, const std::string& object) {
    return job_for(event{"e-1", type, object, "CASE"}, 7);
  };
  for (const char* type : {"CASE_STATUS_CHANGED", "CHECK_STATUS_CHANGED",
                           "CASE_INPUT_CLAIMS_AUTOMATICALLY_GENERATED"}) {
    const auto job = job_of(type, "case-9");
    REQUIRE(job);
    CHECK(job->kind == "sync_case");
    CHECK(job->key == "case-9");
    CHECK(job->max_attempts == 7);
    CHECK(job->payload == R"({"case_id":"case-9","source_event":"e-1"})");
  }
  const auto report = job_of("CASE_REPORT_READY", "rf-1");
  REQUIRE(report);
  CHECK(report->kind == "report_ready");
  CHECK(report->payload == R"({"object_id":"rf-1","object_type":"CASE","source_event":"e-1"})");
  CHECK_FALSE(job_of("SOMETHING_NEW", "x"));
}
