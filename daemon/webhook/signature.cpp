// Webhook signature verification: HMAC-SHA256 through OpenSSL's EVP_MAC, constant-time compares.
#include "webhook/signature.hpp"

#include "encoding/encoding.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

namespace archiver::webhook {

namespace {

constexpr std::size_t mac_size = 32;  // SHA-256
using mac_bytes = std::array<unsigned char, mac_size>;

// HMAC-SHA256(key, concatenation of parts). Fed part by part so that "<t>.<body>" needs no copy
// of the body. Throws std::runtime_error only if OpenSSL itself fails (out of memory, broken
// provider): an infrastructure failure, not a verdict about the request.
mac_bytes hmac_sha256(std::string_view key, std::initializer_list<std::string_view> parts) {
  // The fetched algorithm is immutable and may be shared between threads; fetched once.
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) {
    throw std::runtime_error("HMAC-SHA256: EVP_MAC_fetch(HMAC) failed");
  }
  std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx(EVP_MAC_CTX_new(mac),
                                                                  &EVP_MAC_CTX_free);
  if (!ctx) {
    throw std::runtime_error("HMAC-SHA256: EVP_MAC_CTX_new failed");
  }
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  // A null key pointer means "reuse the previous key" to OpenSSL, so an empty key needs a
  // non-null pointer.
  static const unsigned char empty = 0;
  const auto* key_bytes =
      key.empty() ? &empty : reinterpret_cast<const unsigned char*>(key.data());
  if (EVP_MAC_init(ctx.get(), key_bytes, key.size(), params) != 1) {
    throw std::runtime_error("HMAC-SHA256: EVP_MAC_init failed");
  }
  for (std::string_view part : parts) {
    if (!part.empty() &&
        EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(part.data()),
                       part.size()) != 1) {
      throw std::runtime_error("HMAC-SHA256: EVP_MAC_update failed");
    }
  }
  mac_bytes out{};
  std::size_t out_len = 0;
  if (EVP_MAC_final(ctx.get(), out.data(), &out_len, out.size()) != 1 || out_len != mac_size) {
    throw std::runtime_error("HMAC-SHA256: EVP_MAC_final failed");
  }
  return out;
}

