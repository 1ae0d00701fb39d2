// certn-sim's download routes: GET and HEAD /_downloads/... answered with the object's content
// streamed in chunks (cut off half-way as a fault), or with S3's XML error for an unknown object
// or an expired, tampered or garbled URL. The URLs are signed and checked in
// downloads_signing.cpp, the content made in downloads_content.cpp.
#include "downloads.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "downloads_detail.hpp"
#include "encoding/encoding.hpp"

namespace certn_sim {

using downloads_detail::downloads_prefix;
using downloads_detail::format_iso8601;
using downloads_detail::splitmix64;

namespace {

namespace http = archiver::http;
namespace bhttp = archiver::beast::http;
using archiver::awaitable;
using std::chrono::system_clock;

constexpr std::size_t chunk_bytes = 64 * 1024;

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

std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  return archiver::encoding::to_hex(
      std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
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
