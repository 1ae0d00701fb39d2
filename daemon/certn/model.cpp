#include "certn/model.hpp"

#include <openssl/evp.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <set>
#include <utility>

#include "encoding/encoding.hpp"

namespace archiver::certn {

namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;
using names_t = std::span<const std::string_view>;

// ---- The accepted names (README "Accepted response shapes" reproduces accepted_fields()) -------

constexpr std::string_view case_id_names[] = {"id", "case_id"};
constexpr std::string_view case_status_names[] = {"overall_status", "status", "case_status"};
constexpr std::string_view score_names[] = {"overall_score"};
constexpr std::string_view email_names[] = {"email_address", "email"};
constexpr std::string_view created_names[] = {"created", "created_at"};
constexpr std::string_view modified_names[] = {"modified", "modified_at", "updated", "updated_at",
                                               "last_updated"};
constexpr std::string_view checks_names[] = {"checks"};
constexpr std::string_view check_id_names[] = {"id", "check_id"};
constexpr std::string_view check_type_names[] = {"type", "check_type"};
constexpr std::string_view check_status_names[] = {"status", "check_status"};
constexpr std::string_view check_result_names[] = {"result"};
constexpr std::string_view list_results_names[] = {"results", "data", "items"};
constexpr std::string_view list_count_names[] = {"count", "total", "total_count"};
constexpr std::string_view list_next_names[] = {"next"};
constexpr std::string_view list_previous_names[] = {"previous"};
constexpr std::string_view pagination_names[] = {"pagination", "meta"};
constexpr std::string_view page_names[] = {"page", "current_page"};
constexpr std::string_view total_pages_names[] = {"total_pages", "num_pages", "page_count"};
constexpr std::string_view report_id_names[] = {"id", "report_file_id", "case_report_file_id"};
constexpr std::string_view report_status_names[] = {"status", "report_status", "state"};
constexpr std::string_view report_url_names[] = {"pdf_url",      "url",          "report_url",
                                                 "file_url",     "download_url", "presigned_url"};
constexpr std::string_view generated_id_names[] = {"case_report_file_id", "report_file_id", "id"};
constexpr std::string_view files_names[] = {"files", "supplementary_files", "documents"};
constexpr std::string_view file_id_names[] = {"id", "file_id", "document_id"};
constexpr std::string_view file_name_names[] = {"name", "file_name", "filename"};
constexpr std::string_view content_type_names[] = {"content_type", "mime_type", "mimetype"};
constexpr std::string_view size_names[] = {"size", "file_size", "size_bytes"};
constexpr std::string_view file_url_names[] = {"url",          "file_url",      "download_url",
                                               "presigned_url", "signed_url"};
constexpr std::string_view information_names[] = {"supplementary_information"};

using enum when_missing;

constexpr std::array fields_table = {
    accepted_field{"case", "id", case_id_names, from_request},
    accepted_field{"case", "overall_status", case_status_names, fails},
    accepted_field{"case", "modified", modified_names, tolerated},
    accepted_field{"case", "created", created_names, tolerated},
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

// ---- Reading ------------------------------------------------------------------------------------

constexpr std::size_t max_id_length = 128;

bool is_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

std::string joined(names_t names) {
  std::string out;
  for (const std::string_view name : names) {
    out += out.empty() ? "" : ", ";
    out += name;
  }
  return out;
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

// A scalar as text: strings as they are, numbers and booleans as JSON prints them. Objects,
// arrays and null give nullopt.
std::optional<std::string> scalar_text(element value) {
  std::string_view text;
  if (value.get_string().get(text) == simdjson::SUCCESS) {
    return std::string(text);
  }
  if (value.is_number() || value.is_bool()) {
    return simdjson::minify(value);
  }
  return std::nullopt;
}

// One JSON object being read: finds fields by their accepted names, records what matched in the
// shape report, and knows which keys it never looked at.
class reader {
 public:
  reader(object from, std::string path, std::string where, shape_report* report)
      : from_(from), path_(std::move(path)), where_(std::move(where)), report_(report) {}

  reader(const reader&) = delete;
  reader& operator=(const reader&) = delete;
  ~reader() { record_unknown(); }

  const std::string& path() const { return path_; }
  const std::string& where() const { return where_; }

  // The value of the first accepted name present and not null.
  std::optional<element> find(std::string_view field, names_t names, when_missing missing) {
    for (const std::string_view name : names) {
      looked_at_.insert(name);
    }
    for (const std::string_view name : names) {
      element value;
      if (from_.at_key(name).get(value) == simdjson::SUCCESS && !value.is_null()) {
        record(field, name, missing);
        matched_name_ = name;
        return value;
      }
    }
    record(field, "", missing);
    return std::nullopt;
  }

  // The name the last successful find() matched.
  std::string_view matched_name() const { return matched_name_; }

  // Where `name` sits, for messages: "results[3].checks[0].id".
  std::string name_of(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  std::string missing_message(std::string_view field, names_t names) const {
    return name_of(field) + ": missing (none of " + joined(names) + ")";
  }

  // A scalar as text, "" when absent, null, an object or an array.
  std::string text(std::string_view field, names_t names) {
    const auto value = find(field, names, tolerated);
    if (!value) {
      return {};
    }
    return scalar_text(*value).value_or("");
  }

  std::optional<std::string> optional_text(std::string_view field, names_t names) {
    const auto value = find(field, names, tolerated);
    if (!value) {
      return std::nullopt;
    }
    return scalar_text(*value);
  }

  // An id: a string or an integer; checked as a key. nullopt with `problem` empty: absent.
  std::optional<std::string> id(std::string_view field, names_t names, when_missing missing,
                                std::string& problem) {
    const auto value = find(field, names, missing);
    if (!value) {
      return std::nullopt;
    }
    std::string text;
    std::string_view view;
    std::int64_t integer = 0;
    std::uint64_t unsigned_integer = 0;
    if (value->get_string().get(view) == simdjson::SUCCESS) {
      text.assign(view);
    } else if (value->get_int64().get(integer) == simdjson::SUCCESS) {
      text = std::to_string(integer);
    } else if (value->get_uint64().get(unsigned_integer) == simdjson::SUCCESS) {
      text = std::to_string(unsigned_integer);
    } else {
      problem = name_of(matched_name_) + ": expected a string or an integer";
      return std::nullopt;
    }
    problem = check_id(name_of(matched_name_), text);
    if (!problem.empty()) {
      return std::nullopt;
    }
    return text;
  }

  // An array under one of `names`; nullopt when absent or not an array.
  std::optional<array> list(std::string_view field, names_t names) {
    const auto value = find(field, names, tolerated);
    array out;
    if (!value || value->get_array().get(out) != simdjson::SUCCESS) {
      return std::nullopt;
    }
    return out;
  }

 private:
  void record(std::string_view field, std::string_view matched, when_missing missing) {
    if (report_ == nullptr) {
      return;
    }
    for (const auto& seen : report_->fields) {
      if (seen.where == where_ && seen.field == field && seen.matched == matched) {
        return;
      }
    }
    report_->fields.push_back({where_, std::string(field), std::string(matched), missing});
  }

  void record_unknown() {
    if (report_ == nullptr) {
      return;
    }
    for (const auto [key, value] : from_) {
      if (looked_at_.count(key)) {
        continue;
      }
      std::string name = where_ + "." + std::string(key);
      if (std::find(report_->unknown.begin(), report_->unknown.end(), name) ==
          report_->unknown.end()) {
        report_->unknown.push_back(std::move(name));
      }
    }
  }

  object from_;
  std::string path_;
  std::string where_;
  shape_report* report_;
  std::set<std::string_view> looked_at_;
  std::string_view matched_name_;
};

std::string indexed(const reader& parent, std::string_view key, std::size_t index) {
  return parent.name_of(key) + "[" + std::to_string(index) + "]";
}

// Parses `body` and hands its root element to `fill`; the parser lives only for this call, so
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
  T value{};
  if (std::string problem = fill(root, value); !problem.empty()) {
    return {std::nullopt, std::move(problem)};
  }
  return {std::move(value), {}};
}

template <class T, class Fill>
parsed<T> parse_root_object(std::string_view body, Fill fill) {
  return parse_root<T>(body, [&fill](element root, T& out) -> std::string {
    object root_object;
    if (root.get_object().get(root_object) != simdjson::SUCCESS) {
      return "body: expected a JSON object";
    }
    return fill(root_object, out);
  });
}

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

std::string url_path(std::string_view url) {
  const auto scheme = url.find("://");
  std::string_view rest = scheme == std::string_view::npos ? url : url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("?#"));
  const auto slash = rest.find('/');
  return slash == std::string_view::npos ? std::string("/") : std::string(rest.substr(slash));
}

std::string upper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  });
  return text;
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

