// Internal to daemon/storage: what the parts of the S3 store share (s3_store.cpp,
// s3_request.cpp, s3_put.cpp, s3_multipart.cpp, s3_read.cpp): one request and its answer, the
// failure helpers, the staged file's bytes as a request body, and s3_store::impl.
// Not to be included outside daemon/storage; the public interface is s3_store.hpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "http/client.hpp"
#include "http/url.hpp"
#include "net/asio.hpp"
#include "ops/clock.hpp"
#include "storage/blocking.hpp"
#include "storage/object_store.hpp"
#include "storage/s3_store.hpp"
#include "storage/sigv4.hpp"

namespace archiver::storage {

namespace s3_detail {

using header_list = std::vector<std::pair<std::string, std::string>>;

inline constexpr std::uint64_t max_answer_bytes = 1 << 20;  // XML answers and error bodies
inline const std::string empty_sha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// ---- s3_put.cpp ---------------------------------------------------------------------------------

// A read-only view of bytes [offset, offset + length) of a file, sent as a request body (a whole
// staged file, or one part of a multipart upload). Throws std::system_error when the file cannot
// be opened or read.
class file_range_source final : public http::body_source {
 public:
  file_range_source(const std::filesystem::path& path, std::uint64_t offset, std::uint64_t length);
  ~file_range_source() override;
  file_range_source(const file_range_source&) = delete;
  file_range_source& operator=(const file_range_source&) = delete;

  std::uint64_t size() const override { return length_; }
  void rewind() override { position_ = 0; }
  std::size_t read(char* buffer, std::size_t capacity) override;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t offset_;
  std::uint64_t length_;
  std::uint64_t position_ = 0;
};

// ---- s3_request.cpp -----------------------------------------------------------------------------

// "s3 <operation> <key>: <cause>".
store_failure failure(std::string_view operation, const std::string& key, bool retryable,
                      const std::string& cause);

// A fetch that got no answer; retryable as retry::of_transport says.
store_failure fetch_failure(std::string_view operation, const std::string& key,
                            const http::fetch_result& result);

// An S3 error answer, classified by its status and error document (s3_xml::classify).
store_failure answer_failure(std::string_view operation, const std::string& key, int status,
                             std::string_view body);

// The first header called `name` (case-insensitive), if any.
std::optional<std::string> header_value(const http::response_head& head, std::string_view name);

// The headers that ask for encryption at rest of a new object (storage.s3.sse): none when unset;
// x-amz-server-side-encryption, and with aws:kms the key id when one is configured. Sent on a
// single PUT and on CreateMultipartUpload (parts inherit it), and signed like every header.
header_list encryption_headers(const config::s3_settings& s3);

// When the store's answer says how it encrypted the object, it must be what was asked: otherwise
// a failure, not retryable (the bucket or the configuration must change). A store that says
// nothing passes (s3rver, MinIO without KMS): it is checked only where it reports.
std::optional<store_failure> check_encryption(std::string_view operation, const std::string& key,
                                              const config::s3_settings& s3,
                                              const http::response_head& head);

// The Object Lock headers of a new object (storage.s3.object_lock_mode): none when unset; else
// the mode, the retain-until date and, for a held case, the legal hold. The date is the case's
// retention date while it is ahead of `now`; now + object_lock_days when the case has none; a day
// from now when it has passed (the purge is due: a longer lock would only stand in its way).
// Sent on a single PUT and on CreateMultipartUpload, signed.
header_list object_lock_headers(const config::s3_settings& s3, const object_protection& protection,
                                std::chrono::sys_seconds now);

// "2027-12-07T11:00:00.000Z", as S3 writes and reads x-amz-object-lock-retain-until-date.
std::string lock_date(std::chrono::sys_seconds at);

// Whether a lock until `wanted` is later than one until `current` (both ISO 8601 in UTC, as S3
// writes them, with or without fractional seconds): compared to the second.
bool lock_extends(std::string_view current, std::string_view wanted);

// One S3 request before signing.
struct s3_call {
  s3_call(std::string method, std::string key) : method(std::move(method)), key(std::move(key)) {}
  std::string method;
  std::string key;    // empty: the bucket itself (a listing)
  std::string query;  // already encoded, without '?'
  header_list headers;
  std::string payload_hash = empty_sha256;
  std::string body;
  http::body_source* stream = nullptr;
};

struct s3_answer {
  http::fetch_result fetch;
  std::string body;  // when no sink was given
  bool ok() const { return fetch.error == http::failure::none && fetch.head.status / 100 == 2; }
};

// ---- s3_multipart.cpp ---------------------------------------------------------------------------

struct multipart_state;

}  // namespace s3_detail

// The store's state and its steps; each is defined in the file named beside it.
struct s3_store::impl {
  // s3_store.cpp. Throws as s3_store's constructor says.
  impl(asio::io_context& io, const config::storage_settings& settings, const ops::clock& clock);

  // s3_request.cpp: signs `call` (SigV4, dated by clock_) and sends it under s3.timeout. The
  // answer's body goes to `sink` when given, else into s3_answer::body (at most 1 MiB).
  awaitable<s3_detail::s3_answer> send(const s3_detail::s3_call& call,
                                       http::body_sink* sink = nullptr);
  // s3_read.cpp.
  // nullopt: proceed with the upload; true: the key holds `sha256` already; a failure otherwise.
  awaitable<std::optional<store_failure>> check_present(const std::string& key,
                                                        const std::string& sha256, bool& present);
  // s3_put.cpp: one PUT of `body`, or of `stream` when not null.
  awaitable<put_result> put_single(const std::string& key, const object_digest& digest,
                                   const std::string& content_type,
                                   const object_protection& protection, std::string body,
                                   http::body_source* stream);
  // s3_multipart.cpp: create, upload the parts (at most s3.max_parallel_parts at once),
  // complete; a failed upload is aborted.
  awaitable<put_result> put_multipart(const std::string& key, const staged_file& file,
                                      const std::string& content_type,
                                      const object_protection& protection);
  // The headers of a new object besides its digests: encryption, Object Lock (dated now).
  s3_detail::header_list new_object_headers(const object_protection& protection) const;
  awaitable<void> upload_parts(s3_detail::multipart_state& state);
  awaitable<void> abort_upload(const std::string& key, const std::string& upload_id);

  asio::io_context& io_;
  const ops::clock& clock_;
  config::s3_settings s3_;
  std::string prefix_;  // storage.prefix, for the lock probe's key
  std::filesystem::path staging_;
  http::url origin_;         // scheme, host and port of every request
  std::string origin_text_;  // "https://bucket.s3.us-east-1.amazonaws.com"
  std::string base_path_;    // "/bucket" (path style) or ""
  sigv4::credentials credentials_;
  ssl::context tls_;
  http::client client_;
  blocking_pool threads_{2};  // part digests, finishing a staged file
};

}  // namespace archiver::storage
