// Strict checks of a request head (request line and header fields) as its bytes arrive, before
// Beast parses it. Beast tolerates some heads that a strict parser (llhttp in strict mode)
// refuses, and a proxy in front of us may frame those differently (request smuggling); it also
// waits for the whole head before looking at the request line. Pure logic, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace archiver::http::framing {

enum class head_state { incomplete, complete, invalid };

struct head_result {
  head_state state = head_state::incomplete;
  // Empty lines (CRLF) before the request line, which RFC 9112 2.2 says to ignore: the caller
  // drops these bytes before parsing. Set in every state.
  std::size_t skip = 0;
  // complete: the head's length after `skip`, through the blank line ending it.
  std::size_t length = 0;
  // complete: Transfer-Encoding names codings besides the final "chunked" (we decode none).
  bool other_codings = false;
  // invalid: why, for the 400 answer.
  std::string problem;
};

// Checks one request head. Not thread-safe; one per request: construct a fresh one (or reset())
// for the next request on a connection.
//
// Refused, as llhttp's strict mode does: bare CR or LF line endings; a method llhttp does not know
// for HTTP; a request line that is not `METHOD SP target SP HTTP/1.x` (one space each, a target of
// visible ASCII); header names that are not tokens, whitespace before the colon, a line starting
// with whitespace (obs-fold); control characters or NUL in values; a Content-Length that is not
// digits (surrounding spaces and tabs allowed) or does not fit 64 bits, or repeated; both
// Content-Length and Transfer-Encoding; a Transfer-Encoding whose final coding is not chunked or
// that names a coding after chunked. Stricter than llhttp (RFC 9112 6.1): Transfer-Encoding in an
// HTTP/1.0 request. HTTP/0.9 requests and other protocols (RTSP, ICE) are refused.
class head_checker {
 public:
  // `received` is everything received for this request so far (leading empty lines included):
  // the same bytes on each call, grown. Work done for earlier lines is not repeated. Once the
  // result is complete or invalid, further calls return it again.
  head_result check(std::string_view received);
  void reset() { *this = head_checker{}; }

 private:
  head_result fail(std::string problem);
  // Each returns false after fail(). `complete` is false for the unfinished last line, whose
  // prefix is checked so that a wrong byte is refused without waiting for the line end.
  bool check_line(std::string_view line, bool complete);
  bool check_request_line(std::string_view line, bool complete);
  bool check_field_line(std::string_view line, bool complete);
  bool check_framing();

  head_result result_;
  std::size_t next_line_ = 0;  // offset in `received` of the first line not checked yet
  bool request_line_done_ = false;
  bool http10_ = false;
  int content_lengths_ = 0;
  int transfer_encodings_ = 0;
  bool chunked_ = false;  // "chunked" seen (it must be the last coding)
};

enum class body_state { incomplete, complete, invalid, too_large };

struct body_result {
  body_state state = body_state::incomplete;
  std::size_t length = 0;  // complete: the chunked body's length, through its final CRLF
  std::string problem;     // invalid: why
};

// Checks one chunked request body (RFC 9112 7.1) as its bytes arrive, for the same reasons as
// head_checker: Beast tolerates some bad chunk lines, and waits for a line's end before it refuses
// one. Not thread-safe; one per body.
//
// Refused, as llhttp's strict mode does: a chunk size that is not bare hex digits or does not fit
// 64 bits; spaces around it; an extension that is not `;name`, `;name=token` or
// `;name="quoted"`; anything but CRLF after a chunk size or a chunk's data; trailer lines as
// head_checker refuses header lines. too_large once the chunks' sizes add up to more than
// `max_data` bytes.
class chunked_checker {
 public:
  explicit chunked_checker(std::uint64_t max_data) : max_data_(max_data) {}
  // `received` is everything received after the head (the same bytes on each call, grown); it
  // may run on past the body (pipelining). Once the result is not incomplete, it stays.
  body_result check(std::string_view received);

 private:
  enum class step {
    size,
    size_more,
    ext_name_start,
    ext_name,
    ext_value_start,
    ext_token,
    ext_quoted,
    ext_quoted_pair,
    ext_after_quoted,
    size_lf,
    data,
    data_cr,
    data_lf,
    trailer_start,
    trailer_name,
    trailer_value,
    trailer_lf,
    final_lf
  };
  body_result fail(std::string problem);

  std::uint64_t max_data_;
  std::uint64_t total_ = 0;
  std::uint64_t size_ = 0;       // of the chunk being read
  std::uint64_t remaining_ = 0;  // data bytes of that chunk still to come
  std::size_t next_ = 0;         // offset in `received` of the next byte to look at
  step step_ = step::size;
  body_result result_;
};

// The length of the empty lines (CRLF pairs) at the start of `received`: what a server ignores
// before a request line (RFC 9112 2.2), e.g. the CRLF some clients send after a body.
std::size_t empty_line_prefix(std::string_view received);

// Whether `method` is a method llhttp accepts in an HTTP request line (case-sensitive).
bool known_method(std::string_view method);

}  // namespace archiver::http::framing
