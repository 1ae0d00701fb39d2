// Where each artifact of a case goes in the object store, and what a case's manifest says. Pure;
// the storage keys are a contract with operators (DESIGN.md "Storage keys"), so they live here
// and nowhere else.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace archiver::archive {

class layout {
 public:
  // `prefix` as configured (storage.prefix); a missing trailing '/' is added.
  explicit layout(std::string prefix);

  std::string report(std::string_view case_id, std::string_view report_file_id) const;
  std::string supplementary_file(std::string_view case_id, std::string_view check_id,
                                 std::string_view file_id, std::string_view file_name) const;
  std::string supplementary_information(std::string_view case_id,
                                        std::string_view sha256_hex) const;
  std::string case_snapshot(std::string_view case_id, std::string_view sha256_hex) const;
  // Another Certn answer about the case, as received: "responses/<endpoint>/<sha256>.json"
  // (the supplementary-files listing, a report file's metadata, an unusable answer).
  std::string certn_response(std::string_view case_id, std::string_view endpoint,
                             std::string_view sha256_hex) const;
  std::string manifest(std::string_view case_id) const;

  // The audit trail's digests (records/audit.hpp): "audit/digests/<seq, 20 digits>.json", so
  // that their keys sort as their sequence numbers do.
  std::string audit_digests() const;
  std::string audit_digest(std::int64_t seq) const;

 private:
  std::string case_root(std::string_view case_id) const;
  std::string prefix_;
};

// A file name safe as the last segment of a key: [A-Za-z0-9._-] kept, anything else '_', no
// leading '.', at most 100 bytes, "file" when nothing is left.
std::string safe_file_name(std::string_view name);

struct manifest_entry {
  std::string kind;  // report, supplementary_file, supplementary_information, case_snapshot,
                     // supplementary_files_listing, report_file_metadata, certn_response
  std::string key;
  std::string sha256;
  std::int64_t size_bytes = 0;
  std::string source_id;
  std::string content_type;
  std::string archived_at;  // ISO 8601, UTC
};

// manifest.json: {"case_id", "last_archived_at", "artifacts": [...]}, artifacts sorted by key;
// last_archived_at is the newest archived_at ("" without artifacts). Nothing in it depends on
// when it is written, so the same artifacts always give the same bytes and an unchanged manifest
// need not be written again.
std::string manifest_json(std::string_view case_id, std::vector<manifest_entry> entries);

}  // namespace archiver::archive
