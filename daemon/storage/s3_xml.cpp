#include "storage/s3_xml.hpp"

#include "encoding/encoding.hpp"
#include "retry/table.hpp"

#include <array>

namespace archiver::storage::s3_xml {

namespace {

constexpr std::size_t max_message_chars = 300;

// The five predefined entities and numeric character references below 128; anything else stays
// as written.
std::string unescape(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, char>, 5> entities{
      {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}}};
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    bool replaced = false;
    if (text[i] == '&') {
      for (const auto& [entity, c] : entities) {
        if (text.substr(i, entity.size()) == entity) {
          out += c;
          i += entity.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced && text.substr(i, 2) == "&#") {
      // Go's encoder (MinIO) writes quotes as &#34;.
      const bool hex = text.substr(i + 2, 1) == "x";
      std::size_t j = i + (hex ? 3 : 2);
      unsigned value = 0;
      std::size_t digits = 0;
      for (; j < text.size() && digits < 3; ++j, ++digits) {
        const char c = text[j];
        const int d = hex ? encoding::hex_digit_value(c) : (c >= '0' && c <= '9' ? c - '0' : -1);
        if (d < 0) {
          break;
        }
        value = value * (hex ? 16 : 10) + static_cast<unsigned>(d);
      }
      if (digits > 0 && j < text.size() && text[j] == ';' && value > 0 && value < 128) {
        out += static_cast<char>(value);
        i = j + 1;
        replaced = true;
      }
    }
    if (!replaced) {
      out += text[i++];
    }
  }
  return out;
}

// One line, printable, bounded: server text goes into logs.
std::string one_line(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (out.size() >= max_message_chars) {
      out += "...";
      break;
    }
    const auto byte = static_cast<unsigned char>(c);
    out += byte < 0x20 || byte == 0x7f ? ' ' : c;
  }
  const std::size_t end = out.find_last_not_of(' ');
  out.erase(end == std::string::npos ? 0 : end + 1);
  const std::size_t begin = out.find_first_not_of(' ');
  return begin == std::string::npos ? std::string() : out.substr(begin);
}

// The text of the first <name>...</name> after `from`, unescaped; nullopt when absent.
std::optional<std::string> element(std::string_view body, std::string_view name,
                                   std::size_t from = 0) {
  const std::string open = "<" + std::string(name) + ">";
  const std::string close = "</" + std::string(name) + ">";
  const std::size_t start = body.find(open, from);
  if (start == std::string_view::npos) {
    return std::nullopt;
  }
  const std::size_t text = start + open.size();
  const std::size_t end = body.find(close, text);
  if (end == std::string_view::npos) {
    return std::nullopt;
  }
  return unescape(body.substr(text, end - text));
}

// The root element's name: the first tag that is not a declaration, comment or doctype.
std::string_view root_name(std::string_view body) {
  std::size_t at = 0;
  while ((at = body.find('<', at)) != std::string_view::npos) {
    if (at + 1 < body.size() && (body[at + 1] == '?' || body[at + 1] == '!')) {
      ++at;
      continue;
    }
    const std::size_t end = body.find_first_of(" \t\r\n/>", at + 1);
    if (end == std::string_view::npos) {
      return {};
    }
    return body.substr(at + 1, end - at - 1);
  }
  return {};
}

}  // namespace

std::optional<s3_error> parse_error(std::string_view body) {
  if (root_name(body) != "Error") {
    return std::nullopt;
  }
  s3_error error;
  error.code = one_line(element(body, "Code").value_or(""));
  error.message = one_line(element(body, "Message").value_or(""));
  return error;
}

classification classify(int status, std::string_view body) {
  const std::optional<s3_error> error = parse_error(body);
  const std::string http = status > 0 ? "HTTP " + std::to_string(status) : "HTTP 200";
  if (error && !error->code.empty()) {
    if (const auto known = retry::of_s3_code(error->code)) {
      return {known->retryable, error->code + ": " + std::string(known->advice) + " (" + http +
                                    (error->message.empty() ? "" : ", " + error->message) + ")"};
    }
  }
  const bool retryable = retry::retryable_s3_status(status);
  std::string message = http;
  if (error && !error->code.empty()) {
    message += " " + error->code;
  }
  if (error && !error->message.empty()) {
    message += ": " + error->message;
  }
  if (!error) {
    if (status == 403) {
      message += ": access denied (no error details; check the credentials and the bucket policy)";
    } else if (status == 404) {
      message += ": not found (check s3.bucket and s3.endpoint)";
    }
  }
  return {retryable, message};
}

