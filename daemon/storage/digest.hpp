// sha256 (hex, what the database records) and MD5 (base64, what S3's Content-MD5 carries) of a
// byte stream, computed incrementally. Not thread-safe; one stream per object.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace archiver::storage {

struct object_digest {
  std::string sha256_hex;  // 64 lowercase hex digits
  std::string md5_base64;  // 24 characters
  std::uint64_t size = 0;
};

class streaming_digest {
 public:
  streaming_digest();
  ~streaming_digest();
  streaming_digest(streaming_digest&&) noexcept;
  streaming_digest& operator=(streaming_digest&&) noexcept;

  void update(std::string_view bytes);
  object_digest finish();  // once; update() after it is a programmer error (std::logic_error)

 private:
  struct state;
  std::unique_ptr<state> state_;
  std::uint64_t size_ = 0;
};

object_digest digest_of(std::string_view bytes);
std::string sha256_hex(std::string_view bytes);

}  // namespace archiver::storage
