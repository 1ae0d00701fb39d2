// Forward-proxy configuration of the outgoing client: which proxy (if any) a destination goes
// through, read from the usual HTTPS_PROXY / HTTP_PROXY / NO_PROXY environment variables. Pure; no
// I/O; thread-safe. The tunnelling itself (CONNECT) is done by the client.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace archiver::http {

struct proxy_settings {
  std::string https_proxy;  // proxy URL for https destinations ("http://[user:pw@]host:port"); "" = none
  std::string http_proxy;   // the same for plain http destinations
  std::string no_proxy;     // comma-separated destinations reached directly (see bypasses_proxy)
};

// Reads https_proxy/HTTPS_PROXY, http_proxy/HTTP_PROXY and no_proxy/NO_PROXY from `env`; the
// lower-case name wins when both are set and not empty (as curl and Python do).
proxy_settings proxy_from_environment(const std::map<std::string, std::string>& env);

// True when `host` (lower case; IPv6 without brackets) at `port` is listed in `no_proxy`. Entries:
// "*" (everything); an IP literal (compared as an address; "[v6]:port" for one with a port); a host
// name, "suffix" or ".suffix", matching that name and every name under it (".example.com" and
// "example.com" both match "example.com" and "a.example.com", never "badexample.com"); each with an
// optional ":port" that then must match too. Case-insensitive; one trailing dot ignored.
bool bypasses_proxy(std::string_view host, unsigned short port, std::string_view no_proxy);

// A parsed proxy URL. Only "http://" proxies (TLS to the proxy itself is not supported).
struct proxy_endpoint {
  std::string host;           // lower case; IPv6 without brackets
  unsigned short port = 80;   // 80 when the URL has none
  std::string authorization;  // "Basic ..." from the URL's userinfo, "" without; never logged
  std::string display() const;  // "host:port", never the credentials
};

// Parses "http://[user[:password]@]host[:port][/]"; userinfo may be percent-encoded. On failure
// returns nullopt with a message in `error` that never contains the password.
std::optional<proxy_endpoint> parse_proxy_url(std::string_view text, std::string* error);

}  // namespace archiver::http
