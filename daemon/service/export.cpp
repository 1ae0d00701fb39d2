// `certn-archiver export`: a case as a BagIt bag (records/bag.hpp), in a directory or a zip file
// (libzip). Every object is re-read from the store and checked against its recorded sha256 and
// size while it is copied; any mismatch removes what was written and exits 1.
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <pqxx/pqxx>
#include <stdexcept>
#include <string>
#include <vector>

#include "records/audit.hpp"
#include "records/bag.hpp"
#include "service/cli_database.hpp"
#include "service/pipeline.hpp"
#include "service/progress.hpp"
#include "service/service.hpp"
#include "storage/digest.hpp"

namespace archiver::service {

namespace {

namespace fs = std::filesystem;

bool ends_with_zip(const std::string& path) {
  return path.size() > 4 && path.compare(path.size() - 4, 4, ".zip") == 0;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) {
    throw std::runtime_error("cannot write " + path.string());
  }
}

// Zips the bag directory `bag` as `zip_path`, its files under `name`/ (BagIt's serialization: one
// top-level directory, named as the bag). Throws std::runtime_error naming what failed.
void zip_bag(const fs::path& bag, const fs::path& zip_path, const std::string& name) {
  int error = 0;
  zip_t* archive = zip_open(zip_path.c_str(), ZIP_CREATE | ZIP_EXCL, &error);
  if (archive == nullptr) {
    zip_error_t why;
    zip_error_init_with_code(&why, error);
    const std::string text = zip_error_strerror(&why);
    zip_error_fini(&why);
    throw std::runtime_error("cannot create " + zip_path.string() + ": " + text);
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(bag)) {
    if (entry.is_regular_file()) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    const std::string entry_name = name + "/" + fs::relative(file, bag).generic_string();
    zip_source_t* source = zip_source_file(archive, file.c_str(), 0, -1);
    if (source == nullptr ||
        zip_file_add(archive, entry_name.c_str(), source, ZIP_FL_ENC_UTF_8) < 0) {
      if (source != nullptr) {
        zip_source_free(source);
      }
      const std::string text = zip_strerror(archive);
      zip_discard(archive);
      throw std::runtime_error("cannot add " + entry_name + " to " + zip_path.string() + ": " +
                               text);
    }
  }
  if (zip_close(archive) != 0) {  // the files are read and compressed here
    const std::string text = zip_strerror(archive);
    zip_discard(archive);
    std::error_code ignored;
    fs::remove(zip_path, ignored);
    throw std::runtime_error("cannot write " + zip_path.string() + ": " + text);
  }
}

struct copy_outcome {
  std::vector<records::bag_file> files;
  std::vector<std::string> problems;  // one line per object that failed or did not match
};

awaitable<void> copy_objects(storage::object_store& store,
                             const std::vector<records::artifact_version>& artifacts,
                             const fs::path& bag, copy_outcome& out) {
  progress shown("export: objects copied", artifacts.size());
  std::uint64_t copied = 0;
  for (const records::artifact_version& artifact : artifacts) {
    shown.update(copied++);
    const std::string path = records::payload_path(artifact.key);
    const fs::path target = bag / path;
    fs::create_directories(target.parent_path());
    const storage::read_result read = co_await store.copy_to(artifact.key, target);
    if (read.failure) {
      out.problems.push_back(read.failure->message);
      continue;
    }
    if (read.digest.sha256_hex != artifact.sha256 || read.digest.size != artifact.size) {
      out.problems.push_back(artifact.key + ": recorded sha256 " + artifact.sha256 + ", " +
                             std::to_string(artifact.size) + " bytes; the store holds sha256 " +
                             read.digest.sha256_hex + ", " + std::to_string(read.digest.size) +
                             " bytes");
      continue;
    }
    out.files.push_back({path, artifact.sha256, artifact.size});
  }
}

}  // namespace

