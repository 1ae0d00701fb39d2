#include "http/proxy.hpp"

#include <algorithm>
#include <cctype>

#include "encoding/encoding.hpp"
#include "http/url.hpp"
#include "net/asio.hpp"

namespace archiver::http {
namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

std::string without_trailing_dot(std::string_view text) {
  if (!text.empty() && text.back() == '.') {
    text.remove_suffix(1);
  }
  return encoding::ascii_lower(text);
}

std::string first_set(const std::map<std::string, std::string>& env, const char* lower_name,
                      const char* upper_name) {
  for (const char* name : {lower_name, upper_name}) {
    if (const auto it = env.find(name); it != env.end() && !trim(it->second).empty()) {
      return std::string(trim(it->second));
    }
  }
  return {};
}

std::optional<unsigned short> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5 ||
      !std::all_of(text.begin(), text.end(),
                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return std::nullopt;
  }
  const int value = std::stoi(std::string(text));
  if (value < 1 || value > 65535) {
    return std::nullopt;
  }
  return static_cast<unsigned short>(value);
}

struct no_proxy_entry {
  std::string host;  // lower case, no brackets, no leading "." or "*."
  std::optional<unsigned short> port;
};

// Splits "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 literal; nullopt when malformed.
std::optional<no_proxy_entry> parse_entry(std::string_view text) {
  no_proxy_entry entry;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    entry.host = encoding::ascii_lower(text.substr(1, close - 1));
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return std::nullopt;
      }
      port_text = rest.substr(1);
    }
  } else if (std::count(text.begin(), text.end(), ':') > 1) {
    entry.host = encoding::ascii_lower(text);  // a bare IPv6 literal cannot carry a port
  } else if (const auto colon = text.find(':'); colon != std::string_view::npos) {
    entry.host = encoding::ascii_lower(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  } else {
    entry.host = encoding::ascii_lower(text);
  }
  if (!port_text.empty() || (!text.empty() && text.back() == ':')) {
    entry.port = parse_port(port_text);
    if (!entry.port) {
      return std::nullopt;
    }
  }
  if (entry.host.starts_with("*.")) {
    entry.host.erase(0, 2);
  } else if (entry.host.starts_with(".")) {
    entry.host.erase(0, 1);
  }
  entry.host = without_trailing_dot(entry.host);
  if (entry.host.empty()) {
    return std::nullopt;
  }
  return entry;
}

std::optional<asio::ip::address> as_address(const std::string& text) {
  error_code ec;
  const auto address = asio::ip::make_address(text, ec);
  if (ec) {
    return std::nullopt;
  }
  return address;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() &&
        std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string base64(std::string_view data) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const unsigned value = (static_cast<unsigned char>(data[i]) << 16) |
                           (static_cast<unsigned char>(data[i + 1]) << 8) |
                           static_cast<unsigned char>(data[i + 2]);
    out += alphabet[(value >> 18) & 63];
    out += alphabet[(value >> 12) & 63];
    out += alphabet[(value >> 6) & 63];
    out += alphabet[value & 63];
  }
  if (const std::size_t left = data.size() - i; left > 0) {
    unsigned value = static_cast<unsigned char>(data[i]) << 16;
    if (left == 2) {
      value |= static_cast<unsigned char>(data[i + 1]) << 8;
    }
    out += alphabet[(value >> 18) & 63];
    out += alphabet[(value >> 12) & 63];
    out += left == 2 ? alphabet[(value >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace

proxy_settings proxy_from_environment(const std::map<std::string, std::string>& env) {
  proxy_settings settings;
  settings.https_proxy = first_set(env, "https_proxy", "HTTPS_PROXY");
  settings.http_proxy = first_set(env, "http_proxy", "HTTP_PROXY");
  settings.no_proxy = first_set(env, "no_proxy", "NO_PROXY");
  return settings;
}

bool bypasses_proxy(std::string_view host, unsigned short port, std::string_view no_proxy) {
  const std::string name = without_trailing_dot(host);
  const auto address = as_address(name);
  while (!no_proxy.empty()) {
    const auto comma = no_proxy.find(',');
    const std::string_view item = trim(no_proxy.substr(0, comma));
    no_proxy = comma == std::string_view::npos ? std::string_view{} : no_proxy.substr(comma + 1);
    if (item == "*") {
      return true;
    }
    const auto entry = parse_entry(item);
    if (!entry || (entry->port && *entry->port != port)) {
      continue;
    }
    if (const auto entry_address = as_address(entry->host)) {
      if (address && *address == *entry_address) {
        return true;
      }
      continue;
    }
    if (!address && (name == entry->host || name.ends_with("." + entry->host))) {
      return true;
    }
  }
  return false;
}

std::string proxy_endpoint::display() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

std::optional<proxy_endpoint> parse_proxy_url(std::string_view text, std::string* error) {
  const auto fail = [error](std::string message) -> std::optional<proxy_endpoint> {
    if (error != nullptr) {
      *error = std::move(message);
    }
    return std::nullopt;
  };
  text = trim(text);
  if (const auto scheme_end = text.find("://"); scheme_end != std::string_view::npos) {
    const std::string scheme = encoding::ascii_lower(text.substr(0, scheme_end));
    if (scheme != "http") {
      return fail("proxy URL scheme '" + scheme + "' is not supported (only http://)");
    }
    text.remove_prefix(scheme_end + 3);
  }
  if (const auto slash = text.find('/'); slash != std::string_view::npos) {
    if (text.substr(slash) != "/") {
      return fail("proxy URL must not have a path");
    }
    text = text.substr(0, slash);
  }
  proxy_endpoint endpoint;
  if (const auto at = text.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = text.substr(0, at);
    const auto colon = userinfo.find(':');
    const std::string user = percent_decode(userinfo.substr(0, colon));
    const std::string password =
        colon == std::string_view::npos ? std::string() : percent_decode(userinfo.substr(colon + 1));
    endpoint.authorization = "Basic " + base64(user + ":" + password);
    text.remove_prefix(at + 1);
  }
  // The host and port are checked by the strict URL parser the client uses for destinations.
  std::string url_error;
  const auto parsed = parse_url("http://" + std::string(text) + "/", &url_error);
  if (!parsed || text.empty()) {
    return fail("proxy URL host '" + std::string(text) + "' is not valid" +
                (url_error.empty() ? "" : ": " + url_error));
  }
  endpoint.host = parsed->host;
  endpoint.port = parsed->port;
  return endpoint;
}

}  // namespace archiver::http
