// Small text encodings shared by every module: hex and percent-encoding. Pure and thread-safe.
#pragma once

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

// Decodes %XX escapes (and '+' as a space, as in query strings); nullopt when an escape is
// truncated or not hex.
std::optional<std::string> percent_decode(std::string_view text);

}  // namespace archiver::encoding
