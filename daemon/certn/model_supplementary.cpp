// GET /cases/{id}/supplementary-files/ (the files to download, per check, and ids for files that
// have none) and GET /cases/{id}/supplementary-information/.
#include <openssl/evp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "certn/model_detail.hpp"
#include "encoding/encoding.hpp"

namespace archiver::certn {

using namespace model_detail;

namespace {

std::string url_path(std::string_view url) {
  const auto scheme = url.find("://");
  std::string_view rest = scheme == std::string_view::npos ? url : url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("?#"));
  const auto slash = rest.find('/');
  return slash == std::string_view::npos ? std::string("/") : std::string(rest.substr(slash));
}

// A file entry; nullopt (and a reason in `problem`) when it has no URL to download.
std::optional<supplementary_file> read_file(reader& in, std::string& problem) {
  supplementary_file out;
  out.name = in.text("name", file_name_names);
  const auto url = in.find("url", file_url_names, skips_entry);
  std::string_view url_text;
  if (!url || url->get_string().get(url_text) != simdjson::SUCCESS || url_text.empty()) {
    std::string id_hint;
    std::string ignored;
    if (const auto id = in.id("id", file_id_names, derived, ignored)) {
      id_hint = " (file " + *id + ")";
    } else if (!out.name.empty()) {
      id_hint = " (file \"" + out.name.substr(0, 100) + "\")";
    }
    problem = in.missing_message("url", file_url_names) + id_hint;
    return std::nullopt;
  }
  out.url.assign(url_text);
  std::string id_problem;
  if (const auto id = in.id("id", file_id_names, derived, id_problem)) {
    out.id = *id;
  } else {
    // No usable id (or none at all): a key that stays the same across listings.
    out.id = file_id_from_url(out.url);
    out.id_derived = true;
  }
  out.content_type = in.text("content_type", content_type_names);
  if (const auto size = in.find("size", size_names, tolerated)) {
    std::int64_t bytes = -1;
    std::string_view text;
    if (size->get_int64().get(bytes) == simdjson::SUCCESS && bytes >= 0) {
      out.size = bytes;
    } else if (size->get_string().get(text) == simdjson::SUCCESS && !text.empty() &&
               text.size() <= 18 && text.find_first_not_of("0123456789") == std::string::npos) {
      out.size = std::stoll(std::string(text));
    }
    // Anything else is not a size we can check against; the download is checked by hash.
  }
  out.created = in.text("created", created_names);
  return out;
}

// The files of one check (or of the case, outside any check) into `out`.
void read_files(array files, const reader& parent, std::string_view files_key,
                supplementary_check& out, std::vector<std::string>& unusable,
                shape_report* report) {
  std::size_t index = 0;
  for (const element item : files) {
    const std::string name = indexed(parent, files_key, index++);
    object file_object;
    if (item.get_object().get(file_object) != simdjson::SUCCESS) {
      unusable.push_back(name + ": expected an object");
      continue;
    }
    reader file_reader(file_object, name, "supplementary files.files[]", report);
    std::string problem;
    if (auto file = read_file(file_reader, problem)) {
      out.files.push_back(std::move(*file));
    } else {
      unusable.push_back(std::move(problem));
    }
  }
}

}  // namespace

parsed<supplementary_files> parse_supplementary_files(std::string_view body,
                                                      std::string_view requested_id,
                                                      shape_report* report) {
  return parse_root_object<supplementary_files>(
      body, [&](object root, supplementary_files& out) -> std::string {
        reader in(root, "", "supplementary files", report);
        std::string problem;
        if (const auto id = in.id("case id", case_id_names, from_request, problem)) {
          out.case_id = *id;
        } else if (!requested_id.empty()) {
          out.case_id.assign(requested_id);
        } else {
          return problem.empty() ? in.missing_message("case id", case_id_names) : problem;
        }
        if (const auto checks = in.list("checks", checks_names)) {
          std::size_t index = 0;
          for (const element item : *checks) {
            const std::string name = indexed(in, "checks", index++);
            object check_object;
            if (item.get_object().get(check_object) != simdjson::SUCCESS) {
              out.unusable.push_back(name + ": expected an object");
              continue;
            }
            reader check_reader(check_object, name, "supplementary files.checks[]", report);
            supplementary_check one;
            std::string ignored;
            const auto check_id = check_reader.id("id", check_id_names, derived, ignored);
            one.type = check_reader.text("type", check_type_names);
            one.status = check_reader.text("status", check_status_names);
            // A check without an id still has files worth keeping: file them under its type.
            one.id = check_id ? *check_id
                              : (is_valid_id(one.type) ? one.type : "check-" + std::to_string(index - 1));
            if (const auto files = check_reader.list("files", files_names)) {
              read_files(*files, check_reader, check_reader.matched_name(), one, out.unusable,
                         report);
            }
            out.checks.push_back(std::move(one));
          }
        }
        // Files listed outside any check.
        if (const auto files = in.list("files", files_names)) {
          supplementary_check outside;
          outside.id = "case";
          read_files(*files, in, in.matched_name(), outside, out.unusable, report);
          out.checks.push_back(std::move(outside));
        }
        return {};
      });
}

parsed<supplementary_information> parse_supplementary_information(std::string_view body,
                                                                  std::string_view requested_id,
                                                                  shape_report* report) {
  return parse_root_object<supplementary_information>(
      body, [&](object root, supplementary_information& out) -> std::string {
        reader in(root, "", "supplementary information", report);
        std::string problem;
        if (const auto id = in.id("case id", case_id_names, from_request, problem)) {
          out.case_id = *id;
        } else {
          out.case_id.assign(requested_id);
        }
        if (const auto checks = in.list("checks", checks_names)) {
          std::size_t index = 0;
          for (const element item : *checks) {
            object check_object;
            if (item.get_object().get(check_object) != simdjson::SUCCESS) {
              continue;
            }
            reader check_reader(check_object, indexed(in, "checks", index++),
                                "supplementary information.checks[]", report);
            supplementary_information_check one;
            std::string ignored;
            one.id = check_reader.id("id", check_id_names, tolerated, ignored).value_or("");
            one.type = check_reader.text("type", check_type_names);
            one.status = check_reader.text("status", check_status_names);
            const auto info =
                check_reader.find("supplementary_information", information_names, tolerated);
            one.information_json = info ? simdjson::minify(*info) : "null";
            out.checks.push_back(std::move(one));
          }
        }
        return {};
      });
}

std::string file_id_from_url(std::string_view url) {
  const std::string path = url_path(url);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(path.data(), path.size(), digest, &length, EVP_sha256(), nullptr);
  return "u" + encoding::to_hex(std::string_view(reinterpret_cast<const char*>(digest), 12));
}

}  // namespace archiver::certn