std::string to_hex(const mac_bytes& mac) {
  return encoding::to_hex(
      std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

constexpr char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string to_base64(const mac_bytes& mac) {
  std::string out;
  out.reserve((mac.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= mac.size(); i += 3) {
    const unsigned v = (unsigned{mac[i]} << 16) | (unsigned{mac[i + 1]} << 8) | mac[i + 2];
    out.push_back(base64_alphabet[(v >> 18) & 0x3f]);
    out.push_back(base64_alphabet[(v >> 12) & 0x3f]);
    out.push_back(base64_alphabet[(v >> 6) & 0x3f]);
    out.push_back(base64_alphabet[v & 0x3f]);
  }
  const std::size_t rest = mac.size() - i;
  if (rest > 0) {
    unsigned v = unsigned{mac[i]} << 16;
    if (rest == 2) {
      v |= unsigned{mac[i + 1]} << 8;
    }
    out.push_back(base64_alphabet[(v >> 18) & 0x3f]);
    out.push_back(base64_alphabet[(v >> 12) & 0x3f]);
    out.push_back(rest == 2 ? base64_alphabet[(v >> 6) & 0x3f] : '=');
    out.push_back('=');
  }
  return out;
}

// Exactly 64 hex digits, either case. The presented signature is not secret, so decoding it
// with branches is fine; only the comparison with our MAC must be constant-time.
std::optional<mac_bytes> decode_hex(std::string_view text) {
  if (text.size() != mac_size * 2) {
    return std::nullopt;
  }
  mac_bytes out{};
  for (std::size_t i = 0; i < mac_size; ++i) {
    const int hi = encoding::hex_digit_value(text[2 * i]);
    const int lo = encoding::hex_digit_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out[i] = static_cast<unsigned char>((hi << 4) | lo);
  }
  return out;
}

// The value of a base64 character in either alphabet: '+' '/' (standard) or '-' '_' (URL-safe).
// -1 for anything else.
int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+' || c == '-') {
    return 62;
  }
  if (c == '/' || c == '_') {
    return 63;
  }
  return -1;
}

// Standard or URL-safe alphabet, not both in one value; 32 bytes are 43 characters plus one
// optional '='. The two bits left over in the last character must be zero, so each MAC has
// exactly one accepted spelling per alphabet.
std::optional<mac_bytes> decode_base64(std::string_view text) {
  constexpr std::size_t unpadded = (mac_size * 8 + 5) / 6;  // 43
  if (text.size() == unpadded + 1 && text.back() == '=') {
    text.remove_suffix(1);
  }
  if (text.size() != unpadded) {
    return std::nullopt;
  }
  mac_bytes out{};
  std::size_t n = 0;
  unsigned acc = 0;
  int bits = 0;
  bool standard = false;
  bool url_safe = false;
  for (char c : text) {
    const int v = base64_value(c);
    if (v < 0) {
      return std::nullopt;
    }
    standard |= c == '+' || c == '/';
    url_safe |= c == '-' || c == '_';
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = static_cast<unsigned char>((acc >> bits) & 0xff);
    }
  }
  if ((standard && url_safe) || (acc & ((1u << bits) - 1)) != 0) {
    return std::nullopt;
  }
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_space(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

// Removes an optional "sha256=" prefix, in any case.
std::string_view strip_sha256_prefix(std::string_view s) {
  constexpr std::string_view prefix = "sha256=";
  if (s.size() >= prefix.size() &&
      std::equal(prefix.begin(), prefix.end(), s.begin(), [](char p, char c) {
        return p == (c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
      })) {
    s.remove_prefix(prefix.size());
  }
  return s;
}

// Compares every candidate against the MAC of every secret, without stopping at the first match,
// so the time taken does not depend on which secret or candidate matched. Returns the index of
// the first matching secret.
template <typename MacOf>
signature_check match_any(std::span<const std::string> secrets,
                          std::span<const mac_bytes> candidates, MacOf mac_of) {
  signature_check result{signature_verdict::mismatch, 0};
  bool found = false;
  for (std::size_t i = 0; i < secrets.size(); ++i) {
    const mac_bytes expected = mac_of(secrets[i]);
    bool this_secret = false;
    for (const mac_bytes& candidate : candidates) {
      this_secret |= CRYPTO_memcmp(expected.data(), candidate.data(), mac_size) == 0;
    }
    if (this_secret && !found) {
      found = true;
      result = {signature_verdict::valid, i};
    }
  }
  return result;
}

// "t=<digits>,v1=<hex>[,v1=<hex>...]"; other keys (v0=, ...) are ignored.
struct certn_header {
  std::string_view t;  // the digits as sent: the MAC covers them, not a re-formatting
  std::int64_t unix_time = 0;
  std::vector<mac_bytes> v1;
};

std::optional<std::int64_t> parse_unix_time(std::string_view digits) {
  if (digits.empty()) {
    return std::nullopt;
  }
  std::int64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    const int d = c - '0';
    if (value > (INT64_MAX - d) / 10) {
      return std::nullopt;
    }
    value = value * 10 + d;
  }
  return value;
}

std::optional<certn_header> parse_certn_header(std::string_view header) {
  certn_header out;
  bool have_t = false;
  while (true) {
    const std::size_t comma = header.find(',');
    const std::string_view item = trim(header.substr(0, comma));
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return std::nullopt;  // also rejects empty items ("t=1,,v1=...")
    }
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = item.substr(eq + 1);
    if (key == "t") {
      const auto t = parse_unix_time(value);
      if (have_t || !t) {
        return std::nullopt;  // a second t would make the signed string ambiguous
      }
      have_t = true;
      out.t = value;
      out.unix_time = *t;
    } else if (key == "v1") {
      const auto mac = decode_hex(value);
      if (!mac) {
        return std::nullopt;
      }
      out.v1.push_back(*mac);
    }
    if (comma == std::string_view::npos) {
      break;
    }
    header.remove_prefix(comma + 1);
  }
  if (!have_t || out.v1.empty()) {
    return std::nullopt;
  }
  return out;
}

// Distance between two times in seconds, without overflow for any int64 inputs.
std::uint64_t distance(std::int64_t later, std::int64_t earlier) {
  return static_cast<std::uint64_t>(later) - static_cast<std::uint64_t>(earlier);
}

signature_check verify_certn(std::string_view header, std::string_view body,
                             std::span<const std::string> secrets,
                             std::chrono::system_clock::time_point now,
                             std::chrono::seconds tolerance) {
  const auto parsed = parse_certn_header(header);
  if (!parsed) {
    return {signature_verdict::malformed, 0};
  }
  const std::int64_t now_s =
      std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
  const auto tol = static_cast<std::uint64_t>(std::max<std::int64_t>(tolerance.count(), 0));
  if (parsed->unix_time < now_s && distance(now_s, parsed->unix_time) > tol) {
    return {signature_verdict::timestamp_too_old, 0};
  }
  if (parsed->unix_time > now_s && distance(parsed->unix_time, now_s) > tol) {
    return {signature_verdict::timestamp_in_future, 0};
  }
  return match_any(secrets, parsed->v1, [&](const std::string& secret) {
    return hmac_sha256(secret, {parsed->t, ".", body});
  });
}

}  // namespace

