#include "certn/model.hpp"

#include <simdjson.h>

#include <array>
#include <utility>

namespace archiver::certn {

namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

constexpr std::size_t max_id_length = 128;

bool is_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

std::string field_name(std::string_view path, std::string_view key) {
  if (path.empty()) {
    return std::string(key);
  }
  return std::string(path) + "." + std::string(key);
}

std::string indexed(std::string_view path, std::string_view key, std::size_t index) {
  return field_name(path, key) + "[" + std::to_string(index) + "]";
}

// Absent and null are the same thing for every optional field.
bool is_absent(object from, std::string_view key, element& value) {
  if (from.at_key(key).get(value) != simdjson::SUCCESS) {
    return true;
  }
  return value.is_null();
}

// Each reader returns an empty string on success, else the one-line error.
std::string read_required_string(object from, std::string_view path, std::string_view key,
                                 std::string& out) {
  element value;
  if (from.at_key(key).get(value) != simdjson::SUCCESS) {
    return field_name(path, key) + ": missing";
  }
  std::string_view text;
  if (value.get_string().get(text) != simdjson::SUCCESS) {
    return field_name(path, key) + ": expected a string";
  }
  out.assign(text);
  return {};
}

std::string read_optional_string(object from, std::string_view path, std::string_view key,
                                 std::optional<std::string>& out) {
  element value;
  if (is_absent(from, key, value)) {
    out.reset();
    return {};
  }
  std::string_view text;
  if (value.get_string().get(text) != simdjson::SUCCESS) {
    return field_name(path, key) + ": expected a string or null";
  }
  out.emplace(text);
  return {};
}

std::string read_optional_string(object from, std::string_view path, std::string_view key,
                                 std::string& out) {
  std::optional<std::string> value;
  std::string problem = read_optional_string(from, path, key, value);
  out = value.value_or("");
  return problem;
}

std::string check_id(std::string_view name, std::string_view text) {
  if (text.empty()) {
    return std::string(name) + ": empty";
  }
  if (text.size() > max_id_length) {
    return std::string(name) + ": longer than " + std::to_string(max_id_length) + " characters";
  }
  for (const char c : text) {
    if (!is_id_char(c)) {
      return std::string(name) + ": contains characters other than [A-Za-z0-9._:-]";
    }
  }
  // "." and ".." would walk directories in a storage key and in a URL path.
  if (text.find_first_not_of('.') == std::string_view::npos) {
    return std::string(name) + ": only dots";
  }
  return {};
}

// An id that will become a storage key.
std::string read_id(object from, std::string_view path, std::string_view key, std::string& out) {
  if (std::string problem = read_required_string(from, path, key, out); !problem.empty()) {
    return problem;
  }
  return check_id(field_name(path, key), out);
}

// The first of `keys` present and not null names the id; none present is an error.
std::string read_id_alternatives(object from, std::string_view path,
                                 std::initializer_list<std::string_view> keys, std::string& out) {
  element value;
  for (const std::string_view key : keys) {
    if (!is_absent(from, key, value)) {
      return read_id(from, path, key, out);
    }
  }
  std::string names;
  for (const std::string_view key : keys) {
    names += names.empty() ? "" : ", ";
    names += key;
  }
  return field_name(path, *keys.begin()) + ": missing (none of " + names + ")";
}

// An optional array: absent or null gives an empty array.
std::string read_optional_array(object from, std::string_view path, std::string_view key,
                                array& out, bool& present) {
  element value;
  present = !is_absent(from, key, value);
  if (!present) {
    return {};
  }
  if (value.get_array().get(out) != simdjson::SUCCESS) {
    return field_name(path, key) + ": expected an array";
  }
  return {};
}

std::string as_object(element value, std::string_view name, object& out) {
  if (value.get_object().get(out) != simdjson::SUCCESS) {
    return std::string(name) + ": expected an object";
  }
  return {};
}

// Parses `body` and hands its root object to `fill`; the parser lives only for this call, so
// nothing from the document may escape except copies.
template <class T, class Fill>
parsed<T> parse_root(std::string_view body, Fill fill) {
  if (body.empty()) {
    return {std::nullopt, "body: empty"};
  }
  // The DOM parser validates the whole document, trailing bytes included.
  simdjson::dom::parser parser;
  const simdjson::padded_string padded(body);
  element root;
  if (const auto error = parser.parse(padded).get(root); error != simdjson::SUCCESS) {
    return {std::nullopt,
            std::string("body: not valid JSON (") + simdjson::error_message(error) + ")"};
  }
  object root_object;
  if (root.get_object().get(root_object) != simdjson::SUCCESS) {
    return {std::nullopt, "body: expected a JSON object"};
  }
  T value{};
  if (std::string problem = fill(root_object, value); !problem.empty()) {
    return {std::nullopt, std::move(problem)};
  }
  return {std::move(value), {}};
}

std::string read_check(object from, std::string_view path, check& out) {
  std::string problem = read_id(from, path, "id", out.id);
  if (problem.empty()) {
    problem = read_optional_string(from, path, "type", out.type);
  }
  if (problem.empty()) {
    problem = read_required_string(from, path, "status", out.status);
  }
  if (problem.empty()) {
    problem = read_optional_string(from, path, "result", out.result);
  }
  if (problem.empty()) {
    problem = read_optional_string(from, path, "created", out.created);
  }
  if (problem.empty()) {
    problem = read_optional_string(from, path, "modified", out.modified);
  }
  return problem;
}

// Fills everything but raw_json.
std::string read_case(object from, std::string_view path, case_record& out) {
  std::string problem = read_id(from, path, "id", out.id);
  if (problem.empty()) {
    problem = read_required_string(from, path, "overall_status", out.overall_status);
  }
  if (problem.empty()) {
    element score;
    if (!is_absent(from, "overall_score", score)) {
      std::string_view text;
      if (score.get_string().get(text) == simdjson::SUCCESS) {
        out.overall_score.emplace(text);
      } else if (score.is_number()) {
        // simdjson prints the parsed number; good enough for a display score.
        out.overall_score = simdjson::minify(score);
      } else {
        problem = field_name(path, "overall_score") + ": expected a string, number or null";
      }
    }
  }
  if (problem.empty()) {
    problem = read_optional_string(from, path, "email_address", out.email_address);
  }
  if (problem.empty()) {
    problem = read_optional_string(from, path, "created", out.created);
  }
  if (problem.empty()) {
    problem = read_optional_string(from, path, "modified", out.modified);
  }
  array checks;
  bool present = false;
  if (problem.empty()) {
    problem = read_optional_array(from, path, "checks", checks, present);
  }
  if (problem.empty() && present) {
    std::size_t index = 0;
    for (const element item : checks) {
      const std::string name = indexed(path, "checks", index++);
      object check_object;
      problem = as_object(item, name, check_object);
      check parsed_check;
      if (problem.empty()) {
        problem = read_check(check_object, name, parsed_check);
      }
      if (!problem.empty()) {
        break;
      }
      out.checks.push_back(std::move(parsed_check));
    }
  }
  return problem;
}

std::string read_file_entry(object from, std::string_view path, supplementary_file& out) {
  std::string problem = read_id(from, path, "id", out.id);
  if (problem.empty()) {
    problem = read_optional_string(from, path, "name", out.name);
  }
  if (problem.empty()) {
    problem = read_optional_string(from, path, "content_type", out.content_type);
  }
  if (problem.empty()) {
    element size;
    if (!is_absent(from, "size", size)) {
      std::int64_t bytes = 0;
      if (size.get_int64().get(bytes) != simdjson::SUCCESS || bytes < 0) {
        problem = field_name(path, "size") + ": expected a non-negative integer or null";
      } else {
        out.size = bytes;
      }
    }
  }
  if (problem.empty()) {
    problem = read_optional_string(from, path, "url", out.url);
  }
  if (problem.empty()) {
    problem = read_optional_string(from, path, "created", out.created);
  }
  return problem;
}

// id, type and status shared by both supplementary check shapes.
template <class Check>
std::string read_check_head(object from, std::string_view path, Check& out) {
  std::string problem = read_id(from, path, "id", out.id);
  if (problem.empty()) {
    problem = read_optional_string(from, path, "type", out.type);
  }
  if (problem.empty()) {
    problem = read_required_string(from, path, "status", out.status);
  }
  return problem;
}

// Walks the "checks" array of a supplementary answer, calling read_one(object, name, check).
template <class Check, class ReadOne>
std::string read_checks(object from, std::vector<Check>& out, ReadOne read_one) {
  array checks;
  bool present = false;
  std::string problem = read_optional_array(from, "", "checks", checks, present);
  if (!problem.empty() || !present) {
    return problem;
  }
  std::size_t index = 0;
  for (const element item : checks) {
    const std::string name = indexed("", "checks", index++);
    object check_object;
    problem = as_object(item, name, check_object);
    Check one{};
    if (problem.empty()) {
      problem = read_check_head(check_object, name, one);
    }
    if (problem.empty()) {
      problem = read_one(check_object, name, one);
    }
    if (!problem.empty()) {
      return problem;
    }
    out.push_back(std::move(one));
  }
  return {};
}

}  // namespace

