// An object store that counts what it forwards to another, by operation and outcome, for
// certn_archiver_storage_operations_total: an operator sees the store failing (credentials
// revoked, bucket gone, disk full) on a dashboard and in an alert, not only as jobs that retry.
// serve archives through one (service/pipeline). Every call goes to the inner store unchanged.
//
// Ownership: the inner store and the registry are borrowed and must outlive this one.
// Thread-safe as far as the inner store is: the counters are the registry's.
#pragma once

#include "ops/metrics.hpp"
#include "storage/object_store.hpp"

namespace archiver::storage {

class metered_store final : public object_store {
 public:
  metered_store(object_store& inner, ops::registry& registry);

  // Counted as operation: put (put, put_bytes), read (read_digest, copy_to), remove, list and
  // protect; outcome: ok, not_found (a read of a key that holds nothing) or failed.
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

  // Not counted: local work (stage, remove_stale_staging) and the start-up check.
  std::unique_ptr<staged_file> stage(const std::string& key, std::uint64_t max_bytes) override;
  awaitable<std::optional<store_failure>> check_protection() override;
  awaitable<std::size_t> remove_stale_staging(std::chrono::seconds older_than) override;
  std::string describe() const override;  // the inner store's

 private:
  void count(const char* operation, const std::optional<store_failure>& failure,
             bool not_found = false);

  object_store& inner_;
  ops::counter_family& operations_;
};

}  // namespace archiver::storage
