#include "http/url.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "encoding/encoding.hpp"

namespace archiver::http {
namespace {

std::optional<url> fail(std::string* error, std::string message) {
  if (error != nullptr) {
    *error = std::move(message);
  }
  return std::nullopt;
}

bool is_ipv6_literal(const std::string& text) {
  in6_addr ignored{};
  return inet_pton(AF_INET6, text.c_str(), &ignored) == 1;
}

// Letters, digits, '-', '.', '_' (the last seen in real bucket host names). Percent-encoding and
// anything else that a resolver might read differently from our policy check is refused.
bool is_reg_name(std::string_view host) {
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

}  // namespace

std::optional<url> parse_url(std::string_view text, std::string* error) {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f) {
      return fail(error, "URL contains a space or control character");
    }
  }
  const auto scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) {
    return fail(error, "URL has no scheme (expected http:// or https://)");
  }
  url out;
  out.scheme = encoding::ascii_lower(text.substr(0, scheme_end));
  if (out.scheme == "http") {
    out.port = 80;
  } else if (out.scheme == "https") {
    out.port = 443;
  } else {
    return fail(error, "unsupported URL scheme '" + out.scheme + "' (only http and https)");
  }
  std::string_view rest = text.substr(scheme_end + 3);
  if (const auto hash = rest.find('#'); hash != std::string_view::npos) {
    rest = rest.substr(0, hash);
  }
  const auto authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  const std::string_view target =
      authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return fail(error, "userinfo (user@host) is not allowed in URLs");
  }

  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return fail(error, "IPv6 literal is missing its closing ']'");
    }
    out.host = encoding::ascii_lower(authority.substr(1, close - 1));
    if (!is_ipv6_literal(out.host)) {
      return fail(error, "'" + out.host + "' is not a valid IPv6 address");
    }
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return fail(error, "unexpected characters after the IPv6 literal");
      }
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    out.host = encoding::ascii_lower(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    if (!out.host.empty() && !is_reg_name(out.host)) {
      return fail(error, "host '" + out.host + "' contains characters not allowed in a host name");
    }
  }
  if (out.host.empty()) {
    return fail(error, "URL has no host");
  }
  if (has_port) {
    if (port_text.empty() || port_text.size() > 5 ||
        !std::all_of(port_text.begin(), port_text.end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
      return fail(error, "port '" + std::string(port_text) + "' is not a number");
    }
    const unsigned long port = std::stoul(std::string(port_text));
    if (port == 0 || port > 65535) {
      return fail(error, "port " + std::string(port_text) + " is out of range (1-65535)");
    }
    out.port = static_cast<unsigned short>(port);
  }
  if (target.empty()) {
    out.target = "/";
  } else if (target.front() == '?') {
    out.target = "/" + std::string(target);
  } else {
    out.target = std::string(target);
  }
  return out;
}

std::string host_header(const url& target) {
  std::string out =
      target.host.find(':') != std::string::npos ? "[" + target.host + "]" : target.host;
  const unsigned short default_port = target.scheme == "https" ? 443 : 80;
  if (target.port != default_port) {
    out += ":" + std::to_string(target.port);
  }
  return out;
}

}  // namespace archiver::http
