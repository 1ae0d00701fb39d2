#include "control.hpp"

#include <simdjson.h>

#include <algorithm>
#include <map>

#include "api.hpp"
#include "encoding/json.hpp"
#include "shapes.hpp"

namespace certn_sim {

using archiver::encoding::json_quote;
using archiver::encoding::json_writer;

namespace {

namespace http = archiver::http;
namespace bhttp = archiver::beast::http;
using archiver::awaitable;
using http::status;

constexpr std::string_view control_prefix = "/_sim/";
const std::vector<std::string> default_check_types = {"IDENTITY_VERIFICATION",
                                                      "CRIMINAL_RECORD_CHECK"};

http::response control_error(status code, std::string_view message) {
  json_writer out;
  out.begin_object().key("error").value(message).end_object();
  return json_response(code, out.str());
}

// Thrown while reading a request body; becomes a 400 naming the field.
struct bad_request {
  std::string message;
};

class body_reader {
 public:
  explicit body_reader(const std::string& body) {
    std::string_view text = body;
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
      text = "{}";
    }
    storage_ = simdjson::padded_string(text);
    simdjson::dom::element root;
    if (const auto ec = parser_.parse(storage_).get(root); ec) {
      throw bad_request{std::string("body is not JSON: ") + simdjson::error_message(ec)};
    }
    if (root.get_object().get(object_)) {
      throw bad_request{"body must be a JSON object"};
    }
  }

  std::optional<std::int64_t> integer(const char* name, std::int64_t low, std::int64_t high) {
    simdjson::dom::element element;
    if (object_[name].get(element)) {
      return std::nullopt;
    }
    std::int64_t value = 0;
    if (element.get_int64().get(value) || value < low || value > high) {
      throw bad_request{std::string(name) + ": expected an integer from " + std::to_string(low) +
                        " to " + std::to_string(high)};
    }
    return value;
  }

  std::optional<double> number(const char* name, double low, double high) {
    simdjson::dom::element element;
    if (object_[name].get(element)) {
      return std::nullopt;
    }
    double value = 0;
    if (element.get_double().get(value) || value < low || value > high) {
      throw bad_request{std::string(name) + ": expected a number from " + std::to_string(low) +
                        " to " + std::to_string(high)};
    }
    return value;
  }

  std::optional<std::string> string(const char* name) {
    simdjson::dom::element element;
    if (object_[name].get(element)) {
      return std::nullopt;
    }
    std::string_view value;
    if (element.get_string().get(value) || value.empty()) {
      throw bad_request{std::string(name) + ": expected a non-empty string"};
    }
    return std::string(value);
  }

  bool is_null(const char* name) {
    simdjson::dom::element element;
    return !object_[name].get(element) && element.is_null();
  }

  // A knob -> value object in which a null value means "back to the family's value"; nullopt
  // when the field is absent or null.
  std::optional<std::map<std::string, std::optional<std::string>>> overrides(const char* name) {
    simdjson::dom::element element;
    if (object_[name].get(element) || element.is_null()) {
      return std::nullopt;
    }
    std::map<std::string, std::optional<std::string>> out;
    simdjson::dom::object object;
    if (element.get_object().get(object)) {
      throw bad_request{std::string(name) + ": expected an object of knob names and values"};
    }
    for (const auto field : object) {
      std::string_view value;
      if (field.value.is_null()) {
        out[std::string(field.key)] = std::nullopt;
      } else if (field.value.get_string().get(value)) {
        throw bad_request{std::string(name) + ": " + std::string(field.key) +
                          ": expected a string or null"};
      } else {
        out[std::string(field.key)] = std::string(value);
      }
    }
    return out;
  }

  // Refuses fields other than `known`, so that a misspelt one is not silently ignored.
  void only(std::initializer_list<std::string_view> known) {
    for (const auto field : object_) {
      if (std::find(known.begin(), known.end(), field.key) == known.end()) {
        throw bad_request{"unknown field " + json_quote(field.key)};
      }
    }
  }

  std::optional<std::vector<std::string>> strings(const char* name) {
    simdjson::dom::element element;
    if (object_[name].get(element)) {
      return std::nullopt;
    }
    simdjson::dom::array array;
    if (element.get_array().get(array)) {
      throw bad_request{std::string(name) + ": expected an array of strings"};
    }
    std::vector<std::string> out;
    for (const simdjson::dom::element item : array) {
      std::string_view value;
      if (item.get_string().get(value) || value.empty()) {
        throw bad_request{std::string(name) + ": expected an array of non-empty strings"};
      }
      out.emplace_back(value);
    }
    return out;
  }

