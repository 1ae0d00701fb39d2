#include "archive/layout.hpp"

#include <algorithm>

#include "encoding/json.hpp"

namespace archiver::archive {

layout::layout(std::string prefix) : prefix_(std::move(prefix)) {
  if (!prefix_.empty() && prefix_.back() != '/') {
    prefix_ += '/';
  }
}

std::string layout::audit_digests() const { return prefix_ + "audit/digests/"; }

std::string layout::audit_digest(std::int64_t seq) const {
  std::string digits = std::to_string(seq);
  digits.insert(0, digits.size() < 20 ? 20 - digits.size() : 0, '0');
  return audit_digests() + digits + ".json";
}

std::string layout::case_root(std::string_view case_id) const {
  return prefix_ + "cases/" + std::string(case_id) + "/";
}

std::string layout::report(std::string_view case_id, std::string_view report_file_id) const {
  return case_root(case_id) + "report/" + std::string(report_file_id) + ".pdf";
}

std::string layout::supplementary_file(std::string_view case_id, std::string_view check_id,
                                       std::string_view file_id, std::string_view file_name) const {
  return case_root(case_id) + "supplementary-files/" + std::string(check_id) + "/" +
         std::string(file_id) + "-" + safe_file_name(file_name);
}

std::string layout::supplementary_information(std::string_view case_id,
                                              std::string_view sha256_hex) const {
  return case_root(case_id) + "supplementary-information/" + std::string(sha256_hex) + ".json";
}

std::string layout::certn_response(std::string_view case_id, std::string_view endpoint,
                                   std::string_view sha256_hex) const {
  return case_root(case_id) + "responses/" + std::string(endpoint) + "/" +
         std::string(sha256_hex) + ".json";
}

std::string layout::case_snapshot(std::string_view case_id, std::string_view sha256_hex) const {
  return case_root(case_id) + "case/" + std::string(sha256_hex) + ".json";
}

std::string layout::manifest(std::string_view case_id) const {
  return case_root(case_id) + "manifest.json";
}

std::string safe_file_name(std::string_view name) {
  std::string out;
  for (const char c : name) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-';
    out += keep ? c : '_';
  }
  while (!out.empty() && out.front() == '.') {
    out.erase(out.begin());
  }
  if (out.size() > 100) {
    out.resize(100);
  }
  return out.empty() ? "file" : out;
}

std::string manifest_json(std::string_view case_id, std::vector<manifest_entry> entries) {
  std::sort(entries.begin(), entries.end(),
            [](const manifest_entry& a, const manifest_entry& b) { return a.key < b.key; });
  std::string last_archived_at;
  for (const manifest_entry& e : entries) {
    last_archived_at = std::max(last_archived_at, e.archived_at);  // ISO 8601 UTC sorts as text
  }
  encoding::json_writer out;
  out.begin_object();
  out.key("case_id").value(case_id);
  out.key("last_archived_at").value(last_archived_at);
  out.key("artifacts").begin_array();
  for (const manifest_entry& e : entries) {
    out.begin_object();
    out.key("kind").value(e.kind);
    out.key("key").value(e.key);
    out.key("sha256").value(e.sha256);
    out.key("size_bytes").number(e.size_bytes);
    out.key("source_id").value(e.source_id);
    out.key("content_type").value(e.content_type);
    out.key("archived_at").value(e.archived_at);
    out.end_object();
  }
  out.end_array();
  out.end_object();
  return out.str() + "\n";
}

}  // namespace archiver::archive
