// `certn-archiver probe`: a few read-only calls against a Certn account, each answer read again
// with the model's readers and a shape_report, so that an operator sees, before archiving
// anything, which accepted name Certn used for each field, what is missing and what the pipeline
// would make of it. It never calls generate-report, cancel or order, and never opens the
// database or the archive.
#include <algorithm>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "archive/policy.hpp"
#include "encoding/json.hpp"
#include "http/address_policy.hpp"
#include "http/url.hpp"
#include "service/certn_clients.hpp"
#include "service/service.hpp"

namespace archiver::service {

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

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

// ---- Text from Certn, URLs and counts ----------------------------------------------------------

// Certn's bytes may hold terminal control sequences: shown as '?' in the text output.
std::string printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      c = '?';
    }
  }
  return out;
}

std::string origin(const http::url& url) { return url.scheme + "://" + http::host_header(url); }

// scheme://host/path only: the query string of a presigned URL is a credential.
std::string without_query(std::string_view text) {
  const auto url = http::parse_url(text, nullptr);
  if (!url) {
    return "(not a usable URL)";  // the text itself may carry a signature: never shown
  }
  const std::string path = url->target.substr(0, url->target.find('?'));
  return origin(*url) + (path == "/" ? "" : path);
}

// "1 case", "2 cases"; `plural` for nouns that do not just take an "s".
std::string counted(std::size_t n, std::string_view noun, std::string_view plural = {}) {
  if (n == 1) {
    return "1 " + std::string(noun);
  }
  return std::to_string(n) + " " + (plural.empty() ? std::string(noun) + "s" : std::string(plural));
}

std::string joined(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    out += (out.empty() ? "" : std::string(separator)) + item;
  }
  return out;
}

// ---- Reading each answer again -----------------------------------------------------------------

std::string hint_for(const certn::call_failure& failure) {
  switch (failure.kind) {
    case certn::failure_class::authentication:
      return "Certn refused the key: check certn.api_key, and that certn.base_url is the sandbox "
             "or region the key was made for";
    case certn::failure_class::forbidden:
      return "the key lacks permission for this endpoint: ask Certn to grant it (retrying does "
             "not help)";
    case certn::failure_class::rate_limited:
      return "rate limited: wait a minute and run probe again";
    default:
      return {};
  }
}

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

// Would the download client fetch `url`? The same rules as certn_clients' download policy
// (addresses are checked only when fetching); a refusal means nothing there can be archived.
void check_download(response_check& check, std::string_view text,
                    const config::certn_settings& settings) {
  const auto url = http::parse_url(text, nullptr);
  if (!url) {
    check.archivable = false;
    check.error = "a download URL is not a usable http(s) URL";
    return;
  }
  const bool plain_refused = url->scheme == "http" && !settings.allow_plain_http;
  const bool allowed = !plain_refused && http::host_matches(url->host, settings.download_hosts);
  const std::string where = origin(*url);
  if (std::none_of(check.downloads.begin(), check.downloads.end(),
                   [&](const auto& seen) { return seen.first == where; })) {
    check.downloads.emplace_back(where, allowed);
  }
  if (allowed || !check.archivable) {
    return;
  }
  check.archivable = false;
  if (plain_refused) {
    check.error = "downloads from " + where +
                  " are plain http, refused unless certn.allow_plain_http (test setups only)";
  } else {
    check.error = "downloads from " + where + " are refused: add " + url->host +
                  " (or a *.suffix pattern) to certn.download_hosts";
  }
}

response_check check_list(const certn::call_result<certn::case_page>& result, std::string endpoint) {
  response_check out = start_check(std::move(endpoint), result);
  if (!out.answered) {
    return out;
  }
  const auto read = certn::parse_case_page(result.body, &out.shape);
  take_verdict(out, read);
  if (read.value) {
    out.skipped = read.value->skipped;
    out.summary = counted(read.value->results.size(), "case") + " listed";
  }
  return out;
}

