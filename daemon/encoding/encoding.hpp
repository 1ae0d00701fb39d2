// Small text encodings shared by every module: hex, percent-encoding and UTC dates. Pure and
// thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace archiver::encoding {

// Lowercase hex of the bytes of `bytes`.
std::string to_hex(std::string_view bytes);

// The value of one hex digit (either case), or -1 when `c` is not one.
int hex_digit_value(char c);

// Percent-encodes every byte but RFC 3986's unreserved characters (A-Z a-z 0-9 - . _ ~), with
// upper-case hex: safe in a path segment or a query value.
std::string percent_encode(std::string_view text);

// As percent_encode, but '/' stays: a path whose segments are encoded.
std::string percent_encode_path(std::string_view text);

// `text` with A-Z lowered, whatever the locale (host names, schemes, header names).
std::string ascii_lower(std::string_view text);

// Decodes %XX escapes (and '+' as a space, as in query strings); nullopt when an escape is
// truncated or not hex.
std::optional<std::string> percent_decode(std::string_view text);

// "YYYY-MM-DD" as a UTC day; nullopt when `text` is not a valid date in exactly that form.
std::optional<std::chrono::sys_days> parse_utc_day(std::string_view text);

// The day as "YYYY-MM-DD".
std::string format_utc_day(std::chrono::sys_days day);

}  // namespace archiver::encoding
