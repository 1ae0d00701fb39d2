#include "certn/api.hpp"

#include <simdjson.h>

#include <algorithm>
#include <utility>

#include "encoding/encoding.hpp"
#include "encoding/json.hpp"

namespace archiver::certn {

namespace {

// A page of 100 cases with their checks fits easily; anything bigger is not an answer we expect.
constexpr std::uint64_t max_answer_bytes = 16 * 1024 * 1024;
// Enough of an error body to recognise an S3 "Request has expired".
constexpr std::size_t error_excerpt_bytes = 4096;

std::string header_value(const http::response_head& head, std::string_view name) {
  for (const auto& [key, value] : head.headers) {
    if (beast::iequals(key, name)) {
      return value;
    }
  }
  return {};
}

template <class T>
call_result<T> failed(call_failure failure) {
  call_result<T> result;
  result.http_status = failure.http_status;
  result.failure = std::move(failure);
  return result;
}

// Forwards a download to the caller's sink and keeps its first bytes, to read an error body.
class excerpt_sink final : public http::body_sink {
 public:
  explicit excerpt_sink(http::body_sink& target) : target_(target) {}
  void write(std::string_view chunk) override {
    if (excerpt_.size() < error_excerpt_bytes) {
      excerpt_.append(chunk.substr(0, error_excerpt_bytes - excerpt_.size()));
    }
    target_.write(chunk);
  }
  std::uint64_t max_bytes() const override { return target_.max_bytes(); }
  const std::string& excerpt() const { return excerpt_; }

