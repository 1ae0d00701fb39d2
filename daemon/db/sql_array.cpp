#include "db/sql_array.hpp"

namespace archiver::db {

std::string array_literal(const std::vector<std::string>& values) {
  std::string text = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    text += i ? ",\"" : "\"";
    for (const char c : values[i]) {
      if (c == '"' || c == '\\') {
        text += '\\';
      }
      text += c;
    }
    text += '"';
  }
  return text + "}";
}

std::string array_literal(const std::vector<std::int64_t>& values) {
  std::string text = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    text += (i ? "," : "") + std::to_string(values[i]);
  }
  return text + "}";
}

std::string array_literal(const std::vector<bool>& values) {
  std::string text = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    text += i ? "," : "";
    text += values[i] ? 't' : 'f';
  }
  return text + "}";
}

}  // namespace archiver::db
