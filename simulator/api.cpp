// certn-sim's Cases API: routing a path to its endpoint, the method check, Api-Key
// authentication, injected faults, the per-key rate limit and statistics; DRF's error envelopes
// and request bodies. The endpoints themselves are in api_cases.cpp, api_orders.cpp,
// api_reports.cpp and api_supplementary.cpp.
#include "api.hpp"

#include <algorithm>
#include <optional>

#include "api_detail.hpp"
#include "encoding/json.hpp"
#include "ops/logging.hpp"
#include "shapes.hpp"

namespace certn_sim {

using archiver::encoding::json_writer;

namespace api_detail {

http::response error_response(status code, std::string_view type,
                              const std::vector<field_error>& errors) {
  json_writer out;
  out.begin_object().key("type").value(type).key("errors").begin_array();
  for (const field_error& e : errors) {
    out.begin_object();
    out.key("code").value(e.code).key("detail").value(e.detail);
    out.key("attr").value_or_null(e.attr);
    out.end_object();
  }
  out.end_array().end_object();
  return json_response(code, out.str());
}

http::response client_error(status code, std::string code_name, std::string detail) {
  return error_response(code, "client_error", {{std::move(code_name), std::move(detail), {}}});
}

http::response validation_error(std::vector<field_error> errors) {
  return error_response(status::bad_request, "validation_error", errors);
}

http::response not_found() { return client_error(status::not_found, "not_found", "Not found."); }

// An answer whose status the shapes choose; an empty body is sent as no body at all.
http::response shaped_response(int code, std::string body) {
  if (body.empty()) {
    return http::response{static_cast<status>(code), 11};
  }
  return json_response(static_cast<status>(code), std::move(body));
}

// Request bodies: an absent or empty body is an empty object.
body_result parse_body(simdjson::dom::parser& parser, const std::string& body,
                       simdjson::padded_string& storage) {
  body_result result;
  std::string_view text = body;
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    text = "{}";
  }
  storage = simdjson::padded_string(text);
  simdjson::dom::element root;
  if (const auto ec = parser.parse(storage).get(root); ec) {
    result.error = client_error(status::bad_request, "parse_error",
                                std::string("JSON parse error - ") + simdjson::error_message(ec));
    // A parse error is a client_error in DRF's envelope, still a 400.
    return result;
  }
  if (root.get_object().get(result.object)) {
    result.error = validation_error(
        {{"invalid", "Invalid data. Expected a dictionary.", std::string("non_field_errors")}});
  }
  return result;
}

}  // namespace api_detail

