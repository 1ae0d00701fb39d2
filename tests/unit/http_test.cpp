// URL parsing, destination policy and proxy configuration of the outgoing client: pure functions,
// no I/O.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "http/address_policy.hpp"
#include "http/framing.hpp"
#include "http/proxy.hpp"
#include "http/url.hpp"

using namespace archiver::http;
namespace ip = archiver::asio::ip;

namespace {

std::string parse_error(const std::string& text) {
  std::string error;
  const auto parsed = parse_url(text, &error);
  CHECK_MESSAGE(!parsed, "parsed unexpectedly: " << text);
  return error;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("parses absolute http and https URLs") {
  struct row {
    std::string text, scheme, host;
    unsigned short port;
    std::string target;
  };
  const std::vector<row> rows = {
      {"https://example.com", "https", "example.com", 443, "/"},
      {"http://example.com", "http", "example.com", 80, "/"},
      {"HTTPS://Example.COM/a/b?c=d", "https", "example.com", 443, "/a/b?c=d"},
      {"https://example.com:8443/x", "https", "example.com", 8443, "/x"},
      {"https://example.com?q=1", "https", "example.com", 443, "/?q=1"},
      {"https://example.com/p#frag", "https", "example.com", 443, "/p"},
      {"https://example.com#frag", "https", "example.com", 443, "/"},
      {"http://127.0.0.1:8080/", "http", "127.0.0.1", 8080, "/"},
      {"https://[::1]/", "https", "::1", 443, "/"},
      {"https://[2001:DB8::1]:9443/v", "https", "2001:db8::1", 9443, "/v"},
      {"https://b-1.s3_x.amazonaws.com/k", "https", "b-1.s3_x.amazonaws.com", 443, "/k"},
      {"https://example.com:65535/", "https", "example.com", 65535, "/"},
  };
  for (const row& r : rows) {
    CAPTURE(r.text);
    std::string error;
    const auto parsed = parse_url(r.text, &error);
    REQUIRE_MESSAGE(parsed, error);
    CHECK(parsed->scheme == r.scheme);
    CHECK(parsed->host == r.host);
    CHECK(parsed->port == r.port);
    CHECK(parsed->target == r.target);
  }
}

TEST_CASE("refuses userinfo and names it") {
  CHECK(contains(parse_error("https://user@example.com/"), "userinfo"));
  CHECK(contains(parse_error("https://user:pw@example.com/"), "userinfo"));
  CHECK(contains(parse_error("https://evil.com@127.0.0.1/"), "userinfo"));
}

TEST_CASE("refuses bad ports") {
  CHECK(contains(parse_error("https://example.com:0/"), "out of range"));
  CHECK(contains(parse_error("https://example.com:65536/"), "out of range"));
  CHECK(contains(parse_error("https://example.com:99999/"), "out of range"));
  CHECK(contains(parse_error("https://example.com:/"), "not a number"));
  CHECK(contains(parse_error("https://example.com:12a/"), "not a number"));
  CHECK(contains(parse_error("https://example.com:-1/"), "not a number"));
  CHECK(contains(parse_error("https://example.com:1234567/"), "not a number"));
}

TEST_CASE("refuses missing or unsupported schemes") {
  CHECK(contains(parse_error("example.com/path"), "no scheme"));
  CHECK(contains(parse_error("//example.com/path"), "no scheme"));
  CHECK(contains(parse_error("ftp://example.com/"), "unsupported URL scheme 'ftp'"));
  CHECK(contains(parse_error("file:///etc/passwd"), "unsupported URL scheme 'file'"));
}

TEST_CASE("refuses spaces, control characters and malformed hosts") {
  CHECK(contains(parse_error("https://example.com/a b"), "space or control"));
  CHECK(contains(parse_error("https://exa mple.com/"), "space or control"));
  CHECK(contains(parse_error("https://example.com/\r\nX: y"), "space or control"));
  CHECK(contains(parse_error(std::string("https://example.com/\0", 21)), "space or control"));
  CHECK(contains(parse_error("https:///path"), "no host"));
  CHECK(contains(parse_error("https://:443/"), "no host"));
  CHECK(contains(parse_error("https://[::1/"), "closing ']'"));
  CHECK(contains(parse_error("https://[nonsense]/"), "not a valid IPv6"));
  CHECK(contains(parse_error("https://[::1]x/"), "after the IPv6"));
  CHECK(contains(parse_error("https://exa%6dple.com/"), "not allowed in a host name"));
  CHECK(parse_url("", nullptr) == std::nullopt);
}

TEST_CASE("Host header brackets IPv6 and carries non-default ports") {
  CHECK(host_header(*parse_url("https://example.com/", nullptr)) == "example.com");
  CHECK(host_header(*parse_url("http://example.com:8080/", nullptr)) == "example.com:8080");
  CHECK(host_header(*parse_url("https://[::1]/", nullptr)) == "[::1]");
  CHECK(host_header(*parse_url("https://[::1]:8443/", nullptr)) == "[::1]:8443");
}

TEST_CASE("host_matches: exact names and leading-label wildcards, case-insensitive") {
  const std::vector<std::string> patterns = {"*.amazonaws.com", "api.certn.co"};
  struct row {
    std::string host;
    bool expected;
  };
  const std::vector<row> rows = {
      {"bucket.s3.amazonaws.com", true},
      {"s3.amazonaws.com", true},
      {"BUCKET.S3.AmazonAWS.com", true},
      {"bucket.s3.amazonaws.com.", true},
      {"amazonaws.com", false},
      {"evilamazonaws.com", false},
      {".amazonaws.com", false},
      {"amazonaws.com.evil.net", false},
      {"api.certn.co", true},
      {"API.Certn.Co", true},
      {"x.api.certn.co", false},
      {"api.certn.co.uk", false},
      {"certn.co", false},
      {"", false},
  };
  for (const row& r : rows) {
    CAPTURE(r.host);
    CHECK(host_matches(r.host, patterns) == r.expected);
  }
  CHECK_FALSE(host_matches("example.com", std::vector<std::string>{}));
}

TEST_CASE("classify covers every special IPv4 and IPv6 range") {
  struct row {
    std::string address;
    address_kind expected;
  };
  const std::vector<row> rows = {
      {"8.8.8.8", address_kind::public_address},
      {"1.1.1.1", address_kind::public_address},
      {"127.0.0.1", address_kind::loopback},
      {"127.255.255.254", address_kind::loopback},
      {"10.0.0.1", address_kind::private_network},
      {"10.255.255.255", address_kind::private_network},
      {"172.16.0.1", address_kind::private_network},
      {"172.31.255.255", address_kind::private_network},
      {"172.15.255.255", address_kind::public_address},
      {"172.32.0.0", address_kind::public_address},
      {"192.168.1.1", address_kind::private_network},
      {"192.169.0.1", address_kind::public_address},
      {"100.64.0.1", address_kind::private_network},
      {"100.127.255.255", address_kind::private_network},
      {"100.128.0.0", address_kind::public_address},
      {"100.63.255.255", address_kind::public_address},
      {"169.254.169.254", address_kind::link_local},
      {"0.0.0.0", address_kind::unspecified},
      {"0.1.2.3", address_kind::unspecified},
      {"224.0.0.1", address_kind::multicast},
      {"239.255.255.255", address_kind::multicast},
      {"240.0.0.1", address_kind::other_special},
      {"255.255.255.255", address_kind::other_special},
      {"192.0.2.1", address_kind::other_special},
      {"::1", address_kind::loopback},
      {"::", address_kind::unspecified},
      {"fe80::1", address_kind::link_local},
      {"febf::1", address_kind::link_local},
      {"fc00::1", address_kind::private_network},
      {"fd12:3456::1", address_kind::private_network},
      {"ff02::1", address_kind::multicast},
      {"2001:db8::1", address_kind::other_special},
      {"64:ff9b::a00:1", address_kind::other_special},
      {"2606:4700:4700::1111", address_kind::public_address},
      {"::ffff:127.0.0.1", address_kind::loopback},
      {"::ffff:10.1.2.3", address_kind::private_network},
      {"::ffff:169.254.169.254", address_kind::link_local},
      {"::ffff:0.0.0.0", address_kind::unspecified},
      {"::ffff:224.0.0.1", address_kind::multicast},
      {"::ffff:8.8.8.8", address_kind::public_address},
  };
  for (const row& r : rows) {
    CAPTURE(r.address);
    CHECK(classify(ip::make_address(r.address)) == r.expected);
  }
}

TEST_CASE("a default destination policy is strict") {
  const destination_policy policy;
  CHECK_FALSE(policy.allow_plain_http);
  CHECK_FALSE(policy.allow_special_addresses);
  CHECK(policy.allowed_hosts.empty());
  CHECK(std::string(describe(address_kind::link_local)) == "link-local");
}

TEST_CASE("proxy_from_environment reads both spellings, lower case first") {
  const auto settings = proxy_from_environment({{"HTTPS_PROXY", "http://upper:3128"},
                                                {"https_proxy", "http://lower:3128"},
                                                {"HTTP_PROXY", "http://plain:8080"},
                                                {"NO_PROXY", "localhost,.internal"},
                                                {"PATH", "/usr/bin"}});
  CHECK(settings.https_proxy == "http://lower:3128");
  CHECK(settings.http_proxy == "http://plain:8080");
  CHECK(settings.no_proxy == "localhost,.internal");

  const auto empty_lower = proxy_from_environment({{"https_proxy", ""}, {"HTTPS_PROXY", "http://u:1"}});
  CHECK(empty_lower.https_proxy == "http://u:1");
  const auto none = proxy_from_environment({});
  CHECK(none.https_proxy.empty());
  CHECK(none.http_proxy.empty());
  CHECK(none.no_proxy.empty());
}

TEST_CASE("NO_PROXY matches names, domain suffixes, IP literals, ports and *") {
  struct row {
    std::string host;
    unsigned short port;
    std::string no_proxy;
    bool bypass;
  };
  const std::vector<row> rows = {
      {"example.com", 443, "", false},
      {"example.com", 443, "*", true},
      {"example.com", 443, "example.com", true},
      {"a.example.com", 443, "example.com", true},
      {"a.example.com", 443, ".example.com", true},
      {"example.com", 443, ".example.com", true},
      {"a.example.com", 443, "*.example.com", true},
      {"badexample.com", 443, "example.com", false},
      {"badexample.com", 443, ".example.com", false},
      {"example.com.", 443, "EXAMPLE.com", true},
      {"example.com", 443, " other.org , example.com ", true},
      {"example.com", 443, "example.com:8443", false},
      {"example.com", 8443, "example.com:8443", true},
      {"10.1.2.3", 80, "10.1.2.3", true},
      {"10.1.2.3", 80, "10.1.2.4", false},
      {"10.1.2.3", 80, "10.1.2.3:81", false},
      {"::1", 443, "::1", true},
      {"::1", 443, "0:0::1", true},
      {"::1", 443, "[::1]:443", true},
      {"::1", 443, "[::1]:80", false},
      {"10.1.2.3", 80, "2.3", false},  // an address never suffix-matches
      {"example.com", 443, "com:x,:443,[", false},
  };
  for (const row& r : rows) {
    CHECK_MESSAGE(bypasses_proxy(r.host, r.port, r.no_proxy) == r.bypass,
                  r.host << ":" << r.port << " against '" << r.no_proxy << "'");
  }
}

TEST_CASE("proxy URLs: http only, credentials turned into Basic and never in errors") {
  std::string error;
  auto proxy = parse_proxy_url("http://proxy.corp:3128", &error);
  REQUIRE(proxy);
  CHECK(proxy->host == "proxy.corp");
  CHECK(proxy->port == 3128);
  CHECK(proxy->authorization.empty());
  CHECK(proxy->display() == "proxy.corp:3128");

  proxy = parse_proxy_url("http://Aladdin:open%20sesame@Proxy.Corp/", &error);
  REQUIRE(proxy);
  CHECK(proxy->host == "proxy.corp");
  CHECK(proxy->port == 80);
  CHECK(proxy->authorization == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  CHECK(proxy->display() == "proxy.corp:80");

  proxy = parse_proxy_url("[::1]:8080", &error);
  REQUIRE(proxy);
  CHECK(proxy->display() == "[::1]:8080");

  CHECK_FALSE(parse_proxy_url("https://proxy:443", &error));
  CHECK(contains(error, "only http://"));
  CHECK_FALSE(parse_proxy_url("http://user:secret@proxy:99999", &error));
  CHECK_FALSE(contains(error, "secret"));
  CHECK_FALSE(parse_proxy_url("http://proxy:3128/path", &error));
  CHECK_FALSE(parse_proxy_url("http://user:secret@", &error));
  CHECK_FALSE(contains(error, "secret"));
}

namespace {

framing::head_result check_head(std::string_view bytes) {
  framing::head_checker checker;
  return checker.check(bytes);
}

}  // namespace

TEST_CASE(
    "framing: a well-formed head is complete, with its length and the empty lines before it") {
  const std::string head = "POST /x?a=b HTTP/1.1\r\nHost: h\r\nContent-Length:  5 \r\n\r\n";
  const auto result = check_head("\r\n\r\n" + head + "hello");
  CHECK(result.state == framing::head_state::complete);
  CHECK(result.skip == 4);
  CHECK(result.length == head.size());
  CHECK_FALSE(result.other_codings);
}

TEST_CASE("framing: bytes arriving piece by piece give the same verdict as all at once") {
  const std::string good = "GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
  const std::string bad = "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n";
  for (const std::string& input : {good, bad}) {
    framing::head_checker checker;
    framing::head_result result;
    for (std::size_t n = 1; n <= input.size(); ++n) {
      result = checker.check(std::string_view(input).substr(0, n));
      if (result.state != framing::head_state::incomplete) {
        break;
      }
    }
    CHECK(result.state == check_head(input).state);
  }
  CHECK(check_head(good).other_codings);
  CHECK(check_head(bad).state == framing::head_state::invalid);
}

TEST_CASE("framing: a bad request line is refused before the head ends") {
  CHECK(check_head("GET / HTTP/5.6\r\n").state == framing::head_state::invalid);
  CHECK(check_head("GET / HTTP/1.1\r\n").state == framing::head_state::incomplete);
  CHECK(check_head("GET / HTTP/1.1\r").state == framing::head_state::incomplete);
  CHECK(check_head("GET / HTTP/1.1\rX").state == framing::head_state::invalid);
}

TEST_CASE("framing: refuses what llhttp's strict mode refuses") {
  const std::vector<std::string> refused = {
      "GET / HTTP/1.1\nHost: h\n\n",               // bare LF
      "GET / HTTP/1.1\r\nFoo: 1\rBar: 2\r\n\r\n",  // bare CR
      "MKCOLA / HTTP/1.1\r\n\r\n",                 // unknown method
      "get / HTTP/1.1\r\n\r\n",                    // methods are case-sensitive
      "GET  / HTTP/1.1\r\n\r\n",                   // two spaces
      "GET /\xce\xb4 HTTP/1.1\r\n\r\n",            // non-ASCII target
      "GET /\r\n\r\n",                             // HTTP/0.9
      "GET / HTTP/1.1\r\nHost : h\r\n\r\n",        // space before colon
      "GET / HTTP/1.1\r\n Host: h\r\n\r\n",        // leading space
      "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n",     // obs-fold
      "GET / HTTP/1.1\r\nX: a\x01"
      "b\r\n\r\n",                                           // control character
      std::string("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 26),  // NUL
      "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding:\x0b chunked\r\n\r\n",
      "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
  };
  for (const std::string& input : refused) {
    CHECK_MESSAGE(check_head(input).state == framing::head_state::invalid, input);
  }
}

TEST_CASE("framing: accepts what llhttp accepts") {
  const std::vector<std::string> accepted = {
      "M-SEARCH * HTTP/1.1\r\n\r\n",
      "GET http://a%12:b!&*$@h:1/t?q=\"x\"#f HTTP/1.0\r\n\r\n",
      "GET / HTTP/1.1\r\nTest: D\xc3\xbcsseldorf\r\nX:\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length:\t003\t \r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n",
  };
  for (const std::string& input : accepted) {
    CHECK_MESSAGE(check_head(input).state == framing::head_state::complete, input);
  }
  CHECK(framing::empty_line_prefix("\r\n\r\n\rGET") == 4);
}

TEST_CASE("framing: a chunked body ends at its final CRLF, trailers and extensions included") {
  const std::string body = "5;a=b;c=\"d \\\" e\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n";
  framing::chunked_checker checker(64);
  const auto result = checker.check(body + "GET / HTTP/1.1\r\n\r\n");
  CHECK(result.state == framing::body_state::complete);
  CHECK(result.length == body.size());
  framing::chunked_checker piecewise(64);
  for (std::size_t n = 1; n < body.size(); ++n) {
    CHECK(piecewise.check(std::string_view(body).substr(0, n)).state ==
          framing::body_state::incomplete);
  }
  CHECK(piecewise.check(body).state == framing::body_state::complete);
}

TEST_CASE("framing: refuses bad chunk lines at the first wrong byte") {
  const std::vector<std::string> refused = {
      "-5\r\n",                  // negative
      "0x5\r\n",                 // hex prefix
      "5g\r\n",                  // junk
      " 5\r\n",                  // space before
      "5 \r\n",                  // space after
      "ffffffffffffffffff\r\n",  // overflow
      "5;\r\n",                  // extension without a name
      "5;a=\"b\r\n",             // unterminated quote
      "5\nhello",                // bare LF
      "5\r\nhelloX\r\n",         // data not followed by CRLF
      "5\r\nhello0\r\n\r\n",     // next size straight after the data
      "0\r\nX-T: a\n",           // trailer with a bare LF
      "0\r\n X-T: a\r\n\r\n",    // folded trailer
  };
  for (const std::string& input : refused) {
    framing::chunked_checker checker(1024);
    CHECK_MESSAGE(checker.check(input).state == framing::body_state::invalid, input);
  }
}

TEST_CASE("framing: chunk sizes adding up past the limit are too large") {
  framing::chunked_checker checker(8);
  CHECK(checker.check("5\r\nhello\r\n").state == framing::body_state::incomplete);
  CHECK(checker.check("5\r\nhello\r\n4\r\n").state == framing::body_state::too_large);
}
