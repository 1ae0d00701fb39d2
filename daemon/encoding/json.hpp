// A small JSON writer (the simulator's answers, job payloads, manifests, `status --json`): strings
// escaped per RFC 8259, commas placed automatically. Pure; one writer builds one document.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace archiver::encoding {

// `text` as a quoted JSON string (control characters and quotes escaped; bytes >= 0x80 are
// copied as they are, so UTF-8 stays UTF-8).
std::string json_quote(std::string_view text);

class json_writer {
 public:
  json_writer& begin_object();
  json_writer& end_object();
  json_writer& begin_array();
  json_writer& end_array();
  json_writer& key(std::string_view name);  // inside an object, before its value
  json_writer& value(std::string_view text);
  json_writer& value(const char* text) { return value(std::string_view(text)); }
  json_writer& value(const std::string& text) { return value(std::string_view(text)); }
  json_writer& number(std::int64_t n);
  json_writer& boolean(bool flag);
  json_writer& null();
  json_writer& raw(std::string_view json);  // an already-encoded JSON value, copied verbatim
  // A string, or null when empty.
  json_writer& value_or_null(const std::optional<std::string>& text);

  const std::string& str() const { return out_; }

 private:
  void separate();
  std::string out_;
  bool need_comma_ = false;
};

}  // namespace archiver::encoding
