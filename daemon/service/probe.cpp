// `certn-archiver probe`: a few read-only calls against a Certn account, each answer read again
// with the model's readers and a shape_report, so that an operator sees, before archiving
// anything, which accepted name Certn used for each field, what is missing and what the pipeline
// would make of it. It never calls generate-report, cancel or order, and never opens the
// database or the archive.
// This file holds the command and the order of its calls; the answers are read again in
// probe_cases.cpp and probe_files.cpp, and shown by probe_output.cpp.
#include <algorithm>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "service/certn_clients.hpp"
#include "service/cli_database.hpp"
#include "service/probe_detail.hpp"
#include "service/service.hpp"

namespace archiver::service {

namespace probe_detail {

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

}  // namespace probe_detail

using namespace probe_detail;

namespace {

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
  // Only to charge the calls to the shared budget: without the database they still go, on this
  // process's own limit.
  db::pool database(cfg.database.url, 1, static_cast<int>(cfg.database.connect_timeout.count()),
                    admin_limits(cfg));
  certn_clients clients(io, cfg.certn, nullptr, &database);
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
