// certn-sim's presigned downloads, and the server features they rest on (prefix routes, streamed
// responses): the signer and the content generator as pure functions, then the routes served by a
// real http::server on 127.0.0.1 and fetched with the daemon's own client or a raw socket.
#include "downloads.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "http/client.hpp"
#include "http/server.hpp"
#include "ops/metrics.hpp"

using namespace archiver;
using namespace certn_sim;
using std::chrono::seconds;
using std::chrono::system_clock;
namespace bhttp = beast::http;

namespace {

const tcp::endpoint loopback_any_port(asio::ip::make_address("127.0.0.1"), 0);

// The content stream as its header documents it, written out independently of the generator.
std::uint64_t reference_splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string reference_content(std::uint64_t seed, std::uint64_t offset, std::size_t size) {
  const std::uint64_t key = reference_splitmix64(seed);
  std::string out;
  for (std::uint64_t i = offset; i < offset + size; ++i) {
    const std::uint64_t word = reference_splitmix64(key ^ ((i / 8) * 0xd1b54a32d192ed03ULL));
    out.push_back(static_cast<char>((word >> (8 * (i % 8))) & 0xff));
  }
  return out;
}

class sha256 {
 public:
  sha256() : context_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr);
  }
  void update(std::string_view data) { EVP_DigestUpdate(context_.get(), data.data(), data.size()); }
  std::string hex() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    EVP_DigestFinal_ex(context_.get(), digest.data(), &size);
    std::string out;
    for (unsigned int i = 0; i < size; ++i) {
      static constexpr char digits[] = "0123456789abcdef";
      out.push_back(digits[digest[i] >> 4]);
      out.push_back(digits[digest[i] & 0xf]);
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context_;
};

std::string sha256_of(std::string_view data) {
  sha256 digest;
  digest.update(data);
  return digest.hex();
}

// sha256 of generate_content(seed, 0, size), computed piecewise.
std::string expected_sha256(std::uint64_t seed, std::uint64_t size) {
  sha256 digest;
  std::string chunk(1 << 20, '\0');
  for (std::uint64_t at = 0; at < size;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), size - at));
    generate_content(seed, at, std::span<char>(chunk.data(), n));
    digest.update(std::string_view(chunk.data(), n));
    at += n;
  }
  return digest.hex();
}

class sha256_sink final : public http::body_sink {
 public:
  void write(std::string_view chunk) override {
    digest_.update(chunk);
    largest_chunk = std::max(largest_chunk, chunk.size());
  }
  std::string hex() { return digest_.hex(); }
  std::size_t largest_chunk = 0;

 private:
  sha256 digest_;
};

// The peak resident set size of this process, in bytes.
std::uint64_t peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmHWM:")) {
      return std::stoull(line.substr(6)) * 1024;
    }
  }
  return 0;
}

// Runs `task` to completion on `io`; servers sharing `io` keep serving meanwhile.
template <class T>
T run(asio::io_context& io, awaitable<T> task) {
  std::optional<T> out;
  std::exception_ptr escaped;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr error, T result) {
    escaped = error;
    out = std::move(result);
  });
  while (!out && !escaped) {
    if (io.run_one() == 0) {
      FAIL("io_context ran out of work before the task finished");
    }
  }
  if (escaped) {
    std::rethrow_exception(escaped);
  }
  return std::move(*out);
}

http::destination_policy permissive() {
  http::destination_policy policy;
  policy.allow_plain_http = true;
  policy.allow_special_addresses = true;
  return policy;
}

http::fetch_result fetch(asio::io_context& io, const std::string& url, http::body_sink& sink,
                         const std::string& method = "GET", ssl::context* tls = nullptr) {
  http::client client(io, permissive(), tls);
  http::request_options options;
  options.method = method;
  return run(io, client.fetch(url, options, sink));
}

