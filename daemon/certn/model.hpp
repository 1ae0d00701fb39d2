#pragma once

// Tolerant readers of Certn Cases API answers (certn-api.md in the shared notes). Certn documents
// paths, not bodies, so each reader requires only the few fields a decision needs, accepts every
// known name for each (the table of accepted_fields(), which the README reproduces), ignores
// unknown fields, and tolerates numbers, strings and nulls where a value is not needed.
// Parsers are pure and safe to call from any thread. Ids that become storage keys or URL path
// segments are checked: non-empty, at most 128 characters, only [A-Za-z0-9._:-]; an id given as a
// JSON number is read as its decimal text.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace archiver::certn {

// Either a value or a one-line error naming the field ("overall_status: missing (none of
// overall_status, status, case_status)").
template <class T>
struct parsed {
  std::optional<T> value;
  std::string error;
};

// ---- What the pipeline reads, and the names Certn may give it ----------------------------------

enum class when_missing {
  fails,            // the answer cannot be used: a dead job naming the endpoint and the field
  from_request,     // taken from the request path (the id we asked for)
  derived,          // derived from another field (a file's id from its URL path)
  skips_entry,      // this list entry is skipped and counted; the rest is used
  tolerated,        // not needed for a decision; left empty
  ordered_unknown,  // a case's order date: reconcile cannot date it, asks for it by GET daily
};

struct accepted_field {
  std::string_view response;  // "case", "case.checks[]", "case list", "report file", ...
  std::string_view field;     // what the pipeline calls it
  std::span<const std::string_view> names;  // accepted names, first present and non-null wins
  when_missing missing;
};

// Every accepted field of every reader, in the order the README lists them.
std::span<const accepted_field> accepted_fields();
const char* to_string(when_missing value);
// accepted_fields() as the Markdown table the README reproduces (a unit test keeps them equal).
std::string accepted_fields_markdown();

// What a reader saw, for `certn-archiver probe`: per field the name that matched ("" when none
// did), and the keys it did not look at. Paths drop array indices ("checks[].status").
struct shape_report {
  struct field_match {
    std::string where;    // "case", "case.checks[]", ...
    std::string field;
    std::string matched;  // the accepted name found, "" when missing
    when_missing missing;
  };
  std::vector<field_match> fields;   // each (where, field, matched) once
  std::vector<std::string> unknown;  // "case.tags", "case.checks[].score", ... once each
};

// ---- Answers ------------------------------------------------------------------------------------

struct check {
  std::string id;      // checked key
  std::string type;    // "" when absent
  std::string status;  // "" when absent; may be a status this code does not know
  std::optional<std::string> result;
  std::string created;
  std::string modified;
};

struct case_record {
  std::string id;              // checked key
  std::string overall_status;  // GET /cases/{id}/: required; list entries: "" when absent
  std::optional<std::string> overall_score;  // a number as simdjson prints it (1e2 -> "100.0")
  std::string email_address;
  std::string created;
  std::string modified;
  std::vector<check> checks;  // checks without a usable id are left out
  // parse_case: the body exactly as received. parse_case_page: the entry re-serialized by
  // simdjson::minify, NOT the received bytes (1.50 -> 1.5, "\u00e9" -> "é").
  std::string raw_json;
};

struct case_page {
  std::optional<std::uint64_t> count;
  std::optional<std::string> next;      // Django's "next", or pagination.next
  std::optional<std::string> previous;
  std::optional<bool> more_pages;       // pagination.page < pagination.total_pages, when given
  std::vector<case_record> results;
  // One line per entry left out ("results[3] (case c-9): overall_status: ..."), so a bad entry
  // never costs the rest of the page.
  std::vector<std::string> skipped;
};

// True when another page may follow `page`, fetched with `page_size`: Django's next, else the
// pagination object, else (a bare array) a full page.
bool has_more_pages(const case_page& page, int page_size);

struct report_file {
  std::string id;      // from the body, else the id we asked for
  std::string status;  // upper-cased; "" when absent
  std::optional<std::string> url;
  std::string created;
};

struct supplementary_file {
  std::string id;           // checked key; derived from the URL path when the body has none
  bool id_derived = false;
  std::string name;
  std::string content_type;
  std::optional<std::int64_t> size;
  std::string url;
  std::string created;
};

struct supplementary_check {
  std::string id;  // checked key; "case" for files listed outside any check
  std::string type;
  std::string status;
  std::vector<supplementary_file> files;
};

struct supplementary_files {
  std::string case_id;  // from the body, else the id we asked for
  std::vector<supplementary_check> checks;
  // One line per file entry that cannot be archived (no URL), naming it.
  std::vector<std::string> unusable;
};

struct supplementary_information_check {
  std::string id;
  std::string type;
  std::string status;
  // The supplementary_information value re-serialized by simdjson::minify: same JSON value, but
  // NOT the received bytes; "null" when absent. To archive exact bytes, store the whole body.
  std::string information_json;
};

struct supplementary_information {
  std::string case_id;  // from the body, else the id we asked for
  std::vector<supplementary_information_check> checks;
};

// Each parser: `requested_id` is the id in the path we called ("" for none); `report` (may be
// null) receives what matched.

// GET /cases/{id}/ (also order, order-package and cancel answers, with requested_id "").
parsed<case_record> parse_case(std::string_view body, std::string_view requested_id = {},
                               shape_report* report = nullptr);
// GET /cases/: {"results": [...], "count", "next"}, {"results", "pagination": {...}}, or [...].
parsed<case_page> parse_case_page(std::string_view body, shape_report* report = nullptr);
// GET /cases/report-files/{id}/
parsed<report_file> parse_report_file(std::string_view body, std::string_view requested_id = {},
                                      shape_report* report = nullptr);
// POST /cases/{id}/generate-report/: the new report file's id.
parsed<std::string> parse_generate_report(std::string_view body, shape_report* report = nullptr);
// GET /cases/{id}/supplementary-files/
parsed<supplementary_files> parse_supplementary_files(std::string_view body,
                                                      std::string_view requested_id = {},
                                                      shape_report* report = nullptr);
// GET /cases/{id}/supplementary-information/
parsed<supplementary_information> parse_supplementary_information(
    std::string_view body, std::string_view requested_id = {}, shape_report* report = nullptr);

// True when `text` may be a Certn id here: what parsers accept as a key, and what the API client
// puts into a URL path.
bool is_valid_id(std::string_view text);

// The key of a file that came without an id: "u" and 24 hex digits of the SHA-256 of its URL's
// path (the query string of a presigned URL changes with every listing; the path does not).
std::string file_id_from_url(std::string_view url);

// COMPLETE, CANCELLED or SUPERSEDED.
bool is_check_closed(std::string_view status);
// A current or deprecated case status from the documentation.
bool is_known_case_status(std::string_view status);

}  // namespace archiver::certn