std::optional<std::string> parse_upload_id(std::string_view body) {
  if (root_name(body) != "InitiateMultipartUploadResult") {
    return std::nullopt;
  }
  auto id = element(body, "UploadId");
  if (!id || id->empty()) {
    return std::nullopt;
  }
  return id;
}

std::optional<version_page> parse_versions(std::string_view body, const std::string& key) {
  if (root_name(body) != "ListVersionsResult") {
    return std::nullopt;
  }
  version_page page;
  page.truncated = element(body, "IsTruncated").value_or("false") == "true";
  page.next_key_marker = element(body, "NextKeyMarker").value_or("");
  page.next_version_id_marker = element(body, "NextVersionIdMarker").value_or("");
  for (const std::string_view tag : {"Version", "DeleteMarker"}) {
    const std::string open = "<" + std::string(tag) + ">";
    const std::string close = "</" + std::string(tag) + ">";
    for (std::size_t at = body.find(open); at != std::string_view::npos;
         at = body.find(open, at + 1)) {
      const std::size_t end = body.find(close, at);
      if (end == std::string_view::npos) {
        return std::nullopt;
      }
      const std::string_view entry = body.substr(at, end - at);
      const auto entry_key = element(entry, "Key");
      const auto version = element(entry, "VersionId");
      if (entry_key && version && *entry_key == key) {
        page.version_ids.push_back(*version);
      }
    }
  }
  return page;
}

std::optional<object_page> parse_objects(std::string_view body) {
  if (root_name(body) != "ListBucketResult") {
    return std::nullopt;
  }
  object_page page;
  page.truncated = element(body, "IsTruncated").value_or("false") == "true";
  page.next_continuation_token = element(body, "NextContinuationToken").value_or("");
  for (std::size_t at = body.find("<Contents>"); at != std::string_view::npos;
       at = body.find("<Contents>", at + 1)) {
    const std::size_t end = body.find("</Contents>", at);
    if (end == std::string_view::npos) {
      return std::nullopt;
    }
    if (auto key = element(body.substr(at, end - at), "Key")) {
      page.keys.push_back(std::move(*key));
    }
  }
  return page;
}

std::optional<std::string> parse_retain_until(std::string_view body) {
  if (root_name(body) != "Retention") {
    return std::nullopt;
  }
  return element(body, "RetainUntilDate");
}

std::string retention_body(const std::string& mode, const std::string& retain_until) {
  // Both values are ours (a configured mode, a formatted date): nothing to escape.
  return "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>" + mode +
         "</Mode><RetainUntilDate>" + retain_until + "</RetainUntilDate></Retention>";
}

std::string legal_hold_body(bool on) {
  return std::string("<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>") +
         (on ? "ON" : "OFF") + "</Status></LegalHold>";
}

std::optional<bool> parse_object_lock_enabled(std::string_view body) {
  if (root_name(body) != "ObjectLockConfiguration") {
    return std::nullopt;
  }
  return element(body, "ObjectLockEnabled").value_or("") == "Enabled";
}

std::string complete_multipart_body(const std::vector<std::pair<int, std::string>>& parts) {
  std::string out = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (const auto& [number, etag] : parts) {
    std::string escaped;
    for (const char c : etag) {
      switch (c) {
        case '&':
          escaped += "&amp;";
          break;
        case '<':
          escaped += "&lt;";
          break;
        case '>':
          escaped += "&gt;";
          break;
        case '"':
          escaped += "&quot;";
          break;
        default:
          escaped += c;
      }
    }
    out += "<Part><PartNumber>" + std::to_string(number) + "</PartNumber><ETag>" + escaped +
           "</ETag></Part>";
  }
  out += "</CompleteMultipartUpload>";
  return out;
}

}  // namespace archiver::storage::s3_xml
