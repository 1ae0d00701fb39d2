#include "http/framing.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace archiver::http::framing {
namespace {

bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// VCHAR, SP, HTAB and obs-text: what a field value may hold (RFC 9110 5.5).
bool is_field_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_ows(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

// llhttp's HTTP methods (src/llhttp/constants.ts); its RTSP-only methods and PRI are left out.
constexpr std::array<std::string_view, 35> methods = {
    "DELETE",     "GET",      "HEAD",       "POST",     "PUT",    "CONNECT",   "OPTIONS",
    "TRACE",      "COPY",     "LOCK",       "MKCOL",    "MOVE",   "PROPFIND",  "PROPPATCH",
    "SEARCH",     "UNLOCK",   "BIND",       "REBIND",   "UNBIND", "ACL",       "REPORT",
    "MKACTIVITY", "CHECKOUT", "MERGE",      "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE",
    "PATCH",      "PURGE",    "MKCALENDAR", "LINK",     "UNLINK", "SOURCE",    "QUERY"};

bool known_method_prefix(std::string_view start) {
  return std::any_of(methods.begin(), methods.end(),
                     [&](std::string_view method) { return method.starts_with(start); });
}

}  // namespace

bool known_method(std::string_view method) {
  return std::find(methods.begin(), methods.end(), method) != methods.end();
}

std::size_t empty_line_prefix(std::string_view received) {
  std::size_t length = 0;
  while (received.substr(length, 2) == "\r\n") {
    length += 2;
  }
  return length;
}

head_result head_checker::fail(std::string problem) {
  result_.state = head_state::invalid;
  result_.problem = std::move(problem);
  return result_;
}

head_result head_checker::check(std::string_view received) {
  if (result_.state != head_state::incomplete) {
    return result_;
  }
  if (!request_line_done_) {
    result_.skip = empty_line_prefix(received);
    next_line_ = std::max(next_line_, result_.skip);
  }
  for (;;) {
    const std::size_t lf = received.find('\n', next_line_);
    if (lf == std::string_view::npos) {
      // An unfinished line can already be wrong, as llhttp sees it byte by byte.
      std::string_view partial = received.substr(next_line_);
      if (!partial.empty() && partial.back() == '\r') {
        partial.remove_suffix(1);
      }
      if (partial.find('\r') != std::string_view::npos) {
        return fail("CR not followed by LF");
      }
      check_line(partial, false);
      return result_;
    }
    if (lf == next_line_ || received[lf - 1] != '\r') {
      return fail("line ended by a bare LF");
    }
    const std::string_view line = received.substr(next_line_, lf - 1 - next_line_);
    if (line.find('\r') != std::string_view::npos) {
      return fail("CR not followed by LF");
    }
    next_line_ = lf + 1;
    if (!check_line(line, true)) {
      return result_;
    }
    if (request_line_done_ && line.empty()) {
      if (check_framing()) {
        result_.state = head_state::complete;
        result_.length = next_line_ - result_.skip;
      }
      return result_;
    }
    request_line_done_ = true;
  }
}

bool head_checker::check_line(std::string_view line, bool complete) {
  if (!request_line_done_) {
    return check_request_line(line, complete);
  }
  if (line.empty()) {
    return true;
  }
  return check_field_line(line, complete);
}

bool head_checker::check_request_line(std::string_view line, bool complete) {
  const std::size_t method_end = line.find(' ');
  const std::string_view method = line.substr(0, method_end);
  if (method_end == std::string_view::npos) {
    if (complete || !known_method_prefix(method)) {
      fail(complete ? "request line without spaces" : "unknown method");
      return false;
    }
    return true;
  }
  if (!known_method(method)) {
    fail("unknown method");
    return false;
  }
  const std::size_t target_end = line.find(' ', method_end + 1);
  const std::string_view target = line.substr(method_end + 1, target_end - method_end - 1);
  if (!std::all_of(target.begin(), target.end(),
                   [](unsigned char c) { return c > 0x20 && c < 0x7f; })) {
    fail("request target not visible ASCII");
    return false;
  }
  if (target_end == std::string_view::npos) {
    if (complete) {
      fail("request line without a version");
      return false;
    }
    return true;
  }
  if (target.empty()) {
    fail("empty request target");
    return false;
  }
  const std::string_view version = line.substr(target_end + 1);
  const auto matches = [&](std::string_view wanted) {
    return complete ? version == wanted : wanted.starts_with(version);
  };
  if (!matches("HTTP/1.1") && !matches("HTTP/1.0")) {
    fail("version other than HTTP/1.0 or HTTP/1.1");
    return false;
  }
  http10_ = version == "HTTP/1.0";
  return true;
}

bool head_checker::check_field_line(std::string_view line, bool complete) {
  if (is_ows(line.front())) {
    fail("header line starting with whitespace (obs-fold)");
    return false;
  }
  const std::size_t colon = line.find(':');
  const std::string_view name = line.substr(0, colon);
  if (colon == 0 || (colon == std::string_view::npos && complete) ||
      !std::all_of(name.begin(), name.end(), [](unsigned char c) { return is_tchar(c); })) {
    fail("header name not a token");
    return false;
  }
  if (colon == std::string_view::npos) {
    return true;
  }
  const std::string_view raw_value = line.substr(colon + 1);
  if (!std::all_of(raw_value.begin(), raw_value.end(),
                   [](unsigned char c) { return is_field_char(c); })) {
    fail("control character in a header value");
    return false;
  }
  const std::string_view value = trim_ows(raw_value);
  if (iequals(name, "content-length")) {
    // Digits between optional spaces and tabs, and nothing else.
    const std::size_t digits = std::min(value.find_first_not_of("0123456789"), value.size());
    std::uint64_t length = 0;
    const auto parsed = std::from_chars(value.data(), value.data() + digits, length);
    if (digits != value.size() || parsed.ec == std::errc::result_out_of_range ||
        (complete && digits == 0)) {
      fail("Content-Length not a number that fits 64 bits");
      return false;
    }
    if (complete && ++content_lengths_ > 1) {
      fail("more than one Content-Length");
      return false;
    }
  } else if (iequals(name, "transfer-encoding") && complete) {
    ++transfer_encodings_;
    // A list of codings: any coding after "chunked" makes the framing ambiguous.
    std::string_view rest = value;
    for (;;) {
      const std::size_t comma = rest.find(',');
      const std::string_view coding = trim_ows(rest.substr(0, comma));
      if (chunked_) {
        fail("transfer coding after chunked");
        return false;
      }
      if (iequals(coding, "chunked")) {
        chunked_ = true;
      } else if (!coding.empty()) {
        result_.other_codings = true;
      }
      if (comma == std::string_view::npos) {
        break;
      }
      rest.remove_prefix(comma + 1);
    }
  }
  return true;
}

bool head_checker::check_framing() {
  if (content_lengths_ > 1) {
    fail("more than one Content-Length");
    return false;
  }
  if (transfer_encodings_ > 0) {
    if (content_lengths_ > 0) {
      fail("both Content-Length and Transfer-Encoding");
      return false;
    }
    if (!chunked_) {
      fail("Transfer-Encoding whose final coding is not chunked");
      return false;
    }
    if (http10_) {
      fail("Transfer-Encoding in an HTTP/1.0 request");
      return false;
    }
  }
  return true;
}

body_result chunked_checker::fail(std::string problem) {
  result_.state = body_state::invalid;
  result_.problem = std::move(problem);
  return result_;
}

body_result chunked_checker::check(std::string_view received) {
  if (result_.state != body_state::incomplete) {
    return result_;
  }
  while (next_ < received.size()) {
    if (step_ == step::data) {
      const std::uint64_t available = received.size() - next_;
      const std::uint64_t take = std::min(remaining_, available);
      next_ += static_cast<std::size_t>(take);
      remaining_ -= take;
      if (remaining_ == 0) {
        step_ = step::data_cr;
      }
      continue;
    }
    const unsigned char c = static_cast<unsigned char>(received[next_++]);
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    switch (step_) {
      case step::size:
      case step::size_more:
        if (hex) {
          const std::uint64_t digit = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
          if (size_ > (UINT64_MAX - digit) / 16) {
            return fail("chunk size does not fit 64 bits");
          }
          size_ = size_ * 16 + digit;
          step_ = step::size_more;
        } else if (step_ == step::size_more && c == ';') {
          step_ = step::ext_name_start;
        } else if (step_ == step::size_more && c == '\r') {
          step_ = step::size_lf;
        } else {
          return fail("invalid character in chunk size");
        }
        break;
      case step::ext_name_start:
      case step::ext_name:
        if (is_tchar(c)) {
          step_ = step::ext_name;
        } else if (step_ == step::ext_name && c == '=') {
          step_ = step::ext_value_start;
        } else if (step_ == step::ext_name && c == ';') {
          step_ = step::ext_name_start;
        } else if (step_ == step::ext_name && c == '\r') {
          step_ = step::size_lf;
        } else {
          return fail("invalid character in a chunk extension name");
        }
        break;
      case step::ext_value_start:
        if (c == '"') {
          step_ = step::ext_quoted;
        } else if (is_tchar(c)) {
          step_ = step::ext_token;
        } else {
          return fail("invalid character in a chunk extension value");
        }
        break;
      case step::ext_token:
        if (c == ';') {
          step_ = step::ext_name_start;
        } else if (c == '\r') {
          step_ = step::size_lf;
        } else if (!is_tchar(c)) {
          return fail("invalid character in a chunk extension value");
        }
        break;
      case step::ext_quoted:
        // qdtext: HTAB, SP, VCHAR but '"' and '\', obs-text
        if (c == '"') {
          step_ = step::ext_after_quoted;
        } else if (c == '\\') {
          step_ = step::ext_quoted_pair;
        } else if (!is_field_char(c)) {
          return fail("invalid character in a quoted chunk extension value");
        }
        break;
      case step::ext_quoted_pair:
        if (!is_field_char(c)) {
          return fail("invalid character in a quoted chunk extension value");
        }
        step_ = step::ext_quoted;
        break;
      case step::ext_after_quoted:
        if (c == ';') {
          step_ = step::ext_name_start;
        } else if (c == '\r') {
          step_ = step::size_lf;
        } else {
          return fail("invalid character after a quoted chunk extension value");
        }
        break;
      case step::size_lf:
        if (c != '\n') {
          return fail("expected LF after the chunk size");
        }
        if (size_ == 0) {
          step_ = step::trailer_start;
          break;
        }
        if (size_ > max_data_ - total_) {
          result_.state = body_state::too_large;
          return result_;
        }
        total_ += size_;
        remaining_ = size_;
        size_ = 0;
        step_ = step::data;
        break;
      case step::data_cr:
        if (c != '\r') {
          return fail("expected CRLF after chunk data");
        }
        step_ = step::data_lf;
        break;
      case step::data_lf:
        if (c != '\n') {
          return fail("expected CRLF after chunk data");
        }
        step_ = step::size;
        break;
      case step::trailer_start:
        if (c == '\r') {
          step_ = step::final_lf;
        } else if (is_tchar(c)) {
          step_ = step::trailer_name;
        } else {
          return fail("trailer name not a token");
        }
        break;
      case step::trailer_name:
        if (c == ':') {
          step_ = step::trailer_value;
        } else if (!is_tchar(c)) {
          return fail("trailer name not a token");
        }
        break;
      case step::trailer_value:
        if (c == '\r') {
          step_ = step::trailer_lf;
        } else if (!is_field_char(c)) {
          return fail("control character in a trailer value");
        }
        break;
      case step::trailer_lf:
        if (c != '\n') {
          return fail("CR not followed by LF in the trailer");
        }
        step_ = step::trailer_start;
        break;
      case step::final_lf:
        if (c != '\n') {
          return fail("CR not followed by LF after the trailer");
        }
        result_.state = body_state::complete;
        result_.length = next_;
        return result_;
      case step::data:
        break;  // handled above
    }
  }
  return result_;
}

}  // namespace archiver::http::framing
