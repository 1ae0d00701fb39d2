// Absolute http/https URLs for the outgoing client: a strict parser that refuses what the client
// must never send (userinfo, spaces, other schemes). Pure; no I/O; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace archiver::http {

struct url {
  std::string scheme;   // "http" or "https", lower case
  std::string host;     // lower case; an IPv6 literal without its brackets ("::1")
  unsigned short port;  // the explicit port, or 80/443 by scheme
  std::string target;   // path + query, "/" when empty; the fragment is dropped
};

// Parses an absolute http or https URL. On failure returns nullopt and, when `error` is not null,
// stores a message naming the problem ("userinfo (user@host) is not allowed", "port 70000 is out
// of range", ...).
std::optional<url> parse_url(std::string_view text, std::string* error);

// The host as it goes into a Host header: IPv6 literals in brackets, the port when not the
// scheme's default.
std::string host_header(const url& target);

}  // namespace archiver::http
