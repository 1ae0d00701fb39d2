// The accepted-name table (accepted_fields(), which the README reproduces) and its Markdown form.
// The readers are in model_reader.cpp, model_case*.cpp, model_report.cpp and
// model_supplementary.cpp; what they share is in model_detail.hpp.
#include "certn/model.hpp"

#include <array>
#include <string>

#include "certn/model_detail.hpp"

namespace archiver::certn {

using namespace model_detail;

namespace {

constexpr std::array fields_table = {
    accepted_field{"case", "id", case_id_names, from_request},
    accepted_field{"case", "overall_status", case_status_names, fails},
    accepted_field{"case", "modified", modified_names, tolerated},
    accepted_field{"case", "created", created_names, ordered_unknown},
    accepted_field{"case", "email_address", email_names, tolerated},
    accepted_field{"case", "overall_score", score_names, tolerated},
    accepted_field{"case", "checks", checks_names, tolerated},
    accepted_field{"case.checks[]", "id", check_id_names, skips_entry},
    accepted_field{"case.checks[]", "type", check_type_names, tolerated},
    accepted_field{"case.checks[]", "status", check_status_names, tolerated},
    accepted_field{"case.checks[]", "result", check_result_names, tolerated},
    accepted_field{"case.checks[]", "created", created_names, tolerated},
    accepted_field{"case.checks[]", "modified", modified_names, tolerated},
    accepted_field{"case list", "results", list_results_names, fails},
    accepted_field{"case list", "count", list_count_names, tolerated},
    accepted_field{"case list", "next", list_next_names, tolerated},
    accepted_field{"case list", "previous", list_previous_names, tolerated},
    accepted_field{"case list", "pagination", pagination_names, tolerated},
    accepted_field{"case list.pagination", "next", list_next_names, tolerated},
    accepted_field{"case list.pagination", "page", page_names, tolerated},
    accepted_field{"case list.pagination", "total_pages", total_pages_names, tolerated},
    accepted_field{"case list.results[]", "id", case_id_names, skips_entry},
    accepted_field{"case list.results[]", "overall_status", case_status_names, tolerated},
    accepted_field{"case list.results[]", "modified", modified_names, tolerated},
    accepted_field{"report file", "id", report_id_names, from_request},
    accepted_field{"report file", "status", report_status_names, tolerated},
    accepted_field{"report file", "url", report_url_names, fails},
    accepted_field{"report file", "created", created_names, tolerated},
    accepted_field{"generate-report", "report file id", generated_id_names, fails},
    accepted_field{"supplementary files", "case id", case_id_names, from_request},
    accepted_field{"supplementary files", "checks", checks_names, tolerated},
    accepted_field{"supplementary files", "files", files_names, tolerated},
    accepted_field{"supplementary files.checks[]", "id", check_id_names, derived},
    accepted_field{"supplementary files.checks[]", "type", check_type_names, tolerated},
    accepted_field{"supplementary files.checks[]", "status", check_status_names, tolerated},
    accepted_field{"supplementary files.checks[]", "files", files_names, tolerated},
    accepted_field{"supplementary files.files[]", "url", file_url_names, skips_entry},
    accepted_field{"supplementary files.files[]", "id", file_id_names, derived},
    accepted_field{"supplementary files.files[]", "name", file_name_names, tolerated},
    accepted_field{"supplementary files.files[]", "content_type", content_type_names, tolerated},
    accepted_field{"supplementary files.files[]", "size", size_names, tolerated},
    accepted_field{"supplementary files.files[]", "created", created_names, tolerated},
    accepted_field{"supplementary information", "case id", case_id_names, from_request},
    accepted_field{"supplementary information", "checks", checks_names, tolerated},
    accepted_field{"supplementary information.checks[]", "id", check_id_names, tolerated},
    accepted_field{"supplementary information.checks[]", "type", check_type_names, tolerated},
    accepted_field{"supplementary information.checks[]", "status", check_status_names, tolerated},
    accepted_field{"supplementary information.checks[]", "supplementary_information",
                   information_names, tolerated},
};

}  // namespace

std::span<const accepted_field> accepted_fields() { return fields_table; }

const char* to_string(when_missing value) {
  switch (value) {
    case when_missing::fails:
      return "unusable: dead job naming the endpoint and the field";
    case when_missing::from_request:
      return "the id in the request path";
    case when_missing::derived:
      return "derived: a file's from its URL path, a check's from its type";
    case when_missing::skips_entry:
      return "that entry is left out and named; the rest is used";
    case when_missing::tolerated:
      return "left empty (no decision needs it)";
    case when_missing::ordered_unknown:
      return "left empty; reconcile, which lists cases by order date, asks for an open case "
             "by GET daily";
  }
  return "?";
}

std::string accepted_fields_markdown() {
  std::string out =
      "| answer | field | accepted names, first present wins | when none is present |\n"
      "|---|---|---|---|\n";
  for (const accepted_field& field : fields_table) {
    std::string names;
    for (const std::string_view name : field.names) {
      names += names.empty() ? "`" : ", `";
      names += name;
      names += "`";
    }
    out += "| " + std::string(field.response) + " | " + std::string(field.field) + " | " + names +
           " | " + to_string(field.missing) + " |\n";
  }
  return out;
}

}  // namespace archiver::certn
