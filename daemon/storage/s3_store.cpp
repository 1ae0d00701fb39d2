#include "storage/s3_store.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "encoding/encoding.hpp"
#include "http/proxy.hpp"
#include "http/url.hpp"
#include "storage/blocking.hpp"
#include "storage/s3_xml.hpp"
#include "storage/sigv4.hpp"

namespace archiver::storage {

namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;

constexpr std::uint64_t min_part_bytes = 5ULL << 20;  // S3's minimum for every part but the last
constexpr std::uint64_t max_parts = 10'000;
constexpr std::uint64_t max_answer_bytes = 1 << 20;  // XML answers and error bodies
constexpr std::size_t read_chunk_bytes = 1 << 20;
const std::string empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// A read-only view of bytes [offset, offset + length) of a file, sent as a request body.
class file_range_source final : public http::body_source {
 public:
  file_range_source(const std::filesystem::path& path, std::uint64_t offset, std::uint64_t length)
      : path_(path), offset_(offset), length_(length) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      throw std::system_error(errno, std::generic_category(), "cannot open " + path.string());
    }
  }
  ~file_range_source() override { ::close(fd_); }
  file_range_source(const file_range_source&) = delete;
  file_range_source& operator=(const file_range_source&) = delete;

  std::uint64_t size() const override { return length_; }
  void rewind() override { position_ = 0; }
  std::size_t read(char* buffer, std::size_t capacity) override {
    const std::size_t wanted =
        static_cast<std::size_t>(std::min<std::uint64_t>(capacity, length_ - position_));
    if (wanted == 0) {
      return 0;
    }
    ssize_t got = -1;
    do {
      got = ::pread(fd_, buffer, wanted, static_cast<off_t>(offset_ + position_));
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
      throw std::system_error(errno, std::generic_category(), "cannot read " + path_.string());
    }
    position_ += static_cast<std::uint64_t>(got);
    return static_cast<std::size_t>(got);
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t offset_;
  std::uint64_t length_;
  std::uint64_t position_ = 0;
};

// Digests of one file range, read whole (blocking: runs on the store's threads).
object_digest digest_of_range(const std::filesystem::path& path, std::uint64_t offset,
                              std::uint64_t length) {
  file_range_source source(path, offset, length);
  streaming_digest digest;
  std::vector<char> chunk(read_chunk_bytes);
  std::uint64_t total = 0;
  for (;;) {
    const std::size_t got = source.read(chunk.data(), chunk.size());
    if (got == 0) {
      break;
    }
    total += got;
    digest.update(std::string_view(chunk.data(), got));
  }
  if (total != length) {
    throw std::runtime_error(path.string() + " ended before byte " +
                             std::to_string(offset + length));
  }
  return digest.finish();
}

// Digests what it is given; keeps the start too, for an error document.
class digesting_sink final : public http::body_sink {
 public:
  void write(std::string_view chunk) override {
    digest_.update(chunk);
    if (start_.size() < max_answer_bytes) {
      start_.append(chunk.substr(0, max_answer_bytes - start_.size()));
    }
  }
  object_digest finish() { return digest_.finish(); }
  const std::string& start() const { return start_; }

 private:
  streaming_digest digest_;
  std::string start_;
};

store_failure failure(std::string_view operation, const std::string& key, bool retryable,
                      const std::string& cause) {
  return store_failure{retryable, "s3 " + std::string(operation) + " " + key + ": " + cause};
}

// Network trouble may pass; a request our own policy refuses will not.
store_failure fetch_failure(std::string_view operation, const std::string& key,
                            const http::fetch_result& result) {
  const bool retryable = result.error != http::failure::refused_by_policy &&
                         result.error != http::failure::invalid_url;
  return failure(operation, key, retryable, result.message);
}

store_failure answer_failure(std::string_view operation, const std::string& key, int status,
                             std::string_view body) {
  const s3_xml::classification meaning = s3_xml::classify(status, body);
  return failure(operation, key, meaning.retryable, meaning.message);
}

