#include "storage/sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <stdexcept>

#include "encoding/encoding.hpp"

namespace archiver::storage::sigv4 {

namespace {

constexpr std::string_view algorithm = "AWS4-HMAC-SHA256";

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
           &length) == nullptr) {
    throw std::runtime_error("sigv4: HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(out), length);
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), out);
  return encoding::to_hex(std::string_view(reinterpret_cast<const char*>(out), sizeof out));
}

bool is_unreserved(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

std::string escape(unsigned char c) {
  static constexpr char digits[] = "0123456789ABCDEF";
  return std::string{'%', digits[c >> 4], digits[c & 0xF]};
}

// The path as S3 canonicalizes it: encoded once. Escapes already in the path stay as they are
// (the caller encoded the key), other bytes outside the unreserved set and '/' are escaped.
std::string canonical_path(std::string_view path) {
  if (path.empty()) {
    return "/";
  }
  std::string out;
  for (std::size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    const bool is_escape = c == '%' && i + 2 < path.size() &&
                           encoding::hex_digit_value(path[i + 1]) >= 0 &&
                           encoding::hex_digit_value(path[i + 2]) >= 0;
    if (is_escape) {
      out += '%';
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(path[i + 1])));
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(path[i + 2])));
      i += 2;
    } else if (is_unreserved(c) || c == '/') {
      out += c;
    } else {
      out += escape(static_cast<unsigned char>(c));
    }
  }
  return out;
}

// A query name or value decoded (without '+' meaning space: S3 sends '+' escaped) and encoded
// with the strict unreserved set.
std::string canonical_component(std::string_view text) {
  std::string decoded;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && encoding::hex_digit_value(text[i + 1]) >= 0 &&
        encoding::hex_digit_value(text[i + 2]) >= 0) {
      decoded += static_cast<char>(encoding::hex_digit_value(text[i + 1]) * 16 +
                                   encoding::hex_digit_value(text[i + 2]));
      i += 2;
    } else {
      decoded += text[i];
    }
  }
  return encoding::percent_encode(decoded);
}

std::string canonical_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  while (!query.empty()) {
    const std::size_t end = std::min(query.find('&'), query.size());
    const std::string_view item = query.substr(0, end);
    query.remove_prefix(std::min(end + 1, query.size()));
    if (item.empty()) {
      continue;
    }
    const std::size_t equals = item.find('=');
    if (equals == std::string_view::npos) {
      pairs.emplace_back(canonical_component(item), "");
    } else {
      pairs.emplace_back(canonical_component(item.substr(0, equals)),
                         canonical_component(item.substr(equals + 1)));
    }
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) {
      out += '&';
    }
    out += name + "=" + value;
  }
  return out;
}

// Trimmed, with every run of whitespace (folded lines included) collapsed to one space.
std::string canonical_value(std::string_view value) {
  std::string out;
  bool pending_space = false;
  for (const char c : value) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) {
      out += ' ';
      pending_space = false;
    }
    out += c;
  }
  return out;
}

// Lowercase name -> values joined with ',' in their order, names sorted.
std::map<std::string, std::string> canonical_headers(const request& req) {
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : req.headers) {
    auto [it, inserted] = headers.try_emplace(encoding::ascii_lower(name), canonical_value(value));
    if (!inserted) {
      it->second += "," + canonical_value(value);
    }
  }
  return headers;
}

}  // namespace

std::string amz_date(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &utc);
  return text;
}

std::string credential_scope(const scope& where) {
  return where.amz_date.substr(0, 8) + "/" + where.region + "/" + where.service + "/aws4_request";
}

std::string signed_headers(const request& req) {
  std::string out;
  for (const auto& [name, value] : canonical_headers(req)) {
    if (!out.empty()) {
      out += ';';
    }
    out += name;
  }
  return out;
}

std::string canonical_request(const request& req) {
  std::string out =
      req.method + "\n" + canonical_path(req.path) + "\n" + canonical_query(req.query) + "\n";
  for (const auto& [name, value] : canonical_headers(req)) {
    out += name + ":" + value + "\n";
  }
  out += "\n" + signed_headers(req) + "\n" + req.payload_hash;
  return out;
}

std::string string_to_sign(const scope& where, std::string_view canonical) {
  return std::string(algorithm) + "\n" + where.amz_date + "\n" + credential_scope(where) + "\n" +
         sha256_hex(canonical);
}

std::string signing_key(std::string_view secret_access_key, const scope& where) {
  const std::string date_key =
      hmac("AWS4" + std::string(secret_access_key), where.amz_date.substr(0, 8));
  const std::string region_key = hmac(date_key, where.region);
  const std::string service_key = hmac(region_key, where.service);
  return hmac(service_key, "aws4_request");
}

std::string signature(std::string_view key, std::string_view to_sign) {
  return encoding::to_hex(hmac(key, to_sign));
}

std::string authorization(const request& req, const credentials& who, const scope& where) {
  const std::string to_sign = string_to_sign(where, canonical_request(req));
  return std::string(algorithm) + " Credential=" + who.access_key_id + "/" +
         credential_scope(where) + ", SignedHeaders=" + signed_headers(req) +
         ", Signature=" + signature(signing_key(who.secret_access_key, where), to_sign);
}

}  // namespace archiver::storage::sigv4
