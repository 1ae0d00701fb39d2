// The Cases API client against certn-sim over real sockets: every endpoint, each failure class,
// pagination, Retry-After, a truncated download and an expired URL. No database.
#include <doctest/doctest.h>
#include <openssl/evp.h>

#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <thread>

#include "certn/api.hpp"
#include "encoding/encoding.hpp"
#include "net/asio.hpp"
#include "simulator.hpp"
#include "support/sim_fixture.hpp"

using namespace archiver;
using namespace archiver::certn;
using namespace std::chrono_literals;
using archiver::testing::running_sim;

namespace {

certn_sim::settings sim_settings() {
  certn_sim::settings config;
  config.report_delay = 100ms;
  config.default_file_size = 200'000;
  return config;
}

http::destination_policy loopback_policy() {
  http::destination_policy policy;
  policy.allow_plain_http = true;
  policy.allow_special_addresses = true;
  policy.allowed_hosts = {"127.0.0.1"};
  return policy;
}

// Runs `task` on the test thread's io_context until it completes (pooled connections may keep
// timers pending, so "until out of work" would wait for their idle timeout).
template <class T>
T run(asio::io_context& io, awaitable<T> task) {
  auto future = asio::co_spawn(io, std::move(task), asio::use_future);
  io.restart();
  while (future.wait_for(0s) != std::future_status::ready) {
    if (io.run_one() == 0) {
      FAIL("the io_context ran out of work before the call finished");
    }
  }
  return future.get();
}

// The client side: an api_client with its http clients and limiter, all on the test thread.
struct certn_side {
  explicit certn_side(const std::string& base_url, std::string key = "sim-key",
                      int per_minute = 60'000)
      : api_http(io, loopback_policy(), nullptr),
        download_http(io, loopback_policy(), nullptr),
        limiter(per_minute, 100),
        api(api_http, download_http, limiter, {base_url, std::move(key)}),
        base(base_url) {}

  // A control API call (/_sim/...), whose answer must be 2xx.
  std::string control(const std::string& path, const std::string& body) {
    http::request_options options;
    options.method = "POST";
    options.body = body;
    http::string_sink sink(1 << 20);
    const auto url = base_url() + path;
    const auto answer = run(io, control_http.fetch(url, options, sink));
    REQUIRE(answer.error == http::failure::none);
    REQUIRE(answer.head.status / 100 == 2);
    return sink.data();
  }
  std::string base_url() const { return base; }

  asio::io_context io;
  http::client api_http;
  http::client download_http;
  http::client control_http{io, loopback_policy(), nullptr};
  rate_limiter limiter;
  api_client api;
  std::string base;
};

std::unique_ptr<certn_side> connect(const running_sim& sim, std::string key = "sim-key") {
  return std::make_unique<certn_side>(sim.base_url(), std::move(key));
}

// The ids in a control API answer {"ids":[...]}.
std::vector<std::string> ids_of(const std::string& body) {
  std::vector<std::string> ids;
  std::size_t at = body.find('[');
  while ((at = body.find('"', at)) != std::string::npos) {
    const std::size_t end = body.find('"', at + 1);
    ids.push_back(body.substr(at + 1, end - at - 1));
    at = end + 1;
  }
  return ids;
}

class sha256_sink final : public http::body_sink {
 public:
  sha256_sink() : context_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr);
  }
  void write(std::string_view chunk) override {
    if (start_.size() < 16) {
      start_.append(chunk.substr(0, 16 - start_.size()));
    }
    EVP_DigestUpdate(context_.get(), chunk.data(), chunk.size());
  }
  std::string hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context_.get(), digest, &length);
    return encoding::to_hex(std::string_view(reinterpret_cast<const char*>(digest), length));
  }
  const std::string& start() const { return start_; }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context_;
  std::string start_;
};

template <class T>
call_failure failure_of(const call_result<T>& result) {
  REQUIRE_FALSE(result.value);
  REQUIRE(result.failure);
  return *result.failure;
}

}  // namespace

