#include "downloads.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

#include "encoding/encoding.hpp"

namespace certn_sim {

namespace {

namespace http = archiver::http;
namespace bhttp = archiver::beast::http;
using archiver::awaitable;
using std::chrono::system_clock;

constexpr std::string_view downloads_prefix = "/_downloads/";
constexpr std::string_view algorithm = "AWS4-HMAC-SHA256";
// S3 refuses presigned URLs valid for longer than a week.
constexpr std::uint64_t max_expires_seconds = 7 * 24 * 3600;
constexpr std::size_t chunk_bytes = 64 * 1024;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Word `index` of stream `seed`: each word is independent of the others, so any offset can be
// produced without the bytes before it.
std::uint64_t content_word(std::uint64_t stream_key, std::uint64_t index) {
  return splitmix64(stream_key ^ (index * 0xd1b54a32d192ed03ULL));
}

// Lowercase hex of `size` bytes at `data`.
std::string to_hex(const unsigned char* data, std::size_t size) {
  return archiver::encoding::to_hex(std::string_view(reinterpret_cast<const char*>(data), size));
}

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest.data(),
           &size) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return to_hex(digest.data(), size);
}

std::string string_to_sign(std::string_view path, std::string_view date, std::string_view expires) {
  std::string out;
  out.append(path).append("\n").append(date).append("\n").append(expires);
  return out;
}

bool is_unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Percent-encodes everything but unreserved characters (and '/' when `keep_slash`).
std::string percent_encode(std::string_view text, bool keep_slash) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(c);
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(digits[byte >> 4]);
      out.push_back(digits[byte & 0xf]);
    }
  }
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

// ISO 8601 as S3 writes it in error bodies: "2026-11-29T05:00:00Z".
std::string format_iso8601(system_clock::time_point when) {
  const std::string compact = format_amz_date(when);
  return compact.substr(0, 4) + "-" + compact.substr(4, 2) + "-" + compact.substr(6, 2) + "T" +
         compact.substr(9, 2) + ":" + compact.substr(11, 2) + ":" + compact.substr(13, 2) + "Z";
}

std::string xml_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// A PDF literal string: parentheses and backslashes escaped, anything unprintable as octal.
std::string pdf_string(std::string_view text) {
  std::string out = "(";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '(' || c == ')' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (byte < 0x20 || byte > 0x7e) {
      char octal[8];
      std::snprintf(octal, sizeof octal, "\\%03o", static_cast<unsigned>(byte));
      out += octal;
    } else {
      out.push_back(c);
    }
  }
  out.push_back(')');
  return out;
}

std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  return to_hex(digest.data(), digest.size());
}

// The state shared by every request of the download routes; the fault generator advances.
struct download_routes {
  const download_signer& signer;
  download_lookup lookup;
  double truncate_rate;
  std::mt19937_64 fault_random;
};

// Sends a whole small body (an error document, a PDF).
awaitable<void> send_whole(http::response_stream& out, http::status code,
                           std::string_view content_type, std::string_view body,
                           std::vector<std::pair<bhttp::field, std::string>> extra_headers = {}) {
  http::response_header head;
  head.result(code);
  head.set(bhttp::field::content_type, content_type);
  head.set(bhttp::field::content_length, std::to_string(body.size()));
  for (auto& [field, value] : extra_headers) {
    head.set(field, value);
  }
  // (Awaited outside conditions: GCC 12 miscompiles co_await inside an if condition.)
  const bool sent = co_await out.send_header(std::move(head));
  if (sent) {
    co_await out.write(body);
  }
}

awaitable<void> send_error(http::response_stream& out, http::status code, std::string_view s3_code,
                           std::string_view message,
                           const std::vector<std::pair<std::string, std::string>>& extra = {}) {
  co_await send_whole(out, code, "application/xml", s3_error_xml(s3_code, message, extra));
}

// The elements S3 adds to an expired URL's error: the lifetime, when it ended, the time now.
// (Built outside the coroutine: GCC 12 miscompiles string literals in braced temporaries there.)
std::vector<std::pair<std::string, std::string>> expiry_details(
    const download_signer::verification& verified, system_clock::time_point now) {
  return {{"X-Amz-Expires", std::to_string(verified.lifetime.count())},
          {"Expires", format_iso8601(verified.expires_at)},
          {"ServerTime", format_iso8601(now)}};
}