response_check check_case(const certn::call_result<certn::case_record>& result, std::string endpoint, const std::string& id) {
  response_check out = start_check(std::move(endpoint), result);
  if (!out.answered) {
    return out;
  }
  const auto read = certn::parse_case(result.body, id, &out.shape);
  take_verdict(out, read);
  if (read.value) {
    out.summary = read.value->overall_status + ", " + counted(read.value->checks.size(), "check");
  }
  return out;
}

response_check check_information(const certn::call_result<certn::supplementary_information>& result, std::string endpoint, const std::string& id) {
  response_check out = start_check(std::move(endpoint), result);
  if (!out.answered) {
    return out;
  }
  const auto read = certn::parse_supplementary_information(result.body, id, &out.shape);
  take_verdict(out, read);
  if (read.value) {
    out.summary = counted(read.value->checks.size(), "check");
  }
  return out;
}

response_check check_files(const certn::call_result<certn::supplementary_files>& result, std::string endpoint, const std::string& id,
                           const config::certn_settings& settings) {
  response_check out = start_check(std::move(endpoint), result);
  if (!out.answered) {
    return out;
  }
  const auto read = certn::parse_supplementary_files(result.body, id, &out.shape);
  take_verdict(out, read);
  if (!read.value) {
    return out;
  }
  out.skipped = read.value->unusable;
  out.files = 0;
  for (const auto& check : read.value->checks) {
    for (const auto& file : check.files) {
      ++*out.files;
      check_download(out, file.url, settings);
    }
  }
  out.summary = counted(*out.files, "file") + " found, " +
                counted(read.value->unusable.size(), "unusable entry", "unusable entries");
  return out;
}

// The names the report reader accepts for the PDF URL, from the model's own table.
std::string report_url_names() {
  for (const auto& field : certn::accepted_fields()) {
    if (field.response == "report file" && field.field == "url") {
      return joined(std::vector<std::string>(field.names.begin(), field.names.end()), ", ");
    }
  }
  return "url";
}

response_check check_report_file(const certn::call_result<certn::report_file>& result, std::string endpoint, const std::string& id,
                                 const config::certn_settings& settings) {
  response_check out = start_check(std::move(endpoint), result);
  if (!out.answered) {
    return out;
  }
  const auto read = certn::parse_report_file(result.body, id, &out.shape);
  take_verdict(out, read);
  if (!read.value) {
    return out;
  }
  const certn::report_file& report = *read.value;
  const std::string state = report.status.empty() ? "no status" : report.status;
  // The same decision the report job takes (archive/policy).
  switch (archive::decide_report(report)) {
    case archive::report_step::download:
      out.summary = state + ", PDF at " + without_query(*report.url);
      check_download(out, *report.url, settings);
      break;
    case archive::report_step::wait:
      out.summary = state + ": not ready yet, the pipeline polls again later";
      break;
    case archive::report_step::failed:
      out.archivable = false;
      out.error = "Certn reports this report file as " + state;
      break;
    case archive::report_step::no_url:
      out.archivable = false;
      out.error = state + " without a URL (none of " + report_url_names() + ")";
      break;
  }
  return out;
}

// ---- The calls ----------------------------------------------------------------------------------

// Going on cannot tell more: the key is refused everywhere, or Certn cannot be reached.
bool must_stop(const std::optional<certn::call_failure>& failure) {
  return failure && !failure->unreadable_answer &&
         (failure->kind == certn::failure_class::authentication || failure->http_status == 0);
}

std::string api_path(std::string_view path) { return "GET /api/public" + std::string(path); }

// The case asked for, else the first closed case listed (its files are complete), else the
// first listed.
void choose_case(probe_run& run, const probe_request& request,
                 const certn::call_result<certn::case_page>& listed) {
  if (request.case_id) {
    run.case_id = *request.case_id;
    run.case_reason = "given with --case";
    return;
  }
  if (!listed.value) {
    run.problem = "no case to look at: the list could not be read (pass --case ID)";
    return;
  }
  const auto& cases = listed.value->results;
  const auto closed = std::find_if(cases.begin(), cases.end(), [](const auto& c) {
    return c.overall_status == "COMPLETE" || c.overall_status == "CANCELLED";
  });
  if (closed != cases.end()) {
    run.case_id = closed->id;
    run.case_reason = closed->overall_status + ", the first closed case listed";
  } else if (!cases.empty()) {
    run.case_id = cases.front().id;
    const std::string& status = cases.front().overall_status;
    run.case_reason = (status.empty() ? "no status" : status) +
                      "; no closed case on this page, so its files may be incomplete";
  } else {
    run.problem = "no case listed: order one in the sandbox, or pass --case ID";
  }
}

