// certn-sim's pure parts that need the optimised build: the speed of its generated content,
// which bench/download streams by the gigabyte (the rest of certn-sim is tested by the
// simulator_* programs, in the sanitizer build).
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "downloads.hpp"

TEST_CASE("generated content: 1 GiB in well under two seconds") {
#if defined(__SANITIZE_ADDRESS__)
  MESSAGE("not measured: the sanitizers slow it several-fold; the -O2 build measures it");
#else
  std::string chunk(64 * 1024, '\0');
  const auto started = std::chrono::steady_clock::now();
  std::uint64_t checksum = 0;
  for (std::uint64_t at = 0; at < (1ULL << 30); at += chunk.size()) {
    certn_sim::generate_content(9, at, chunk);
    checksum += static_cast<unsigned char>(chunk[at % chunk.size()]);
  }
  const auto took = std::chrono::steady_clock::now() - started;
  MESSAGE("1 GiB generated in "
          << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms ("
          << checksum << ")");
  CHECK(took < std::chrono::seconds(2));
#endif
}