 private:
  http::body_sink& target_;
  std::string excerpt_;
};

}  // namespace

std::string list_query(const case_filter& filter, int page, int page_size) {
  std::string query;
  const auto add = [&query](std::string_view name, std::string_view value) {
    query += query.empty() ? '?' : '&';
    query += name;
    query += '=';
    query += encoding::percent_encode(value);
  };
  for (const auto& value : filter.check_type) {
    add("check_type", value);
  }
  if (filter.email_address) {
    add("email_address", *filter.email_address);
  }
  if (filter.group) {
    add("group", *filter.group);
  }
  if (filter.order_timeframe_after) {
    add("order_timeframe_after", *filter.order_timeframe_after);
  }
  if (filter.order_timeframe_before) {
    add("order_timeframe_before", *filter.order_timeframe_before);
  }
  if (filter.ordered_by) {
    add("ordered_by", *filter.ordered_by);
  }
  for (const auto& value : filter.overall_status) {
    add("overall_status", value);
  }
  for (const auto& value : filter.tag) {
    add("tag", value);
  }
  add("page", std::to_string(page));
  add("page_size", std::to_string(page_size));
  return query;
}

api_metrics::api_metrics(ops::registry& registry)
    : calls(registry.counter("certn_archiver_certn_api_calls_total",
                             "Certn API calls by endpoint, HTTP status (0: no answer) and the "
                             "priority class of the work that made them.",
                             {"endpoint", "status", "class"})),
      limiter_wait(registry.histogram(
          "certn_archiver_certn_rate_limiter_wait_seconds",
          "Time a Certn API call waited for the client-side limiter, by priority class.",
          {0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300}, {"class"})) {}

api_client::api_client(http::client& api, http::client& downloads, rate_limiter& limiter,
                       api_settings settings, api_metrics* metrics)
    : api_(api),
      downloads_(downloads),
      limiter_(limiter),
      settings_(std::move(settings)),
      metrics_(metrics) {
  while (!settings_.base_url.empty() && settings_.base_url.back() == '/') {
    settings_.base_url.pop_back();
  }
}

// Every call: wait for the limiter, send with the key, report a failure (its class from the
// retry table), parse a success.
template <class T, class Parse>
awaitable<call_result<T>> api_client::call(std::string endpoint, std::string method,
                                           std::string path, std::string body, Parse parse,
                                           std::string requested_id) {
  const rate_limiter::turn turn = co_await limiter_.acquire(priority_);
  const std::string priority_name(ops::name_of(priority_));
  if (metrics_ != nullptr) {
    metrics_->limiter_wait.observe({priority_name},
                                   std::chrono::duration<double>(turn.waited).count());
  }
  if (!turn.granted) {
    // Not sent: the day's budget, a 429's throttle or Certn's Retry-After holds this class
    // back. A job waits without using up an attempt, as after a 429.
    const auto hold = std::chrono::ceil<std::chrono::seconds>(turn.held_back);
    co_return failed<T>({failure_class::rate_limited, 0, std::nullopt, hold,
                         method + " " + path + ": not sent: " + priority_name +
                             " work is held back " + std::to_string(hold.count()) +
                             " s by the day's Certn budget (certn.requests_per_day), a 429 or "
                             "its Retry-After"});
  }
  http::request_options options;
  options.method = method;
  options.total_timeout = settings_.timeout;
  options.headers = {{"Authorization", "Api-Key " + settings_.api_key},
                     {"Accept", "application/json"}};
  if (!body.empty()) {
    options.headers.emplace_back("Content-Type", "application/json");
  }
  options.body = std::move(body);
  const std::string what = method + " " + path;
  http::string_sink sink(max_answer_bytes);
  const http::fetch_result answer =
      co_await api_.fetch(settings_.base_url + "/api/public" + path, options, sink);
  if (metrics_ != nullptr) {
    metrics_->calls.inc(
        {endpoint, std::to_string(answer.error == http::failure::none ? answer.head.status : 0),
         priority_name});
    metrics_->calls_last_hour.add(1, std::chrono::steady_clock::now());
  }
  if (answer.error != http::failure::none) {
    co_return failed<T>({retry::of_transport(answer.error), 0, std::nullopt, std::nullopt,
                         what + ": " + answer.message});
  }
  const int status = answer.head.status;
  if (status < 200 || status > 299) {
    api_error error =
        parse_error_envelope(status, sink.data(), header_value(answer.head, "retry-after"));
    const failure_class kind = retry::of_certn_error(status, error.type, error.errors.front().code);
    if (kind == failure_class::rate_limited) {
      if (error.retry_after) {
        limiter_.hold_for(*error.retry_after);
      } else {
        limiter_.throttle(priority_);
      }
    }
    std::string message = what + ": " + error.summary();
    auto retry_after = error.retry_after;
    co_return failed<T>({kind, status, std::move(error), retry_after, std::move(message)});
  }
  // The body is kept whether or not it reads: the caller archives it as received (raw first).
  call_result<T> result;
  result.http_status = status;
  limiter_.relieve(priority_);
  result.body = sink.data();
  auto parsed = parse(status, std::string_view(result.body), std::string_view(requested_id));
  if (!parsed.value) {
    result.failure = call_failure{failure_class::permanent, status, std::nullopt, std::nullopt,
                                  what + ": unexpected answer: " + parsed.error};
    result.failure->unreadable_answer = true;
    co_return result;
  }
  result.value = std::move(*parsed.value);
  co_return result;
}

namespace {

template <class T>
parsed<T> invalid_id(std::string_view id) {
  parsed<T> out;
  out.error = "'" + std::string(id.substr(0, 140)) +
              "' is not a valid Certn id (1-128 characters of [A-Za-z0-9._:-])";
  return out;
}

template <class T>
call_result<T> refused_id(std::string_view id) {
  call_failure failure;
  failure.kind = failure_class::permanent;
  failure.message = invalid_id<T>(id).error;
  return failed<T>(std::move(failure));
}

}  // namespace

awaitable<call_result<case_page>> api_client::list_cases(const case_filter& filter, int page,
                                                         int page_size) {
  co_return co_await call<case_page>(
      "list_cases", "GET", "/cases/" + list_query(filter, page, page_size), "",
      [](int, std::string_view body, std::string_view) { return parse_case_page(body); });
}

awaitable<call_result<case_record>> api_client::get_case(std::string id) {
  if (!is_valid_id(id)) {
    co_return refused_id<case_record>(id);
  }
  co_return co_await call<case_record>(
      "get_case", "GET", "/cases/" + id + "/", "",
      [](int, std::string_view body, std::string_view id) { return parse_case(body, id); },
      id);
}

awaitable<call_result<std::optional<case_record>>> api_client::cancel_case(std::string id) {
  if (!is_valid_id(id)) {
    co_return refused_id<std::optional<case_record>>(id);
  }
  co_return co_await call<std::optional<case_record>>(
      "cancel_case", "POST", "/cases/" + id + "/cancel/", "",
      [](int, std::string_view body, std::string_view id) {
        // 200 with the case, 202 or 204 (with or without a body): any 2xx means cancelled.
        parsed<std::optional<case_record>> out;
        out.value.emplace(parse_case(body, id).value);
        return out;
      },
      id);
}

awaitable<call_result<std::string>> api_client::generate_report(std::string id,
                                                                std::string language) {
  if (!is_valid_id(id)) {
    co_return refused_id<std::string>(id);
  }
  std::string body =
      language.empty() ? "{}" : "{\"language\":" + encoding::json_quote(language) + "}";
  co_return co_await call<std::string>(
      "generate_report", "POST", "/cases/" + id + "/generate-report/", std::move(body),
      [](int, std::string_view answer, std::string_view) { return parse_generate_report(answer); });
}

awaitable<call_result<supplementary_files>> api_client::get_supplementary_files(std::string id) {
  if (!is_valid_id(id)) {
    co_return refused_id<supplementary_files>(id);
  }
  co_return co_await call<supplementary_files>(
      "supplementary_files", "GET", "/cases/" + id + "/supplementary-files/", "",
      [](int, std::string_view body, std::string_view id) {
        return parse_supplementary_files(body, id);
      },
      id);
}

awaitable<call_result<supplementary_information>> api_client::get_supplementary_information(
    std::string id) {
  if (!is_valid_id(id)) {
    co_return refused_id<supplementary_information>(id);
  }
  co_return co_await call<supplementary_information>(
      "supplementary_information", "GET", "/cases/" + id + "/supplementary-information/", "",
      [](int, std::string_view body, std::string_view id) {
        return parse_supplementary_information(body, id);
      },
      id);
}

awaitable<call_result<case_record>> api_client::order(std::string request_json) {
  // Refuse here what Certn would refuse anyway, with a clearer message.
  simdjson::dom::parser parser;
  simdjson::dom::object object;
  if (parser.parse(simdjson::padded_string(request_json)).get_object().get(object) !=
      simdjson::SUCCESS) {
    call_failure failure;
    failure.message = "POST /cases/order/: the request body is not a JSON object";
    co_return failed<case_record>(std::move(failure));
  }
  co_return co_await call<case_record>("order", "POST", "/cases/order/", std::move(request_json),
                                       [](int, std::string_view body, std::string_view) { return parse_case(body); });
}

awaitable<call_result<case_record>> api_client::order_package(package_order request) {
  std::string body = "{\"package\":" + encoding::json_quote(request.package) +
                     ",\"email_address\":" + encoding::json_quote(request.email_address) +
                     ",\"send_invite_email\":" + (request.send_invite_email ? "true" : "false") +
                     ",\"return_invite_link\":" + (request.return_invite_link ? "true" : "false") +
                     "}";
  co_return co_await call<case_record>(
      "order_package", "POST", "/cases/order-package/", std::move(body),
      [](int, std::string_view answer, std::string_view) { return parse_case(answer); });
}

awaitable<call_result<report_file>> api_client::get_report_file(std::string id) {
  if (!is_valid_id(id)) {
    co_return refused_id<report_file>(id);
  }
  co_return co_await call<report_file>(
      "report_file", "GET", "/cases/report-files/" + id + "/", "",
      [](int, std::string_view body, std::string_view id) { return parse_report_file(body, id); },
      id);
}

awaitable<call_result<std::uint64_t>> api_client::download(std::string url, http::body_sink& sink) {
  // Presigned URLs carry their own authorization: no Api-Key, and no limiter (not the API).
  http::request_options options;
  options.total_timeout =
      std::chrono::hours(6);  // a large file on a slow link; reads have their own
  excerpt_sink recorder(sink);
  const http::fetch_result answer = co_await downloads_.fetch(url, options, recorder);
  if (metrics_ != nullptr) {
    metrics_->calls.inc(
        {"download", std::to_string(answer.error == http::failure::none ? answer.head.status : 0),
         std::string(ops::name_of(priority_))});
  }
  // The query string of a presigned URL is a credential: name the host and path only.
  const std::string where = "download " + url.substr(0, url.find('?'));
  if (answer.error != http::failure::none) {
    co_return failed<std::uint64_t>({retry::of_transport(answer.error), 0, std::nullopt,
                                     std::nullopt, where + ": " + answer.message});
  }
  const int status = answer.head.status;
  if (status < 200 || status > 299) {
    const failure_class kind =
        retry::of_download(status, says_request_expired(recorder.excerpt()));
    std::string message = where + ": HTTP " + std::to_string(status) +
                          (kind == failure_class::expired_url ? " (the URL has expired)" : "");
    co_return failed<std::uint64_t>({kind, status, std::nullopt,
                                     parse_retry_after(header_value(answer.head, "retry-after"),
                                                       std::chrono::system_clock::now()),
                                     std::move(message)});
  }
  call_result<std::uint64_t> result;
  result.http_status = status;
  result.value = answer.body_bytes;
  co_return result;
}

case_pages::case_pages(api_client& client, case_filter filter, int page_size)
    : client_(client), filter_(std::move(filter)), page_size_(page_size) {}

awaitable<call_result<case_page>> case_pages::next() {
  auto result = co_await client_.list_cases(filter_, page_, page_size_);
  // Pages are addressed by number, not by following `next`: a URL from the answer could point
  // anywhere, and our own numbering cannot.
  if (!result.value || !has_more_pages(*result.value, page_size_)) {
    done_ = true;
  }
  ++page_;
  co_return result;
}

}  // namespace archiver::certn
