#include "storage/digest.hpp"

#include <openssl/evp.h>

#include <stdexcept>

#include "encoding/encoding.hpp"

namespace archiver::storage {

namespace {

struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using md_ctx = std::unique_ptr<EVP_MD_CTX, md_ctx_deleter>;

md_ctx start(const EVP_MD* algorithm) {
  md_ctx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), algorithm, nullptr) != 1) {
    throw std::runtime_error("OpenSSL: cannot start a digest");
  }
  return ctx;
}

std::string final_bytes(EVP_MD_CTX* ctx) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx, out, &length) != 1) {
    throw std::runtime_error("OpenSSL: cannot finish a digest");
  }
  return std::string(reinterpret_cast<const char*>(out), length);
}

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');  // EVP_EncodeBlock adds a NUL
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

}  // namespace

// Both digests see every byte once, so an object is read a single time for S3's two headers.
struct streaming_digest::state {
  md_ctx sha256 = start(EVP_sha256());
  md_ctx md5 = start(EVP_md5());
};

streaming_digest::streaming_digest() : state_(std::make_unique<state>()) {}
streaming_digest::~streaming_digest() = default;
streaming_digest::streaming_digest(streaming_digest&&) noexcept = default;
streaming_digest& streaming_digest::operator=(streaming_digest&&) noexcept = default;

void streaming_digest::update(std::string_view bytes) {
  if (!state_) {
    throw std::logic_error("streaming_digest::update after finish");
  }
  if (bytes.empty()) {
    return;
  }
  if (EVP_DigestUpdate(state_->sha256.get(), bytes.data(), bytes.size()) != 1 ||
      EVP_DigestUpdate(state_->md5.get(), bytes.data(), bytes.size()) != 1) {
    throw std::runtime_error("OpenSSL: digest update failed");
  }
  size_ += bytes.size();
}

object_digest streaming_digest::finish() {
  if (!state_) {
    throw std::logic_error("streaming_digest::finish called twice");
  }
  object_digest out;
  out.sha256_hex = encoding::to_hex(final_bytes(state_->sha256.get()));
  out.md5_base64 = base64(final_bytes(state_->md5.get()));
  out.size = size_;
  state_.reset();
  return out;
}

object_digest digest_of(std::string_view bytes) {
  streaming_digest digest;
  digest.update(bytes);
  return digest.finish();
}

std::string sha256_hex(std::string_view bytes) { return digest_of(bytes).sha256_hex; }

}  // namespace archiver::storage
