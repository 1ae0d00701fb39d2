// GET /cases/{id}/: a case and its checks (the fields are also read for list entries, see
// model_case_page.cpp), and what the case and check statuses mean.
#include <array>
#include <optional>
#include <string>
#include <utility>

#include "certn/model_detail.hpp"

namespace archiver::certn {

namespace model_detail {

namespace {

// A check of a case; nullopt (and a reason) when it has no usable id.
std::optional<check> read_check(reader& in, std::string& problem) {
  check out;
  const auto id = in.id("id", check_id_names, skips_entry, problem);
  if (!id) {
    if (problem.empty()) {
      problem = in.missing_message("id", check_id_names);
    }
    return std::nullopt;
  }
  out.id = *id;
  out.type = in.text("type", check_type_names);
  out.status = in.text("status", check_status_names);
  out.result = in.optional_text("result", check_result_names);
  out.created = in.text("created", created_names);
  out.modified = in.text("modified", modified_names);
  return out;
}

}  // namespace

// Everything of a case but its id and raw_json. A status is required only when `need_status`.
std::string read_case_fields(reader& in, case_record& out, bool need_status,
                             std::string_view checks_where, shape_report* report) {
  const auto status = in.find("overall_status", case_status_names, need_status ? fails : tolerated);
  if (status) {
    const auto text = scalar_text(*status);
    if (!text || text->empty()) {
      if (need_status) {
        return in.name_of(in.matched_name()) + ": expected a non-empty string";
      }
    } else {
      out.overall_status = *text;
    }
  } else if (need_status) {
    return in.missing_message("overall_status", case_status_names);
  }
  out.overall_score = in.optional_text("overall_score", score_names);
  out.email_address = in.text("email_address", email_names);
  out.created = in.text("created", created_names);
  out.modified = in.text("modified", modified_names);
  if (const auto checks = in.list("checks", checks_names)) {
    std::size_t index = 0;
    for (const element item : *checks) {
      const std::string name = indexed(in, "checks", index++);
      object check_object;
      if (item.get_object().get(check_object) != simdjson::SUCCESS) {
        continue;  // not needed for any decision
      }
      reader check_reader(check_object, name, std::string(checks_where), report);
      std::string ignored;
      if (auto one = read_check(check_reader, ignored)) {
        out.checks.push_back(std::move(*one));
      }
    }
  }
  return {};
}

}  // namespace model_detail

using namespace model_detail;

parsed<case_record> parse_case(std::string_view body, std::string_view requested_id,
                               shape_report* report) {
  return parse_root_object<case_record>(
      body, [&](object root, case_record& out) -> std::string {
        reader in(root, "", "case", report);
        std::string problem;
        if (const auto id = in.id("id", case_id_names, from_request, problem)) {
          out.id = *id;
        } else if (!problem.empty()) {
          return problem;
        } else if (!requested_id.empty()) {
          out.id.assign(requested_id);
        } else {
          return in.missing_message("id", case_id_names);
        }
        if (std::string failed = read_case_fields(in, out, true, "case.checks[]", report);
            !failed.empty()) {
          return failed;
        }
        // A single case is archived as the exact bytes received.
        out.raw_json.assign(body);
        return {};
      });
}

bool is_check_closed(std::string_view status) {
  return status == "COMPLETE" || status == "CANCELLED" || status == "SUPERSEDED";
}

bool is_known_case_status(std::string_view status) {
  static constexpr std::array<std::string_view, 22> known = {
      // current, in precedence order
      "DRAFT", "CASE_ORDERED", "INVITE_UNDELIVERABLE", "APPLICANT_EXPIRED", "APPLICANT_INVITED",
      "APPLICANT_OPENED", "APPLICANT_STARTED", "APPLICANT_SUBMITTED", "IN_DISPUTE", "IN_PROGRESS",
      "APPLICANT_ACTION_REQUIRED", "CLIENT_ACTION_REQUIRED", "CANCELLED", "COMPLETE",
      // deprecated, still seen on old cases
      "APPLICANT_DECLINED", "AWAITING_APPLICANT_SUBMISSION", "PENDING_FULFILLMENT",
      "SUBMITTED_TO_SOURCE", "MANUAL_REVIEW_SOURCE", "PENDING_QUALITY_REVIEW", "IN_QUALITY_REVIEW",
      "SUPERSEDED"};
  for (const std::string_view known_status : known) {
    if (known_status == status) {
      return true;
    }
  }
  return false;
}

}  // namespace archiver::certn
