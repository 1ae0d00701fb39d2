// certn-sim's presigned download URLs: signing an object's path with a date and a lifetime
// (presign) and checking a request target's signature and expiry (check, verify), with the
// percent-encoding and X-Amz-Date formats they use. Pure; no I/O.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <utility>

#include "downloads.hpp"
#include "downloads_detail.hpp"
#include "encoding/encoding.hpp"

namespace certn_sim {

using downloads_detail::downloads_prefix;
using std::chrono::system_clock;

namespace {

constexpr std::string_view algorithm = "AWS4-HMAC-SHA256";
// S3 refuses presigned URLs valid for longer than a week.
constexpr std::uint64_t max_expires_seconds = 7 * 24 * 3600;

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest.data(),
           &size) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return archiver::encoding::to_hex(
      std::string_view(reinterpret_cast<const char*>(digest.data()), size));
}

std::string string_to_sign(std::string_view path, std::string_view date, std::string_view expires) {
  std::string out;
  out.append(path).append("\n").append(date).append("\n").append(expires);
  return out;
}

// Decodes %XX escapes; nullopt for a broken escape. Unlike encoding::percent_decode, '+' stays
// '+': in a path it is not a space.
std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) {
      return std::nullopt;
    }
    const int high = archiver::encoding::hex_digit_value(text[i + 1]);
    const int low = archiver::encoding::hex_digit_value(text[i + 2]);
    if (high < 0 || low < 0) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

bool all_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "YYYYMMDDTHHMMSSZ" (UTC).
std::string format_amz_date(system_clock::time_point when) {
  using namespace std::chrono;
  const auto seconds_since_epoch = floor<seconds>(when);
  const auto day = floor<days>(seconds_since_epoch);
  const year_month_day date{day};
  const hh_mm_ss time{seconds_since_epoch - day};
  char out[64];
  const int size = std::snprintf(
      out, sizeof out, "%04d%02u%02uT%02d%02d%02dZ", static_cast<int>(date.year()),
      static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
      static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
      static_cast<int>(time.seconds().count()));
  return std::string(out, static_cast<std::size_t>(size));
}

std::optional<system_clock::time_point> parse_amz_date(std::string_view text) {
  using namespace std::chrono;
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z' || !all_digits(text.substr(0, 8)) ||
      !all_digits(text.substr(9, 6))) {
    return std::nullopt;
  }
  auto number = [&](std::size_t at, std::size_t length) {
    int value = 0;
    for (std::size_t i = at; i < at + length; ++i) {
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  const year_month_day date{year{number(0, 4)}, month{static_cast<unsigned>(number(4, 2))},
                            day{static_cast<unsigned>(number(6, 2))}};
  const int hour = number(9, 2);
  const int minute = number(11, 2);
  const int second = number(13, 2);
  if (!date.ok() || hour > 23 || minute > 59 || second > 59) {
    return std::nullopt;
  }
  return sys_days{date} + hours{hour} + minutes{minute} + seconds{second};
}

}  // namespace

namespace downloads_detail {

std::string format_iso8601(system_clock::time_point when) {
  const std::string compact = format_amz_date(when);
  return compact.substr(0, 4) + "-" + compact.substr(4, 2) + "-" + compact.substr(6, 2) + "T" +
         compact.substr(9, 2) + ":" + compact.substr(11, 2) + ":" + compact.substr(13, 2) + "Z";
}

}  // namespace downloads_detail

download_signer::download_signer(std::string secret, std::chrono::seconds ttl)
    : secret_(std::move(secret)), ttl_(ttl) {}

std::string download_signer::presign(std::string_view base_url, std::string_view path,
                                     system_clock::time_point now) const {
  const std::string date = format_amz_date(now);
  const std::string expires = std::to_string(ttl_.count());
  std::string url(base_url);
  while (!url.empty() && url.back() == '/') {
    url.pop_back();
  }
  url.append(downloads_prefix).append(archiver::encoding::percent_encode_path(path));
  url.append("?X-Amz-Algorithm=").append(algorithm);
  url.append("&X-Amz-Date=").append(date);
  url.append("&X-Amz-Expires=").append(expires);
  url.append("&X-Amz-Signature=")
      .append(hmac_sha256_hex(secret_, string_to_sign(path, date, expires)));
  return url;
}

download_signer::verification download_signer::check(std::string_view target,
                                                     system_clock::time_point now) const {
  verification result;
  result.outcome = verdict::malformed;
  if (!target.starts_with(downloads_prefix)) {
    return result;
  }
  const std::size_t question = target.find('?');
  const std::optional<std::string> decoded =
      percent_decode(target.substr(downloads_prefix.size(), question - downloads_prefix.size()));
  if (!decoded || decoded->empty()) {
    return result;
  }
  result.path = *decoded;
  if (question == std::string_view::npos) {
    return result;
  }
  std::map<std::string, std::string, std::less<>> parameters;
  for (std::string_view rest = target.substr(question + 1); !rest.empty();) {
    const std::string_view pair = rest.substr(0, rest.find('&'));
    rest.remove_prefix(std::min(rest.size(), pair.size() + 1));
    const std::size_t equals = pair.find('=');
    if (!pair.starts_with("X-Amz-")) {
      continue;  // S3 ignores parameters it does not sign with, such as response overrides
    }
    if (equals == std::string_view::npos) {
      return result;
    }
    const auto value = percent_decode(pair.substr(equals + 1));
    if (!value || !parameters.emplace(std::string(pair.substr(0, equals)), *value).second) {
      return result;  // garbled, or given twice
    }
  }
  const auto parameter = [&](std::string_view name) -> std::string_view {
    const auto found = parameters.find(name);
    return found == parameters.end() ? std::string_view() : std::string_view(found->second);
  };
  const std::string_view date = parameter("X-Amz-Date");
  const std::string_view expires = parameter("X-Amz-Expires");
  const std::string_view signature = parameter("X-Amz-Signature");
  const auto signed_at = parse_amz_date(date);
  if (parameter("X-Amz-Algorithm") != algorithm || !signed_at || !all_digits(expires) ||
      expires.size() > 7 || std::stoull(std::string(expires)) > max_expires_seconds ||
      signature.empty()) {
    return result;
  }
  result.lifetime = std::chrono::seconds(std::stoll(std::string(expires)));
  result.expires_at = *signed_at + result.lifetime;
  // The signature is checked before the expiry, so that a forged X-Amz-Expires cannot pass.
  const std::string expected = hmac_sha256_hex(secret_, string_to_sign(*decoded, date, expires));
  if (signature.size() != expected.size() ||
      CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) != 0) {
    result.outcome = verdict::bad_signature;
  } else if (now > result.expires_at) {
    result.outcome = verdict::expired;
  } else {
    result.outcome = verdict::ok;
  }
  return result;
}

download_signer::verdict download_signer::verify(std::string_view target,
                                                 system_clock::time_point now,
                                                 std::string* path) const {
  verification result = check(target, now);
  if (path != nullptr) {
    *path = std::move(result.path);
  }
  return result.outcome;
}

}  // namespace certn_sim