parsed<case_record> parse_case(std::string_view body) {
  return parse_root<case_record>(body, [body](object root, case_record& out) {
    std::string problem = read_case(root, "", out);
    // A single case is archived as the exact bytes received.
    out.raw_json.assign(body);
    return problem;
  });
}

parsed<case_page> parse_case_page(std::string_view body) {
  return parse_root<case_page>(body, [](object root, case_page& out) -> std::string {
    element value;
    if (root.at_key("count").get(value) != simdjson::SUCCESS) {
      return "count: missing";
    }
    if (value.get_uint64().get(out.count) != simdjson::SUCCESS) {
      return "count: expected a non-negative integer";
    }
    std::string problem = read_optional_string(root, "", "next", out.next);
    if (problem.empty()) {
      problem = read_optional_string(root, "", "previous", out.previous);
    }
    if (!problem.empty()) {
      return problem;
    }
    array results;
    if (root.at_key("results").get(value) != simdjson::SUCCESS) {
      return "results: missing";
    }
    if (value.get_array().get(results) != simdjson::SUCCESS) {
      return "results: expected an array";
    }
    std::size_t index = 0;
    for (const element item : results) {
      const std::string name = indexed("", "results", index++);
      object case_object;
      problem = as_object(item, name, case_object);
      case_record record;
      if (problem.empty()) {
        problem = read_case(case_object, name, record);
      }
      if (!problem.empty()) {
        return problem;
      }
      // The DOM cannot give back an entry's received bytes; minify re-serializes the same value.
      record.raw_json = simdjson::minify(item);
      out.results.push_back(std::move(record));
    }
    return {};
  });
}