std::optional<std::string> header_value(const http::response_head& head, std::string_view name) {
  for (const auto& [field, value] : head.headers) {
    if (beast::iequals(field, name)) {
      return value;
    }
  }
  return std::nullopt;
}

std::string staging_stem(const std::string& key) {
  std::string stem = key.substr(key.find_last_of('/') + 1);
  for (char& c : stem) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
      c = '_';
    }
  }
  stem.resize(std::min<std::size_t>(stem.size(), 64));
  return stem.empty() ? "object" : stem;
}

ssl::context make_tls(const std::string& ca_file) {
  ssl::context tls(ssl::context::tls_client);
  tls.set_default_verify_paths();
  if (!ca_file.empty()) {
    error_code ec;
    tls.load_verify_file(ca_file, ec);
    if (ec) {
      throw std::runtime_error("storage.s3.ca_file: cannot load " + ca_file + ": " + ec.message());
    }
  }
  return tls;
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

std::string encode_key(const std::string& key) {
  std::string out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = key.find('/', start);
    out += encoding::percent_encode(std::string_view(key).substr(start, slash - start));
    if (slash == std::string::npos) {
      return out;
    }
    out += '/';
    start = slash + 1;
  }
}

struct multipart_state;

// One S3 request before signing.
struct s3_call {
  s3_call(std::string method, std::string key) : method(std::move(method)), key(std::move(key)) {}
  std::string method;
  std::string key;
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

struct s3_store::impl {
  impl(asio::io_context& io, const config::storage_settings& settings, const ops::clock& clock);

  awaitable<s3_answer> send(const s3_call& call, http::body_sink* sink = nullptr);
  // nullopt: proceed with the upload; true: the key holds `sha256` already; a failure otherwise.
  awaitable<std::optional<store_failure>> check_present(const std::string& key,
                                                        const std::string& sha256, bool& present);
  awaitable<put_result> put_single(const std::string& key, const object_digest& digest,
                                   const std::string& content_type, std::string body,
                                   http::body_source* stream);
  awaitable<put_result> put_multipart(const std::string& key, const staged_file& file,
                                      const std::string& content_type);
  awaitable<void> upload_parts(multipart_state& state);
  awaitable<void> abort_upload(const std::string& key, const std::string& upload_id);

