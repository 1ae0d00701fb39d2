#include "certn/errors.hpp"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace archiver::certn {

namespace {

constexpr std::size_t max_echo = 200;
constexpr std::chrono::seconds max_retry_after{24 * 60 * 60};

// Body text can end up in logs: keep it short and on one line.
std::string sanitize(std::string_view text) {
  std::string out;
  for (const char c : text.substr(0, max_echo)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out.push_back(c);
    }
  }
  return out;
}

std::string type_for_status(int http_status) {
  if (http_status == 400) {
    return "validation_error";
  }
  if (http_status >= 500) {
    return "server_error";
  }
  return "client_error";
}

std::optional<std::string> string_at(simdjson::dom::object object, std::string_view key) {
  std::string_view text;
  if (object.at_key(key).get_string().get(text) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  return sanitize(text);
}

bool parse_digits(std::string_view text, int& out) {
  if (text.empty()) {
    return false;
  }
  out = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') {
      return false;
    }
    out = out * 10 + (c - '0');
  }
  return true;
}

// IMF-fixdate only: "Sun, 06 Nov 1994 08:49:37 GMT" (29 characters).
std::optional<std::chrono::system_clock::time_point> parse_imf_fixdate(std::string_view text) {
  if (text.size() != 29 || text.substr(3, 2) != ", " || text[7] != ' ' || text[11] != ' ' ||
      text[16] != ' ' || text[19] != ':' || text[22] != ':' || text.substr(25) != " GMT") {
    return std::nullopt;
  }
  static constexpr std::array<std::string_view, 12> months = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  unsigned month = 0;
  for (unsigned i = 0; i < months.size(); ++i) {
    if (months[i] == text.substr(8, 3)) {
      month = i + 1;
    }
  }
  int day = 0;
  int year = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (month == 0 || !parse_digits(text.substr(5, 2), day) ||
      !parse_digits(text.substr(12, 4), year) || !parse_digits(text.substr(17, 2), hour) ||
      !parse_digits(text.substr(20, 2), minute) || !parse_digits(text.substr(23, 2), second) ||
      hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  const std::chrono::year_month_day date{std::chrono::year{year}, std::chrono::month{month},
                                         std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok()) {
    return std::nullopt;
  }
  return std::chrono::sys_days{date} + std::chrono::hours{hour} + std::chrono::minutes{minute} +
         std::chrono::seconds{second};
}

}  // namespace

std::string api_error::summary() const {
  std::string line = std::to_string(http_status) + " " + type;
  if (!errors.empty()) {
    line += ": ";
    // The fallback item has no code; don't print an empty one.
    if (!errors.front().code.empty()) {
      line += errors.front().code + ": ";
    }
    line += errors.front().detail;
    if (errors.size() > 1) {
      line += " (+" + std::to_string(errors.size() - 1) + " more)";
    }
  }
  return line;
}

api_error parse_error_envelope(int http_status, std::string_view body,
                               std::string_view retry_after_header) {
  api_error result;
  result.http_status = http_status;
  result.type = type_for_status(http_status);
  result.retry_after = parse_retry_after(retry_after_header, std::chrono::system_clock::now());

  simdjson::dom::parser parser;
  const simdjson::padded_string padded(body);
  simdjson::dom::object root;
  simdjson::dom::array items;
  if (parser.parse(padded).get_object().get(root) == simdjson::SUCCESS) {
    if (auto type = string_at(root, "type"); type && !type->empty()) {
      result.type = *type;
    }
    if (root.at_key("errors").get_array().get(items) == simdjson::SUCCESS) {
      for (const simdjson::dom::element item : items) {
        simdjson::dom::object object;
        if (item.get_object().get(object) != simdjson::SUCCESS) {
          continue;
        }
        api_error_item entry;
        entry.code = string_at(object, "code").value_or("");
        entry.detail = string_at(object, "detail").value_or("");
        entry.attr = string_at(object, "attr");
        result.errors.push_back(std::move(entry));
      }
    }
  }
  if (result.errors.empty()) {
    result.errors.push_back({"", "unexpected response body", std::nullopt});
  }
  return result;
}

bool says_request_expired(std::string_view body_start) {
  std::string lower(body_start);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("<code>expiredrequest</code>") != std::string::npos ||
         lower.find("<code>expiredtoken</code>") != std::string::npos ||
         (lower.find("<error>") != std::string::npos && lower.find("expired") != std::string::npos);
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view header,
                                                      std::chrono::system_clock::time_point now) {
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) {
    header.remove_prefix(1);
  }
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) {
    header.remove_suffix(1);
  }
  if (header.empty()) {
    return std::nullopt;
  }
  if (header.find_first_not_of("0123456789") == std::string_view::npos) {
    // Saturate instead of overflowing on absurd values.
    std::int64_t value = 0;
    for (const char c : header) {
      value = value * 10 + (c - '0');
      if (value > max_retry_after.count()) {
        return max_retry_after;
      }
    }
    return std::chrono::seconds{value};
  }
  const auto when = parse_imf_fixdate(header);
  if (!when) {
    return std::nullopt;
  }
  if (*when <= now) {
    return std::chrono::seconds{0};
  }
  const auto delta = std::chrono::ceil<std::chrono::seconds>(*when - now);
  return delta > max_retry_after ? max_retry_after : delta;
}

}  // namespace archiver::certn
