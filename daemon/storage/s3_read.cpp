// Reading what is at a key: the HEAD (or one-byte GET) before a put, which tells whether the
// object is there already, and read_digest and copy_to, which stream an object back to verify or
// export it.
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>

#include "storage/digest.hpp"
#include "storage/s3_detail.hpp"
#include "storage/s3_xml.hpp"

namespace archiver::storage {

using namespace s3_detail;

namespace {

// Digests what it is given; keeps the start too, for an error document.
class digesting_sink final : public http::body_sink {
 public:
  void write(std::string_view chunk) override {
    digest_.update(chunk);
    if (copy_ != nullptr &&
        !copy_->write(chunk.data(), static_cast<std::streamsize>(chunk.size()))) {
      throw std::runtime_error("cannot write the copy");
    }
    if (start_.size() < max_answer_bytes) {
      start_.append(chunk.substr(0, max_answer_bytes - start_.size()));
    }
  }
  object_digest finish() { return digest_.finish(); }
  const std::string& start() const { return start_; }
  // Also writes every chunk to `out` from now on (copy_to).
  void copy_into(std::ofstream& out) { copy_ = &out; }

 private:
  streaming_digest digest_;
  std::string start_;
  std::ofstream* copy_ = nullptr;
};

}  // namespace

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

awaitable<read_result> s3_store::read_digest(const std::string& key) {
  co_return co_await read(key, nullptr);
}

awaitable<read_result> s3_store::copy_to(const std::string& key,
                                         const std::filesystem::path& destination) {
  co_return co_await read(key, &destination);
}

awaitable<read_result> s3_store::read(const std::string& key,
                                      const std::filesystem::path* destination) {
  digesting_sink sink;
  std::ofstream copy;
  if (destination != nullptr) {
    if (std::filesystem::exists(*destination)) {
      co_return read_result{
          failure("read", key, false, destination->string() + " already exists"), false, {}};
    }
    copy.open(*destination, std::ios::binary);
    if (!copy) {
      co_return read_result{
          failure("read", key, false, "cannot create " + destination->string()), false, {}};
    }
    sink.copy_into(copy);
  }
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
  if (destination != nullptr) {
    copy.close();
    if (!result.failure && !copy) {
      result.failure = failure("read", key, true, "cannot write " + destination->string());
    }
    if (result.failure) {
      std::error_code ignored;
      std::filesystem::remove(*destination, ignored);
    }
  }
  co_return result;
}

}  // namespace archiver::storage
