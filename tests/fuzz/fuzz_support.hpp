// Helpers shared by the fuzz targets: an oracle failure that libFuzzer reports as a crash, and
// splitting an input into text fields.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace archiver::fuzz {

// A broken property: print what and abort, so libFuzzer saves the input as crash-*.
[[noreturn]] inline void fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz property violated: %s\n  detail: %.*s\n", what,
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

inline void require(bool ok, const char* what, std::string_view detail = {}) {
  if (!ok) {
    fail(what, detail);
  }
}

// Takes the text up to the next '\n' off the front of `rest` (all of it when there is none).
inline std::string_view next_line(std::string_view& rest) {
  const std::size_t end = rest.find('\n');
  const std::string_view line = rest.substr(0, end);
  rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
  return line;
}

inline bool has_control(std::string_view text) {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      return true;
    }
  }
  return false;
}

inline std::string_view as_text(const unsigned char* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace archiver::fuzz
