// The operator's records commands: legal holds and the audit trail (records/).
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <pqxx/pqxx>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "archive/layout.hpp"
#include "archive/workflows.hpp"
#include "queue/queue.hpp"
#include "records/audit.hpp"
#include "records/holds.hpp"
#include "service/cli_database.hpp"
#include "service/pipeline.hpp"
#include "service/service.hpp"

namespace archiver::service {

namespace {

// The audit digests serve wrote to the archive (records::audit_digest), oldest first; a digest
// that cannot be read or parsed is a problem, named by its key.
struct archived_digests {
  std::vector<records::audit_digest> digests;
  std::vector<std::string> problems;
};

archived_digests read_archived_digests(const config::config& cfg) {
  archived_digests found;
  if (cfg.storage.backend == "filesystem" && !std::filesystem::is_directory(cfg.storage.path)) {
    // Not created here (the store would): a wrong path must not pass for an empty archive.
    found.problems.push_back("storage.path " + cfg.storage.path +
                             " is not a directory: no digest can be read");
    return found;
  }
  const archive::layout layout(cfg.storage.prefix);
  std::string scratch_template =
      (std::filesystem::temp_directory_path() / "certn-archiver-audit-XXXXXX").string();
  if (::mkdtemp(scratch_template.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "cannot create " + scratch_template);
  }
  const std::filesystem::path scratch = scratch_template;
  asio::io_context io(1);
  const std::unique_ptr<storage::object_store> store = make_store(io, cfg.storage);
  std::exception_ptr failure;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        const storage::list_result listed = co_await store->list(layout.audit_digests());
        if (listed.failure) {
          found.problems.push_back("cannot list the digests: " + listed.failure->message);
          co_return;
        }
        int n = 0;
        for (const std::string& key : listed.keys) {
          const std::filesystem::path copy = scratch / std::to_string(n++);
          const storage::read_result read = co_await store->copy_to(key, copy);
          if (read.failure) {
            found.problems.push_back("cannot read digest " + key + ": " + read.failure->message);
            continue;
          }
          std::ifstream in(copy, std::ios::binary);
          std::ostringstream text;
          text << in.rdbuf();
          if (auto digest = records::parse_digest(text.str())) {
            found.digests.push_back(std::move(*digest));
          } else {
            found.problems.push_back("digest " + key + " is not a digest: " + text.str());
          }
        }
      },
      [&](std::exception_ptr error) {
        failure = error;
        io.stop();  // pooled idle connections (S3) would keep run() going
      });
  io.run();
  std::error_code ignored;
  std::filesystem::remove_all(scratch, ignored);
  if (failure) {
    std::rethrow_exception(failure);
  }
  return found;
}

}  // namespace

int hold(const config::config& cfg, const hold_request& request) {
  // With Object Lock, serve sets or clears the legal hold on the objects already written. The
  // job's payload names no case_id on purpose: the case's other jobs (its manifest) must not
  // wait for it, while it waits for them.
  const auto protect_later = [&](pqxx::work& tx) {
    if (config::locks_objects(cfg.storage)) {
      queue::enqueue(tx, {archive::protect_case_kind, request.case_id, "{}",
                          cfg.workers.max_attempts, std::chrono::seconds(0), ops::priority::sync});
    }
  };
  return with_database(cfg, [&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    const std::string actor = records::command_actor();
    if (request.release) {
      if (!records::release_hold(tx, request.case_id, request.reason, actor)) {
        std::cerr << "certn-archiver: case " << request.case_id << " is not held\n";
        return exit_failure;
      }
      protect_later(tx);
      tx.commit();
      std::cout << "released the hold on case " << request.case_id << "\n";
      return exit_ok;
    }
    if (const auto existing = records::place_hold(tx, request.case_id, request.reason, actor)) {
      std::cerr << "certn-archiver: case " << request.case_id << " is already held (since "
                << existing->held_at << ", by " << existing->held_by << ": " << existing->reason
                << ")\n";
      return exit_failure;
    }
    protect_later(tx);
    tx.commit();
    std::cout << "case " << request.case_id << " held: it will not be purged until released\n";
    return exit_ok;
  });
}

int list_held(const config::config& cfg) {
  return with_database(cfg, [&](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    std::cout << "[";
    bool first = true;
    for (const records::legal_hold& hold : records::holds_in_force(tx)) {
      std::cout << (first ? "" : ",") << records::to_json(hold);
      first = false;
    }
    std::cout << "]\n";
    return exit_ok;
  });
}

int audit(const config::config& cfg, const audit_request& request) {
  // Read before the trail's snapshot: every digest then names a row the snapshot holds, unless
  // the trail lost it.
  archived_digests archived;
  if (request.verify) {
    try {
      archived = read_archived_digests(cfg);
    } catch (const std::exception& e) {
      std::cerr << "certn-archiver: audit verify: cannot read the digests: " << e.what() << "\n";
      return exit_failure;
    }
  }
  return with_database(cfg, [&](pqxx::connection& conn) {
    // One snapshot: rows appended meanwhile neither count nor break the walk.
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn);
    if (request.verify) {
      const records::chain_check check = records::verify_chain(tx);
      if (!check.intact()) {
        std::cerr << "certn-archiver: audit trail broken at seq " << *check.first_bad_seq << ": "
                  << check.problem << " (" << check.rows << " rows before it are intact)\n";
        return exit_failure;
      }
      std::vector<std::int64_t> seqs;
      for (const records::audit_digest& digest : archived.digests) {
        seqs.push_back(digest.seq);
      }
      const std::optional<records::audit_digest> head = records::chain_head(tx);
      std::vector<std::string> problems = archived.problems;
      for (std::string& problem : records::check_digests(
               archived.digests, records::hashes_of(tx, seqs), head ? head->seq : 0)) {
        problems.push_back(std::move(problem));
      }
      if (!problems.empty()) {
        for (const std::string& problem : problems) {
          std::cerr << "certn-archiver: audit trail does not match the archive: " << problem
                    << "\n";
        }
        return exit_failure;
      }
      std::cout << "audit trail intact: " << check.rows << " rows, head " << check.head_hash << "; "
                << archived.digests.size() << " digest(s) in the archive match"
                << (archived.digests.empty()
                        ? std::string(" (none written yet)")
                        : " (latest: seq " + std::to_string(archived.digests.back().seq) + ")")
                << "\n";
      return exit_ok;
    }
    records::audit_filter filter;
    filter.case_id = request.case_id;
    filter.since = request.since;
    filter.limit = request.limit;
    const auto entries = records::list_audit(tx, filter);
    if (request.json) {
      std::cout << "[";
      for (std::size_t i = 0; i < entries.size(); ++i) {
        std::cout << (i == 0 ? "" : ",") << records::to_json(entries[i]);
      }
      std::cout << "]\n";
      return exit_ok;
    }
    for (const records::audit_entry& entry : entries) {
      std::cout << entry.seq << "  " << entry.at << "  " << entry.actor << "  " << entry.action
                << "  " << (entry.case_id.empty() ? "-" : entry.case_id) << "  " << entry.detail
                << "\n";
    }
    return exit_ok;
  });
}

}  // namespace archiver::service
