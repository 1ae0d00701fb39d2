// Where the outgoing client may go: host-name allow lists and the classification of IP addresses
// (loopback, private, link-local, ...) used to refuse requests into our own networks (SSRF).
// Pure; no I/O; thread-safe.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/asio.hpp"

namespace archiver::http {

// True when `host` matches one of `patterns`, case-insensitively. A pattern is either an exact
// host name or "*.suffix", where "*" stands for one or more whole leading labels:
// "*.amazonaws.com" matches "bucket.s3.amazonaws.com" but neither "amazonaws.com" nor
// "evilamazonaws.com". One trailing dot on `host` is ignored.
bool host_matches(std::string_view host, std::span<const std::string> patterns);

enum class address_kind {
  public_address,
  loopback,         // 127/8, ::1
  private_network,  // 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7
  link_local,       // 169.254/16 (cloud metadata), fe80::/10
  unspecified,      // 0/8, ::
  multicast,        // 224/4, ff00::/8
  other_special,    // 240/4, 255.255.255.255, documentation/benchmark ranges, other IPv6 specials
};

// The kind of `address`; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is classified as its IPv4.
address_kind classify(const asio::ip::address& address);

// A human-readable name of `kind` ("private network", ...), for refusal messages.
const char* describe(address_kind kind);

struct destination_policy {
  bool allow_plain_http = false;           // http:// URLs refused unless set
  bool allow_special_addresses = false;    // anything but public_address refused unless set
  std::vector<std::string> allowed_hosts;  // host_matches patterns; empty = any host
};

}  // namespace archiver::http