std::vector<std::pair<std::string, std::string>> key_detail(const std::string& path) {
  return {{"Key", path}};
}

awaitable<void> serve_download(download_routes& routes, const http::request& req,
                               http::response_stream& out) {
  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
    std::vector<std::pair<bhttp::field, std::string>> allow;
    allow.emplace_back(bhttp::field::allow, std::string("GET, HEAD"));
    co_await send_whole(out, http::status::method_not_allowed, "application/xml",
                        s3_error_xml("MethodNotAllowed",
                                     "The specified method is not allowed against this resource."),
                        std::move(allow));
    co_return;
  }
  const auto now = system_clock::now();
  const download_signer::verification verified = routes.signer.check(req.target(), now);
  const std::string& path = verified.path;
  switch (verified.outcome) {
    case download_signer::verdict::ok:
      break;
    case download_signer::verdict::expired:
      // As S3 does: the lifetime, when it ended and the time now.
      co_await send_error(out, http::status::forbidden, "AccessDenied", "Request has expired",
                          expiry_details(verified, now));
      co_return;
    case download_signer::verdict::bad_signature:
      co_await send_error(out, http::status::forbidden, "SignatureDoesNotMatch",
                          "The request signature we calculated does not match the signature you "
                          "provided. Check your key and signing method.");
      co_return;
    case download_signer::verdict::malformed:
      co_await send_error(out, http::status::bad_request, "AuthorizationQueryParametersError",
                          "Query-string authentication requires the X-Amz-Algorithm, X-Amz-Date, "
                          "X-Amz-Expires and X-Amz-Signature parameters.");
      co_return;
  }

  const std::optional<download_object> object = routes.lookup(path);
  if (!object) {
    co_await send_error(out, http::status::not_found, "NoSuchKey",
                        "The specified key does not exist.", key_detail(path));
    co_return;
  }
  const std::uint64_t size = object->bytes ? object->bytes->size() : object->size;
  // An S3 ETag is the MD5 of the content; a stable digest of what selects the content does here.
  const std::string etag =
      object->bytes ? sha256_hex(*object->bytes).substr(0, 32)
                    : sha256_hex(std::to_string(object->content_seed) + ":" + std::to_string(size))
                          .substr(0, 32);
  http::response_header head;
  head.result(http::status::ok);
  head.set(bhttp::field::content_type, object->content_type);
  head.set(bhttp::field::content_length, std::to_string(size));
  head.set(bhttp::field::etag, "\"" + etag + "\"");
  head.set(bhttp::field::accept_ranges, "none");
  const bool header_sent = co_await out.send_header(std::move(head));
  if (!header_sent || out.head_only()) {
    co_return;
  }

  // The draw is made for every GET, so the same seed gives the same sequence of truncations.
  const bool truncate =
      routes.truncate_rate > 0 &&
      std::uniform_real_distribution<double>(0, 1)(routes.fault_random) < routes.truncate_rate &&
      size > 0;
  const std::uint64_t to_send = truncate ? size / 2 : size;
  std::string chunk(static_cast<std::size_t>(std::min<std::uint64_t>(chunk_bytes, size)), '\0');
  for (std::uint64_t sent = 0; sent < to_send;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), to_send - sent));
    if (object->bytes) {
      std::memcpy(chunk.data(), object->bytes->data() + sent, n);
    } else {
      generate_content(object->content_seed, sent, std::span<char>(chunk.data(), n));
    }
    const bool written = co_await out.write(std::string_view(chunk.data(), n));
    if (!written) {
      co_return;
    }
    sent += n;
  }
  if (truncate) {
    out.abort();
  }
}

}  // namespace

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
  url.append(downloads_prefix).append(percent_encode(path, true));
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