TEST_CASE("every Cases endpoint works through the client") {
  running_sim sim(sim_settings());
  auto side = connect(sim);
  api_client& api = side->api;

  const auto ordered = run(side->io, api.order(R"({"email_address":"jo@example.com",
      "check_types_with_arguments":{"CRIMINAL_RECORD_CHECK":{}},"return_invite_link":true})"));
  REQUIRE(ordered.value);
  const std::string id = ordered.value->id;
  CHECK(ordered.value->email_address == "jo@example.com");
  CHECK(ordered.body.find("invite_link") != std::string::npos);

  const auto fetched = run(side->io, api.get_case(id));
  REQUIRE(fetched.value);
  CHECK(fetched.value->id == id);
  CHECK(fetched.http_status == 200);
  CHECK(fetched.body == fetched.value->raw_json);  // the bytes exactly as received

  const auto page = run(side->io, api.list_cases({}, 1, 10));
  REQUIRE(page.value);
  CHECK(page.value->count == 1);
  CHECK(page.value->results.at(0).id == id);

  // A case still waiting for its applicant can be cancelled.
  const auto second = run(side->io, api.order_package({"pkg-basic", "al@example.com"}));
  REQUIRE(second.value);
  const auto cancelled = run(side->io, api.cancel_case(second.value->id));
  REQUIRE(cancelled.value);
  REQUIRE(cancelled.value->has_value());
  CHECK((*cancelled.value)->overall_status == "CANCELLED");

  side->control("/_sim/cases/" + id + "/status", R"({"status":"COMPLETE"})");
  // ... a COMPLETE one cannot: Certn's validation error, permanent.
  const auto refused = run(side->io, api.cancel_case(id));
  const call_failure& refusal = failure_of(refused);
  CHECK(refusal.kind == failure_class::permanent);
  CHECK(refusal.http_status == 400);
  REQUIRE(refusal.error);
  CHECK(refusal.error->type == "validation_error");

  const auto requested = run(side->io, api.generate_report(id, "en-CA"));
  REQUIRE(requested.value);
  const std::string report_id = *requested.value;
  std::optional<report_file> report;
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    const auto answer = run(side->io, api.get_report_file(report_id));
    REQUIRE(answer.value);
    if (answer.value->status == "COMPLETE") {
      report = answer.value;
      break;
    }
    CHECK(answer.value->status == "IN_PROGRESS");
    CHECK_FALSE(answer.value->url);
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE(report);
  REQUIRE(report->url);
  sha256_sink pdf;
  const auto downloaded = run(side->io, api.download(*report->url, pdf));
  REQUIRE(downloaded.value);
  CHECK(*downloaded.value > 100);
  CHECK(pdf.start().starts_with("%PDF-1."));

  const auto files = run(side->io, api.get_supplementary_files(id));
  REQUIRE(files.value);
  CHECK(files.value->case_id == id);
  REQUIRE(files.value->checks.size() == 1);
  REQUIRE(files.value->checks[0].files.size() == 1);
  const supplementary_file& file = files.value->checks[0].files[0];
  REQUIRE(file.size);
  sha256_sink content;
  const auto got = run(side->io, api.download(file.url, content));
  REQUIRE(got.value);
  CHECK(static_cast<std::int64_t>(*got.value) == *file.size);

  const auto information = run(side->io, api.get_supplementary_information(id));
  REQUIRE(information.value);
  CHECK(information.value->case_id == id);
  CHECK(information.value->checks.size() == 1);
  CHECK_FALSE(information.body.empty());

  const auto inactive = run(side->io, api.order_package({"pkg-retired", "x@example.com"}));
  const call_failure& inactive_failure = failure_of(inactive);
  CHECK(inactive_failure.kind == failure_class::permanent);
  REQUIRE(inactive_failure.error);
  CHECK(inactive_failure.error->errors.at(0).attr == std::optional<std::string>("package"));

  const auto bad_order = run(side->io, api.order(R"({"email_address":"not an address"})"));
  CHECK(failure_of(bad_order).http_status == 400);
  const auto not_json = run(side->io, api.order("[1,2"));
  CHECK(failure_of(not_json).message.find("not a JSON object") != std::string::npos);
}

