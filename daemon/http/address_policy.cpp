#include "http/address_policy.hpp"

#include <cctype>

namespace archiver::http {
namespace {

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool in_v4(std::uint32_t address, std::uint32_t network, int prefix) {
  const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
  return (address & mask) == (network & mask);
}

constexpr std::uint32_t v4(unsigned a, unsigned b, unsigned c, unsigned d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

address_kind classify_v4(const asio::ip::address_v4& address) {
  const std::uint32_t a = address.to_uint();
  if (in_v4(a, v4(0, 0, 0, 0), 8)) {
    return address_kind::unspecified;
  }
  if (in_v4(a, v4(127, 0, 0, 0), 8)) {
    return address_kind::loopback;
  }
  if (in_v4(a, v4(10, 0, 0, 0), 8) || in_v4(a, v4(172, 16, 0, 0), 12) ||
      in_v4(a, v4(192, 168, 0, 0), 16) || in_v4(a, v4(100, 64, 0, 0), 10)) {
    return address_kind::private_network;
  }
  if (in_v4(a, v4(169, 254, 0, 0), 16)) {
    return address_kind::link_local;
  }
  if (in_v4(a, v4(224, 0, 0, 0), 4)) {
    return address_kind::multicast;
  }
  // 240/4 includes 255.255.255.255; the rest are IETF protocol assignments, documentation and
  // benchmarking ranges, none of which is a real destination.
  if (in_v4(a, v4(240, 0, 0, 0), 4) || in_v4(a, v4(192, 0, 0, 0), 24) ||
      in_v4(a, v4(192, 0, 2, 0), 24) || in_v4(a, v4(198, 18, 0, 0), 15) ||
      in_v4(a, v4(198, 51, 100, 0), 24) || in_v4(a, v4(203, 0, 113, 0), 24)) {
    return address_kind::other_special;
  }
  return address_kind::public_address;
}

address_kind classify_v6(const asio::ip::address_v6& address) {
  if (address.is_v4_mapped()) {
    return classify_v4(asio::ip::make_address_v4(asio::ip::v4_mapped, address));
  }
  if (address.is_loopback()) {
    return address_kind::loopback;
  }
  if (address.is_unspecified()) {
    return address_kind::unspecified;
  }
  const auto bytes = address.to_bytes();
  if (bytes[0] == 0xff) {
    return address_kind::multicast;
  }
  if (bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80) {
    return address_kind::link_local;
  }
  if ((bytes[0] & 0xfe) == 0xfc || (bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0xc0)) {
    return address_kind::private_network;  // unique local, and the deprecated site-local fec0::/10
  }
  // ::/96 (IPv4-compatible), 64:ff9b::/96 (NAT64: reaches any IPv4, including private ones),
  // 2001:db8::/32 (documentation), 2002::/16 (6to4, embeds any IPv4).
  bool first_twelve_zero = true;
  for (int i = 0; i < 12; ++i) {
    first_twelve_zero = first_twelve_zero && bytes[i] == 0;
  }
  const bool nat64 = bytes[0] == 0x00 && bytes[1] == 0x64 && bytes[2] == 0xff && bytes[3] == 0x9b;
  const bool documentation =
      bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0d && bytes[3] == 0xb8;
  const bool six_to_four = bytes[0] == 0x20 && bytes[1] == 0x02;
  if (first_twelve_zero || nat64 || documentation || six_to_four) {
    return address_kind::other_special;
  }
  return address_kind::public_address;
}

}  // namespace

bool host_matches(std::string_view host, std::span<const std::string> patterns) {
  if (!host.empty() && host.back() == '.') {
    host.remove_suffix(1);
  }
  for (const std::string& pattern : patterns) {
    const std::string_view p = pattern;
    if (p.size() > 2 && p.substr(0, 2) == "*.") {
      const std::string_view suffix = p.substr(1);  // ".amazonaws.com"
      // At least one character before the dot: "*" never matches an empty label.
      if (host.size() > suffix.size() && iequal(host.substr(host.size() - suffix.size()), suffix) &&
          host[host.size() - suffix.size() - 1] != '.') {
        return true;
      }
    } else if (iequal(host, p)) {
      return true;
    }
  }
  return false;
}

address_kind classify(const asio::ip::address& address) {
  return address.is_v4() ? classify_v4(address.to_v4()) : classify_v6(address.to_v6());
}

const char* describe(address_kind kind) {
  switch (kind) {
    case address_kind::public_address:
      return "public address";
    case address_kind::loopback:
      return "loopback";
    case address_kind::private_network:
      return "private network";
    case address_kind::link_local:
      return "link-local";
    case address_kind::unspecified:
      return "unspecified address";
    case address_kind::multicast:
      return "multicast";
    case address_kind::other_special:
      return "special-purpose address";
  }
  return "unknown";
}

}  // namespace archiver::http
