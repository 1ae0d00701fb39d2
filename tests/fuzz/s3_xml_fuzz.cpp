// Fuzzes the S3 XML readers. The input's first byte picks an HTTP status for classify(); all of
// it is the body. Properties: whatever the body, codes and messages are short single lines (they
// go into logs), classify always says something, an UploadId is never empty; and ETags taken
// from the input survive complete_multipart_body's escaping.
#include "fuzz_support.hpp"
#include "storage/s3_xml.hpp"

#include <string>
#include <utility>
#include <vector>

namespace s3_xml = archiver::storage::s3_xml;
using archiver::fuzz::has_control;
using archiver::fuzz::require;

namespace {

constexpr int statuses[] = {0, 200, 400, 403, 404, 408, 409, 429, 500, 503};

// The inverse of the escaping XML needs inside text: the four entities complete_multipart_body
// writes.
std::string unescape(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    bool replaced = false;
    for (const auto& [entity, c] : {std::pair<std::string_view, char>{"&amp;", '&'},
                                    {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}}) {
      if (text.substr(i, entity.size()) == entity) {
        out += c;
        i += entity.size();
        replaced = true;
        break;
      }
    }
    if (!replaced) {
      out += text[i++];
    }
  }
  return out;
}

void check_complete_body(std::string_view text) {
  // Up to four ETags, split at NUL bytes.
  std::vector<std::pair<int, std::string>> parts;
  while (!text.empty() && parts.size() < 4) {
    const std::size_t end = text.find('\0');
    parts.emplace_back(static_cast<int>(parts.size() + 1), std::string(text.substr(0, end)));
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  }
  const std::string body = s3_xml::complete_multipart_body(parts);
  std::size_t at = 0;
  for (const auto& [number, etag] : parts) {
    const std::string open = "<Part><PartNumber>" + std::to_string(number) + "</PartNumber><ETag>";
    const std::size_t start = body.find(open, at);
    require(start != std::string::npos, "every part is in the body", body);
    const std::size_t text_start = start + open.size();
    const std::size_t end = body.find("</ETag>", text_start);
    require(end != std::string::npos, "every ETag is closed", body);
    const std::string_view written = std::string_view(body).substr(text_start, end - text_start);
    require(written.find('<') == std::string_view::npos, "an ETag cannot open an element", body);
    require(unescape(written) == etag, "an ETag reads back as given", body);
    at = end;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string_view body = archiver::fuzz::as_text(data, size);
  const int status = size > 0 ? statuses[data[0] % std::size(statuses)] : 500;

  const auto error = s3_xml::parse_error(body);
  if (error) {
    require(!has_control(error->code) && error->code.size() <= 303, "code is a short line",
            error->code);
    require(!has_control(error->message) && error->message.size() <= 303,
            "message is a short line", error->message);
  }
  const s3_xml::classification meaning = s3_xml::classify(status, body);
  require(!meaning.message.empty() && !has_control(meaning.message),
          "classify says something, on one line", meaning.message);
  if ((status >= 500 || status == 429) && (!error || error->code.empty())) {
    // (A known permanent code wins over the status, so only bodies without one are checked.)
    require(meaning.retryable, "5xx and 429 without an error code are retryable", meaning.message);
  }
  if (const auto id = s3_xml::parse_upload_id(body)) {
    require(!id->empty(), "an UploadId is never empty", body);
  }
  check_complete_body(body);
  return 0;
}