std::string header(const http::fetch_result& result, const std::string& name) {
  for (const auto& [key, value] : result.head.headers) {
    if (beast::iequals(key, name)) {
      return value;
    }
  }
  return {};
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

constexpr std::uint64_t small_size = 1024 * 1024 + 13;  // not a multiple of a word or a chunk
constexpr std::uint64_t big_size = 64ULL * 1024 * 1024;

// An http::server with the download routes and a few objects, on 127.0.0.1, an ephemeral port.
class download_server {
 public:
  explicit download_server(asio::io_context& io, download_faults faults = {},
                           std::shared_ptr<http::tls_credentials> tls = nullptr)
      : metrics(registry), signer("test-secret", seconds(3600)) {
    objects["files/small"] = download_object{"image/jpeg", small_size, 7, {}};
    objects["files/big"] = download_object{"application/octet-stream", big_size, 42, {}};
    objects["files/empty"] = download_object{"text/plain", 0, 1, {}};
    objects["files/with space(1).jpg"] = download_object{"image/jpeg", 100, 3, {}};
    const std::string pdf = make_report_pdf("case-1", "report-1");
    objects["reports/r1"] = download_object{"application/pdf", pdf.size(), 0, pdf};
    http::router routes;
    add_download_routes(
        routes, signer,
        [this](std::string_view path) -> std::optional<download_object> {
          const auto found = objects.find(std::string(path));
          if (found == objects.end()) {
            return std::nullopt;
          }
          return found->second;
        },
        faults);
    srv = std::make_unique<http::server>(io, "downloads", loopback_any_port, std::move(routes),
                                         http::limits{}, metrics, std::move(tls));
    srv->start();
  }

  std::string base_url(const std::string& scheme = "http", const std::string& host = "127.0.0.1") {
    return scheme + "://" + host + ":" + std::to_string(srv->local_endpoint().port());
  }
  std::string url(const std::string& path, system_clock::time_point now = system_clock::now()) {
    return signer.presign(base_url(), path, now);
  }
  // The request target of url(path), for raw requests.
  std::string target(const std::string& path) { return url(path).substr(base_url().size()); }

  ops::registry registry;
  http::server_metrics metrics;
  download_signer signer;
  std::map<std::string, download_object> objects;
  std::unique_ptr<http::server> srv;
};

// One response read from a raw connection, or what stopped it.
struct raw_response {
  error_code error;
  unsigned status = 0;
  std::string body;
  bool keep_alive = false;
};

// Sends one request on an open socket and reads its response.
awaitable<raw_response> exchange(tcp::socket& socket, beast::flat_buffer& buffer,
                                 const std::string& method, const std::string& target) {
  const std::string request = method + " " + target + " HTTP/1.1\r\nHost: test\r\n\r\n";
  raw_response out;
  co_await asio::async_write(socket, asio::buffer(request),
                             asio::redirect_error(asio::use_awaitable, out.error));
  if (out.error) {
    co_return out;
  }
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1 << 30);
  parser.skip(method == "HEAD");
  co_await bhttp::async_read(socket, buffer, parser,
                             asio::redirect_error(asio::use_awaitable, out.error));
  out.status = parser.get().result_int();
  out.body = parser.get().body();
  out.keep_alive = parser.get().keep_alive();
  co_return out;
}

// The requests in order on one connection; stops at the first failure.
awaitable<std::vector<raw_response>> on_one_connection(
    unsigned short port, std::vector<std::pair<std::string, std::string>> requests) {
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                asio::use_awaitable);
  beast::flat_buffer buffer;
  std::vector<raw_response> out;
  for (const auto& [method, target] : requests) {
    out.push_back(co_await exchange(socket, buffer, method, target));
    if (out.back().error) {
      break;
    }
  }
  co_return out;
}

// True when the server closed the connection part-way through the body: Beast reports
// partial_message only when the stream ended before the promised Content-Length.
awaitable<bool> closed_mid_body(unsigned short port, std::string target) {
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                asio::use_awaitable);
  beast::flat_buffer buffer;
  const raw_response response = co_await exchange(socket, buffer, "GET", target);
  co_return response.error == bhttp::error::partial_message && response.status == 200;
}

}  // namespace