namespace {

using namespace api_detail;
namespace bhttp = archiver::beast::http;
using archiver::awaitable;

// The endpoint a path names, for routing, method checks and statistics.
enum class endpoint {
  unknown,
  list,
  detail,
  cancel,
  generate_report,
  supplementary_files,
  supplementary_information,
  order,
  order_package,
  report_file
};

const char* endpoint_name(endpoint e) {
  switch (e) {
    case endpoint::list: return "cases.list";
    case endpoint::detail: return "cases.detail";
    case endpoint::cancel: return "cases.cancel";
    case endpoint::generate_report: return "cases.generate_report";
    case endpoint::supplementary_files: return "cases.supplementary_files";
    case endpoint::supplementary_information: return "cases.supplementary_information";
    case endpoint::order: return "cases.order";
    case endpoint::order_package: return "cases.order_package";
    case endpoint::report_file: return "cases.report_file";
    case endpoint::unknown: break;
  }
  return "unknown";
}

struct route {
  endpoint kind = endpoint::unknown;
  std::string id;  // case id or report-file id
};

route match(std::string_view path) {
  const auto parts = path_segments(path, api_prefix);
  if (parts.empty() || parts[0] != "cases" ||
      std::any_of(parts.begin(), parts.end(), [](std::string_view p) { return p.empty(); })) {
    return {};
  }
  if (parts.size() == 1) {
    return {endpoint::list, {}};
  }
  if (parts.size() == 2 && parts[1] == "order") {
    return {endpoint::order, {}};
  }
  if (parts.size() == 2 && parts[1] == "order-package") {
    return {endpoint::order_package, {}};
  }
  if (parts.size() == 3 && parts[1] == "report-files") {
    return {endpoint::report_file, std::string(parts[2])};
  }
  if (parts.size() == 2) {
    return {endpoint::detail, std::string(parts[1])};
  }
  if (parts.size() == 3) {
    const std::string id(parts[1]);
    if (parts[2] == "cancel") {
      return {endpoint::cancel, id};
    }
    if (parts[2] == "generate-report") {
      return {endpoint::generate_report, id};
    }
    if (parts[2] == "supplementary-files") {
      return {endpoint::supplementary_files, id};
    }
    if (parts[2] == "supplementary-information") {
      return {endpoint::supplementary_information, id};
    }
  }
  return {};
}

bhttp::verb allowed_method(endpoint e) {
  switch (e) {
    case endpoint::cancel:
    case endpoint::generate_report:
    case endpoint::order:
    case endpoint::order_package:
      return bhttp::verb::post;
    default:
      return bhttp::verb::get;
  }
}

// The API key of `req`, or nullopt when the header is missing or not "Api-Key <key>".
std::optional<std::string> api_key(const http::request& req) {
  const std::string_view header = req[bhttp::field::authorization];
  constexpr std::string_view scheme = "Api-Key ";
  if (header.size() <= scheme.size() || header.substr(0, scheme.size()) != scheme) {
    return std::nullopt;
  }
  return std::string(header.substr(scheme.size()));
}

// Seconds until the key may send again, or 0 when it may now (and the request is counted).
int rate_limit_wait(context& ctx, const std::string& key) {
  const int limit = ctx.config.faults.requests_per_minute_per_key;
  if (limit <= 0) {
    return 0;
  }
  using clock = std::chrono::steady_clock;
  const auto now = clock::now();
  auto& recent = ctx.recent_by_key[key];
  while (!recent.empty() && now - recent.front() >= std::chrono::minutes(1)) {
    recent.pop_front();
  }
  if (recent.size() < static_cast<std::size_t>(limit)) {
    recent.push_back(now);
    return 0;
  }
  const auto wait = recent.front() + std::chrono::minutes(1) - now;
  const auto seconds = std::chrono::ceil<std::chrono::seconds>(wait).count();
  return static_cast<int>(std::max<std::int64_t>(1, seconds));
}

http::response throttled(int retry_after_seconds) {
  auto res = client_error(status::too_many_requests, "throttled", "Request was throttled.");
  if (retry_after_seconds > 0) {
    res.set(bhttp::field::retry_after, std::to_string(retry_after_seconds));
  }
  return res;
}

awaitable<http::response> answer(std::shared_ptr<context> ctx, const http::request& req,
                                 const route& r) {
  const fault_settings& faults = ctx->config.faults;
  // Four draws per request, whatever happens, so that a seed fixes the fault of each request.
  const double slow_draw = ctx->draw();
  const double draw_429 = ctx->draw();
  const double retry_after_draw = ctx->draw();
  const double draw_500 = ctx->draw();
  if (slow_draw < faults.slow_rate) {
    ++ctx->stats.slowed;
    archiver::asio::steady_timer timer(ctx->io);
    timer.expires_after(faults.slow_delay);
    co_await timer.async_wait(archiver::asio::use_awaitable);
  }
  const bool targeted = faults.endpoint.empty() || faults.endpoint == endpoint_name(r.kind);
  if (targeted && draw_429 < faults.rate_429) {
    ++ctx->stats.injected_429;
    co_return throttled(retry_after_draw < faults.retry_after_rate
                            ? std::max(1, faults.retry_after_seconds)
                            : 0);
  }
  if (targeted && draw_500 < faults.rate_500) {
    ++ctx->stats.injected_500;
    co_return error_response(status::internal_server_error, "server_error",
                             {{"error", "A server error occurred.", std::nullopt}});
  }
  const auto key = api_key(req);
  const auto refused = static_cast<status>(ctx->config.refused_key_status);
  if (!key) {
    co_return client_error(refused, "not_authenticated",
                           "Authentication credentials were not provided.");
  }
  if (std::find(ctx->config.api_keys.begin(), ctx->config.api_keys.end(), *key) ==
      ctx->config.api_keys.end()) {
    co_return client_error(refused, "authentication_failed", "Invalid API key.");
  }
  if (const int wait = rate_limit_wait(*ctx, *key); wait > 0) {
    ++ctx->stats.rate_limited;
    co_return throttled(wait);
  }
  if (r.kind == endpoint::unknown) {
    co_return not_found();
  }
  if (is_forbidden(ctx->config.shapes, endpoint_name(r.kind))) {
    co_return client_error(status::forbidden, "permission_denied",
                           "You do not have permission to perform this action.");
  }
  if (req.method() != allowed_method(r.kind)) {
    auto res = client_error(status::method_not_allowed, "method_not_allowed",
                            "Method \"" + std::string(req.method_string()) + "\" not allowed.");
    res.set(bhttp::field::allow, allowed_method(r.kind) == bhttp::verb::get ? "GET" : "POST");
    co_return res;
  }
  switch (r.kind) {
    case endpoint::list:
      co_return list_cases(*ctx, req.target());
    case endpoint::order:
      co_return order(*ctx, req.body());
    case endpoint::order_package:
      co_return order_package(*ctx, req.body());
    case endpoint::report_file: {
      const report_file* report = ctx->cases.find_report(r.id);
      co_return report ? report_file_answer(*ctx, *report) : not_found();
    }
    default:
      break;
  }
  case_record* c = ctx->cases.find_case(r.id);
  if (c == nullptr) {
    co_return not_found();
  }
  switch (r.kind) {
    case endpoint::detail:
      co_return case_detail(*ctx, *c);
    case endpoint::cancel:
      co_return cancel(*ctx, *c);
    case endpoint::generate_report:
      co_return generate_report(ctx, *c, req.body());
    case endpoint::supplementary_files:
      co_return supplementary_files(*ctx, *c);
    case endpoint::supplementary_information:
      co_return supplementary_information(*ctx, *c);
    default:
      co_return not_found();
  }
}

}  // namespace

const std::vector<std::string_view>& api_endpoint_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> out;
    for (const endpoint e : {endpoint::list, endpoint::detail, endpoint::cancel,
                             endpoint::generate_report, endpoint::supplementary_files,
                             endpoint::supplementary_information, endpoint::order,
                             endpoint::order_package, endpoint::report_file}) {
      out.push_back(endpoint_name(e));
    }
    return out;
  }();
  return names;
}

awaitable<http::response> handle_api(std::shared_ptr<context> ctx, const http::request& req) {
  const route r = match(http::target_path(req.target()));
  http::response res;
  std::exception_ptr failure;
  try {
    res = co_await answer(ctx, req, r);
  } catch (const std::exception&) {
    failure = std::current_exception();
  }
  if (failure) {
    archiver::ops::log_exception(std::string("certn-sim ") + endpoint_name(r.kind), failure);
    res = error_response(status::internal_server_error, "server_error",
                         {{"error", "A server error occurred.", std::nullopt}});
  }
  if (res.result() == status::too_many_requests) {
    ++ctx->stats.responses_429;
  }
  ++ctx->stats.by_endpoint[endpoint_name(r.kind)][res.result_int()];
  co_return res;
}

}  // namespace certn_sim