awaitable<probe_run> probe_calls(certn::api_client& api,
                                 const config::certn_settings& settings,
                                 const probe_request& request) {
  probe_run run;
  const std::string stop = "stopped: the remaining calls would fail the same way";
  const certn::case_filter every_case;  // a named object: no temporary inside the co_await
  const auto listed = co_await api.list_cases(every_case, 1, request.page_size);
  run.responses.push_back(
      check_list(listed, api_path("/cases/" + certn::list_query(every_case, 1, request.page_size))));
  if (must_stop(listed.failure)) {
    run.problem = stop;
    co_return run;
  }
  choose_case(run, request, listed);
  if (run.case_id.empty()) {
    co_return run;
  }
  const std::string id = run.case_id;
  const auto got = co_await api.get_case(id);
  run.responses.push_back(
      check_case(got, api_path("/cases/" + id + "/"), id));
  if (must_stop(got.failure)) {
    run.problem = stop;
    co_return run;
  }
  const auto information = co_await api.get_supplementary_information(id);
  run.responses.push_back(
      check_information(information, api_path("/cases/" + id + "/supplementary-information/"), id));
  const auto files = co_await api.get_supplementary_files(id);
  run.responses.push_back(check_files(files, api_path("/cases/" + id + "/supplementary-files/"), id,
                                      settings));
  if (request.report_file_id) {
    const std::string& report_id = *request.report_file_id;
    const auto report = co_await api.get_report_file(report_id);
    run.responses.push_back(check_report_file(report, api_path("/cases/report-files/" + report_id + "/"),
                                              report_id, settings));
  }
  co_return run;
}

// ---- Output -------------------------------------------------------------------------------------

// One field as seen over every object of its kind in an answer.
struct field_view {
  std::string where;
  std::string field;
  std::vector<std::string> names;  // accepted names that matched, in order seen
  bool missing = false;            // absent from at least one object
  certn::when_missing consequence = certn::when_missing::tolerated;
};

std::vector<field_view> field_views(const certn::shape_report& shape) {
  std::vector<field_view> out;
  for (const auto& seen : shape.fields) {
    auto it = std::find_if(out.begin(), out.end(), [&](const field_view& v) {
      return v.where == seen.where && v.field == seen.field;
    });
    if (it == out.end()) {
      it = out.insert(out.end(), field_view{seen.where, seen.field, {}, false, seen.missing});
    }
    if (seen.matched.empty()) {
      it->missing = true;
    } else {
      it->names.push_back(seen.matched);
    }
  }
  return out;
}

// The object kind ("case.checks[]") an unknown key ("case.checks[].score") belongs to: the
// longest kind the report saw, since kinds themselves contain dots.
std::string kind_of(const std::string& unknown, const certn::shape_report& shape) {
  std::string best;
  for (const auto& seen : shape.fields) {
    if (seen.where.size() > best.size() && unknown.starts_with(seen.where + ".")) {
      best = seen.where;
    }
  }
  return best.empty() ? unknown.substr(0, unknown.rfind('.')) : best;
}

// "  label      text", the label column aligned; later lines of a block leave it blank.
void line(std::string_view label, const std::string& text) {
  std::string padded(label);
  padded.resize(12, ' ');
  std::cout << "  " << padded << printable(text) << "\n";
}