int export_case(const config::config& cfg, const export_request& request) {
  std::vector<records::artifact_version> all;
  std::string now;
  const int read = with_database(cfg, [&](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    now = tx.exec1("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")[0]
              .as<std::string>();
    for (const auto& row :
         tx.exec_params("SELECT id, kind, COALESCE(source_id, ''), object_key, sha256, size_bytes "
                        "FROM artifacts WHERE case_id = $1 AND purged_at IS NULL ORDER BY id",
                        request.case_id)) {
      all.push_back({row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<std::string>(),
                     row[3].as<std::string>(), row[4].as<std::string>(),
                     row[5].as<std::uint64_t>()});
    }
    return exit_ok;
  });
  if (read != exit_ok) {
    return read;
  }
  if (all.empty()) {
    std::cerr << "certn-archiver: export: no artifact recorded for case " << request.case_id
              << "\n";
    return exit_failure;
  }
  std::vector<records::artifact_version> chosen = all;
  if (request.all_versions) {
    std::sort(chosen.begin(), chosen.end(),
              [](const auto& a, const auto& b) { return a.key < b.key; });
  } else {
    chosen = records::current_versions(all);
  }

  // Never replaces anything: a zip that exists, or a directory that is not empty, is refused.
  const fs::path out = request.out;
  const bool zipped = ends_with_zip(request.out);
  std::error_code ec;
  if (zipped ? fs::exists(out, ec) : (fs::exists(out, ec) && !fs::is_empty(out, ec))) {
    std::cerr << "certn-archiver: export: " << request.out
              << (zipped ? " already exists" : " is not an empty directory") << "\n";
    return exit_failure;
  }
  const fs::path bag = zipped ? fs::path(request.out + ".bag-" + std::to_string(::getpid())) : out;
  // On failure, what this export wrote goes (a directory given empty is left empty).
  const auto remove_bag = [&] {
    std::error_code ignored;
    if (zipped) {
      fs::remove_all(bag, ignored);
      return;
    }
    fs::remove_all(bag / "data", ignored);
    for (const char* tag :
         {"bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt"}) {
      fs::remove(bag / tag, ignored);
    }
  };

  asio::io_context io(1);
  std::unique_ptr<storage::object_store> store;
  copy_outcome copied;
  try {
    fs::create_directories(bag);
    store = make_store(io, cfg.storage);
    std::exception_ptr failure;
    asio::co_spawn(io, copy_objects(*store, chosen, bag, copied), [&](std::exception_ptr error) {
      failure = error;
      io.stop();  // pooled idle connections (S3) would keep run() going
    });
    io.run();
    if (failure) {
      std::rethrow_exception(failure);
    }
    if (!copied.problems.empty()) {
      for (const std::string& problem : copied.problems) {
        std::cerr << "certn-archiver: export: " << problem << "\n";
      }
      std::cerr << "certn-archiver: export: " << copied.problems.size() << " of " << chosen.size()
                << " object(s) failed; nothing was exported\n";
      remove_bag();
      return exit_failure;
    }
    const records::bag_description about{request.case_id, now, store->describe(),
                                         std::string("certn-archiver ") + ARCHIVER_VERSION,
                                         request.all_versions};
    // The tag files are written from memory and hashed there: nothing to read back.
    std::vector<records::bag_file> tags;
    const std::pair<const char*, std::string> tag_files[] = {
        {"bagit.txt", records::bagit_txt()},
        {"bag-info.txt", records::bag_info_text(about, copied.files)},
        {"manifest-sha256.txt", records::manifest_text(copied.files)}};
    for (const auto& [name, text] : tag_files) {
      write_text(bag / name, text);
      tags.push_back({name, storage::sha256_hex(text), text.size()});
    }
    write_text(bag / "tagmanifest-sha256.txt", records::manifest_text(tags));
    if (zipped) {
      zip_bag(bag, out, out.stem().string());
      fs::remove_all(bag);
    }
  } catch (const std::exception& e) {
    std::cerr << "certn-archiver: export: " << e.what() << "\n";
    remove_bag();
    return exit_failure;
  }

  const std::string summary = std::to_string(copied.files.size()) + " artifact(s), " +
                              records::payload_oxum(copied.files) + " Payload-Oxum, " +
                              (request.all_versions ? "every version" : "current artifacts") +
                              ", to " + request.out;
  const int audited = with_database(cfg, [&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    records::append_audit(tx, records::command_actor(), "export", request.case_id, summary);
    tx.commit();
    return exit_ok;
  });
  std::cout << "exported case " << request.case_id << ": " << summary << "\n";
  return audited;
}

}  // namespace archiver::service