parsed<case_page> parse_case_page(std::string_view body, shape_report* report) {
  return parse_root<case_page>(body, [report](element root, case_page& out) -> std::string {
    array results;
    std::string results_key = "results";
    object root_object;
    std::optional<reader> envelope;
    if (root.get_array().get(results) == simdjson::SUCCESS) {
      results_key = "";  // a bare array of cases
    } else if (root.get_object().get(root_object) == simdjson::SUCCESS) {
      envelope.emplace(root_object, "", "case list", report);
      const auto found = envelope->list("results", list_results_names);
      if (!found) {
        return envelope->missing_message("results", list_results_names) + " or not an array";
      }
      results = *found;
      results_key = std::string(envelope->matched_name());
      if (const auto count = envelope->find("count", list_count_names, tolerated)) {
        std::uint64_t value = 0;
        if (count->get_uint64().get(value) == simdjson::SUCCESS) {
          out.count = value;
        }
      }
      out.next = envelope->optional_text("next", list_next_names);
      out.previous = envelope->optional_text("previous", list_previous_names);
      if (const auto pagination = envelope->find("pagination", pagination_names, tolerated)) {
        object pagination_object;
        if (pagination->get_object().get(pagination_object) == simdjson::SUCCESS) {
          reader paging(pagination_object, "pagination", "case list.pagination", report);
          if (!out.next) {
            out.next = paging.optional_text("next", list_next_names);
          }
          std::int64_t page = 0;
          std::int64_t total = 0;
          const auto page_value = paging.find("page", page_names, tolerated);
          const auto total_value = paging.find("total_pages", total_pages_names, tolerated);
          if (page_value && total_value &&
              page_value->get_int64().get(page) == simdjson::SUCCESS &&
              total_value->get_int64().get(total) == simdjson::SUCCESS) {
            out.more_pages = page < total;
          }
        }
      }
    } else {
      return "body: expected a JSON object or array";
    }
    std::size_t index = 0;
    for (const element item : results) {
      const std::string name =
          (results_key.empty() ? std::string() : results_key) + "[" + std::to_string(index++) + "]";
      object case_object;
      if (item.get_object().get(case_object) != simdjson::SUCCESS) {
        out.skipped.push_back(name + ": expected an object");
        continue;
      }
      reader in(case_object, name, "case list.results[]", report);
      case_record record;
      std::string problem;
      if (const auto id = in.id("id", case_id_names, skips_entry, problem)) {
        record.id = *id;
      } else {
        out.skipped.push_back(problem.empty() ? in.missing_message("id", case_id_names)
                                              : problem);
        continue;
      }
      if (std::string failed =
              read_case_fields(in, record, false, "case list.results[].checks[]", report);
          !failed.empty()) {
        out.skipped.push_back(name + " (case " + record.id + "): " + failed);
        continue;
      }
      // The DOM cannot give back an entry's received bytes; minify re-serializes the same value.
      record.raw_json = simdjson::minify(item);
      out.results.push_back(std::move(record));
    }
    return {};
  });
}

bool has_more_pages(const case_page& page, int page_size) {
  if (page.results.empty() && page.skipped.empty()) {
    return false;
  }
  if (page.next) {
    return !page.next->empty();
  }
  if (page.more_pages) {
    return *page.more_pages;
  }
  if (page.count) {
    return false;  // Django's envelope without "next": the last page
  }
  // A bare array (or an envelope that says nothing): a full page may have a successor.
  return static_cast<int>(page.results.size() + page.skipped.size()) >= page_size;
}

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

bool is_valid_id(std::string_view text) { return check_id("id", text).empty(); }

std::string file_id_from_url(std::string_view url) {
  const std::string path = url_path(url);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(path.data(), path.size(), digest, &length, EVP_sha256(), nullptr);
  return "u" + encoding::to_hex(std::string_view(reinterpret_cast<const char*>(digest), 12));
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
