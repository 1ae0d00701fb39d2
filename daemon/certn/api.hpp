// The Certn Cases API client: the nine endpoints of certn-api.md, typed results, and one
// classification of every failure. Calls go through a rate limiter shared by the whole process.
// No retries here: the caller (the job queue, or an operator) decides, from `failure.kind` and
// `failure.retry_after`. Runs on the io_context of the http::client it is given.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "certn/errors.hpp"
#include "certn/model.hpp"
#include "certn/rate_limiter.hpp"
#include "http/client.hpp"
#include "ops/metrics.hpp"
#include "ops/recent_count.hpp"

namespace archiver::certn {

// Why a call failed. `message` is one line naming the call and the cause, never a secret.
struct call_failure {
  failure_class kind = failure_class::permanent;
  int http_status = 0;              // 0: no (usable) answer
  std::optional<api_error> error;   // Certn's error envelope, when it answered an error status
  std::optional<std::chrono::seconds> retry_after;
  std::string message;
  // A 2xx whose body the reader could not use; call_result::body holds it, to be archived.
  bool unreadable_answer = false;
};

template <class T>
struct call_result {
  std::optional<T> value;               // set on success
  std::optional<call_failure> failure;  // set otherwise
  int http_status = 0;                  // the answer's status; 0 when there was none
  // Any 2xx answer's bytes, exactly as received: also when the reader could not use them
  // (failure->unreadable_answer), so that they can be archived before anything else.
  std::string body;
};

// GET /cases/ filters; vectors repeat the parameter (any value matches).
struct case_filter {
  std::vector<std::string> overall_status;
  std::vector<std::string> check_type;
  std::vector<std::string> tag;
  std::optional<std::string> email_address;
  std::optional<std::string> group;
  std::optional<std::string> ordered_by;
  std::optional<std::string> order_timeframe_after;   // ISO 8601 date or date-time
  std::optional<std::string> order_timeframe_before;
};

// "?overall_status=A&overall_status=B&...&page=P&page_size=N", percent-encoded. Pure.
std::string list_query(const case_filter& filter, int page, int page_size);

struct package_order {
  std::string package;
  std::string email_address;
  bool send_invite_email = false;
  bool return_invite_link = false;
};

struct api_settings {
  std::string base_url;  // "https://api.sandbox.certn.co"; paths go under /api/public/
  std::string api_key;   // secret: sent only as "Authorization: Api-Key <key>"
  std::chrono::milliseconds timeout{60'000};  // whole call
};

// certn_api_calls_total{endpoint,status,class} and certn_rate_limiter_wait_seconds{class}.
// calls_last_hour: the API calls (not downloads) of the last hour, on the real clock, for the
// calls per archived case gauge (service/pipeline).
struct api_metrics {
  explicit api_metrics(ops::registry& registry);
  ops::counter_family& calls;
  ops::histogram_family& limiter_wait;
  ops::recent_count calls_last_hour;
};

class api_client {
 public:
  // `api` must allow the base URL's host; `downloads` fetches presigned URLs (no Authorization)
  // under the download policy. Neither, nor `limiter` or `metrics`, is owned.
  api_client(http::client& api, http::client& downloads, rate_limiter& limiter,
             api_settings settings, api_metrics* metrics = nullptr);

  // The same client, whose calls wait for the limiter's turns as `priority` work (live by
  // default: an operator's command goes first).
  // Replaces the key for calls made from now on (SIGHUP); copies made before keep theirs, so a
  // call in flight ends with the key it started with. On the io_context's thread only.
  void set_api_key(std::string key) { settings_.api_key = std::move(key); }

  api_client for_priority(ops::priority priority) const {
    api_client copy = *this;
    copy.priority_ = priority;
    return copy;
  }

  awaitable<call_result<case_page>> list_cases(const case_filter& filter, int page, int page_size);
  awaitable<call_result<case_record>> get_case(std::string id);
  // 200 with the case, or 202/204 or a body that is not a case (value holds nullopt).
  awaitable<call_result<std::optional<case_record>>> cancel_case(std::string id);
  // The new report file's id. `language` empty: Certn's default.
  awaitable<call_result<std::string>> generate_report(std::string id, std::string language);
  awaitable<call_result<supplementary_files>> get_supplementary_files(std::string id);
  awaitable<call_result<supplementary_information>> get_supplementary_information(std::string id);
  // `request_json` is the body as given (a JSON object); the answer is the new case.
  awaitable<call_result<case_record>> order(std::string request_json);
  awaitable<call_result<case_record>> order_package(package_order request);
  awaitable<call_result<report_file>> get_report_file(std::string id);

  // Streams a presigned URL's body into `sink`; value = bytes received. A failed download may
  // have written an error body to the sink: discard what it holds. An expired URL fails as
  // failure_class::expired_url.
  awaitable<call_result<std::uint64_t>> download(std::string url, http::body_sink& sink);

 private:
  // `parse(status, body, requested_id)` must capture nothing: GCC 12 mishandles a capturing
  // lambda temporary passed into a coroutine (the capture was freed twice); the id it needs
  // travels as `requested_id`.
  template <class T, class Parse>
  awaitable<call_result<T>> call(std::string endpoint, std::string method, std::string path,
                                 std::string body, Parse parse, std::string requested_id = {});

  http::client& api_;
  http::client& downloads_;
  rate_limiter& limiter_;
  api_settings settings_;
  api_metrics* metrics_;
  ops::priority priority_ = ops::priority::live;
};

// Every page of a listing, in order: next() until done(). Stops at the first failure; a page's
// unreadable entries are in its `skipped`, and do not stop it.
class case_pages {
 public:
  case_pages(api_client& client, case_filter filter, int page_size);
  bool done() const { return done_; }
  awaitable<call_result<case_page>> next();

 private:
  api_client& client_;
  case_filter filter_;
  int page_size_;
  int page_ = 1;
  bool done_ = false;
};

}  // namespace archiver::certn
