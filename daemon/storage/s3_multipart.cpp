// Multipart upload of a large staged file: create, the parts (digested on the store's threads,
// streamed from the file, at most s3.max_parallel_parts at once), complete, and abort on failure.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <stdexcept>

#include "encoding/encoding.hpp"
#include "storage/digest.hpp"
#include "storage/s3_detail.hpp"
#include "storage/s3_xml.hpp"

namespace archiver::storage {

namespace s3_detail {

namespace {

constexpr std::uint64_t max_parts = 10'000;
constexpr std::size_t read_chunk_bytes = 1 << 20;

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

}  // namespace

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

}  // namespace s3_detail

using namespace s3_detail;

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
                                                    const std::string& content_type,
                                                    const object_protection& protection) {
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
  for (auto& header : new_object_headers(protection)) {
    create.headers.push_back(std::move(header));
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
  if (auto refused = check_encryption("create multipart upload", key, s3_, created.fetch.head)) {
    result.failure = std::move(refused);
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

}  // namespace archiver::storage
