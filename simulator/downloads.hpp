// certn-sim's presigned downloads: S3-style URLs that expire, content generated while streaming
// (deterministic pseudo-random bytes, never held whole), real PDF reports, and the S3 XML error
// for an expired or tampered URL. Runs on one io_context thread.
//
// The parts: the routes and S3's errors (downloads.cpp), the URL signer (downloads_signing.cpp),
// the content generator and the report PDF (downloads_content.cpp); what they share is
// downloads_detail.hpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/server.hpp"

namespace certn_sim {

// A downloadable object, as the simulator's state describes it.
struct download_object {
  std::string content_type;          // "application/pdf", "image/jpeg", ...
  std::uint64_t size = 0;            // bytes of pseudo-random content; ignored when `bytes` is set
  std::uint64_t content_seed = 0;    // selects the pseudo-random stream
  std::optional<std::string> bytes;  // small fixed content (a PDF report)
};

// Looks an object up by the path it was presigned for ("files/<file id>", "reports/<id>").
using download_lookup = std::function<std::optional<download_object>(std::string_view path)>;

class download_signer {
 public:
  download_signer(std::string secret, std::chrono::seconds ttl);

  // "<base_url>/_downloads/<path>?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=...&X-Amz-Expires=
  // <ttl seconds>&X-Amz-Signature=<hex HMAC-SHA256 of path, date and expiry>"; `path` is
  // percent-encoded in the URL (except '/').
  std::string presign(std::string_view base_url, std::string_view path,
                      std::chrono::system_clock::time_point now) const;

  enum class verdict { ok, expired, bad_signature, malformed };
  // Checks a request target ("/_downloads/files/x?X-Amz-...") and stores the object path.
  verdict verify(std::string_view target, std::chrono::system_clock::time_point now,
                 std::string* path) const;

  // verify() with what the S3 error for an expired URL names. `lifetime` and `expires_at` are
  // set unless the outcome is malformed; `path` once the target's path could be decoded.
  struct verification {
    verdict outcome = verdict::malformed;
    std::string path;
    std::chrono::seconds lifetime{0};
    std::chrono::system_clock::time_point expires_at;
  };
  verification check(std::string_view target, std::chrono::system_clock::time_point now) const;

 private:
  std::string secret_;
  std::chrono::seconds ttl_;
};

// Byte `offset` onwards of the pseudo-random stream `seed`, into `out`. Same inputs, same bytes.
// Byte i is byte i % 8 (least significant first) of splitmix64(splitmix64(seed) ^
// (i / 8) * 0xd1b54a32d192ed03), so a client can compute the expected content on its own.
void generate_content(std::uint64_t seed, std::uint64_t offset, std::span<char> out);

// A small valid PDF (one page of text naming the case and report) of a few hundred bytes.
std::string make_report_pdf(std::string_view case_id, std::string_view report_file_id);

// S3's XML error body, e.g. for an expired URL: code "AccessDenied", message "Request has expired".
std::string s3_error_xml(std::string_view code, std::string_view message);
// The same with more elements after <Message> (name, unescaped text), e.g. {"Key", path}.
std::string s3_error_xml(std::string_view code, std::string_view message,
                         const std::vector<std::pair<std::string, std::string>>& extra);

struct download_faults {
  double truncate_rate = 0;  // chance a body stops half-way (Content-Length kept: truncation)
  std::uint64_t seed = 1;
};

// Adds GET (and HEAD) /_downloads/... to `routes`: 200 with the streamed content, 403 with the XML
// error once expired or when the signature is wrong, 400 for a garbled URL, 404 when the object is
// unknown. `signer` must outlive `routes` (and the server they go to).
void add_download_routes(archiver::http::router& routes, const download_signer& signer,
                         download_lookup lookup, download_faults faults);

}  // namespace certn_sim
