#pragma once

// Typed views of Certn Cases API answers (see certn-api.md in the shared notes). Parsers are pure,
// tolerate unknown fields and unknown statuses, and are safe to call from any thread. IDs that
// become storage keys are checked: non-empty, at most 128 characters, only [A-Za-z0-9._:-].

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace archiver::certn {

// Either a value or a one-line error naming the field ("results[3].checks[0].id: ...").
template <class T>
struct parsed {
  std::optional<T> value;
  std::string error;
};

struct check {
  std::string id;  // checked key
  std::string type;
  std::string status;  // may be a status this code does not know
  std::optional<std::string> result;
  std::string created;
  std::string modified;
};

struct case_record {
  std::string id;  // checked key
  std::string overall_status;
  std::optional<std::string> overall_score;  // a number as simdjson prints it (1e2 -> "100.0")
  std::string email_address;
  std::string created;
  std::string modified;
  std::vector<check> checks;
  // parse_case: the body exactly as received. parse_case_page: the entry re-serialized by
  // simdjson::minify, NOT the received bytes (1.50 -> 1.5, "\u00e9" -> "é").
  std::string raw_json;
};

struct case_page {
  std::uint64_t count = 0;
  std::optional<std::string> next;
  std::optional<std::string> previous;
  std::vector<case_record> results;
};

struct report_file {
  std::string id;  // checked key
  std::string status;
  std::optional<std::string> url;  // first string of pdf_url, url, file_url, download_url
  std::string created;
};

struct supplementary_file {
  std::string id;  // checked key
  std::string name;
  std::string content_type;
  std::optional<std::int64_t> size;
  std::string url;
  std::string created;
};

struct supplementary_check {
  std::string id;  // checked key
  std::string type;
  std::string status;
  std::vector<supplementary_file> files;
};

struct supplementary_files {
  std::string case_id;  // from "id", else "case_id"; checked key
  std::vector<supplementary_check> checks;
};

struct supplementary_information_check {
  std::string id;  // checked key
  std::string type;
  std::string status;
  // The supplementary_information value re-serialized by simdjson::minify: same JSON value, but
  // NOT the received bytes (numbers and escapes may be rewritten); "null" when absent. To archive
  // exact bytes, store the whole response body.
  std::string information_json;
};

struct supplementary_information {
  std::string case_id;  // from "id", else "case_id"; checked key
  std::vector<supplementary_information_check> checks;
};

// GET /cases/{id}/
parsed<case_record> parse_case(std::string_view body);
// GET /cases/ (Django REST page)
parsed<case_page> parse_case_page(std::string_view body);
// GET /cases/report-files/{id}/
parsed<report_file> parse_report_file(std::string_view body);
// POST /cases/{id}/generate-report/: the report-file id from case_report_file_id, else
// report_file_id, else id.
parsed<std::string> parse_generate_report(std::string_view body);
// GET /cases/{id}/supplementary-files/
parsed<supplementary_files> parse_supplementary_files(std::string_view body);
// GET /cases/{id}/supplementary-information/
parsed<supplementary_information> parse_supplementary_information(std::string_view body);

// True when `text` may be a Certn id here: what parsers accept as a key, and what the API client
// puts into a URL path.
bool is_valid_id(std::string_view text);

// COMPLETE, CANCELLED or SUPERSEDED.
bool is_check_closed(std::string_view status);
// A current or deprecated case status from the documentation.
bool is_known_case_status(std::string_view status);

}  // namespace archiver::certn
