// Where archived objects go: the `object_store` interface, and the staging file every object is
// written to first. An object reaches its final key only whole and with its digests known:
// filesystem: temp file in the target directory, fsync, rename, fsync the directory; s3: one PUT
// or a completed multipart upload, each carrying the payload's sha256 and MD5.
// Implementations: storage/filesystem_store.hpp, storage/s3_store.hpp; make_store() picks one.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/client.hpp"
#include "net/asio.hpp"
#include "storage/digest.hpp"

namespace archiver::storage {

// 8 bytes from OpenSSL's generator as 16 lowercase hex digits: the unique part of a staging file's
// or a probe object's name. Throws std::runtime_error naming `purpose` when it has none to give.
std::string random_hex(std::string_view purpose);

// Throws std::system_error for `error` (an errno value) with "<what> <path>" as its message.
[[noreturn]] void throw_errno(int error, const std::string& what,
                              const std::filesystem::path& path);

// A new local file being written, chunk by chunk (it is an http::body_sink, so a download can go
// straight into it), with sha256, MD5 and size computed as the bytes flow. Removed on destruction
// unless a store moved it to its final place. Not thread-safe; write() runs on the caller's thread
// (buffered writes into the page cache); finish() does the fsync and belongs on a blocking thread.
class staged_file final : public http::body_sink {
 public:
  // Creates "<directory>/.<stem>.<random>.tmp" with O_CREAT|O_EXCL, mode 0600, creating
  // `directory` (and parents) when missing. Throws std::system_error naming the path.
  staged_file(const std::filesystem::path& directory, std::string_view stem,
              std::uint64_t max_bytes = std::numeric_limits<std::uint64_t>::max());
  ~staged_file() override;
  staged_file(const staged_file&) = delete;
  staged_file& operator=(const staged_file&) = delete;

  // Throws std::system_error on a write error (ENOSPC included); the file is then useless.
  void write(std::string_view chunk) override;
  std::uint64_t max_bytes() const override { return max_bytes_; }

  // Flushes and fsyncs; the digests are final from here on. Throws std::system_error.
  const object_digest& finish();
  bool finished() const { return finished_; }
  const object_digest& digest() const;  // after finish()
  std::uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  // The store took the file (renamed it): the destructor must not remove it.
  void release() { released_ = true; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t max_bytes_;
  std::uint64_t size_ = 0;
  streaming_digest hashing_;
  object_digest digest_;
  bool finished_ = false;
  bool released_ = false;
};

// Why a store operation failed. `retryable`: the store may accept a later attempt (network,
// 5xx, SlowDown, disk full); otherwise an operator must act (credentials, permissions, a bucket
// that does not exist, a clock too far off).
struct store_failure {
  bool retryable = true;
  std::string message;  // one line: operation, key, cause; never a secret
};

// What must keep a new object unchangeable, where the store can enforce it (S3 Object Lock with
// storage.s3.object_lock_mode; the filesystem store writes every file read-only whatever).
struct object_protection {
  // The case's retention date; none while the case is open or kept forever (the store then
  // applies its own default, storage.s3.object_lock_days).
  std::optional<std::chrono::sys_seconds> retain_until;
  bool legal_hold = false;  // the case is under a legal hold
};

struct put_result {
  std::optional<store_failure> failure;  // empty: the object is at its key, whole
  bool already_present = false;  // the key already held these exact bytes: nothing was written
};

struct remove_result {
  std::optional<store_failure> failure;
  int removed = 0;  // objects or versions deleted; 0 when nothing was at the key
};

struct list_result {
  std::optional<store_failure> failure;
  std::vector<std::string> keys;  // sorted
};

struct read_result {
  std::optional<store_failure> failure;
  bool not_found = false;  // the key holds no object (failure is also set)
  object_digest digest;   // of the bytes read back
};

class object_store {
 public:
  virtual ~object_store() = default;

  // A staging file for the object that will be stored at `key` (filesystem: in the key's own
  // directory, so that the final rename is atomic; s3: in the local staging directory).
  // Throws std::system_error when it cannot be created.
  virtual std::unique_ptr<staged_file> stage(const std::string& key, std::uint64_t max_bytes) = 0;

  // Stores the finished `file` at `key`, replacing what is there unless it already holds the same
  // sha256 (then nothing is written and already_present is set, and the object gets what
  // `protection` adds to its own, as protect() gives it but never lifting a hold: a run that wrote
  // it and failed before recording it may have read an older protection). Runs on the caller's
  // executor; blocking work goes to the store's own threads.
  virtual awaitable<put_result> put(const std::string& key, staged_file& file,
                                    const std::string& content_type,
                                    const object_protection& protection) = 0;

  // Small objects held in memory (manifests, JSON snapshots): staged and put the same way.
  virtual awaitable<put_result> put_bytes(const std::string& key, std::string bytes,
                                          const std::string& content_type,
                                          const object_protection& protection) = 0;

  // Reads the object at `key` back and digests it (for `verify`).
  virtual awaitable<read_result> read_digest(const std::string& key) = 0;

  // Copies the object at `key` into a new local file `destination` (created, never replaced) and
  // digests what it copied (for `export`). On failure no file is left at `destination`.
  virtual awaitable<read_result> copy_to(const std::string& key,
                                         const std::filesystem::path& destination) = 0;

  // Deletes the object at `key` and, on a versioned bucket, every version of it and every delete
  // marker (a delete without a version id would only hide it behind a new marker). Nothing at
  // `key` is success with removed 0. For the purge (records).
  virtual awaitable<remove_result> remove(const std::string& key) = 0;

  // Applies `protection` to the object already at `key`, for a case that closed or whose hold
  // changed after the object was written. S3 with Object Lock: its retention is extended to
  // protection.retain_until when that is later than the one it has (never shortened; nothing
  // without a date), and its legal hold set ON or OFF. No object at `key` (purged meanwhile) is
  // success. Elsewhere nothing to do.
  virtual awaitable<std::optional<store_failure>> protect(const std::string& key,
                                                          const object_protection& protection) = 0;

  // The keys of the objects whose key starts with `prefix` (which ends with '/': a directory),
  // sorted; none when there is nothing there. Staging files are not objects. For the audit
  // digests, a few thousand keys at most.
  virtual awaitable<list_result> list(const std::string& prefix) = 0;

  // Whether the store can give what the configuration asks of it, checked once at start-up:
  // nullopt when it can (or nothing is asked), else why not (S3: storage.s3.object_lock_mode
  // against a bucket without Object Lock enabled).
  virtual awaitable<std::optional<store_failure>> check_protection() = 0;

  // Removes staging files left by a process that died mid-write (kill -9, power loss) and not
  // modified for `older_than`; returns how many. Run at start-up, off the io_context's thread.
  // The age guard matters: other replicas may be staging into the same tree right now.
  virtual awaitable<std::size_t> remove_stale_staging(std::chrono::seconds older_than) = 0;

  // For logs and `status`: "filesystem /var/lib/..." or "s3 http://host/bucket".
  virtual std::string describe() const = 0;
};

// Deletes files named like staged_file's (".<stem>.<hex>.tmp") under `directory` (recursively
// when asked) whose last modification is older than `older_than`. Blocking; returns the count.
// A directory that does not exist holds nothing stale.
std::size_t remove_stale_staging_files(const std::filesystem::path& directory, bool recursive,
                                       std::chrono::seconds older_than);

}  // namespace archiver::storage
