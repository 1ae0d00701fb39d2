#include "records/bag.hpp"

#include <algorithm>
#include <map>
#include <tuple>

namespace archiver::records {

namespace {

std::string one_line(std::string text) {
  std::replace_if(
      text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return text;
}

}  // namespace

std::vector<artifact_version> current_versions(const std::vector<artifact_version>& all) {
  std::map<std::pair<std::string, std::string>, const artifact_version*> newest;
  for (const artifact_version& row : all) {
    const artifact_version*& kept = newest[{row.kind, row.source_id}];
    if (kept == nullptr || row.id > kept->id) {
      kept = &row;
    }
  }
  std::vector<artifact_version> current;
  for (const auto& [kind_source, row] : newest) {
    current.push_back(*row);
  }
  std::sort(current.begin(), current.end(),
            [](const artifact_version& a, const artifact_version& b) { return a.key < b.key; });
  return current;
}

std::string payload_path(const std::string& key) {
  std::string path = "data/";
  for (const char c : key) {
    if (c == '%') {
      path += "%25";
    } else if (c == '\n') {
      path += "%0A";
    } else if (c == '\r') {
      path += "%0D";
    } else {
      path += c;
    }
  }
  return path;
}

std::string bagit_txt() { return "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"; }

std::string payload_oxum(const std::vector<bag_file>& files) {
  std::uint64_t bytes = 0;
  for (const bag_file& file : files) {
    bytes += file.size;
  }
  return std::to_string(bytes) + "." + std::to_string(files.size());
}

std::string manifest_text(std::vector<bag_file> files) {
  std::sort(files.begin(), files.end(),
            [](const bag_file& a, const bag_file& b) { return a.path < b.path; });
  std::string text;
  for (const bag_file& file : files) {
    text += file.sha256 + "  " + file.path + "\n";
  }
  return text;
}

std::string bag_info_text(const bag_description& about, const std::vector<bag_file>& files) {
  std::string text;
  text += "Source-Organization: certn-archiver\n";
  text += "External-Identifier: " + one_line(about.case_id) + "\n";
  text += "External-Description: Certn case " + one_line(about.case_id) + ", " +
          (about.all_versions ? "every archived version" : "its current artifacts") + "\n";
  text += "Bagging-Date: " + one_line(about.exported_at.substr(0, 10)) + "\n";
  text += "Export-Time: " + one_line(about.exported_at) + "\n";
  text += "Export-Source: " + one_line(about.source) + "\n";
  text += "Bag-Software-Agent: " + one_line(about.software) + "\n";
  text += "Payload-Oxum: " + payload_oxum(files) + "\n";
  return text;
}

}  // namespace archiver::records
