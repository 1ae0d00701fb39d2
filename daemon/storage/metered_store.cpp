#include "storage/metered_store.hpp"

namespace archiver::storage {

metered_store::metered_store(object_store& inner, ops::registry& registry)
    : inner_(inner),
      operations_(registry.counter(
          "certn_archiver_storage_operations_total",
          "Object store operations by operation (put, read, remove, list, protect) and outcome "
          "(ok, not_found, failed).",
          {"operation", "outcome"})) {
  // Every series from the start, at 0, so that an alert's increase() sees the first failure.
  for (const char* operation : {"put", "read", "remove", "list", "protect"}) {
    for (const char* outcome : {"ok", "not_found", "failed"}) {
      operations_.inc({operation, outcome}, 0);
    }
  }
}

void metered_store::count(const char* operation, const std::optional<store_failure>& failure,
                          bool not_found) {
  const char* outcome = not_found ? "not_found" : failure ? "failed" : "ok";
  operations_.inc({operation, outcome});
}

awaitable<put_result> metered_store::put(const std::string& key, staged_file& file,
                                         const std::string& content_type,
                                         const object_protection& protection) {
  put_result result = co_await inner_.put(key, file, content_type, protection);
  count("put", result.failure);
  co_return result;
}

awaitable<put_result> metered_store::put_bytes(const std::string& key, std::string bytes,
                                               const std::string& content_type,
                                               const object_protection& protection) {
  put_result result = co_await inner_.put_bytes(key, std::move(bytes), content_type, protection);
  count("put", result.failure);
  co_return result;
}

awaitable<read_result> metered_store::read_digest(const std::string& key) {
  read_result result = co_await inner_.read_digest(key);
  count("read", result.failure, result.not_found);
  co_return result;
}

awaitable<read_result> metered_store::copy_to(const std::string& key,
                                              const std::filesystem::path& destination) {
  read_result result = co_await inner_.copy_to(key, destination);
  count("read", result.failure, result.not_found);
  co_return result;
}

awaitable<remove_result> metered_store::remove(const std::string& key) {
  remove_result result = co_await inner_.remove(key);
  count("remove", result.failure);
  co_return result;
}

awaitable<list_result> metered_store::list(const std::string& prefix) {
  list_result result = co_await inner_.list(prefix);
  count("list", result.failure);
  co_return result;
}

awaitable<std::optional<store_failure>> metered_store::protect(
    const std::string& key, const object_protection& protection) {
  std::optional<store_failure> failure = co_await inner_.protect(key, protection);
  count("protect", failure);
  co_return failure;
}

std::unique_ptr<staged_file> metered_store::stage(const std::string& key, std::uint64_t max_bytes) {
  return inner_.stage(key, max_bytes);
}

awaitable<std::optional<store_failure>> metered_store::check_protection() {
  co_return co_await inner_.check_protection();
}

awaitable<std::size_t> metered_store::remove_stale_staging(std::chrono::seconds older_than) {
  const std::size_t removed = co_await inner_.remove_stale_staging(older_than);
  co_return removed;
}

std::string metered_store::describe() const { return inner_.describe(); }

}  // namespace archiver::storage