std::string_view signature_header(signature_scheme scheme) {
  switch (scheme) {
    case signature_scheme::auto_detect:
    case signature_scheme::x_signature_hex:
    case signature_scheme::x_signature_base64:
      return "X-Signature";
    case signature_scheme::certn_signature:
      return "Certn-Signature";
  }
  return "X-Signature";
}

signature_check verify_signature(signature_scheme scheme, std::string_view header_value,
                                 std::string_view body, std::span<const std::string> secrets,
                                 std::chrono::system_clock::time_point now,
                                 std::chrono::seconds tolerance) {
  // Surrounding whitespace is not part of an HTTP field value.
  header_value = trim(header_value);
  if (header_value.empty()) {
    return {signature_verdict::missing, 0, scheme};
  }
  if (scheme == signature_scheme::certn_signature) {
    signature_check check = verify_certn(header_value, body, secrets, now, tolerance);
    check.scheme = scheme;
    return check;
  }
  const std::string_view encoded = strip_sha256_prefix(header_value);
  if (scheme == signature_scheme::auto_detect) {
    // Hex of 32 bytes is 64 characters, base64 43 or 44: the length alone decides.
    scheme = encoded.size() == mac_size * 2 ? signature_scheme::x_signature_hex
                                            : signature_scheme::x_signature_base64;
  }
  const auto presented = scheme == signature_scheme::x_signature_base64 ? decode_base64(encoded)
                                                                         : decode_hex(encoded);
  if (!presented) {
    return {signature_verdict::malformed, 0, scheme};
  }
  signature_check check =
      match_any(secrets, std::span<const mac_bytes>(&*presented, 1),
                [&](const std::string& secret) { return hmac_sha256(secret, {body}); });
  check.scheme = scheme;
  return check;
}

signature_check verify_request_signature(signature_scheme scheme, std::string_view x_signature,
                                         std::string_view certn_signature, std::string_view body,
                                         std::span<const std::string> secrets,
                                         std::chrono::system_clock::time_point now,
                                         std::chrono::seconds tolerance) {
  switch (scheme) {
    case signature_scheme::x_signature_hex:
    case signature_scheme::x_signature_base64:
      return verify_signature(scheme, x_signature, body, secrets, now, tolerance);
    case signature_scheme::certn_signature:
      return verify_signature(scheme, certn_signature, body, secrets, now, tolerance);
    case signature_scheme::auto_detect:
      break;
  }
  // An X-Signature that is there decides alone, even when malformed or wrong: a request gets
  // one verdict, never the better of two.
  if (!trim(x_signature).empty() || trim(certn_signature).empty()) {
    return verify_signature(signature_scheme::auto_detect, x_signature, body, secrets, now,
                            tolerance);
  }
  return verify_signature(signature_scheme::certn_signature, certn_signature, body, secrets, now,
                          tolerance);
}

std::string sign_hex(std::string_view secret, std::string_view body) {
  return to_hex(hmac_sha256(secret, {body}));
}

std::string sign_base64(std::string_view secret, std::string_view body) {
  return to_base64(hmac_sha256(secret, {body}));
}

std::string sign_certn(std::string_view secret, std::string_view body, std::int64_t unix_time) {
  const std::string t = std::to_string(unix_time);
  return "t=" + t + ",v1=" + to_hex(hmac_sha256(secret, {t, ".", body}));
}

const char* to_string(signature_verdict verdict) {
  switch (verdict) {
    case signature_verdict::valid:
      return "valid";
    case signature_verdict::missing:
      return "missing";
    case signature_verdict::malformed:
      return "malformed";
    case signature_verdict::mismatch:
      return "mismatch";
    case signature_verdict::timestamp_too_old:
      return "timestamp_too_old";
    case signature_verdict::timestamp_in_future:
      return "timestamp_in_future";
  }
  return "unknown";
}

}  // namespace archiver::webhook