  asio::io_context& io_;
  const ops::clock& clock_;
  config::s3_settings s3_;
  std::filesystem::path staging_;
  http::url origin_;         // scheme, host and port of every request
  std::string origin_text_;  // "https://bucket.s3.us-east-1.amazonaws.com"
  std::string base_path_;    // "/bucket" (path style) or ""
  sigv4::credentials credentials_;
  ssl::context tls_;
  http::client client_;
  blocking_pool threads_{2};  // part digests, finishing a staged file
};

namespace {

http::url parse_origin(const config::s3_settings& s3) {
  const std::string endpoint =
      s3.endpoint.empty() ? "https://s3." + s3.region + ".amazonaws.com" : s3.endpoint;
  std::string error;
  std::optional<http::url> parsed = http::parse_url(endpoint, &error);
  if (!parsed) {
    throw std::invalid_argument("storage.s3.endpoint: " + error);
  }
  if (parsed->target != "/") {
    throw std::invalid_argument("storage.s3.endpoint: must have no path, got " + endpoint);
  }
  if (!s3.path_style) {
    if (is_ip_literal(parsed->host)) {
      throw std::invalid_argument(
          "storage.s3.path_style: must be true for an endpoint given as an IP address");
    }
    parsed->host = s3.bucket + "." + parsed->host;
  }
  return *parsed;
}

http::destination_policy policy_for(const http::url& origin) {
  http::destination_policy policy;
  // The operator named this endpoint: a private or loopback address (MinIO, s3rver) is intended.
  policy.allow_special_addresses = true;
  policy.allow_plain_http = origin.scheme == "http";
  policy.allowed_hosts = {origin.host};
  return policy;
}

http::client_settings client_settings_for(const config::s3_settings& s3) {
  http::client_settings settings;
  settings.max_connections_per_host = s3.max_parallel_parts + 1;
  settings.proxy = http::proxy_from_environment(config::from_environ());
  return settings;
}

const config::s3_settings& checked(const config::s3_settings& s3) {
  if (s3.bucket.empty()) {
    throw std::invalid_argument("storage.s3.bucket: required");
  }
  if (s3.part_size_bytes < min_part_bytes) {
    throw std::invalid_argument("storage.s3.part_size_bytes: at least 5 MiB (S3's minimum)");
  }
  if (s3.max_parallel_parts == 0) {
    throw std::invalid_argument("storage.s3.max_parallel_parts: at least 1");
  }
  return s3;
}

}  // namespace

s3_store::impl::impl(asio::io_context& io, const config::storage_settings& settings,
                     const ops::clock& clock)
    : io_(io),
      clock_(clock),
      s3_(checked(settings.s3)),
      staging_(settings.staging_path.empty() ? std::filesystem::path(settings.path) / ".staging"
                                             : std::filesystem::path(settings.staging_path)),
      origin_(parse_origin(settings.s3)),
      origin_text_(origin_.scheme + "://" + http::host_header(origin_)),
      base_path_(settings.s3.path_style ? "/" + encoding::percent_encode(settings.s3.bucket) : ""),
      credentials_{settings.s3.access_key_id, settings.s3.secret_access_key},
      tls_(make_tls(settings.s3.ca_file)),
      client_(io, policy_for(origin_), &tls_, client_settings_for(settings.s3)) {}

awaitable<s3_answer> s3_store::impl::send(const s3_call& call, http::body_sink* sink) {
  const std::string path = base_path_ + "/" + encode_key(call.key);
  sigv4::request signed_request;
  signed_request.method = call.method;
  signed_request.path = path;
  signed_request.query = call.query;
  signed_request.payload_hash = call.payload_hash;
  signed_request.headers = call.headers;
  const sigv4::scope where{sigv4::amz_date(clock_.wall_now()), s3_.region, "s3"};
  signed_request.headers.emplace_back("x-amz-date", where.amz_date);
  signed_request.headers.emplace_back("x-amz-content-sha256", call.payload_hash);

  http::request_options options;
  options.method = call.method;
  options.headers = signed_request.headers;
  // The client sends this same Host value (it derives it from the URL the same way).
  signed_request.headers.emplace_back("host", http::host_header(origin_));
  options.headers.emplace_back("Authorization",
                               sigv4::authorization(signed_request, credentials_, where));
  options.body = call.body;
  options.body_stream = call.stream;
  options.connect_timeout = std::min(s3_.timeout, std::chrono::milliseconds(10'000));
  options.read_timeout = std::min(s3_.timeout, std::chrono::milliseconds(60'000));
  options.total_timeout = s3_.timeout;

  const std::string url = origin_text_ + path + (call.query.empty() ? "" : "?" + call.query);
  s3_answer answer;
  http::string_sink collected(max_answer_bytes);
  if (sink != nullptr) {
    answer.fetch = co_await client_.fetch(url, options, *sink);
  } else {
    answer.fetch = co_await client_.fetch(url, options, collected);
    answer.body = collected.data();
  }
  co_return answer;
}

awaitable<std::optional<store_failure>> s3_store::impl::check_present(const std::string& key,
                                                                      const std::string& sha256,
                                                                      bool& present) {
  present = false;
  const s3_answer head = co_await send(s3_call{"HEAD", key});
  if (head.fetch.error != http::failure::none) {
    co_return fetch_failure("head", key, head.fetch);
  }
  const int status = head.fetch.head.status;
  if (status / 100 == 2) {
    present = header_value(head.fetch.head, "x-amz-meta-sha256") == sha256;
    co_return std::nullopt;
  }
  if (status == 404) {
    co_return std::nullopt;
  }
  if (status >= 500) {
    // The check only saves an upload. A store that cannot answer it (s3rver does so for an
    // object whose write was cut short by a crash) may still take the PUT, which then decides.
    co_return std::nullopt;
  }
  // A HEAD answer has no body to say why; a one-byte GET of the same key does.
  s3_call probe{"GET", key};
  probe.headers.emplace_back("Range", "bytes=0-0");
  const s3_answer get = co_await send(probe);
  if (get.fetch.error != http::failure::none) {
    co_return fetch_failure("head", key, get.fetch);
  }
  if (get.ok() || get.fetch.head.status == 404) {
    co_return std::nullopt;
  }
  // Without s3:ListBucket, S3 answers 403 AccessDenied for a key that does not exist: the PUT
  // itself will say whether writing is allowed.
  const std::optional<s3_xml::s3_error> error = s3_xml::parse_error(get.body);
  if (error && error->code == "AccessDenied") {
    co_return std::nullopt;
  }
  co_return answer_failure("head", key, get.fetch.head.status, get.body);
}

awaitable<put_result> s3_store::impl::put_single(const std::string& key,
                                                 const object_digest& digest,
                                                 const std::string& content_type, std::string body,
                                                 http::body_source* stream) {
  s3_call call{"PUT", key};
  call.headers = {{"Content-MD5", digest.md5_base64}, {"x-amz-meta-sha256", digest.sha256_hex}};
  if (!content_type.empty()) {
    call.headers.emplace_back("Content-Type", content_type);
  }
  call.payload_hash = digest.sha256_hex;
  call.body = std::move(body);
  call.stream = stream;
  const s3_answer answer = co_await send(call);
  put_result result;
  if (answer.fetch.error != http::failure::none) {
    result.failure = fetch_failure("put", key, answer.fetch);
  } else if (!answer.ok()) {
    result.failure = answer_failure("put", key, answer.fetch.head.status, answer.body);
  }
  co_return result;
}

// What the part uploads of one multipart upload share. Lives in put_multipart's frame, which
// waits for every worker before it ends.
struct multipart_state {
  multipart_state(asio::io_context& io, const std::string& key, const staged_file& file,
                  std::string upload_id, std::uint64_t part_bytes)
      : key(key),
        file(file),
        upload_id(std::move(upload_id)),
        part_bytes(part_bytes),
        part_count((file.size() + part_bytes - 1) / part_bytes),
        etags(part_count),
        all_done(io) {}
  const std::string& key;
  const staged_file& file;
  std::string upload_id;
  std::uint64_t part_bytes;
  std::uint64_t part_count;
  std::vector<std::string> etags;
  std::uint64_t next_part = 0;
  std::size_t running = 0;
  std::optional<store_failure> failed;  // the first failure; no new part starts after it
  asio::steady_timer all_done;          // cancelled when the last worker ends
};

awaitable<void> s3_store::impl::upload_parts(multipart_state& state) {
  while (!state.failed && state.next_part < state.part_count) {
    const std::uint64_t index = state.next_part++;
    const std::uint64_t offset = index * state.part_bytes;
    const std::uint64_t length = std::min(state.part_bytes, state.file.size() - offset);
    const std::string operation = "upload part " + std::to_string(index + 1);
    const std::filesystem::path& path = state.file.path();
    const object_digest digest = co_await threads_.run(
        [&path, offset, length] { return digest_of_range(path, offset, length); });
    file_range_source source(path, offset, length);
    s3_call call{"PUT", state.key};
    call.query = "partNumber=" + std::to_string(index + 1) +
                 "&uploadId=" + encoding::percent_encode(state.upload_id);
    call.headers = {{"Content-MD5", digest.md5_base64}};
    call.payload_hash = digest.sha256_hex;
    call.stream = &source;
    const s3_answer answer = co_await send(call);
    if (answer.fetch.error != http::failure::none) {
      state.failed = state.failed.value_or(fetch_failure(operation, state.key, answer.fetch));
      co_return;
    }
    if (!answer.ok()) {
      state.failed = state.failed.value_or(
          answer_failure(operation, state.key, answer.fetch.head.status, answer.body));
      co_return;
    }
    const std::optional<std::string> etag = header_value(answer.fetch.head, "ETag");
    if (!etag || etag->empty()) {
      state.failed =
          state.failed.value_or(failure(operation, state.key, true, "the answer carries no ETag"));
      co_return;
    }
    state.etags[index] = *etag;
  }
}

awaitable<void> s3_store::impl::abort_upload(const std::string& key, const std::string& upload_id) {
  s3_call call{"DELETE", key};
  call.query = "uploadId=" + encoding::percent_encode(upload_id);
  const s3_answer answer = co_await send(call);
  if (answer.fetch.error != http::failure::none) {
    spdlog::warn("s3 abort multipart upload {}: {} (the server drops it after its expiry)", key,
                 answer.fetch.message);
  } else if (!answer.ok() && answer.fetch.head.status != 404) {
    spdlog::warn("s3 abort multipart upload {}: {}", key,
                 s3_xml::classify(answer.fetch.head.status, answer.body).message);
  }
}

awaitable<put_result> s3_store::impl::put_multipart(const std::string& key, const staged_file& file,
                                                    const std::string& content_type) {
  put_result result;
  const object_digest& digest = file.digest();
  const std::uint64_t part_bytes = s3_.part_size_bytes;
  if ((digest.size + part_bytes - 1) / part_bytes > max_parts) {
    result.failure =
        failure("put", key, false,
                std::to_string(digest.size) + " bytes need more than 10000 parts of " +
                    std::to_string(part_bytes) + " bytes: raise storage.s3.part_size_bytes");
    co_return result;
  }
  s3_call create{"POST", key};
  create.query = "uploads";
  create.headers = {{"x-amz-meta-sha256", digest.sha256_hex}};
  if (!content_type.empty()) {
    create.headers.emplace_back("Content-Type", content_type);
  }
  const s3_answer created = co_await send(create);
  if (created.fetch.error != http::failure::none) {
    result.failure = fetch_failure("create multipart upload", key, created.fetch);
    co_return result;
  }
  if (!created.ok()) {
    result.failure =
        answer_failure("create multipart upload", key, created.fetch.head.status, created.body);
    co_return result;
  }
  std::optional<std::string> upload_id = s3_xml::parse_upload_id(created.body);
  if (!upload_id) {
    result.failure =
        failure("create multipart upload", key, true, "the answer carries no UploadId");
    co_return result;
  }

  multipart_state state(io_, key, file, *upload_id, part_bytes);
  state.all_done.expires_at(asio::steady_timer::time_point::max());
  const std::size_t workers =
      static_cast<std::size_t>(std::min<std::uint64_t>(s3_.max_parallel_parts, state.part_count));
  for (std::size_t i = 0; i < workers; ++i) {
    ++state.running;
    asio::co_spawn(io_, upload_parts(state), [&state, &key](std::exception_ptr error) {
      if (error) {
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          state.failed = state.failed.value_or(failure("put", key, true, e.what()));
        }
      }
      if (--state.running == 0) {
        state.all_done.cancel();
      }
    });
  }
  if (state.running > 0) {
    error_code ignored;
    co_await state.all_done.async_wait(with_error(ignored));
  }

  if (!state.failed) {
    std::vector<std::pair<int, std::string>> parts;
    for (std::uint64_t i = 0; i < state.part_count; ++i) {
      parts.emplace_back(static_cast<int>(i + 1), state.etags[i]);
    }
    s3_call complete{"POST", key};
    complete.query = "uploadId=" + encoding::percent_encode(*upload_id);
    complete.body = s3_xml::complete_multipart_body(parts);
    complete.payload_hash = sha256_hex(complete.body);
    complete.headers = {{"Content-Type", "application/xml"}};
    const s3_answer completed = co_await send(complete);
    if (completed.fetch.error != http::failure::none) {
      state.failed = fetch_failure("complete multipart upload", key, completed.fetch);
    } else if (!completed.ok()) {
      state.failed = answer_failure("complete multipart upload", key, completed.fetch.head.status,
                                    completed.body);
    } else if (s3_xml::parse_error(completed.body)) {
      // S3 may fail a completion after it answered 200: the error is in the body.
      state.failed = answer_failure("complete multipart upload", key, 0, completed.body);
    }
  }
  if (state.failed) {
    result.failure = state.failed;
    co_await abort_upload(key, *upload_id);
  }
  co_return result;
}

s3_store::s3_store(asio::io_context& io, const config::storage_settings& settings,
                   const ops::clock& clock)
    : impl_(std::make_unique<impl>(io, settings, clock)) {}

s3_store::~s3_store() = default;

std::unique_ptr<staged_file> s3_store::stage(const std::string& key, std::uint64_t max_bytes) {
  return std::make_unique<staged_file>(impl_->staging_, staging_stem(key), max_bytes);
}

awaitable<put_result> s3_store::put(const std::string& key, staged_file& file,
                                    const std::string& content_type) {
  impl& self = *impl_;
  put_result result;
  try {
    if (!file.finished()) {
      co_await self.threads_.run([&file] { file.finish(); });
    }
    const object_digest& digest = file.digest();
    bool present = false;
    result.failure = co_await self.check_present(key, digest.sha256_hex, present);
    if (result.failure || present) {
      result.already_present = present;
      co_return result;
    }
    if (digest.size > self.s3_.multipart_threshold_bytes) {
      result = co_await self.put_multipart(key, file, content_type);
    } else {
      file_range_source source(file.path(), 0, digest.size);
      result = co_await self.put_single(key, digest, content_type, {}, &source);
    }
  } catch (const std::system_error& e) {
    // The staged file could not be read: local trouble (disk), worth another attempt.
    result.failure = failure("put", key, true, e.what());
  }
  co_return result;
}

awaitable<put_result> s3_store::put_bytes(const std::string& key, std::string bytes,
                                          const std::string& content_type) {
  impl& self = *impl_;
  if (bytes.size() > self.s3_.multipart_threshold_bytes) {
    std::unique_ptr<staged_file> file;
    try {
      file = stage(key, bytes.size());
      file->write(bytes);
    } catch (const std::system_error& e) {
      co_return put_result{failure("put", key, true, e.what()), false};
    }
    bytes = std::string();
    co_return co_await put(key, *file, content_type);
  }
  const object_digest digest = digest_of(bytes);
  bool present = false;
  put_result result;
  result.failure = co_await self.check_present(key, digest.sha256_hex, present);
  if (result.failure || present) {
    result.already_present = present;
    co_return result;
  }
  co_return co_await self.put_single(key, digest, content_type, std::move(bytes), nullptr);
}

awaitable<std::size_t> s3_store::remove_stale_staging(std::chrono::seconds older_than) {
  const std::filesystem::path staging = impl_->staging_;
  const std::size_t removed = co_await impl_->threads_.run(
      [&] { return remove_stale_staging_files(staging, false, older_than); });
  co_return removed;
}

awaitable<read_result> s3_store::read_digest(const std::string& key) {
  digesting_sink sink;
  const s3_answer answer = co_await impl_->send(s3_call{"GET", key}, &sink);
  read_result result;
  if (answer.fetch.error != http::failure::none) {
    result.failure = fetch_failure("read", key, answer.fetch);
  } else if (answer.fetch.head.status == 404) {
    result.not_found = true;
    result.failure = failure("read", key, false, "no object at this key (HTTP 404)");
  } else if (answer.fetch.head.status != 200) {
    result.failure = answer_failure("read", key, answer.fetch.head.status, sink.start());
  } else {
    result.digest = sink.finish();
  }
  co_return result;
}

std::string s3_store::describe() const { return "s3 " + impl_->origin_text_ + impl_->base_path_; }

}  // namespace archiver::storage
