#include "api.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

#include <simdjson.h>

#include "encoding/encoding.hpp"
#include "encoding/json.hpp"
#include "ops/logging.hpp"
#include "shapes.hpp"

namespace certn_sim {

using archiver::encoding::json_quote;
using archiver::encoding::json_writer;

namespace {

namespace http = archiver::http;
namespace bhttp = archiver::beast::http;
using archiver::awaitable;
using http::status;

constexpr std::string_view api_prefix = "/api/public/";
constexpr std::int64_t default_page_size = 10;
constexpr std::int64_t max_page_size = 100;

struct field_error {
  std::string code;
  std::string detail;
  std::optional<std::string> attr;
};

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

// Query parameters in order, decoded; nullopt when an escape is malformed.
struct query_parameter {
  std::string name;
  std::string value;
};

std::optional<std::vector<query_parameter>> parse_query(std::string_view target) {
  std::vector<query_parameter> out;
  const std::size_t question = target.find('?');
  if (question == std::string_view::npos) {
    return out;
  }
  std::string_view rest = target.substr(question + 1);
  while (!rest.empty()) {
    const std::size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    if (pair.empty()) {
      continue;
    }
    const std::size_t eq = pair.find('=');
    auto name = archiver::encoding::percent_decode(pair.substr(0, eq));
    auto value = archiver::encoding::percent_decode(
        eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
    if (!name || !value) {
      return std::nullopt;
    }
    out.push_back({std::move(*name), std::move(*value)});
  }
  return out;
}

std::string percent_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::optional<std::int64_t> parse_positive(std::string_view text) {
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || end != text.data() + text.size() || n < 1) {
    return std::nullopt;
  }
  return n;
}

// The list URL for `page`, keeping every other parameter (Django drops "page" for page 1).
std::string page_url(const context& ctx, const std::vector<query_parameter>& query,
                     std::int64_t page) {
  std::string url = ctx.base_url + std::string(api_prefix) + "cases/";
  std::string params;
  for (const query_parameter& p : query) {
    if (p.name == "page") {
      continue;
    }
    params += (params.empty() ? "" : "&") + percent_encode(p.name) + "=" + percent_encode(p.value);
  }
  if (page > 1) {
    params += (params.empty() ? "" : "&") + std::string("page=") + std::to_string(page);
  }
  return params.empty() ? url : url + "?" + params;
}

http::response list_cases(context& ctx, std::string_view target) {
  const auto query = parse_query(target);
  if (!query) {
    return validation_error({{"invalid", "Malformed query string.", std::nullopt}});
  }
  case_filter filter;
  std::string page_text = "1";
  std::int64_t page_size = default_page_size;
  for (const query_parameter& p : *query) {
    if (p.name == "check_type") {
      filter.check_types.push_back(p.value);
    } else if (p.name == "email_address") {
      filter.email_addresses.push_back(p.value);
    } else if (p.name == "group") {
      filter.groups.push_back(p.value);
    } else if (p.name == "ordered_by") {
      filter.ordered_by.push_back(p.value);
    } else if (p.name == "overall_status") {
      filter.statuses.push_back(p.value);
    } else if (p.name == "tag") {
      filter.tags.push_back(p.value);
    } else if (p.name == "order_timeframe_after" || p.name == "order_timeframe_before") {
      const bool before = p.name == "order_timeframe_before";
      const auto at = parse_iso8601(p.value, before);
      if (!at) {
        return validation_error({{"invalid", "Enter a valid date/time.", p.name}});
      }
      (before ? filter.created_before : filter.created_after) = *at;
    } else if (p.name == "page") {
      page_text = p.value;
    } else if (p.name == "page_size") {
      const auto size = parse_positive(p.value);
      if (!size) {
        return validation_error(
            {{"invalid", "A valid positive integer is required.", std::string("page_size")}});
      }
      page_size = std::min(*size, max_page_size);
    }
  }
  const auto matches = ctx.cases.list(filter);
  const shape_settings& shapes = ctx.config.shapes;
  const auto count = static_cast<std::int64_t>(matches.size());
  const std::int64_t pages = std::max<std::int64_t>(1, (count + page_size - 1) / page_size);
  const auto page = page_text == "last" ? std::optional<std::int64_t>(pages)
                                        : parse_positive(page_text);
  // A bare array has no next link: its clients page until a short page, so pages past the end
  // are empty rather than missing.
  const bool bare = knob_value(shapes, "list.form") == "bare";
  if (!page || (*page > pages && !bare)) {
    return client_error(status::not_found, "not_found", "Invalid page.");
  }
  list_page out;
  out.count = count;
  out.page = *page;
  out.pages = pages;
  out.page_size = page_size;
  if (*page < pages) {
    out.next = page_url(ctx, *query, *page + 1);
  }
  if (*page > 1) {
    out.previous = page_url(ctx, *query, *page - 1);
  }
  const bool bad_first = knob_value(shapes, "list.bad_entry") == "first";
  const std::int64_t first = (*page - 1) * page_size;
  for (std::int64_t i = first; i < std::min(count, first + page_size); ++i) {
    case_options options;
    options.without_id = bad_first && i == first;
    out.entries.push_back(case_json(*matches[static_cast<std::size_t>(i)], shapes, options));
  }
  return json_response(status::ok, list_json(out, shapes));
}

// Request bodies: an absent or empty body is an empty object.
struct body_result {
  std::optional<http::response> error;
  simdjson::dom::object object;
};

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

bool valid_email(std::string_view email) {
  const std::size_t at = email.find('@');
  if (email.size() > 254 || at == 0 || at == std::string_view::npos ||
      email.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  const std::string_view domain = email.substr(at + 1);
  const std::size_t dot = domain.find('.');
  if (domain.empty() || dot == 0 || dot == std::string_view::npos || domain.back() == '.') {
    return false;
  }
  return std::none_of(email.begin(), email.end(), [](char ch) {
    return static_cast<unsigned char>(ch) <= ' ' || ch == '<' || ch == '>' || ch == ',';
  });
}

bool valid_check_type(std::string_view type) {
  return !type.empty() && type.size() <= 64 && std::all_of(type.begin(), type.end(), [](char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
  });
}

// The fields order and order-package share.
struct order_common {
  std::string email_address;
  bool return_invite_link = false;
};

void validate_common(const simdjson::dom::object& body, order_common& out,
                     std::vector<field_error>& errors) {
  simdjson::dom::element email;
  if (body["email_address"].get(email)) {
    errors.push_back({"required", "This field is required.", "email_address"});
  } else {
    std::string_view text;
    if (email.get_string().get(text) || !valid_email(text)) {
      errors.push_back({"invalid", "Enter a valid email address.", "email_address"});
    } else {
      out.email_address = text;
    }
  }
  for (const char* flag : {"send_invite_email", "return_invite_link"}) {
    simdjson::dom::element element;
    if (body[flag].get(element)) {
      continue;
    }
    bool value = false;
    if (element.get_bool().get(value)) {
      errors.push_back({"invalid", "Must be a valid boolean.", std::string(flag)});
    } else if (std::string_view(flag) == "return_invite_link") {
      out.return_invite_link = value;
    }
  }
  simdjson::dom::element claims;
  if (!body["input_claims"].get(claims) && !claims.is_object() && !claims.is_null()) {
    errors.push_back({"invalid", "Expected a dictionary of items.", std::string("input_claims")});
  }
}

http::response created_case(context& ctx, const new_case& spec, bool return_invite_link) {
  std::vector<event> events;
  case_record& c = ctx.cases.create_case(spec, now_utc(), events);
  ctx.send(events);
  case_options options;
  if (return_invite_link) {
    options.invite_link = ctx.base_url + "/applicant/invite/" + c.id + "/";
  }
  return json_response(status::created, case_json(c, ctx.config.shapes, options));
}

new_case order_defaults(const context& ctx, const order_common& common) {
  new_case spec;
  spec.email_address = common.email_address;
  spec.file_size = ctx.config.default_file_size;
  return spec;
}

http::response order(context& ctx, const std::string& body_text) {
  simdjson::dom::parser parser;
  simdjson::padded_string storage;
  auto body = parse_body(parser, body_text, storage);
  if (body.error) {
    return std::move(*body.error);
  }
  std::vector<field_error> errors;
  order_common common;
  validate_common(body.object, common, errors);
  std::vector<std::string> check_types;
  simdjson::dom::element checks;
  const std::string attr = "check_types_with_arguments";
  if (body.object[attr].get(checks)) {
    errors.push_back({"required", "This field is required.", attr});
  } else if (!checks.is_object()) {
    errors.push_back({"invalid", "Expected a dictionary of items.", attr});
  } else {
    for (const auto field : simdjson::dom::object(checks)) {
      if (!valid_check_type(field.key)) {
        errors.push_back(
            {"invalid", "\"" + std::string(field.key) + "\" is not a valid check type.", attr});
      } else if (!field.value.is_object() && !field.value.is_null()) {
        errors.push_back({"invalid", "Arguments of " + std::string(field.key) +
                                         " must be a dictionary.", attr});
      } else {
        check_types.emplace_back(field.key);
      }
    }
    if (check_types.empty() && errors.empty()) {
      errors.push_back({"empty", "This field may not be empty.", attr});
    }
  }
  if (!errors.empty()) {
    return validation_error(std::move(errors));
  }
  new_case spec = order_defaults(ctx, common);
  spec.check_types = std::move(check_types);
  return created_case(ctx, spec, common.return_invite_link);
}

http::response order_package(context& ctx, const std::string& body_text) {
  simdjson::dom::parser parser;
  simdjson::padded_string storage;
  auto body = parse_body(parser, body_text, storage);
  if (body.error) {
    return std::move(*body.error);
  }
  std::vector<field_error> errors;
  order_common common;
  validate_common(body.object, common, errors);
  const package* chosen = nullptr;
  simdjson::dom::element element;
  if (body.object["package"].get(element)) {
    errors.push_back({"required", "This field is required.", std::string("package")});
  } else {
    std::string_view id;
    if (element.get_string().get(id)) {
      errors.push_back({"incorrect_type", "Incorrect type. Expected pk value.",
                        std::string("package")});
    } else {
      for (const package& p : ctx.config.packages) {
        if (p.id == id) {
          chosen = &p;
        }
      }
      if (chosen == nullptr) {
        errors.push_back({"does_not_exist",
                          "Invalid pk \"" + std::string(id) + "\" - object does not exist.",
                          std::string("package")});
      } else if (!chosen->active) {
        errors.push_back({"inactive", "Package \"" + chosen->id + "\" is inactive.",
                          std::string("package")});
      }
    }
  }
  if (!errors.empty()) {
    return validation_error(std::move(errors));
  }
  new_case spec = order_defaults(ctx, common);
  spec.check_types = chosen->check_types;
  return created_case(ctx, spec, common.return_invite_link);
}

http::response cancel(context& ctx, case_record& c) {
  if (!state::can_cancel(c)) {
    return validation_error({{"invalid",
                              "Case cannot be cancelled: a check is already being processed or "
                              "the case is closed.",
                              std::nullopt}});
  }
  std::vector<event> events;
  ctx.cases.set_status(c, "CANCELLED", now_utc(), events);
  ctx.send(events);
  const int code = std::stoi(std::string(knob_value(ctx.config.shapes, "cancel.status")));
  return shaped_response(code, code == 204 ? "" : case_json(c, ctx.config.shapes));
}

awaitable<void> finish_report(std::weak_ptr<context> weak, std::string report_id,
                              std::chrono::milliseconds delay) {
  archiver::asio::steady_timer timer(co_await archiver::asio::this_coro::executor);
  timer.expires_after(delay);
  archiver::error_code ec;
  co_await timer.async_wait(archiver::with_error(ec));
  const auto ctx = weak.lock();
  if (!ctx) {
    co_return;  // the simulator is gone
  }
  report_file* report = ctx->cases.find_report(report_id);
  if (report == nullptr) {
    co_return;
  }
  report->status = "COMPLETE";
  if (ctx->config.report_ready_object_type == "CASE_REPORT_FILE") {
    ctx->send({{"CASE_REPORT_READY", report->id, "CASE_REPORT_FILE", ""}});
  } else {
    ctx->send({{"CASE_REPORT_READY", report->case_id, "CASE", ""}});
  }
}

http::response generate_report(const std::shared_ptr<context>& ctx, const case_record& c,
                               const std::string& body_text) {
  simdjson::dom::parser parser;
  simdjson::padded_string storage;
  auto body = parse_body(parser, body_text, storage);
  if (body.error) {
    return std::move(*body.error);
  }
  simdjson::dom::element language;
  if (!body.object["language"].get(language) && !language.is_string()) {
    return validation_error({{"invalid", "Not a valid string.", std::string("language")}});
  }
  const report_file& report = ctx->cases.create_report(c, now_utc());
  archiver::asio::co_spawn(
      ctx->io, finish_report(ctx, report.id, ctx->config.report_delay),
      [](std::exception_ptr failure) { archiver::ops::log_exception("report timer", failure); });
  shaped_answer answer = generate_report_answer(report, ctx->config.shapes);
  return shaped_response(answer.status, std::move(answer.body));
}

http::response report_file_answer(context& ctx, const report_file& report) {
  std::optional<std::string> url;
  if (report.status == "COMPLETE") {
    url = ctx.presign("reports/" + report.id);
  }
  return json_response(status::ok, report_file_json(report, url, ctx.config.shapes));
}

http::response supplementary_files(context& ctx, const case_record& c) {
  const auto presign = [&ctx](const file_record& file) { return ctx.presign("files/" + file.id); };
  return json_response(status::ok, supplementary_files_json(c, ctx.config.shapes, presign));
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
  if (draw_429 < faults.rate_429) {
    ++ctx->stats.injected_429;
    co_return throttled(retry_after_draw < faults.retry_after_rate
                            ? std::max(1, faults.retry_after_seconds)
                            : 0);
  }
  if (draw_500 < faults.rate_500) {
    ++ctx->stats.injected_500;
    co_return error_response(status::internal_server_error, "server_error",
                             {{"error", "A server error occurred.", std::nullopt}});
  }
  const auto key = api_key(req);
  if (!key) {
    co_return client_error(status::unauthorized, "not_authenticated",
                           "Authentication credentials were not provided.");
  }
  if (std::find(ctx->config.api_keys.begin(), ctx->config.api_keys.end(), *key) ==
      ctx->config.api_keys.end()) {
    co_return client_error(status::unauthorized, "authentication_failed", "Invalid API key.");
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
      co_return json_response(status::ok, case_json(*c, ctx->config.shapes));
    case endpoint::cancel:
      co_return cancel(*ctx, *c);
    case endpoint::generate_report:
      co_return generate_report(ctx, *c, req.body());
    case endpoint::supplementary_files:
      co_return supplementary_files(*ctx, *c);
    case endpoint::supplementary_information:
      co_return json_response(status::ok,
                              supplementary_information_body(*c, ctx->config.shapes));
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