parsed<report_file> parse_report_file(std::string_view body) {
  return parse_root<report_file>(body, [](object root, report_file& out) -> std::string {
    std::string problem = read_id(root, "", "id", out.id);
    if (problem.empty()) {
      problem = read_required_string(root, "", "status", out.status);
    }
    if (problem.empty()) {
      problem = read_optional_string(root, "", "created", out.created);
    }
    if (!problem.empty()) {
      return problem;
    }
    // Where the URL lives is not documented: take the first non-null string.
    for (const std::string_view key : {"pdf_url", "url", "file_url", "download_url"}) {
      std::string_view text;
      if (root.at_key(key).get_string().get(text) == simdjson::SUCCESS) {
        out.url.emplace(text);
        break;
      }
    }
    return {};
  });
}

parsed<std::string> parse_generate_report(std::string_view body) {
  return parse_root<std::string>(body, [](object root, std::string& out) {
    return read_id_alternatives(root, "", {"case_report_file_id", "report_file_id", "id"}, out);
  });
}

parsed<supplementary_files> parse_supplementary_files(std::string_view body) {
  return parse_root<supplementary_files>(body, [](object root, supplementary_files& out) {
    std::string problem = read_id_alternatives(root, "", {"id", "case_id"}, out.case_id);
    if (!problem.empty()) {
      return problem;
    }
    return read_checks(
        root, out.checks, [](object from, const std::string& path, supplementary_check& one) {
          array files;
          bool present = false;
          std::string issue = read_optional_array(from, path, "files", files, present);
          if (!issue.empty() || !present) {
            return issue;
          }
          std::size_t index = 0;
          for (const element item : files) {
            const std::string name = indexed(path, "files", index++);
            object file_object;
            issue = as_object(item, name, file_object);
            supplementary_file file;
            if (issue.empty()) {
              issue = read_file_entry(file_object, name, file);
            }
            if (!issue.empty()) {
              return issue;
            }
            one.files.push_back(std::move(file));
          }
          return std::string();
        });
  });
}

parsed<supplementary_information> parse_supplementary_information(std::string_view body) {
  return parse_root<supplementary_information>(
      body, [](object root, supplementary_information& out) {
        std::string problem = read_id_alternatives(root, "", {"id", "case_id"}, out.case_id);
        if (!problem.empty()) {
          return problem;
        }
        return read_checks(
            root, out.checks,
            [](object from, const std::string&, supplementary_information_check& one) {
              element value;
              if (from.at_key("supplementary_information").get(value) == simdjson::SUCCESS) {
                one.information_json = simdjson::minify(value);
              } else {
                one.information_json = "null";
              }
              return std::string();
            });
      });
}

bool is_valid_id(std::string_view text) { return check_id("id", text).empty(); }

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
