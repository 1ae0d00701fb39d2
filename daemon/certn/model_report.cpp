// The report-file answers: GET /cases/report-files/{id}/ (status and download URL) and
// POST /cases/{id}/generate-report/ (the new report file's id).
#include <algorithm>
#include <string>

#include "certn/model_detail.hpp"

namespace archiver::certn {

using namespace model_detail;

namespace {

std::string upper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  });
  return text;
}

}  // namespace

parsed<report_file> parse_report_file(std::string_view body, std::string_view requested_id,
                                      shape_report* report) {
  return parse_root_object<report_file>(
      body, [&](object root, report_file& out) -> std::string {
        reader in(root, "", "report file", report);
        std::string problem;
        if (const auto id = in.id("id", report_id_names, from_request, problem)) {
          out.id = *id;
        } else if (!requested_id.empty()) {
          out.id.assign(requested_id);  // the id is the one in the path we called
        } else {
          return problem.empty() ? in.missing_message("id", report_id_names) : problem;
        }
        out.status = upper(in.text("status", report_status_names));
        if (const auto url = in.find("url", report_url_names, fails)) {
          std::string_view text;
          if (url->get_string().get(text) == simdjson::SUCCESS && !text.empty()) {
            out.url.emplace(text);
          }
        }
        out.created = in.text("created", created_names);
        return {};
      });
}

parsed<std::string> parse_generate_report(std::string_view body, shape_report* report) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return {std::nullopt, "body: empty (no report file id in the answer)"};
  }
  return parse_root_object<std::string>(body, [&](object root, std::string& out) -> std::string {
    reader in(root, "", "generate-report", report);
    std::string problem;
    if (const auto id = in.id("report file id", generated_id_names, fails, problem)) {
      out = *id;
      return {};
    }
    return problem.empty() ? in.missing_message("report file id", generated_id_names) : problem;
  });
}

}  // namespace archiver::certn