void generate_content(std::uint64_t seed, std::uint64_t offset, std::span<char> out) {
  const std::uint64_t stream_key = splitmix64(seed);
  std::size_t done = 0;
  std::uint64_t index = offset / 8;
  // Bytes of each word are taken least significant first, whatever the machine's byte order.
  const auto word_bytes = [&](std::uint64_t word_index) {
    std::uint64_t word = content_word(stream_key, word_index);
    if constexpr (std::endian::native == std::endian::big) {
      word = __builtin_bswap64(word);
    }
    std::array<char, 8> bytes{};
    std::memcpy(bytes.data(), &word, 8);
    return bytes;
  };
  if (const std::size_t skip = offset % 8; skip != 0 && !out.empty()) {
    const auto bytes = word_bytes(index++);
    done = std::min(out.size(), 8 - skip);
    std::memcpy(out.data(), bytes.data() + skip, done);
  }
  for (; out.size() - done >= 8; done += 8) {
    const auto bytes = word_bytes(index++);
    std::memcpy(out.data() + done, bytes.data(), 8);
  }
  if (done < out.size()) {
    const auto bytes = word_bytes(index);
    std::memcpy(out.data() + done, bytes.data(), out.size() - done);
  }
}

std::string make_report_pdf(std::string_view case_id, std::string_view report_file_id) {
  std::string text = "BT /F1 18 Tf 72 720 Td " + pdf_string("Certn background check report") +
                     " Tj ET\nBT /F1 12 Tf 72 690 Td " +
                     pdf_string("Case: " + std::string(case_id)) +
                     " Tj ET\nBT /F1 12 Tf 72 672 Td " +
                     pdf_string("Report file: " + std::string(report_file_id)) + " Tj ET\n";
  const std::vector<std::string> objects = {
      "<< /Type /Catalog /Pages 2 0 R >>",
      "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
      "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> "
      ">> /Contents 4 0 R >>",
      "<< /Length " + std::to_string(text.size()) + " >>\nstream\n" + text + "endstream",
      "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  };
  // The second line's bytes above 127 mark the file as binary for transfer tools.
  std::string pdf = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n";
  std::vector<std::size_t> offsets;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    offsets.push_back(pdf.size());
    pdf += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
  }
  const std::size_t xref_at = pdf.size();
  pdf += "xref\n0 " + std::to_string(objects.size() + 1) + "\n0000000000 65535 f \n";
  for (const std::size_t offset : offsets) {
    char entry[64];
    std::snprintf(entry, sizeof entry, "%010zu 00000 n \n", offset);
    pdf += entry;
  }
  pdf += "trailer\n<< /Size " + std::to_string(objects.size() + 1) +
         " /Root 1 0 R >>\nstartxref\n" + std::to_string(xref_at) + "\n%%EOF\n";
  return pdf;
}

std::string s3_error_xml(std::string_view code, std::string_view message) {
  return s3_error_xml(code, message, {});
}

std::string s3_error_xml(std::string_view code, std::string_view message,
                         const std::vector<std::pair<std::string, std::string>>& extra) {
  // Request ids only need to differ between responses, as S3's do.
  static std::atomic<std::uint64_t> counter{0};
  const std::uint64_t id = splitmix64(counter.fetch_add(1) + 0x5eed);
  char request_id[32];
  std::snprintf(request_id, sizeof request_id, "%016llX", static_cast<unsigned long long>(id));
  const std::string host_id = sha256_hex(request_id);

  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + xml_escape(code) +
                    "</Code><Message>" + xml_escape(message) + "</Message>";
  for (const auto& [name, value] : extra) {
    xml += "<" + name + ">" + xml_escape(value) + "</" + name + ">";
  }
  xml += "<RequestId>" + std::string(request_id, 16) + "</RequestId><HostId>" + host_id +
         "</HostId></Error>";
  return xml;
}

void add_download_routes(archiver::http::router& routes, const download_signer& signer,
                         download_lookup lookup, download_faults faults) {
  auto state = std::make_shared<download_routes>(download_routes{
      signer, std::move(lookup), faults.truncate_rate, std::mt19937_64(faults.seed)});
  routes.add_prefix_streaming(std::string(downloads_prefix),
                              [state](const http::request& req, http::response_stream& out) {
                                return serve_download(*state, req, out);
                              });
}

}  // namespace certn_sim
