// Fuzzes http::parse_url. Properties: a refusal always says why; an accepted URL has a lower-case
// host of allowed characters, a port, a target starting with '/' and nothing a request line could
// not carry; written back out (scheme://host_header/target) it parses to the same url.
#include "fuzz_support.hpp"
#include "http/url.hpp"

#include <string>

using archiver::fuzz::require;

namespace {

bool same(const archiver::http::url& a, const archiver::http::url& b) {
  return a.scheme == b.scheme && a.host == b.host && a.port == b.port && a.target == b.target;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string_view text = archiver::fuzz::as_text(data, size);
  std::string error;
  const auto parsed = archiver::http::parse_url(text, &error);
  if (!parsed) {
    require(!error.empty(), "a refused URL comes with a message", text);
    // The message is logged; it may quote the URL but must stay on one line.
    require(error.find('\n') == std::string::npos, "the message is one line", error);
    return 0;
  }
  const archiver::http::url& u = *parsed;
  require(u.scheme == "http" || u.scheme == "https", "scheme is http or https", u.scheme);
  require(!u.host.empty(), "host is not empty", text);
  for (const char c : u.host) {
    require(!(c >= 'A' && c <= 'Z'), "host is lower case", u.host);
    require(c != '@' && c != '/' && c != '?' && c != '#' && c != '[' && c != ']' && c != '%',
            "host has no URL delimiters", u.host);
  }
  require(u.port != 0, "port is not 0", text);
  require(!u.target.empty() && u.target.front() == '/', "target starts with '/'", u.target);
  require(u.target.find('#') == std::string::npos, "fragment is dropped", u.target);
  require(!archiver::fuzz::has_control(u.target) && u.target.find(' ') == std::string::npos,
          "target has no spaces or control characters", u.target);

  // Passing a null error pointer must give the same answer.
  const auto quiet = archiver::http::parse_url(text, nullptr);
  require(quiet && same(*quiet, u), "parse_url(text, nullptr) agrees", text);

  const std::string again = u.scheme + "://" + archiver::http::host_header(u) + u.target;
  std::string again_error;
  const auto reparsed = archiver::http::parse_url(again, &again_error);
  require(reparsed.has_value(), "the re-serialised URL parses", again + " -> " + again_error);
  require(same(*reparsed, u), "the re-serialised URL parses to the same url", again);
  return 0;
}
