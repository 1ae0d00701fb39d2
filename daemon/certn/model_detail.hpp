// Internal to daemon/certn: what the parts of the Certn answer readers share (model.cpp,
// model_reader.cpp, model_case.cpp, model_case_page.cpp, model_report.cpp,
// model_supplementary.cpp): the accepted names, the reader of one JSON object, parsing a body.
// Not to be included outside daemon/certn; the public interface is model.hpp.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "certn/model.hpp"

namespace archiver::certn::model_detail {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;
using names_t = std::span<const std::string_view>;

// ---- The accepted names (README "Accepted response shapes" reproduces accepted_fields()) -------
// Each list is one row's names in accepted_fields() (model.cpp) and what its reader looks up.

inline constexpr std::string_view case_id_names[] = {"id", "case_id"};
inline constexpr std::string_view case_status_names[] = {"overall_status", "status", "case_status"};
inline constexpr std::string_view score_names[] = {"overall_score"};
inline constexpr std::string_view email_names[] = {"email_address", "email"};
inline constexpr std::string_view created_names[] = {"created", "created_at"};
inline constexpr std::string_view modified_names[] = {"modified", "modified_at", "updated",
                                                      "updated_at", "last_updated"};
inline constexpr std::string_view checks_names[] = {"checks"};
inline constexpr std::string_view check_id_names[] = {"id", "check_id"};
inline constexpr std::string_view check_type_names[] = {"type", "check_type"};
inline constexpr std::string_view check_status_names[] = {"status", "check_status"};
inline constexpr std::string_view check_result_names[] = {"result"};
inline constexpr std::string_view list_results_names[] = {"results", "data", "items"};
inline constexpr std::string_view list_count_names[] = {"count", "total", "total_count"};
inline constexpr std::string_view list_next_names[] = {"next"};
inline constexpr std::string_view list_previous_names[] = {"previous"};
inline constexpr std::string_view pagination_names[] = {"pagination", "meta"};
inline constexpr std::string_view page_names[] = {"page", "current_page"};
inline constexpr std::string_view total_pages_names[] = {"total_pages", "num_pages", "page_count"};
inline constexpr std::string_view report_id_names[] = {"id", "report_file_id",
                                                       "case_report_file_id"};
inline constexpr std::string_view report_status_names[] = {"status", "report_status", "state"};
inline constexpr std::string_view report_url_names[] = {
    "pdf_url", "url", "report_url", "file_url", "download_url", "presigned_url"};
inline constexpr std::string_view generated_id_names[] = {"case_report_file_id", "report_file_id",
                                                          "id"};
inline constexpr std::string_view files_names[] = {"files", "supplementary_files", "documents"};
inline constexpr std::string_view file_id_names[] = {"id", "file_id", "document_id"};
inline constexpr std::string_view file_name_names[] = {"name", "file_name", "filename"};
inline constexpr std::string_view content_type_names[] = {"content_type", "mime_type", "mimetype"};
inline constexpr std::string_view size_names[] = {"size", "file_size", "size_bytes"};
inline constexpr std::string_view file_url_names[] = {"url", "file_url", "download_url",
                                                      "presigned_url", "signed_url"};
inline constexpr std::string_view information_names[] = {"supplementary_information"};

using enum when_missing;

// ---- model_reader.cpp: reading one JSON object --------------------------------------------------

// "" when `text` is a usable id (see model.hpp: non-empty, at most 128 characters, only
// [A-Za-z0-9._:-], not only dots); otherwise "<name>: <what is wrong>".
std::string check_id(std::string_view name, std::string_view text);

// A scalar as text: strings as they are, numbers and booleans as JSON prints them. Objects,
// arrays and null give nullopt.
std::optional<std::string> scalar_text(element value);

// One JSON object being read: finds fields by their accepted names, records what matched in the
// shape report, and knows which keys it never looked at (recorded in `report` on destruction).
// `report` may be null.
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
  std::optional<element> find(std::string_view field, names_t names, when_missing missing);

  // The name the last successful find() matched.
  std::string_view matched_name() const { return matched_name_; }

  // Where `name` sits, for messages: "results[3].checks[0].id".
  std::string name_of(std::string_view key) const;

  std::string missing_message(std::string_view field, names_t names) const;

  // A scalar as text, "" when absent, null, an object or an array.
  std::string text(std::string_view field, names_t names);

  std::optional<std::string> optional_text(std::string_view field, names_t names);

  // An id: a string or an integer; checked as a key. nullopt with `problem` empty: absent.
  std::optional<std::string> id(std::string_view field, names_t names, when_missing missing,
                                std::string& problem);

  // An array under one of `names`; nullopt when absent or not an array.
  std::optional<array> list(std::string_view field, names_t names);

 private:
  void record(std::string_view field, std::string_view matched, when_missing missing);
  void record_unknown();

  object from_;
  std::string path_;
  std::string where_;
  shape_report* report_;
  std::set<std::string_view> looked_at_;
  std::string_view matched_name_;
};

// "<parent path>.<key>[<index>]", the name of an array entry in messages.
std::string indexed(const reader& parent, std::string_view key, std::size_t index);

// ---- Parsing a body -----------------------------------------------------------------------------

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

// ---- model_case.cpp -----------------------------------------------------------------------------

// Everything of a case but its id and raw_json. A status is required only when `need_status`.
// Returns "" or the reason the case cannot be used. Checks without a usable id are left out;
// `checks_where` names their entries in the shape report ("case.checks[]").
std::string read_case_fields(reader& in, case_record& out, bool need_status,
                             std::string_view checks_where, shape_report* report);

}  // namespace archiver::certn::model_detail
