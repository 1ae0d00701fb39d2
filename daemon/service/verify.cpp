// `certn-archiver verify [--case ID]`: every stored object is read back and hashed, and compared
// with the sha256 and size the database recorded when it was archived.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <pqxx/pqxx>

#include "records/audit.hpp"
#include "service/cli_database.hpp"
#include "service/pipeline.hpp"
#include "service/service.hpp"

namespace archiver::service {

namespace {

struct recorded_object {
  std::string key;
  std::string sha256;
  std::uint64_t size = 0;
};

struct tally {
  std::uint64_t objects = 0;
  std::uint64_t bytes = 0;
  std::uint64_t mismatched = 0;
  std::uint64_t missing = 0;
  std::uint64_t unreadable = 0;
};

awaitable<void> verify_all(storage::object_store& store,
                           const std::vector<recorded_object>& objects, tally& out) {
  for (const recorded_object& object : objects) {
    const storage::read_result read = co_await store.read_digest(object.key);
    ++out.objects;
    if (read.not_found) {
      ++out.missing;
      std::printf("MISSING   %s\n", object.key.c_str());
    } else if (read.failure) {
      ++out.unreadable;
      std::printf("UNREADABLE %s: %s\n", object.key.c_str(), read.failure->message.c_str());
    } else if (read.digest.sha256_hex != object.sha256 || read.digest.size != object.size) {
      ++out.mismatched;
      std::printf("MISMATCH  %s: recorded sha256 %s (%llu bytes), stored %s (%llu bytes)\n",
                  object.key.c_str(), object.sha256.c_str(),
                  static_cast<unsigned long long>(object.size), read.digest.sha256_hex.c_str(),
                  static_cast<unsigned long long>(read.digest.size));
    } else {
      out.bytes += read.digest.size;
    }
  }
}

}  // namespace

int verify(const config::config& cfg, const std::string& case_id) {
  std::vector<recorded_object> objects;
  const int read = with_database(cfg, [&](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    const pqxx::result rows =
        case_id.empty()
            ? tx.exec(
                  "SELECT object_key, sha256, size_bytes FROM artifacts "
                  "WHERE purged_at IS NULL ORDER BY object_key")
            : tx.exec_params(
                  "SELECT object_key, sha256, size_bytes FROM artifacts WHERE case_id = $1 "
                  "AND purged_at IS NULL "
                  "ORDER BY object_key",
                  case_id);
    for (const auto& row : rows) {
      objects.push_back(
          {row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::uint64_t>()});
    }
    return 0;
  });
  if (read != 0) {
    return read;
  }
  if (!case_id.empty() && objects.empty()) {
    std::fprintf(stderr, "verify: no artifact recorded for case %s\n", case_id.c_str());
    return 1;
  }

  asio::io_context io(1);
  std::unique_ptr<storage::object_store> store;
  try {
    store = make_store(io, cfg.storage);
  } catch (const std::exception& e) {
    spdlog::error("verify: cannot open the object store: {}", e.what());
    return 1;
  }
  tally result;
  std::exception_ptr failure;
  asio::co_spawn(io, verify_all(*store, objects, result), [&](std::exception_ptr error) {
    failure = error;
    io.stop();  // pooled idle connections (S3) would keep run() going
  });
  io.run();
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      spdlog::error("verify: {}", e.what());
      return 1;
    }
  }
  const std::uint64_t bad = result.mismatched + result.missing + result.unreadable;
  char summary[512];
  std::snprintf(summary, sizeof summary,
                "verified %llu object(s) in %s: %llu ok (%llu bytes), %llu mismatched, %llu "
                "missing, %llu unreadable",
                static_cast<unsigned long long>(result.objects), store->describe().c_str(),
                static_cast<unsigned long long>(result.objects - bad),
                static_cast<unsigned long long>(result.bytes),
                static_cast<unsigned long long>(result.mismatched),
                static_cast<unsigned long long>(result.missing),
                static_cast<unsigned long long>(result.unreadable));
  std::printf("%s\n", summary);
  // The verification itself is a record of custody: who checked what, when, and what was found.
  const int audited = with_database(cfg, [&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    records::append_audit(tx, records::command_actor(), "verify", case_id, summary);
    tx.commit();
    return 0;
  });
  return bad == 0 && audited == 0 ? 0 : 1;
}

}  // namespace archiver::service