void print_shape(const response_check& r) {
  const auto views = field_views(r.shape);
  std::vector<std::pair<std::string, std::vector<std::string>>> matched;  // kind, fields
  for (const auto& v : views) {
    if (v.names.empty()) {
      continue;
    }
    const bool same = v.names.size() == 1 && v.names.front() == v.field;
    std::string shown = same ? v.field : v.field + "=" + joined(v.names, "|");
    if (matched.empty() || matched.back().first != v.where) {
      matched.push_back({v.where, {}});
    }
    matched.back().second.push_back(std::move(shown));
  }
  const char* label = "matched";
  for (const auto& [kind, fields] : matched) {
    line(std::exchange(label, ""), kind + ": " + joined(fields, ", "));
  }
  label = "missing";
  for (const auto& v : views) {
    if (v.missing) {
      std::string name = v.where + "." + v.field;
      name.resize(std::max<std::size_t>(name.size() + 2, 40), ' ');
      line(std::exchange(label, ""),
           name + certn::to_string(v.consequence) + (v.names.empty() ? "" : " (in some entries)"));
    }
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> unknown;  // kind, keys
  for (const auto& key : r.shape.unknown) {
    const std::string kind = kind_of(key, r.shape);
    auto it = std::find_if(unknown.begin(), unknown.end(),
                           [&](const auto& group) { return group.first == kind; });
    if (it == unknown.end()) {
      it = unknown.insert(unknown.end(), {kind, {}});
    }
    it->second.push_back(key.size() > kind.size() ? key.substr(kind.size() + 1) : key);
  }
  label = "unknown";
  for (const auto& [kind, keys] : unknown) {
    line(std::exchange(label, ""), kind + ": " + joined(keys, ", ") + " (ignored)");
  }
}

void print_response(const response_check& r) {
  std::cout << "\n" << printable(r.endpoint) << "\n";
  if (r.status == 0) {
    line("answer", "none");
  } else {
    line("answer", "HTTP " + std::to_string(r.status) +
                       (r.answered ? ", " + counted(r.bytes, "byte") : std::string()));
  }
  if (!r.answered) {
    line("verdict", "call failed: " + r.error);
  } else if (r.archivable) {
    line("verdict", "archivable" + (r.summary.empty() ? "" : " (" + r.summary + ")"));
  } else {
    line("verdict", "NOT archivable: " + r.error);
  }
  if (!r.hint.empty()) {
    line("what to do", r.hint);
  }
  print_shape(r);
  const char* label = "skipped";
  for (const auto& entry : r.skipped) {
    line(std::exchange(label, ""), entry);
  }
  label = "downloads";
  for (const auto& [where, allowed] : r.downloads) {
    line(std::exchange(label, ""),
         where + (allowed ? " (allowed by certn.download_hosts)" : " (REFUSED)"));
  }
}

void print_text(const probe_run& run, const std::string& base_url) {
  std::cout << "probe of " << printable(base_url)
            << " (read-only: nothing is ordered, cancelled or archived)\n"
               "matched fields show field=name where Certn used another accepted name\n";
  for (std::size_t i = 0; i < run.responses.size(); ++i) {
    print_response(run.responses[i]);
    if (i == 0 && !run.case_id.empty()) {
      std::cout << "\ncase " << printable(run.case_id) << " (" << printable(run.case_reason)
                << ")\n";
    }
  }
  std::vector<std::string> failed;
  for (const auto& r : run.responses) {
    if (!r.archivable) {
      failed.push_back(r.endpoint);
    }
  }
  std::cout << "\n";
  if (!run.problem.empty()) {
    std::cout << printable(run.problem) << "\n";
  }
  if (run.ok()) {
    std::cout << "ok: every answer (" << run.responses.size() << ") can be archived\n";
  } else {
    std::cout << "NOT ok: " << failed.size() << " of " << run.responses.size()
              << " answers cannot be archived" << (failed.empty() ? "" : ": ")
              << printable(joined(failed, ", ")) << "\n";
  }
}

void write_response(encoding::json_writer& out, const response_check& r) {
  out.begin_object();
  out.key("endpoint").value(r.endpoint);
  out.key("status").number(r.status);
  out.key("bytes").number(static_cast<std::int64_t>(r.bytes));
  out.key("archivable").boolean(r.archivable);
  out.key("error").value_or_null(r.error.empty() ? std::nullopt : std::optional(r.error));
  out.key("hint").value_or_null(r.hint.empty() ? std::nullopt : std::optional(r.hint));
  out.key("summary").value(r.summary);
  const auto views = field_views(r.shape);
  out.key("matched").begin_object();
  for (const auto& v : views) {
    if (!v.names.empty()) {
      out.key(v.where + "." + v.field).value(joined(v.names, "|"));
    }
  }
  out.end_object();
  out.key("missing").begin_array();
  for (const auto& v : views) {
    if (v.missing) {
      out.begin_object();
      out.key("field").value(v.where + "." + v.field);
      out.key("consequence").value(certn::to_string(v.consequence));
      out.key("in_some_entries").boolean(!v.names.empty());
      out.end_object();
    }
  }
  out.end_array();
  out.key("unknown").begin_array();
  for (const auto& key : r.shape.unknown) {
    out.value(key);
  }
  out.end_array();
  out.key("skipped").begin_array();
  for (const auto& entry : r.skipped) {
    out.value(entry);
  }
  out.end_array();
  if (r.files) {
    out.key("files").number(static_cast<std::int64_t>(*r.files));
  }
  out.key("downloads").begin_array();
  for (const auto& [where, allowed] : r.downloads) {
    out.begin_object().key("origin").value(where).key("allowed").boolean(allowed).end_object();
  }
  out.end_array();
  out.end_object();
}

void print_json(const probe_run& run, const std::string& base_url) {
  encoding::json_writer out;
  out.begin_object();
  out.key("base_url").value(base_url);
  out.key("case").value_or_null(run.case_id.empty() ? std::nullopt : std::optional(run.case_id));
  out.key("case_reason").value(run.case_reason);
  out.key("ok").boolean(run.ok());
  out.key("problem").value_or_null(run.problem.empty() ? std::nullopt : std::optional(run.problem));
  out.key("responses").begin_array();
  for (const auto& r : run.responses) {
    write_response(out, r);
  }
  out.end_array();
  out.end_object();
  std::cout << out.str() << "\n";
}

}  // namespace

