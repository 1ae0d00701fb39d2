// A case as a BagIt bag (RFC 8493, the Library of Congress's packaging standard, read by
// Archivematica and bagit-python): the text of its tag files and which artifacts go in it. Pure
// functions, thread-safe; service/export.cpp copies the objects and writes the files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace archiver::records {

// One payload file: its path in the bag ("data/..."), sha256 (hex) and size.
struct bag_file {
  std::string path;
  std::string sha256;
  std::uint64_t size = 0;
};

// One artifact row of a case.
struct artifact_version {
  std::int64_t id = 0;  // later rows are newer (the artifacts table's id)
  std::string kind;
  std::string source_id;
  std::string key;
  std::string sha256;
  std::uint64_t size = 0;
};

// The artifacts a bag of the case's current state holds: for each (kind, source_id), the newest
// row (a re-archived report, the latest supplementary information, the last manifest). Ordered by
// key. Pure.
std::vector<artifact_version> current_versions(const std::vector<artifact_version>& all);

// "data/" + the key, with '%', CR and LF percent-encoded as RFC 8493 asks of manifest paths.
std::string payload_path(const std::string& key);

// bagit.txt: version 1.0, UTF-8 tag files.
std::string bagit_txt();

// "<total bytes>.<file count>".
std::string payload_oxum(const std::vector<bag_file>& files);

// "<sha256>  <path>\n" per file, in path order: the format `sha256sum -c` reads as well.
std::string manifest_text(std::vector<bag_file> files);

struct bag_description {
  std::string case_id;
  std::string exported_at;  // ISO 8601 UTC
  std::string source;       // the object store's description
  std::string software;     // "certn-archiver 0.1.0"
  bool all_versions = false;
};

// bag-info.txt: Source-Organization, External-Identifier (the case id), Bagging-Date,
// Bag-Software-Agent, Payload-Oxum, and the export's time, source and scope. Values on one line
// each (line breaks in a value become spaces).
std::string bag_info_text(const bag_description& about, const std::vector<bag_file>& files);

}  // namespace archiver::records
