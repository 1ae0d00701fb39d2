// `certn-archiver lock-probe`: whether the S3 store enforces Object Lock. serve runs the same
// probe at start-up when storage.s3.object_lock_mode is set.
#include <iostream>
#include <string>

#include "encoding/json.hpp"
#include "service/service.hpp"
#include "storage/s3_store.hpp"

namespace archiver::service {

int lock_probe(const config::config& cfg, bool json) {
  if (cfg.storage.backend != "s3") {
    std::cerr << "certn-archiver: lock-probe: storage.backend is " << cfg.storage.backend
              << ", not s3: Object Lock is an S3 feature (the filesystem backend writes files "
                 "read-only, which it cannot enforce)\n";
    return exit_usage;
  }
  storage::s3_store::lock_probe probe;
  try {
    asio::io_context io(1);
    storage::s3_store store(io, cfg.storage);
    std::exception_ptr failure;
    asio::co_spawn(
        io, [&]() -> awaitable<void> { probe = co_await store.probe_object_lock(); },
        [&](std::exception_ptr error) {
          failure = error;
          io.stop();  // pooled idle connections would keep run() going
        });
    io.run();
    if (failure) {
      std::rethrow_exception(failure);
    }
  } catch (const std::exception& e) {
    std::cerr << "certn-archiver: lock-probe: " << e.what() << "\n";
    return exit_failure;
  }
  const bool enforced = probe.bucket_enabled && probe.enforced;
  if (json) {
    encoding::json_writer out;
    out.begin_object()
        .key("bucket_enabled")
        .boolean(probe.bucket_enabled)
        .key("enforced")
        .boolean(enforced)
        .key("findings")
        .begin_array();
    for (const std::string& finding : probe.findings) {
      out.value(finding);
    }
    out.end_array().end_object();
    std::cout << out.str() << "\n";
  } else {
    for (const std::string& finding : probe.findings) {
      std::cout << finding << "\n";
    }
    std::cout << (enforced ? "Object Lock: enforced\n"
                           : "Object Lock: NOT enforced by this store and bucket\n");
  }
  return enforced ? exit_ok : exit_failure;
}

}  // namespace archiver::service
