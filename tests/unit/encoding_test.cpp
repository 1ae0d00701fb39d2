// Hex and percent-encoding.
#include "encoding/encoding.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>

using namespace archiver::encoding;

TEST_CASE("percent-encoding keeps unreserved characters and escapes every other byte") {
  CHECK(percent_encode("AZaz09-._~") == "AZaz09-._~");
  CHECK(percent_encode("a b/c?d=e&f+g%") == "a%20b%2Fc%3Fd%3De%26f%2Bg%25");
  CHECK(percent_encode(std::string("\x00\xff", 2)) == "%00%FF");
  CHECK(percent_encode("é") == "%C3%A9");
  CHECK(percent_encode("") == "");
}

TEST_CASE("a path keeps its slashes; everything else is encoded as in a query value") {
  CHECK(percent_encode_path("cases/a b/report.pdf") == "cases/a%20b/report.pdf");
  CHECK(percent_encode_path("/x?y#z/") == "/x%3Fy%23z/");
  CHECK(percent_encode_path("") == "");
}

TEST_CASE("ascii_lower lowers A-Z only, whatever the byte") {
  CHECK(ascii_lower("Example.COM") == "example.com");
  CHECK(ascii_lower("X-Amz-Date: 1Z") == "x-amz-date: 1z");
  CHECK(ascii_lower("\xC3\x89t\xC3\xA9") == "\xC3\x89t\xC3\xA9");  // bytes >= 0x80 stay
  CHECK(ascii_lower("") == "");
}

TEST_CASE("percent-decoding reverses percent-encoding and refuses broken escapes") {
  const std::string all = [] {
    std::string bytes;
    for (int i = 0; i < 256; ++i) {
      bytes += static_cast<char>(i);
    }
    return bytes;
  }();
  CHECK(percent_decode(percent_encode(all)) == all);
  CHECK(percent_decode("a+b") == "a b");
  CHECK(percent_decode("%4") == std::nullopt);
  CHECK(percent_decode("%zz") == std::nullopt);
  CHECK(percent_decode("%") == std::nullopt);
}

TEST_CASE("hex is lower case and hex digits read in either case") {
  CHECK(to_hex(std::string("\x01\xab\xff", 3)) == "01abff");
  CHECK(hex_digit_value('a') == 10);
  CHECK(hex_digit_value('F') == 15);
  CHECK(hex_digit_value('9') == 9);
  CHECK(hex_digit_value('g') == -1);
}

TEST_CASE("UTC days read only as YYYY-MM-DD of a real date, and format back the same") {
  using namespace std::chrono;
  const auto day = archiver::encoding::parse_utc_day("2024-02-29");
  REQUIRE(day);
  CHECK(*day == sys_days(year(2024) / February / 29));
  CHECK(archiver::encoding::format_utc_day(*day) == "2024-02-29");
  CHECK(archiver::encoding::format_utc_day(sys_days(year(2027) / January / 5)) == "2027-01-05");
  for (const char* bad : {"2026-02-29", "2026-13-01", "2026-00-10", "2026-1-05", "2026-01-05T00",
                          "26-01-05", "2026/01/05", "", "abcd-ef-gh", "2026-01-32"}) {
    CAPTURE(bad);
    CHECK_FALSE(archiver::encoding::parse_utc_day(bad));
  }
}
