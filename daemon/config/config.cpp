// config_error, the text helpers its messages and the parsers share, and load(), which runs the
// steps (file, environment, secret files, validation) in order.
#include "config/config.hpp"
#include "config/detail.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace archiver::config {

namespace {

void append_hex_escape(std::string& out, unsigned char byte) {
  constexpr char hex[] = "0123456789abcdef";
  out += "\\x";
  out += hex[byte >> 4];
  out += hex[byte & 0xf];
}

// Control characters as \xNN: keys may be quoted TOML keys and toml++ quotes the offending
// character of a syntax error, either of which may be a newline, and what() must stay one line.
std::string printable(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      append_hex_escape(out, byte);
    } else {
      out += c;
    }
  }
  return out;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

config_error::config_error(std::string key, const std::string& message)
    : std::runtime_error(printable(key.empty() ? message : key + ": " + message)),
      key_(printable(std::move(key))) {}

namespace detail {

std::string quote_value(std::string_view value) {
  std::string out = "\"";
  for (const char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      append_hex_escape(out, static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string_view trim_right(std::string_view text) {
  while (!text.empty() && is_space(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) {
    text.remove_prefix(1);
  }
  return trim_right(text);
}

}  // namespace detail

config load(const std::optional<std::filesystem::path>& file, const environment& env) {
  config result;
  std::vector<detail::field> fields = detail::fields_of(result);
  detail::secret_sources from_file;
  detail::secret_sources from_env;

  if (file) {
    detail::apply_file(*file, fields, from_file);
    detail::reject_value_and_file(fields, from_file, false);
  }

  detail::apply_environment(env, fields, from_env);
  detail::reject_value_and_file(fields, from_env, true);
  detail::read_secret_files(fields, from_file, from_env, env);
  detail::validate(result);
  return result;
}

}  // namespace archiver::config