TEST_CASE("presigned URLs: signed, verified, expired, tampered, malformed") {
  const download_signer signer("secret", seconds(600));
  const auto now = system_clock::time_point(seconds(1'800'000'000));  // 2027-01-15T08:00:00Z
  const std::string url = signer.presign("http://sim:1/", "files/abc", now);
  CHECK(url ==
        "http://sim:1/_downloads/files/abc?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Date=20270115T080000Z&X-Amz-Expires=600&X-Amz-Signature=" +
            url.substr(url.size() - 64));
  const std::string target = url.substr(std::string("http://sim:1").size());
  std::string path;

  SUBCASE("valid until the expiry, expired one second after") {
    CHECK(signer.verify(target, now, &path) == download_signer::verdict::ok);
    CHECK(path == "files/abc");
    CHECK(signer.verify(target, now + seconds(600), &path) == download_signer::verdict::ok);
    CHECK(signer.verify(target, now + seconds(601), &path) == download_signer::verdict::expired);
    const auto checked = signer.check(target, now + seconds(601));
    CHECK(checked.lifetime == seconds(600));
    CHECK(checked.expires_at == now + seconds(600));
  }
  SUBCASE("a changed signature, path, date or lifetime no longer matches") {
    std::string tampered = target;
    tampered.back() = tampered.back() == '0' ? '1' : '0';
    CHECK(signer.verify(tampered, now, &path) == download_signer::verdict::bad_signature);
    CHECK(signer.verify(std::regex_replace(target, std::regex("abc"), "abd"), now, &path) ==
          download_signer::verdict::bad_signature);
    CHECK(signer.verify(std::regex_replace(target, std::regex("Expires=600"), "Expires=6000"), now,
                        &path) == download_signer::verdict::bad_signature);
    CHECK(signer.verify(std::regex_replace(target, std::regex("T080000Z"), "T090000Z"), now,
                        &path) == download_signer::verdict::bad_signature);
    const download_signer other("other secret", seconds(600));
    CHECK(other.verify(target, now, &path) == download_signer::verdict::bad_signature);
  }
  SUBCASE("missing or garbled parameters are malformed") {
    for (const std::string parameter :
         {"X-Amz-Algorithm", "X-Amz-Date", "X-Amz-Expires", "X-Amz-Signature"}) {
      CAPTURE(parameter);
      const std::string without =
          std::regex_replace(target, std::regex(parameter + "=[^&]*&?"), "");
      CHECK(signer.verify(without, now, &path) == download_signer::verdict::malformed);
    }
    CHECK(signer.verify("/_downloads/files/abc", now, &path) ==
          download_signer::verdict::malformed);
    CHECK(signer.verify("/elsewhere/files/abc?" + target.substr(target.find('?') + 1), now,
                        &path) == download_signer::verdict::malformed);
    CHECK(signer.verify(std::regex_replace(target, std::regex("20270115T"), "2027-01-15T"), now,
                        &path) == download_signer::verdict::malformed);
    CHECK(signer.verify(std::regex_replace(target, std::regex("20270115T"), "20271315T"), now,
                        &path) == download_signer::verdict::malformed);
    CHECK(signer.verify(std::regex_replace(target, std::regex("Expires=600"), "Expires=-6"), now,
                        &path) == download_signer::verdict::malformed);
    CHECK(signer.verify(std::regex_replace(target, std::regex("AWS4-HMAC-SHA256"), "MD5"), now,
                        &path) == download_signer::verdict::malformed);
    CHECK(signer.verify(target + "&X-Amz-Date=20270115T080000Z", now, &path) ==
          download_signer::verdict::malformed);
    CHECK(signer.verify("/_downloads/files/%zz?" + target.substr(target.find('?') + 1), now,
                        &path) == download_signer::verdict::malformed);
  }
  SUBCASE("parameters S3 does not sign with are ignored") {
    CHECK(signer.verify(target + "&response-content-type=x", now, &path) ==
          download_signer::verdict::ok);
  }
  SUBCASE("a path with reserved characters is percent-encoded and round-trips") {
    const std::string odd_url = signer.presign("http://sim:1", "files/a b&c?d%e", now);
    CHECK(contains(odd_url, "/_downloads/files/a%20b%26c%3Fd%25e?"));
    CHECK(signer.verify(odd_url.substr(12), now, &path) == download_signer::verdict::ok);
    CHECK(path == "files/a b&c?d%e");
  }
}

TEST_CASE("generated content is deterministic and addressable by offset") {
  std::string whole(1000, '\0');
  generate_content(5, 0, whole);
  CHECK(whole == reference_content(5, 0, 1000));

  SUBCASE("any offset and length gives the same bytes as the whole") {
    for (const std::uint64_t offset : {0, 1, 7, 8, 9, 15, 16, 333}) {
      for (const std::size_t length : {0, 1, 3, 8, 9, 17, 200}) {
        CAPTURE(offset);
        CAPTURE(length);
        std::string part(length, '\0');
        generate_content(5, offset, part);
        CHECK(part == whole.substr(offset, length));
      }
    }
    CHECK(reference_content(5, (1ULL << 40) + 3, 20) == [] {
      std::string far(20, '\0');
      generate_content(5, (1ULL << 40) + 3, far);
      return far;
    }());
  }
  SUBCASE("another seed, other bytes") {
    std::string other(1000, '\0');
    generate_content(6, 0, other);
    CHECK(other != whole);
  }
}

TEST_CASE("the report PDF is well formed: header, objects at their xref offsets, trailer") {
  const std::string pdf = make_report_pdf("case (1)", "report\\2");
  REQUIRE(pdf.starts_with("%PDF-1.4\n"));
  CHECK(pdf.ends_with("%%EOF\n"));
  CHECK(contains(pdf, "/BaseFont /Helvetica"));
  CHECK(contains(pdf, "(Case: case \\(1\\))"));
  CHECK(contains(pdf, "(Report file: report\\\\2)"));

  const std::size_t startxref = pdf.rfind("startxref\n");
  REQUIRE(startxref != std::string::npos);
  const std::size_t xref_at = std::stoul(pdf.substr(startxref + 10));
  REQUIRE(pdf.compare(xref_at, 5, "xref\n") == 0);
  std::size_t line = pdf.find('\n', xref_at) + 1;
  REQUIRE(pdf.compare(line, 4, "0 6\n") == 0);
  line += 4;
  CHECK(pdf.compare(line, 20, "0000000000 65535 f \n") == 0);
  for (int object = 1; object <= 5; ++object) {
    line += 20;
    CAPTURE(object);
    const std::string entry = pdf.substr(line, 20);
    CHECK(entry.substr(10) == " 00000 n \n");
    const std::size_t offset = std::stoul(entry.substr(0, 10));
    CHECK(pdf.compare(offset, std::to_string(object).size() + 6,
                      std::to_string(object) + " 0 obj") == 0);
  }
  CHECK(pdf.compare(line + 20, 8, "trailer\n") == 0);
  CHECK(contains(pdf, "<< /Size 6 /Root 1 0 R >>"));

  // The content stream's /Length is its byte count.
  const std::size_t length_at = pdf.find("/Length ");
  const std::size_t stream_at = pdf.find("stream\n", length_at) + 7;
  const std::size_t end_at = pdf.find("endstream", stream_at);
  CHECK(std::stoul(pdf.substr(length_at + 8)) == end_at - stream_at);
}

TEST_CASE("S3 error XML is escaped and shaped like S3's") {
  const std::string xml = s3_error_xml("AccessDenied", "Request <has> expired & \"gone\"");
  CHECK(xml.starts_with(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
      "<Message>Request &lt;has&gt; expired &amp; &quot;gone&quot;</Message><RequestId>"));
  CHECK(xml.ends_with("</HostId></Error>"));
  CHECK(std::regex_search(
      xml, std::regex("<RequestId>[0-9A-F]{16}</RequestId><HostId>[0-9a-f]+</HostId>")));
  CHECK(s3_error_xml("A", "b") != s3_error_xml("A", "b"));  // request ids differ
  const std::string with_key = s3_error_xml("NoSuchKey", "x", {{"Key", "files/<1>"}});
  CHECK(contains(with_key, "<Message>x</Message><Key>files/&lt;1&gt;</Key><RequestId>"));
}

TEST_CASE("downloads: the streamed content is the generated stream") {
  asio::io_context io;
  download_server srv(io);

  SUBCASE("a small object, with its headers") {
    sha256_sink sink;
    const auto result = fetch(io, srv.url("files/small"), sink);
    REQUIRE_MESSAGE(result.error == http::failure::none, result.message);
    CHECK(result.head.status == 200);
    CHECK(result.body_bytes == small_size);
    CHECK(header(result, "Content-Type") == "image/jpeg");
    CHECK(header(result, "Content-Length") == std::to_string(small_size));
    CHECK(header(result, "ETag").size() == 34);
    CHECK(sink.hex() == sha256_of(reference_content(7, 0, small_size)));
    CHECK(srv.metrics.requests.value({"downloads", "/_downloads/", "200"}) == 1);
  }
  SUBCASE("64 MiB, chunk by chunk, without holding the body") {
    const std::uint64_t peak_before = peak_rss_bytes();
    sha256_sink sink;
    const auto started = std::chrono::steady_clock::now();
    const auto result = fetch(io, srv.url("files/big"), sink);
    const auto took = std::chrono::steady_clock::now() - started;
    REQUIRE_MESSAGE(result.error == http::failure::none, result.message);
    CHECK(result.body_bytes == big_size);
    CHECK(sink.hex() == expected_sha256(42, big_size));
    const std::uint64_t growth = peak_rss_bytes() - peak_before;
    MESSAGE("64 MiB in " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                         << " ms; peak RSS grew by " << growth / 1024 << " KiB; largest chunk "
                         << sink.largest_chunk);
    CHECK(growth < 24ULL * 1024 * 1024);
  }
  SUBCASE("fixed bytes: the report PDF") {
    http::string_sink sink(1 << 20);
    const auto result = fetch(io, srv.url("reports/r1"), sink);
    REQUIRE_MESSAGE(result.error == http::failure::none, result.message);
    CHECK(result.head.status == 200);
    CHECK(header(result, "Content-Type") == "application/pdf");
    CHECK(sink.data() == *srv.objects["reports/r1"].bytes);
  }
  SUBCASE("an empty object and a path with reserved characters") {
    http::string_sink sink(1 << 20);
    auto result = fetch(io, srv.url("files/empty"), sink);
    REQUIRE_MESSAGE(result.error == http::failure::none, result.message);
    CHECK(result.head.status == 200);
    CHECK(sink.data().empty());
    result = fetch(io, srv.url("files/with space(1).jpg"), sink);
    REQUIRE_MESSAGE(result.error == http::failure::none, result.message);
    CHECK(result.head.status == 200);
    CHECK(sink.data() == reference_content(3, 0, 100));
  }
  SUBCASE("HEAD: the headers only") {
    http::string_sink sink(1 << 20);
    const auto result = fetch(io, srv.url("files/small"), sink, "HEAD");
    REQUIRE_MESSAGE(result.error == http::failure::none, result.message);
    CHECK(result.head.status == 200);
    CHECK(header(result, "Content-Length") == std::to_string(small_size));
    CHECK(result.body_bytes == 0);
  }
}

TEST_CASE("downloads: S3's answers to expired, tampered, malformed and unknown URLs") {
  asio::io_context io;
  download_server srv(io);
  http::string_sink sink(1 << 20);

  SUBCASE("expired: 403 AccessDenied, Request has expired") {
    const auto result =
        fetch(io, srv.url("files/small", system_clock::now() - seconds(3601)), sink);
    REQUIRE_MESSAGE(result.error == http::failure::none, result.message);
    CHECK(result.head.status == 403);
    CHECK(header(result, "Content-Type") == "application/xml");
    CHECK(contains(sink.data(),
                   "<Code>AccessDenied</Code><Message>Request has expired</Message>"
                   "<X-Amz-Expires>3600</X-Amz-Expires><Expires>"));
    CHECK(contains(sink.data(), "<ServerTime>"));
    CHECK(srv.metrics.requests.value({"downloads", "/_downloads/", "403"}) == 1);
  }
  SUBCASE("tampered signature: 403 SignatureDoesNotMatch") {
    std::string url = srv.url("files/small");
    url.back() = url.back() == 'a' ? 'b' : 'a';
    const auto result = fetch(io, url, sink);
    CHECK(result.head.status == 403);
    CHECK(contains(sink.data(), "<Code>SignatureDoesNotMatch</Code>"));
  }
  SUBCASE("tampered path: 403 SignatureDoesNotMatch") {
    const std::string url = std::regex_replace(srv.url("files/small"), std::regex("small"), "big");
    const auto result = fetch(io, url, sink);
    CHECK(result.head.status == 403);
    CHECK(contains(sink.data(), "<Code>SignatureDoesNotMatch</Code>"));
  }
  SUBCASE("malformed: 400 AuthorizationQueryParametersError") {
    const auto result = fetch(io, srv.base_url() + "/_downloads/files/small?X-Amz-Date=x", sink);
    CHECK(result.head.status == 400);
    CHECK(contains(sink.data(), "<Code>AuthorizationQueryParametersError</Code>"));
  }
  SUBCASE("unknown object: 404 NoSuchKey") {
    const auto result = fetch(io, srv.url("files/nothing"), sink);
    CHECK(result.head.status == 404);
    CHECK(contains(sink.data(), "<Code>NoSuchKey</Code>"));
    CHECK(contains(sink.data(), "<Key>files/nothing</Key>"));
  }
  SUBCASE("another method: 405") {
    const auto result = fetch(io, srv.url("files/small"), sink, "DELETE");
    CHECK(result.head.status == 405);
    CHECK(header(result, "Allow") == "GET, HEAD");
  }
}

TEST_CASE("downloads: the truncation fault stops half-way and closes the connection") {
  asio::io_context io;
  download_server srv(io, download_faults{1.0, 3});
  sha256_sink sink;
  const auto result = fetch(io, srv.url("files/small"), sink);
  CHECK(result.error == http::failure::truncated);
  CHECK(result.head.status == 200);
  CHECK(result.body_bytes == small_size / 2);
  CHECK(run(io, closed_mid_body(srv.srv->local_endpoint().port(), srv.target("files/small"))));

  SUBCASE("HEAD is not truncated") {
    http::string_sink head_sink(1024);
    const auto head = fetch(io, srv.url("files/small"), head_sink, "HEAD");
    CHECK(head.error == http::failure::none);
  }
  SUBCASE("a rate of one half truncates some and not others, the same for the same seed") {
    auto outcomes = [&](std::uint64_t seed) {
      asio::io_context local_io;
      download_server half(local_io, download_faults{0.5, seed});
      std::string out;
      for (int i = 0; i < 16; ++i) {
        http::string_sink small_sink(1 << 20);
        const auto fetched = fetch(local_io, half.url("files/with space(1).jpg"), small_sink);
        out.push_back(fetched.error == http::failure::truncated ? 't' : '.');
      }
      return out;
    };
    const std::string first = outcomes(11);
    CHECK(first == outcomes(11));
    CHECK(contains(first, "t"));
    CHECK(contains(first, "."));
  }
}

TEST_CASE("downloads: keep-alive goes on after a streamed response") {
  asio::io_context io;
  download_server srv(io);
  const auto responses = run(
      io, on_one_connection(srv.srv->local_endpoint().port(), {{"GET", srv.target("files/small")},
                                                               {"HEAD", srv.target("files/small")},
                                                               {"GET", srv.target("files/nothing")},
                                                               {"GET", srv.target("reports/r1")}}));
  REQUIRE(responses.size() == 4);
  CHECK(!responses[0].error);
  CHECK(responses[0].status == 200);
  CHECK(responses[0].keep_alive);
  CHECK(responses[0].body == reference_content(7, 0, small_size));
  CHECK(!responses[1].error);
  CHECK(responses[1].status == 200);
  CHECK(responses[1].body.empty());
  CHECK(!responses[2].error);
  CHECK(responses[2].status == 404);
  CHECK(!responses[3].error);
  CHECK(responses[3].status == 200);
  CHECK(responses[3].body == *srv.objects["reports/r1"].bytes);
}

namespace {

// A self-signed certificate for "localhost", made with the openssl command.
struct self_signed {
  std::filesystem::path dir;
  self_signed() {
    dir = std::filesystem::temp_directory_path() /
          ("certn-sim-tls-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir);
    const std::string command =
        "cd '" + dir.string() +
        "' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout key.pem -out cert.pem -days 2 -subj /CN=localhost "
        "-addext subjectAltName=DNS:localhost >openssl.log 2>&1";
    if (std::system(command.c_str()) != 0) {
      throw std::runtime_error("making a test certificate failed in " + dir.string());
    }
  }
  ~self_signed() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

}  // namespace

TEST_CASE("downloads: streamed over TLS, whole or truncated") {
  const self_signed certificate;
  asio::io_context io;
  ssl::context trust(ssl::context::tls_client);
  trust.load_verify_file(certificate.file("cert.pem"));
  auto tls = std::make_shared<http::tls_credentials>(certificate.file("cert.pem"),
                                                     certificate.file("key.pem"));
  SUBCASE("whole") {
    download_server srv(io, {}, tls);
    sha256_sink sink;
    const auto result = fetch(
        io,
        srv.signer.presign(srv.base_url("https", "localhost"), "files/small", system_clock::now()),
        sink, "GET", &trust);
    REQUIRE_MESSAGE(result.error == http::failure::none, result.message);
    CHECK(result.body_bytes == small_size);
    CHECK(sink.hex() == sha256_of(reference_content(7, 0, small_size)));
  }
  SUBCASE("truncated") {
    download_server srv(io, download_faults{1.0, 1}, tls);
    sha256_sink sink;
    const auto result = fetch(
        io,
        srv.signer.presign(srv.base_url("https", "localhost"), "files/small", system_clock::now()),
        sink, "GET", &trust);
    CHECK(result.error == http::failure::truncated);
    CHECK(result.body_bytes == small_size / 2);
  }
}

TEST_CASE("routing: an exact route wins, then the longest prefix; labels are the prefixes") {
  auto plain = [](std::string name) {
    return [name](const http::request&) -> awaitable<http::response> {
      co_return http::text_response(http::status::ok, name);
    };
  };
  http::router routes;
  routes.add("/a/b", plain("exact"));
  routes.add_prefix("/a/", plain("short"));
  routes.add_prefix_streaming(
      "/a/b/", [](const http::request&, http::response_stream& out) -> awaitable<void> {
        http::response_header head;
        head.result(http::status::ok);
        head.set(bhttp::field::content_length, "8");
        const bool sent = co_await out.send_header(std::move(head));
        if (sent) {
          co_await out.write("str");
          co_await out.write("eamed");
        }
      });
  routes.add_prefix("/a/b/c/", plain("longest"));

  SUBCASE("match") {
    CHECK(routes.match("/a/b?x=1")->label == "/a/b");
    CHECK(routes.match("/a/b")->on_request != nullptr);
    CHECK(routes.match("/a/x")->label == "/a/");
    CHECK(routes.match("/a/")->label == "/a/");
    CHECK(routes.match("/a/b/")->label == "/a/b/");
    CHECK(routes.match("/a/b/x")->on_stream != nullptr);
    CHECK(routes.match("/a/b/c/d")->label == "/a/b/c/");
    CHECK(!routes.match("/a"));
    CHECK(!routes.match("/z/a/"));
    CHECK(routes.find("/a/x")->first == "/a/");
    CHECK(routes.find("/a/b/x")->first == "/a/");  // find() knows the plain routes only
  }
  SUBCASE("served") {
    asio::io_context io;
    ops::registry registry;
    http::server_metrics metrics(registry);
    http::server srv(io, "routes", loopback_any_port, routes, http::limits{}, metrics);
    srv.start();
    const auto responses =
        run(io, on_one_connection(srv.local_endpoint().port(), {{"GET", "/a/b?q"},
                                                                {"GET", "/a/x/y"},
                                                                {"GET", "/a/b/x"},
                                                                {"GET", "/a/b/c/d"},
                                                                {"GET", "/a"}}));
    REQUIRE(responses.size() == 5);
    CHECK(responses[0].body == "exact");
    CHECK(responses[1].body == "short");
    CHECK(responses[2].body == "streamed");
    CHECK(responses[3].body == "longest");
    CHECK(responses[4].status == 404);
    CHECK(metrics.requests.value({"routes", "/a/", "200"}) == 1);
    CHECK(metrics.requests.value({"routes", "/a/b/", "200"}) == 1);
    CHECK(metrics.requests.value({"routes", "unmatched", "404"}) == 1);
  }
}

TEST_CASE("streaming handlers that fail: 500 before the header, a closed connection after") {
  http::router routes;
  routes.add_prefix_streaming("/throw-early",
                              [](const http::request&, http::response_stream&) -> awaitable<void> {
                                throw std::runtime_error("early");
                                co_return;
                              });
  routes.add_prefix_streaming(
      "/silent",
      [](const http::request&, http::response_stream&) -> awaitable<void> { co_return; });
  routes.add_prefix_streaming(
      "/throw-late", [](const http::request&, http::response_stream& out) -> awaitable<void> {
        http::response_header head;
        head.result(http::status::ok);
        head.set(bhttp::field::content_length, "10");
        co_await out.send_header(std::move(head));
        co_await out.write("12345");
        throw std::runtime_error("late");
      });
  routes.add_prefix_streaming(
      "/too-long", [](const http::request&, http::response_stream& out) -> awaitable<void> {
        http::response_header head;
        head.result(http::status::ok);
        head.set(bhttp::field::content_length, "2");
        co_await out.send_header(std::move(head));
        co_await out.write("123");
      });
  routes.add("/ok", [](const http::request&) -> awaitable<http::response> {
    co_return http::text_response(http::status::ok, "ok");
  });
  asio::io_context io;
  ops::registry registry;
  http::server_metrics metrics(registry);
  http::server srv(io, "failing", loopback_any_port, routes, http::limits{}, metrics);
  srv.start();
  const unsigned short port = srv.local_endpoint().port();

  SUBCASE("nothing sent yet: a 500, and the connection goes on") {
    const auto responses = run(
        io, on_one_connection(port, {{"GET", "/throw-early"}, {"GET", "/silent"}, {"GET", "/ok"}}));
    REQUIRE(responses.size() == 3);
    CHECK(responses[0].status == 500);
    CHECK(responses[1].status == 500);
    CHECK(responses[2].status == 200);
    CHECK(metrics.requests.value({"failing", "/throw-early", "500"}) == 1);
  }
  SUBCASE("part of the body sent: the connection is closed") {
    const auto responses =
        run(io, on_one_connection(port, {{"GET", "/throw-late"}, {"GET", "/ok"}}));
    REQUIRE(responses.size() == 1);
    CHECK(responses[0].error == bhttp::error::partial_message);
    CHECK(responses[0].status == 200);
  }
  SUBCASE("a body longer than promised is refused before it is sent") {
    const auto responses = run(io, on_one_connection(port, {{"GET", "/too-long"}, {"GET", "/ok"}}));
    REQUIRE(responses.size() == 1);
    CHECK(responses[0].error == bhttp::error::partial_message);
  }
}
