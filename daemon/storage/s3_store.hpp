// The object store on S3 (or any S3-compatible server): objects go up signed with SigV4 and
// carrying their sha256 (x-amz-content-sha256 and the user metadata x-amz-meta-sha256, which
// makes a repeated put a cheap HEAD) and MD5 (Content-MD5). Objects above
// s3.multipart_threshold_bytes go up as a multipart upload streamed from the staging file, at
// most s3.max_parallel_parts parts at once; a failed one is aborted. Keys are used as given
// (storage.prefix is the caller's business), percent-encoded per '/'-separated segment.
// Runs on one io_context thread; part digests are computed on the store's own threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "net/asio.hpp"
#include "ops/clock.hpp"
#include "storage/object_store.hpp"

namespace archiver::storage {

class s3_store final : public object_store {
 public:
  // Path-style (endpoint/bucket/key) or virtual-hosted (bucket.host/key) per s3.path_style; an
  // empty s3.endpoint means https://s3.<region>.amazonaws.com. Only the endpoint's host is ever
  // contacted (plain http only when the endpoint says so). Throws std::invalid_argument naming
  // the setting for an unusable endpoint, bucket or part size, std::runtime_error when
  // s3.ca_file cannot be loaded. Requests are dated by `clock` (SigV4's x-amz-date), which must
  // outlive the store.
  s3_store(asio::io_context& io, const config::storage_settings& settings,
           const ops::clock& clock = ops::real_clock());
  ~s3_store() override;

  // In storage.staging_path, or storage.path + "/.staging" when that is empty.
  std::unique_ptr<staged_file> stage(const std::string& key, std::uint64_t max_bytes) override;
  // HEAD first: the same x-amz-meta-sha256 at the key means already_present, nothing sent. A
  // HEAD refused without a reason is asked again as a one-byte GET, whose error body names the
  // cause (SignatureDoesNotMatch, ...); AccessDenied there (no s3:ListBucket) lets the PUT
  // decide. Finishes `file` first when the caller has not; the file stays the caller's.
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
  // With storage.s3.object_lock_mode: the bucket's Object Lock configuration must say Enabled,
  // and probe_object_lock must find it enforced; a failure names what to change. Without it:
  // nothing is checked.
  awaitable<std::optional<store_failure>> check_protection() override;
  awaitable<std::size_t> remove_stale_staging(std::chrono::seconds older_than) override;
  std::string describe() const override;

  // Whether the store enforces Object Lock, found by trying: reads the bucket's Object Lock
  // configuration, writes a small object under "<storage.prefix>.certn-archiver/lock-probe/"
  // retained an hour in GOVERNANCE mode, and tries to delete that version without bypassing the
  // retention: a store that enforces the lock refuses with 403. Some S3-compatible stores accept
  // the headers and delete anyway. Then removes the probe (bypassing the governance retention
  // where the credentials may; otherwise it stays, and a finding says until when).
  struct lock_probe {
    bool bucket_enabled = false;        // the bucket's configuration says ObjectLockEnabled
    bool enforced = false;              // the locked version could not be deleted
    std::vector<std::string> findings;  // one line each: what was tried, what the store said
  };
  awaitable<lock_probe> probe_object_lock();

  // Replaces the credentials for requests signed from now on (SIGHUP). On the io_context's
  // thread only, where requests are signed.
  void set_credentials(std::string access_key_id, std::string secret_access_key);

 private:
  // read_digest and copy_to: GETs the object, copying it to `destination` when given.
  awaitable<read_result> read(const std::string& key, const std::filesystem::path* destination);
  // protect, and for an object a put found already there (added_only): the retention extended
  // and a hold placed, never one lifted, since that put's run may have read the protection from
  // before a release (a run that lost its lease, say); only protect_case lifts a hold.
  awaitable<std::optional<store_failure>> apply_protection(const std::string& key,
                                                           const object_protection& protection,
                                                           bool added_only);

  struct impl;
  std::unique_ptr<impl> impl_;
};

// "a%20b/c%2Bd": each '/'-separated segment of `key` percent-encoded (RFC 3986 unreserved kept).
std::string encode_key(const std::string& key);

}  // namespace archiver::storage
