// The object store on a local (or mounted) filesystem: key "a/b/c.pdf" is the file
// <root>/a/b/c.pdf. An object is staged in its own target directory, fsynced, renamed over the
// final name and the directory fsynced, so a reader (or a crash) sees the old object or the new
// one whole, never a part. Final files are read-only (0440), directories 0750: a slip of a
// process or an operator cannot change an archived object in place, and a replacement is always
// a new file renamed over the old (what Object Lock gives on S3 this cannot: the owner, root, or
// anyone who may write the directory can still chmod, replace or delete a file).
//
// Keys are relative paths of non-empty segments separated by '/'; empty and absolute keys, "."
// and ".." segments, empty segments, NUL bytes and keys that would resolve outside the root
// (through a symbolic link) are refused: put/put_bytes/read_digest return a failure that is not
// retryable, stage() throws std::invalid_argument (our code builds keys: a bad one is a bug).
//
// Disk errors (ENOSPC, EIO, EDQUOT, ...) are retryable failures; permissions, a read-only
// filesystem and the like are not. After a failure no partial object is at the key, and no
// staging file remains once the staged_file is destroyed (a failed write removes it at once).
//
// Thread-safe. Blocking work runs on the store's own threads; coroutines resume on their own
// executor. Must outlive every operation in flight.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "storage/blocking.hpp"
#include "storage/object_store.hpp"

namespace archiver::storage {

class filesystem_store final : public object_store {
 public:
  // Creates `root` (0750) when missing. Throws std::system_error when it cannot.
  explicit filesystem_store(const std::filesystem::path& root, std::size_t threads = 2);

  // `max_bytes` is the staged file's limit. Throws std::invalid_argument for a refused key,
  // std::system_error when the directory or the file cannot be created.
  std::unique_ptr<staged_file> stage(const std::string& key, std::uint64_t max_bytes) override;

  // Finishes `file` first when the caller has not. On success the staged file is gone (renamed,
  // or removed when already_present) and released.
  awaitable<put_result> put(const std::string& key, staged_file& file,
                            const std::string& content_type,
                            const object_protection& protection) override;
  awaitable<put_result> put_bytes(const std::string& key, std::string bytes,
                                  const std::string& content_type,
                                  const object_protection& protection) override;
  awaitable<read_result> read_digest(const std::string& key) override;
  awaitable<read_result> copy_to(const std::string& key,
                                 const std::filesystem::path& destination) override;
  awaitable<remove_result> remove(const std::string& key) override;
  awaitable<list_result> list(const std::string& prefix) override;
  awaitable<std::optional<store_failure>> protect(const std::string& key,
                                                  const object_protection& protection) override;
  // Nothing to check: files are always written read-only, and no more can be asked.
  awaitable<std::optional<store_failure>> check_protection() override;
  awaitable<std::size_t> remove_stale_staging(std::chrono::seconds older_than) override;
  std::string describe() const override;  // "filesystem <root>"

  const std::filesystem::path& root() const { return root_; }  // canonical

  // Why `key` is refused (one line), or nullopt when its form is acceptable. Lexical only: the
  // store also checks that the resolved path stays under the root.
  static std::optional<std::string> key_problem(std::string_view key);

 private:
  put_result put_blocking(const std::string& key, staged_file& file);
  // read_digest and copy_to: reads the object, copying it to `destination` when given.
  read_result read_blocking(const std::string& key, const std::filesystem::path* destination);
  std::optional<std::string> escapes_root(const std::filesystem::path& target) const;

  std::filesystem::path root_;
  blocking_pool blocking_;
};

}  // namespace archiver::storage