TEST_CASE("a listing is read page by page to the end") {
  running_sim sim(sim_settings());
  auto side = connect(sim);
  const auto created = ids_of(side->control("/_sim/cases", R"({"count":23})"));
  REQUIRE(created.size() == 23);

  case_pages pages(side->api, {}, 10);
  std::set<std::string> seen;
  int page_count = 0;
  while (!pages.done()) {
    const auto page = run(side->io, pages.next());
    REQUIRE(page.value);
    CHECK(page.value->count == 23);
    ++page_count;
    for (const auto& record : page.value->results) {
      seen.insert(record.id);
    }
  }
  CHECK(page_count == 3);
  CHECK(seen == std::set<std::string>(created.begin(), created.end()));

  case_filter filter;
  filter.overall_status = {"COMPLETE"};
  side->control("/_sim/cases/" + created[4] + "/status", R"({"status":"COMPLETE"})");
  const auto complete = run(side->io, side->api.list_cases(filter, 1, 100));
  REQUIRE(complete.value);
  REQUIRE(complete.value->results.size() == 1);
  CHECK(complete.value->results[0].id == created[4]);
}

TEST_CASE("each failure is classified once") {
  SUBCASE("a wrong API key is an authentication failure") {
    running_sim sim(sim_settings());
    auto side = connect(sim, "not-the-key");
    const auto answer = run(side->io, side->api.list_cases({}, 1, 10));
    const call_failure& failure = failure_of(answer);
    CHECK(failure.kind == failure_class::authentication);
    CHECK(failure.http_status == 401);
    CHECK(failure.message.find("not-the-key") == std::string::npos);
  }
  SUBCASE("a key refused with 403 (DRF without a challenge) is still an authentication failure") {
    auto config = sim_settings();
    config.refused_key_status = 403;
    running_sim sim(config);
    auto side = connect(sim, "not-the-key");
    const call_failure& failure = failure_of(run(side->io, side->api.list_cases({}, 1, 10)));
    CHECK(failure.kind == failure_class::authentication);
    CHECK(failure.http_status == 403);
  }
  SUBCASE("an unknown case is permanent, with Certn's code") {
    running_sim sim(sim_settings());
    auto side = connect(sim);
    const auto answer = run(side->io, side->api.get_case("00000000-0000-0000-0000-000000000000"));
    const call_failure& failure = failure_of(answer);
    CHECK(failure.kind == failure_class::permanent);
    CHECK(failure.http_status == 404);
    CHECK(answer.http_status == 404);
    REQUIRE(failure.error);
    CHECK(failure.error->errors.at(0).code == "not_found");
  }
  SUBCASE("a 500 is retryable") {
    auto config = sim_settings();
    config.faults.rate_500 = 1.0;
    running_sim sim(config);
    auto side = connect(sim);
    const call_failure& failure = failure_of(run(side->io, side->api.list_cases({}, 1, 10)));
    CHECK(failure.kind == failure_class::retryable);
    CHECK(failure.http_status == 500);
    REQUIRE(failure.error);
    CHECK(failure.error->type == "server_error");
  }
  SUBCASE("a 429 is rate-limited, with Retry-After when sent") {
    auto config = sim_settings();
    config.faults.rate_429 = 1.0;
    config.faults.retry_after_rate = 1.0;
    config.faults.retry_after_seconds = 7;
    running_sim sim(config);
    auto side = connect(sim);
    const call_failure& failure = failure_of(run(side->io, side->api.list_cases({}, 1, 10)));
    CHECK(failure.kind == failure_class::rate_limited);
    CHECK(failure.retry_after == std::optional<std::chrono::seconds>(7s));
  }
  SUBCASE("a 429 without Retry-After is rate-limited without a delay") {
    auto config = sim_settings();
    config.faults.rate_429 = 1.0;
    config.faults.retry_after_rate = 0.0;
    running_sim sim(config);
    auto side = connect(sim);
    const call_failure& failure = failure_of(run(side->io, side->api.list_cases({}, 1, 10)));
    CHECK(failure.kind == failure_class::rate_limited);
    CHECK_FALSE(failure.retry_after);
  }
  SUBCASE("nobody listening is retryable; a refused destination is permanent") {
    certn_side side("http://127.0.0.1:1");
    const call_failure& refused = failure_of(run(side.io, side.api.list_cases({}, 1, 10)));
    CHECK(refused.kind == failure_class::retryable);
    CHECK(refused.http_status == 0);
    certn_side elsewhere("http://10.0.0.1:8080");
    const call_failure& policy = failure_of(run(elsewhere.io, elsewhere.api.list_cases({}, 1, 10)));
    CHECK(policy.kind == failure_class::permanent);
  }
  SUBCASE("an id that would change the URL path is refused before any request") {
    certn_side side("http://127.0.0.1:1");
    const call_failure& failure = failure_of(run(side.io, side.api.get_case("../x")));
    CHECK(failure.kind == failure_class::permanent);
    CHECK(failure.message.find("not a valid Certn id") != std::string::npos);
  }
}

