// `certn-archiver verify [--case ID]`: every stored object is read back and hashed, and compared
// with the sha256 and size the database recorded when it was archived.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <optional>
#include <pqxx/pqxx>

#include "encoding/json.hpp"
#include "records/audit.hpp"
#include "service/cli_database.hpp"
#include "service/pipeline.hpp"
#include "service/progress.hpp"
#include "service/service.hpp"

namespace archiver::service {

namespace {

struct recorded_object {
  std::string key;
  std::string sha256;
  std::uint64_t size = 0;
};

struct problem {
  std::string key;
  std::string what;    // MISSING, UNREADABLE, MISMATCH
  std::string detail;  // empty for MISSING
};

struct tally {
  std::uint64_t objects = 0;
  std::uint64_t bytes = 0;
  std::uint64_t mismatched = 0;
  std::uint64_t missing = 0;
  std::uint64_t unreadable = 0;
  std::vector<problem> problems;
};

awaitable<void> verify_all(storage::object_store& store,
                           const std::vector<recorded_object>& objects, bool json, tally& out) {
  progress shown("verify: objects", objects.size());
  for (const recorded_object& object : objects) {
    const storage::read_result read = co_await store.read_digest(object.key);
    ++out.objects;
    shown.update(out.objects);
    std::optional<problem> found;
    if (read.not_found) {
      ++out.missing;
      found = problem{object.key, "MISSING", ""};
    } else if (read.failure) {
      ++out.unreadable;
      found = problem{object.key, "UNREADABLE", read.failure->message};
    } else if (read.digest.sha256_hex != object.sha256 || read.digest.size != object.size) {
      ++out.mismatched;
      found = problem{object.key, "MISMATCH",
                      "recorded sha256 " + object.sha256 + " (" + std::to_string(object.size) +
                          " bytes), stored " + read.digest.sha256_hex + " (" +
                          std::to_string(read.digest.size) + " bytes)"};
    } else {
      out.bytes += read.digest.size;
    }
    if (found && !json) {
      // As found, not at the end: a long run shows its problems early.
      std::printf("%-9s %s%s%s\n", found->what.c_str(), found->key.c_str(),
                  found->detail.empty() ? "" : ": ", found->detail.c_str());
    }
    if (found) {
      out.problems.push_back(std::move(*found));
    }
  }
}

}  // namespace

int verify(const config::config& cfg, const std::string& case_id, bool json) {
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
  asio::co_spawn(io, verify_all(*store, objects, json, result), [&](std::exception_ptr error) {
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
  if (json) {
    encoding::json_writer out;
    out.begin_object()
        .key("store")
        .value(store->describe())
        .key("objects")
        .number(static_cast<std::int64_t>(result.objects))
        .key("ok")
        .number(static_cast<std::int64_t>(result.objects - bad))
        .key("ok_bytes")
        .number(static_cast<std::int64_t>(result.bytes))
        .key("problems")
        .begin_array();
    for (const problem& p : result.problems) {
      out.begin_object().key("key").value(p.key).key("problem").value(p.what);
      out.key("detail").value(p.detail).end_object();
    }
    out.end_array().end_object();
    std::printf("%s\n", out.str().c_str());
  } else {
    std::printf("%s\n", summary);
  }
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