config::environment probe_environment(config::environment env) {
  // Secrets of sections probe never uses: a value here wins over the config file's <key>_file,
  // so those files (often readable only inside the service) are never read.
  static constexpr std::string_view unused_secrets[] = {
      "CERTN_ARCHIVER_DATABASE_URL", "CERTN_ARCHIVER_WEBHOOK_SECRETS",
      "CERTN_ARCHIVER_STORAGE_S3_ACCESS_KEY_ID", "CERTN_ARCHIVER_STORAGE_S3_SECRET_ACCESS_KEY"};
  for (const std::string_view name : unused_secrets) {
    env.erase(std::string(name) + "_FILE");
    env[std::string(name)] = "unused-by-probe";
  }
  return env;
}

int probe(const config::config& cfg, const probe_request& request) {
  if (cfg.certn.api_key.empty()) {
    std::cerr << "certn-archiver: configuration error: certn.api_key: required to call the Certn "
                 "API (set certn.api_key, certn.api_key_file or CERTN_ARCHIVER_CERTN_API_KEY)\n";
    return exit_usage;
  }
  for (const auto* id : {&request.case_id, &request.report_file_id}) {
    if (*id && !certn::is_valid_id(**id)) {
      std::cerr << "certn-archiver: probe: '" << printable(id->value().substr(0, 140))
                << "' is not a Certn id (1-128 characters of [A-Za-z0-9._:-])\n";
      return exit_usage;
    }
  }
  asio::io_context io(1);
  certn_clients clients(io, cfg.certn, nullptr);
  std::optional<probe_run> run;
  std::exception_ptr escaped;
  // Stopped when the calls are done: idle pooled connections would keep io.run() going.
  asio::co_spawn(io, probe_calls(clients.api(), cfg.certn, request),
                 [&](std::exception_ptr error, probe_run result) {
                   escaped = error;
                   run = std::move(result);
                   io.stop();
                 });
  io.run();
  if (escaped) {
    std::rethrow_exception(escaped);
  }
  const std::string base_url = without_query(cfg.certn.base_url);
  if (request.json) {
    print_json(*run, base_url);
  } else {
    print_text(*run, base_url);
  }
  return run->ok() ? exit_ok : exit_failure;
}

}  // namespace archiver::service