TEST_CASE("Retry-After holds back every later call through the shared limiter") {
  auto config = sim_settings();
  config.faults.rate_429 = 1.0;
  config.faults.retry_after_seconds = 1;
  running_sim sim(config);
  auto side = connect(sim);
  const call_failure& failure = failure_of(run(side->io, side->api.list_cases({}, 1, 10)));
  REQUIRE(failure.retry_after == std::optional<std::chrono::seconds>(1s));
  side->control("/_sim/faults", R"({"rate_429":0})");
  const auto started = std::chrono::steady_clock::now();
  const auto next = run(side->io, side->api.list_cases({}, 1, 10));
  CHECK(next.value);
  // The limiter's clock started before the control call, so allow for that call's time.
  CHECK(std::chrono::steady_clock::now() - started >= 800ms);
}

TEST_CASE("downloads: a truncated body and an expired URL are recognised as such") {
  SUBCASE("truncated") {
    auto config = sim_settings();
    config.faults.truncate_rate = 1.0;
    running_sim sim(config);
    auto side = connect(sim);
    const auto id = ids_of(side->control("/_sim/cases", R"({"count":1})")).at(0);
    side->control("/_sim/cases/" + id + "/status", R"({"status":"COMPLETE"})");
    const auto files = run(side->io, side->api.get_supplementary_files(id));
    REQUIRE(files.value);
    sha256_sink sink;
    const auto got = run(side->io, side->api.download(files.value->checks.at(0).files.at(0).url, sink));
    const call_failure& failure = failure_of(got);
    CHECK(failure.kind == failure_class::retryable);
    CHECK(failure.message.find("ended early") != std::string::npos);
  }
  SUBCASE("expired, then a fresh listing works") {
    auto config = sim_settings();
    config.url_ttl = 1s;
    running_sim sim(config);
    auto side = connect(sim);
    const auto id = ids_of(side->control("/_sim/cases", R"({"count":1})")).at(0);
    side->control("/_sim/cases/" + id + "/status", R"({"status":"COMPLETE"})");
    const auto files = run(side->io, side->api.get_supplementary_files(id));
    REQUIRE(files.value);
    const std::string stale = files.value->checks.at(0).files.at(0).url;
    // The URL lives one second (at one-second resolution): poll until the store says expired.
    std::optional<call_failure> expired;
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (!expired && std::chrono::steady_clock::now() < until) {
      sha256_sink sink;
      auto got = run(side->io, side->api.download(stale, sink));
      if (!got.value) {
        expired = got.failure;
      } else {
        std::this_thread::sleep_for(100ms);
      }
    }
    REQUIRE(expired);
    CHECK(expired->kind == failure_class::expired_url);
    CHECK(expired->http_status == 403);
    CHECK(expired->message.find("X-Amz-Signature") == std::string::npos);  // no credential

    const auto fresh = run(side->io, side->api.get_supplementary_files(id));
    REQUIRE(fresh.value);
    sha256_sink sink;
    CHECK(run(side->io, side->api.download(fresh.value->checks.at(0).files.at(0).url, sink)).value);
  }
}
