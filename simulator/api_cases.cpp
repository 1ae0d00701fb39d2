// certn-sim's case resource: the case list (filters, page size, pages and their links in the
// list shape in force), one case, and cancelling a case.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

#include "api_detail.hpp"
#include "encoding/encoding.hpp"
#include "shapes.hpp"

namespace certn_sim::api_detail {

namespace {

constexpr std::int64_t default_page_size = 10;
constexpr std::int64_t max_page_size = 100;

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
    params += (params.empty() ? "" : "&") + archiver::encoding::percent_encode(p.name) + "=" +
              archiver::encoding::percent_encode(p.value);
  }
  if (page > 1) {
    params += (params.empty() ? "" : "&") + std::string("page=") + std::to_string(page);
  }
  return params.empty() ? url : url + "?" + params;
}

}  // namespace

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

http::response case_detail(const context& ctx, const case_record& c) {
  return json_response(status::ok, case_json(c, ctx.config.shapes));
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

}  // namespace certn_sim::api_detail