 private:
  simdjson::dom::parser parser_;
  simdjson::padded_string storage_;
  simdjson::dom::object object_;
};

std::string status_name(body_reader& body) {
  const auto status_text = body.string("status");
  if (!status_text) {
    throw bad_request{"status: required"};
  }
  if (!is_valid_status_name(*status_text)) {
    throw bad_request{"status: expected a status name such as COMPLETE"};
  }
  return *status_text;
}

http::response create_cases(context& ctx, const std::string& body_text) {
  body_reader body(body_text);
  const auto count = body.integer("count", 1, 100000).value_or(1);
  new_case spec;
  spec.check_types = body.strings("check_types").value_or(default_check_types);
  spec.files_per_check =
      static_cast<int>(body.integer("files_per_check", 0, 1000).value_or(1));
  spec.file_size = static_cast<std::uint64_t>(
      body.integer("file_size", 0, std::int64_t{1} << 40)
          .value_or(static_cast<std::int64_t>(ctx.config.default_file_size)));
  const auto email = body.string("email_address");
  if (body.string("status")) {
    spec.status = status_name(body);
  }
  spec.group = body.string("group").value_or(spec.group);
  spec.ordered_by = body.string("ordered_by").value_or(spec.ordered_by);
  spec.tags = body.strings("tags").value_or(spec.tags);
  // Cases "ordered" days ago, for tests of what looks at a case's age (reconcile's scopes).
  const auto ordered_days_ago = body.integer("ordered_days_ago", 0, 36500).value_or(0);

  json_writer out;
  out.begin_object().key("ids").begin_array();
  const auto ordered_at = now_utc() - std::chrono::hours(24 * ordered_days_ago);
  for (std::int64_t i = 0; i < count; ++i) {
    spec.email_address =
        email.value_or("applicant-" + std::to_string(ctx.cases.case_count() + 1) + "@example.com");
    std::vector<event> events;
    out.value(ctx.cases.create_case(spec, ordered_at, events).id);
    ctx.send(events);
  }
  out.end_array().end_object();
  return json_response(status::created, out.str());
}

http::response change_case(context& ctx, case_record& c, std::string_view action,
                           const std::string& body_text) {
  body_reader body(body_text);
  std::vector<event> events;
  const auto now = now_utc();
  if (action == "status") {
    ctx.cases.set_status(c, status_name(body), now, events);
  } else if (action == "dispute") {
    if (c.overall_status != "COMPLETE") {
      return control_error(status::conflict, "only a COMPLETE case can be disputed; this one is " +
                                                 c.overall_status);
    }
    ctx.cases.set_status(c, "IN_DISPUTE", now, events);
  } else {
    if (c.overall_status != "IN_DISPUTE") {
      return control_error(status::conflict, "only an IN_DISPUTE case can be closed; this one is " +
                                                 c.overall_status);
    }
    const auto size = body.integer("file_size", 0, std::int64_t{1} << 40)
                          .value_or(static_cast<std::int64_t>(ctx.config.default_file_size));
    ctx.cases.reclose(c, static_cast<std::uint64_t>(size), now, events);
  }
  ctx.send(events);
  return json_response(status::ok, case_json(c, shape_settings{}));
}

http::response set_faults(context& ctx, const std::string& body_text) {
  body_reader body(body_text);
  // Checked before anything changes, so that a refused request changes nothing.
  const std::optional<std::string> endpoint =
      body.is_null("endpoint") ? std::optional<std::string>("") : body.string("endpoint");
  if (endpoint && !endpoint->empty()) {
    const auto& names = api_endpoint_names();
    if (std::find(names.begin(), names.end(), *endpoint) == names.end()) {
      throw bad_request{"endpoint: unknown endpoint '" + *endpoint + "'"};
    }
  }
  fault_settings& f = ctx.config.faults;
  f.rate_429 = body.number("rate_429", 0, 1).value_or(f.rate_429);
  f.retry_after_rate = body.number("retry_after_rate", 0, 1).value_or(f.retry_after_rate);
  f.retry_after_seconds = static_cast<int>(
      body.integer("retry_after_seconds", 0, 3600).value_or(f.retry_after_seconds));
  f.rate_500 = body.number("rate_500", 0, 1).value_or(f.rate_500);
  f.slow_rate = body.number("slow_rate", 0, 1).value_or(f.slow_rate);
  f.slow_delay = std::chrono::milliseconds(
      body.integer("slow_ms", 0, 600000).value_or(f.slow_delay.count()));
  f.requests_per_minute_per_key = static_cast<int>(
      body.integer("rate_limit_per_minute", 0, 1000000).value_or(f.requests_per_minute_per_key));
  f.expire_next_urls = body.integer("expire_next_urls", 0, 1000000).value_or(f.expire_next_urls);
  if (endpoint) {
    f.endpoint = *endpoint;  // "" (null): every endpoint
  }
  json_writer out;
  out.begin_object();
  out.key("rate_429").raw(std::to_string(f.rate_429));
  out.key("retry_after_rate").raw(std::to_string(f.retry_after_rate));
  out.key("retry_after_seconds").number(f.retry_after_seconds);
  out.key("rate_500").raw(std::to_string(f.rate_500));
  out.key("slow_rate").raw(std::to_string(f.slow_rate));
  out.key("slow_ms").number(f.slow_delay.count());
  out.key("rate_limit_per_minute").number(f.requests_per_minute_per_key);
  out.key("expire_next_urls").number(f.expire_next_urls);
  out.key("endpoint")
      .value_or_null(f.endpoint.empty() ? std::nullopt : std::optional<std::string>(f.endpoint));
  out.end_object();
  return json_response(status::ok, out.str());
}

// Changes the family and merges the overrides; nothing changes unless all of it is valid.
http::response set_shapes(context& ctx, const std::string& body_text) {
  body_reader body(body_text);
  body.only({"shapes", "vary"});
  shape_settings next = ctx.config.shapes;
  next.family = body.string("shapes").value_or(next.family);
  if (body.is_null("vary")) {
    next.vary.clear();
  }
  if (const auto overrides = body.overrides("vary")) {
    for (const auto& [name, value] : *overrides) {
      const bool known = std::any_of(knobs().begin(), knobs().end(),
                                     [&name = name](const knob& k) { return k.name == name; });
      if (!known) {
        throw bad_request{"vary: unknown knob " + json_quote(name)};
      }
      if (value) {
        next.vary[name] = *value;
      } else {
        next.vary.erase(name);
      }
    }
  }
  if (const auto problem = shape_error(next)) {
    throw bad_request{*problem};
  }
  ctx.config.shapes = next;
  return json_response(status::ok, shapes_json(next));
}

http::response stats_json(const context& ctx) {
  const request_stats& s = ctx.stats;
  json_writer out;
  out.begin_object();
  std::int64_t total = 0;
  out.key("requests").begin_object();
  for (const auto& [endpoint, by_status] : s.by_endpoint) {
    out.key(endpoint).begin_object();
    for (const auto& [code, n] : by_status) {
      out.key(std::to_string(code)).number(static_cast<std::int64_t>(n));
      total += static_cast<std::int64_t>(n);
    }
    out.end_object();
  }
  out.end_object();
  out.key("total_requests").number(total);
  out.key("responses_429").number(static_cast<std::int64_t>(s.responses_429));
  out.key("injected_429").number(static_cast<std::int64_t>(s.injected_429));
  out.key("rate_limited").number(static_cast<std::int64_t>(s.rate_limited));
  out.key("injected_500").number(static_cast<std::int64_t>(s.injected_500));
  out.key("slowed").number(static_cast<std::int64_t>(s.slowed));
  out.key("expired_urls").number(static_cast<std::int64_t>(s.expired_urls));
  out.key("cases").number(static_cast<std::int64_t>(ctx.cases.case_count()));
  out.end_object();
  return json_response(status::ok, out.str());
}

http::response method_not_allowed(const char* allow) {
  auto res = control_error(status::method_not_allowed, std::string("use ") + allow);
  res.set(bhttp::field::allow, allow);
  return res;
}

http::response route(context& ctx, const http::request& req) {
  const auto parts = path_segments(http::target_path(req.target()), control_prefix);
  const bool get = req.method() == bhttp::verb::get;
  const bool post = req.method() == bhttp::verb::post;
  if (parts.size() == 1 && parts[0] == "webhooks") {
    if (!get) {
      return method_not_allowed("GET");
    }
    return json_response(status::ok, "{\"webhooks\":" + ctx.webhooks.deliveries_json() + "}");
  }
  if (parts.size() == 1 && parts[0] == "stats") {
    return get ? stats_json(ctx) : method_not_allowed("GET");
  }
  if (parts.size() == 1 && parts[0] == "faults") {
    return post ? set_faults(ctx, req.body()) : method_not_allowed("POST");
  }
  if (parts.size() == 1 && parts[0] == "cases") {
    return post ? create_cases(ctx, req.body()) : method_not_allowed("POST");
  }
  if (parts.size() == 1 && parts[0] == "shapes") {
    if (get) {
      return json_response(status::ok, shapes_json(ctx.config.shapes));
    }
    return post ? set_shapes(ctx, req.body()) : method_not_allowed("GET, POST");
  }
  if ((parts.size() == 2 || parts.size() == 3) && parts[0] == "cases") {
    case_record* c = ctx.cases.find_case(parts[1]);
    if (parts.size() == 3 && parts[2] != "status" && parts[2] != "dispute" &&
        parts[2] != "close") {
      return control_error(status::not_found, "no such control endpoint");
    }
    if (c == nullptr) {
      return control_error(status::not_found, "no case " + std::string(parts[1]));
    }
    if (parts.size() == 2) {
      // Always the assumed shape, whatever the API speaks: test helpers read one shape.
      return get ? json_response(status::ok, case_json(*c, shape_settings{}))
                 : method_not_allowed("GET");
    }
    return post ? change_case(ctx, *c, parts[2], req.body()) : method_not_allowed("POST");
  }
  return control_error(status::not_found, "no such control endpoint");
}

}  // namespace

awaitable<http::response> handle_control(std::shared_ptr<context> ctx, const http::request& req) {
  try {
    co_return route(*ctx, req);
  } catch (const bad_request& problem) {
    co_return control_error(status::bad_request, problem.message);
  }
}

void create_default_cases(context& ctx, int count) {
  if (count > 0) {
    create_cases(ctx, "{\"count\":" + std::to_string(count) + "}");
  }
}

}  // namespace certn_sim
