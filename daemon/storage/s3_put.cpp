// Putting an object in one request: s3_store::put and put_bytes (HEAD first, then a single PUT or,
// above s3.multipart_threshold_bytes, a multipart upload), and a file range as a request body.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "storage/digest.hpp"
#include "storage/s3_detail.hpp"

namespace archiver::storage {

namespace s3_detail {

file_range_source::file_range_source(const std::filesystem::path& path, std::uint64_t offset,
                                     std::uint64_t length)
    : path_(path), offset_(offset), length_(length) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    throw std::system_error(errno, std::generic_category(), "cannot open " + path.string());
  }
}

file_range_source::~file_range_source() { ::close(fd_); }

std::size_t file_range_source::read(char* buffer, std::size_t capacity) {
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

}  // namespace s3_detail

using namespace s3_detail;

awaitable<put_result> s3_store::impl::put_single(const std::string& key,
                                                 const object_digest& digest,
                                                 const std::string& content_type,
                                                 const object_protection& protection,
                                                 std::string body, http::body_source* stream) {
  s3_call call{"PUT", key};
  call.headers = {{"Content-MD5", digest.md5_base64}, {"x-amz-meta-sha256", digest.sha256_hex}};
  if (!content_type.empty()) {
    call.headers.emplace_back("Content-Type", content_type);
  }
  for (auto& header : new_object_headers(protection)) {
    call.headers.push_back(std::move(header));
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
  } else {
    result.failure = check_encryption("put", key, s3_, answer.fetch.head);
  }
  co_return result;
}

awaitable<put_result> s3_store::put(const std::string& key, staged_file& file,
                                    const std::string& content_type,
                                    const object_protection& protection) {
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
      if (present) {
        result.failure = co_await apply_protection(key, protection, true);
      }
      co_return result;
    }
    if (digest.size > self.s3_.multipart_threshold_bytes) {
      result = co_await self.put_multipart(key, file, content_type, protection);
    } else {
      file_range_source source(file.path(), 0, digest.size);
      result = co_await self.put_single(key, digest, content_type, protection, {}, &source);
    }
  } catch (const std::system_error& e) {
    // The staged file could not be read: local trouble (disk), worth another attempt.
    result.failure = failure("put", key, true, e.what());
  }
  co_return result;
}

awaitable<put_result> s3_store::put_bytes(const std::string& key, std::string bytes,
                                          const std::string& content_type,
                                          const object_protection& protection) {
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
    co_return co_await put(key, *file, content_type, protection);
  }
  const object_digest digest = digest_of(bytes);
  bool present = false;
  put_result result;
  result.failure = co_await self.check_present(key, digest.sha256_hex, present);
  if (result.failure || present) {
    result.already_present = present;
    if (present) {
      result.failure = co_await apply_protection(key, protection, true);
    }
    co_return result;
  }
  co_return co_await self.put_single(key, digest, content_type, protection, std::move(bytes),
                                     nullptr);
}

}  // namespace archiver::storage
