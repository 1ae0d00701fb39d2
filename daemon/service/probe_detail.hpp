// Internal to daemon/service: what the parts of `certn-archiver probe` share (probe.cpp,
// probe_cases.cpp, probe_files.cpp, probe_output.cpp): one probed answer, the whole run, the
// steps common to every answer and the text helpers. Not to be included outside daemon/service;
// the command itself is declared in service.hpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "certn/api.hpp"
#include "config/config.hpp"
#include "http/url.hpp"

namespace archiver::service::probe_detail {

// One answer as probe saw it.
struct response_check {
  std::string endpoint;   // "GET /api/public/cases/ID/"
  int status = 0;         // 0: no answer
  bool answered = false;  // a 2xx whose body was read again
  std::size_t bytes = 0;
  bool archivable = false;
  std::string error;    // why not archivable, or why the call failed; "" when archivable
  std::string hint;     // what to do about a failed call
  std::string summary;  // "3 cases listed", "2 files", ...
  certn::shape_report shape;
  std::vector<std::string> skipped;  // list entries left out, file entries without a URL
  std::optional<std::size_t> files;  // file listings only
  std::vector<std::pair<std::string, bool>> downloads;  // origin, allowed by the download policy
};

struct probe_run {
  std::vector<response_check> responses;
  std::string case_id;      // "" when no case could be chosen
  std::string case_reason;  // why that case
  std::string problem;      // why probe stopped early, "" when it did not
  bool ok() const {
    return problem.empty() && std::all_of(responses.begin(), responses.end(),
                                          [](const auto& r) { return r.archivable; });
  }
};

// ---- probe_output.cpp: text from Certn, URLs and counts -----------------------------------------

// Certn's bytes may hold terminal control sequences: shown as '?' in the text output.
std::string printable(std::string_view text);

// "scheme://host[:port]" of `url`.
std::string origin(const http::url& url);

// scheme://host/path only: the query string of a presigned URL is a credential. An unusable URL
// gives "(not a usable URL)", never the text itself.
std::string without_query(std::string_view text);

// "1 case", "2 cases"; `plural` for nouns that do not just take an "s".
std::string counted(std::size_t n, std::string_view noun, std::string_view plural = {});

// `items` with `separator` between them.
std::string joined(const std::vector<std::string>& items, std::string_view separator);

// ---- probe_output.cpp: the report ---------------------------------------------------------------

// The run as text on stdout: per answer its verdict, matched, missing and unknown fields.
void print_text(const probe_run& run, const std::string& base_url);
// The same as one JSON document on stdout.
void print_json(const probe_run& run, const std::string& base_url);

// ---- Reading each answer again ------------------------------------------------------------------

// probe.cpp: what to do about a failed call ("" when there is no advice).
std::string hint_for(const certn::call_failure& failure);

// Status, size and call failure; `answered` when there is a 2xx body to read again.
template <class T>
response_check start_check(std::string endpoint, const certn::call_result<T>& result) {
  response_check out;
  out.endpoint = std::move(endpoint);
  out.bytes = result.body.size();
  if (result.failure && !result.failure->unreadable_answer) {
    out.status = result.http_status;
    out.error = result.failure->message;
    out.hint = hint_for(*result.failure);
    return out;
  }
  out.answered = true;
  out.status = result.http_status;
  return out;
}

// The verdict is the reader's: the pipeline uses exactly these readers.
template <class T>
void take_verdict(response_check& check, const certn::parsed<T>& read) {
  check.archivable = read.value.has_value();
  check.error = read.error;
}

// ---- probe_cases.cpp ----------------------------------------------------------------------------

// A page of the case list (GET /cases/), read with certn::parse_case_page.
response_check check_list(const certn::call_result<certn::case_page>& result, std::string endpoint);
// One case (GET /cases/{id}/), read with certn::parse_case.
response_check check_case(const certn::call_result<certn::case_record>& result,
                          std::string endpoint, const std::string& id);

// ---- probe_files.cpp ----------------------------------------------------------------------------

// Would the download client fetch `url`? The same rules as certn_clients' download policy
// (addresses are checked only when fetching); a refusal means nothing there can be archived.
void check_download(response_check& check, std::string_view text,
                    const config::certn_settings& settings);

// GET /cases/{id}/supplementary-information/.
response_check check_information(const certn::call_result<certn::supplementary_information>& result,
                                 std::string endpoint, const std::string& id);
// GET /cases/{id}/supplementary-files/: also whether each file's URL could be downloaded.
response_check check_files(const certn::call_result<certn::supplementary_files>& result,
                           std::string endpoint, const std::string& id,
                           const config::certn_settings& settings);
// GET /cases/report-files/{id}/: what the report job would decide (archive::decide_report).
response_check check_report_file(const certn::call_result<certn::report_file>& result,
                                 std::string endpoint, const std::string& id,
                                 const config::certn_settings& settings);

}  // namespace archiver::service::probe_detail
