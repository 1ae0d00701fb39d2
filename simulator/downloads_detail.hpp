// Internal to certn-sim's downloads: what the routes (downloads.cpp), the URL signer
// (downloads_signing.cpp) and the content (downloads_content.cpp) share. Not for use outside
// simulator/downloads*.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace certn_sim::downloads_detail {

// Where the download routes are mounted, and what every presigned URL's path starts with.
inline constexpr std::string_view downloads_prefix = "/_downloads/";

// --- downloads_content.cpp

// The splitmix64 mixing function: the content stream's words and the S3 errors' request ids.
std::uint64_t splitmix64(std::uint64_t x);

// --- downloads_signing.cpp

// ISO 8601 as S3 writes it in error bodies: "2026-11-29T05:00:00Z".
std::string format_iso8601(std::chrono::system_clock::time_point when);

}  // namespace certn_sim::downloads_detail
