// certn-archiver's command line: parses arguments, loads the configuration, and hands over to
// the command. Exit codes: 0 success, 2 usage or configuration error, 1 any other failure.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "config/config.hpp"
#include "ops/logging.hpp"
#include "records/retention.hpp"
#include "service/service.hpp"

int main(int argc, char** argv) {
  using namespace archiver;

  CLI::App app{"certn-archiver: archives Certn background-check results into your own storage",
               "certn-archiver"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("certn-archiver ") + ARCHIVER_VERSION);
  // help2man makes the man page from this help, so the footer is its last section.
  app.footer(
      "Exit status: 0 success; 1 any other failure (database unreachable, schema behind, address "
      "in use, a check that failed); 2 usage or configuration error.\n\n"
      "Configuration: --config FILE, else $CERTN_ARCHIVER_CONFIG, else built-in defaults; every "
      "key can be set as CERTN_ARCHIVER_<SECTION>_<KEY>. The packaged example is "
      "/etc/certn-archiver/certn-archiver.toml. Each command has its own --help.");
  std::string config_file;
  std::string log_format;
  app.add_option(
      "-c,--config", config_file,
      "TOML configuration file (default: $CERTN_ARCHIVER_CONFIG, else built-in defaults)");
  app.add_option("--log-format", log_format,
                 "Log format: text, json or journal (overrides log.format)")
      ->check(CLI::IsMember({"text", "json", "journal"}));

  CLI::App* serve = app.add_subcommand("serve", "Receive Certn webhooks and archive cases");
  CLI::App* migrate = app.add_subcommand("migrate", "Apply missing database migrations");
  CLI::App* version = app.add_subcommand("version", "Print the version");

  // cases <endpoint>: one Cases API call each, JSON on stdout.
  service::cases_request cases_request;
  CLI::App* cases = app.add_subcommand("cases", "Call the Certn Cases API (JSON on stdout)");
  cases->require_subcommand(1);
  CLI::App* list = cases->add_subcommand("list", "List cases (GET /cases/)");
  list->add_option("--status", cases_request.filter.overall_status,
                   "overall_status filter (repeatable)");
  list->add_option("--check-type", cases_request.filter.check_type,
                   "check_type filter (repeatable)");
  list->add_option("--tag", cases_request.filter.tag, "tag filter (repeatable)");
  list->add_option("--since", cases_request.filter.order_timeframe_after,
                   "Ordered on or after this date (order_timeframe_after, ISO 8601)");
  list->add_option("--until", cases_request.filter.order_timeframe_before,
                   "Ordered before this date (order_timeframe_before, ISO 8601)");
  list->add_option("--email", cases_request.filter.email_address, "email_address filter");
  list->add_option("--group", cases_request.filter.group, "group filter");
  list->add_option("--ordered-by", cases_request.filter.ordered_by, "ordered_by filter");
  list->add_option("--page", cases_request.page, "Page number (from 1)")
      ->check(CLI::Range(1, 1'000'000));
  list->add_option("--page-size", cases_request.page_size, "Cases per page (1-100)")
      ->check(CLI::Range(1, 100));
  list->add_flag("--all", cases_request.all_pages, "Every page, the cases as one JSON array");
  bool list_held = false;
  list->add_flag("--held", list_held,
                 "The cases under a legal hold, from the database (no call to Certn)");
  const auto with_id = [&](const char* name, const char* help) {
    CLI::App* command = cases->add_subcommand(name, help);
    command->add_option("id", cases_request.id, "Case id")->required();
    return command;
  };
  with_id("get", "Get a case with its checks (GET /cases/{id}/)");
  with_id("cancel", "Cancel a case (POST /cases/{id}/cancel/)");
  with_id("generate-report", "Request a PDF report (POST /cases/{id}/generate-report/)")
      ->add_option("--language", cases_request.language, "Report language, e.g. en-CA");
  with_id("supplementary-files", "Supplementary files with download URLs");
  with_id("supplementary-information", "Supplementary information of each check");
  CLI::App* report_file = cases->add_subcommand(
      "report-file", "A report file's status and PDF URL (GET /cases/report-files/{id}/)");
  report_file->add_option("id", cases_request.id, "Report file id")->required();
  report_file->add_option("--download", cases_request.download_path,
                          "Save the PDF to this path once the report is COMPLETE");
  CLI::App* order = cases->add_subcommand("order", "Order a case (POST /cases/order/)");
  order->add_option("--json", cases_request.order_json_file, "Request body: a file, or - for stdin")
      ->required();
  CLI::App* order_package =
      cases->add_subcommand("order-package", "Order a package (POST /cases/order-package/)");
  order_package->add_option("--package", cases_request.package.package, "Package id")->required();
  order_package->add_option("--email", cases_request.package.email_address, "Applicant's email")
      ->required();
  order_package->add_flag("--send-invite-email", cases_request.package.send_invite_email,
                          "Have Certn email the applicant an invitation");
  order_package->add_flag("--return-invite-link", cases_request.package.return_invite_link,
                          "Include the invitation link in the answer");

  // probe: what the readers make of this account's answers, before anything is archived
  // (service/probe.cpp). Needs certn.* only.
  service::probe_request probe_request;
  CLI::App* probe = app.add_subcommand(
      "probe", "Read-only check of what the archiver makes of your Certn account's answers");
  probe->add_option("--case", probe_request.case_id,
                    "Case to look at (default: the first closed case listed, else the first)");
  probe->add_option("--report-file", probe_request.report_file_id,
                    "Also read this report file (GET /cases/report-files/{id}/)");
  probe->add_option("--page-size", probe_request.page_size, "Cases to list (1-100, default 5)")
      ->check(CLI::Range(1, 100));
  probe->add_flag("--json", probe_request.json, "One JSON document instead of text");

  // status, jobs <action>, backfill: the operator's view of the queue (service/status.cpp,
  // jobs.cpp, backfill.cpp).
  bool status_json = false;
  CLI::App* status = app.add_subcommand("status", "Counts of events, jobs and artifacts");
  status->add_flag("--json", status_json, "One JSON object instead of a table");

  service::jobs_request jobs_request;
  CLI::App* jobs = app.add_subcommand("jobs", "Inspect and manage the job queue");
  jobs->require_subcommand(1);
  CLI::App* jobs_list = jobs->add_subcommand("list", "Jobs, newest first");
  jobs_list->add_option("--state", jobs_request.state, "Only jobs in this state")
      ->check(CLI::IsMember({"queued", "running", "succeeded", "failed", "dead", "cancelled"}));
  jobs_list->add_option("--kind", jobs_request.kind, "Only jobs of this kind (e.g. sync_case)");
  jobs_list->add_option("--limit", jobs_request.limit, "At most this many (default 50)")
      ->check(CLI::Range(1, 1'000'000));
  jobs_list->add_flag("--json", jobs_request.json, "A JSON array instead of a table");
  const auto with_job_id = [&](const char* name, const char* help) {
    CLI::App* command = jobs->add_subcommand(name, help);
    command->add_option("id", jobs_request.id, "Job id")->check(CLI::PositiveNumber);
    return command;
  };
  CLI::App* jobs_show = with_job_id("show", "Every column of one job");
  jobs_show->get_option("id")->required();
  jobs_show->add_flag("--json", jobs_request.json, "One JSON object");
  CLI::App* jobs_retry = with_job_id("retry", "Queue a dead, failed or cancelled job again, now");
  jobs_retry->add_flag("--all-dead", jobs_request.all_dead, "Every dead job instead of one")
      ->excludes(jobs_retry->get_option("id"));
  jobs_retry->require_option(1);
  with_job_id("cancel", "Cancel a queued, failed or running job")->get_option("id")->required();
  jobs->add_subcommand("prune", "Delete succeeded and cancelled jobs finished long ago")
      ->add_option("--older-than-days", jobs_request.older_than_days,
                   "Finished more than this many days ago")
      ->required()
      ->check(CLI::Range(0, 100'000));

  service::backfill_request backfill_request;
  CLI::App* backfill = app.add_subcommand(
      "backfill", "Enqueue a sync of every case the Cases API lists for a period");
  backfill->add_option("--since", backfill_request.since,
                       "Ordered on or after this date (ISO 8601 date or date-time); required "
                       "unless --pause or --resume");
  backfill->add_option("--until", backfill_request.until,
                       "Ordered before this date (ISO 8601 date or date-time)");
  backfill->add_option("--status", backfill_request.statuses,
                       "Only cases with this overall_status (repeatable)");
  CLI::Option* pause_option = backfill->add_flag(
      "--pause", backfill_request.pause,
      "Pause bulk (backfill) work on every replica until --resume; nothing is listed");
  backfill
      ->add_flag("--resume", backfill_request.resume, "Resume paused bulk (backfill) work")
      ->excludes(pause_option);

  // hold, release, audit: records management (service/records.cpp).
  service::hold_request hold_request;
  CLI::App* hold = app.add_subcommand("hold", "Place a legal hold on a case: it is never purged");
  CLI::App* release = app.add_subcommand("release", "Release a case's legal hold");
  for (CLI::App* command : {hold, release}) {
    command->add_option("--case", hold_request.case_id, "The case id")->required();
    command->add_option("--reason", hold_request.reason, "Why (kept in the audit trail)")
        ->required()
        ->check([](const std::string& text) {
          return text.find_first_not_of(" \t") == std::string::npos ? "the reason is empty"
                                                                    : std::string();
        });
  }
  service::export_request export_request;
  CLI::App* export_command = app.add_subcommand(
      "export", "Write a case as a BagIt bag (a directory, or a .zip), every object re-verified");
  export_command->add_option("--case", export_request.case_id, "The case id")->required();
  export_command->add_option("--out", export_request.out, "FILE.zip, or a new or empty DIR")
      ->required();
  export_command->add_flag("--all-versions", export_request.all_versions,
                           "Every archived version, not only the current artifacts");
  service::purge_request purge_request;
  CLI::App* purge = app.add_subcommand(
      "purge", "Delete the cases whose retention has passed (a dry run unless --execute)");
  purge->add_option("--case", purge_request.case_id,
                    "Only this case, ahead of its retention: an erasure request (needs --reason)");
  purge->add_option("--reason", purge_request.reason, "Why (kept in the audit trail)");
  purge->add_flag("--execute", purge_request.execute, "Delete; without it nothing is deleted");
  purge->add_flag("--approve", purge_request.approve,
                  "Approve another operator's erasure request for --case, and purge it "
                  "(records.purge_approval = \"two-person\")");
  purge
      ->add_flag(
          "--dry-run", [](std::int64_t) {}, "Only say what would be purged (the default)")
      ->excludes(purge->get_option("--execute"));
  purge->add_option("--limit", purge_request.limit, "At most this many cases (default 100)")
      ->check(CLI::Range(1, 1'000'000));
  service::audit_request audit_request;
  CLI::App* audit = app.add_subcommand("audit", "The audit trail: who did what, when and why");
  audit->add_option("--case", audit_request.case_id, "Only the rows of this case");
  audit->add_option("--since", audit_request.since,
                    "Only rows at or after this time (ISO 8601 date or date-time)");
  audit->add_option("--limit", audit_request.limit, "The newest this many rows (default 1000)")
      ->check(CLI::Range(1, 10'000'000));
  audit->add_flag("--json", audit_request.json, "A JSON array instead of lines");
  CLI::App* audit_verify =
      audit->add_subcommand("verify", "Re-compute the audit trail's hash chain");

  std::string verify_case;
  CLI::App* verify = app.add_subcommand(
      "verify", "Re-read stored objects and compare their sha256 and size with the database");
  verify->add_option("--case", verify_case, "Only the objects of this case");
  bool verify_json = false;
  verify->add_flag("--json", verify_json, "One JSON object (counts and each problem) at the end");

  bool lock_probe_json = false;
  CLI::App* lock_probe = app.add_subcommand(
      "lock-probe",
      "Check that the S3 store enforces Object Lock (writes and tries to delete a "
      "small locked object)");
  lock_probe->add_flag("--json", lock_probe_json, "One JSON object instead of lines");

  std::string secrets_from = "/etc/certn-archiver";
  std::string secrets_to;
  CLI::App* copy_secrets = app.add_subcommand(
      "copy-secrets",
      "For the systemd unit: copy the secret files into the service's runtime directory, owned "
      "by its user (at start and on reload)");
  copy_secrets->add_option("--from", secrets_from, "Where the secret files are")
      ->capture_default_str();
  copy_secrets->add_option("--to", secrets_to, "The service's RuntimeDirectory")->required();

  service::doctor_request doctor_request;
  CLI::App* doctor = app.add_subcommand(
      "doctor",
      "Check the installation end to end: config, database, object store, Certn, webhook "
      "(exit 1 when a check fails)");
  doctor->add_option("--public-url", doctor_request.public_url,
                     "The webhook URL Certn posts to: check the challenge and each secret's "
                     "signature through it");
  doctor->add_flag("--json", doctor_request.json, "One JSON object instead of lines");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? service::exit_ok : service::exit_usage;
  }

  if (copy_secrets->parsed()) {  // needs no configuration: it runs before serve's is readable
    return service::copy_secrets(secrets_from, secrets_to);
  }
  if (version->parsed()) {
    std::cout << "certn-archiver " << ARCHIVER_VERSION << "\n";
    return service::exit_ok;
  }

  const config::environment env = config::from_environ();
  std::optional<std::filesystem::path> file;
  if (!config_file.empty()) {
    file = config_file;
  } else if (const auto it = env.find("CERTN_ARCHIVER_CONFIG"); it != env.end()) {
    file = it->second;
  }
  const std::string config_source = file ? file->string() : "built-in defaults and the environment";
  // The whole configuration, checked; again on SIGHUP for serve (the file and the secret files
  // re-read, the environment as it was at start). Throws on any problem.
  const bool for_serve = serve->parsed();
  // probe reads no database, webhook or storage secret (service::probe_environment).
  const config::environment load_env = probe->parsed() ? service::probe_environment(env) : env;
  const std::function<config::config()> load_config = [file, load_env, log_format, for_serve] {
    config::config loaded = config::load(file, load_env);
    if (!log_format.empty()) {
      loaded.log.format = log_format == "json"      ? config::log_format::json
                          : log_format == "journal" ? config::log_format::journal
                                                    : config::log_format::text;
    }
    if (for_serve) {
      config::require_serve_settings(loaded);
    }
    try {
      records::parse_retention(loaded.records.retention);
    } catch (const std::invalid_argument& e) {
      throw config::config_error("records.retention", e.what());
    }
    return loaded;
  };
  config::config cfg;
  try {
    cfg = load_config();
    ops::setup_logging(cfg.log.format, cfg.log.level);
  } catch (const std::exception& e) {
    if (doctor->parsed()) {
      return service::doctor_config_error(e.what(), doctor_request);
    }
    std::fprintf(stderr, "certn-archiver: configuration error: %s\n", e.what());
    return service::exit_usage;
  }

  try {
    if (migrate->parsed()) {
      return service::migrate(cfg);
    }
    if (serve->parsed()) {
      return service::serve(cfg, load_config);
    }
    if (list->parsed() && list_held) {
      return service::list_held(cfg);
    }
    if (hold->parsed() || release->parsed()) {
      hold_request.release = release->parsed();
      return service::hold(cfg, hold_request);
    }
    if (purge->parsed()) {
      return service::purge(cfg, purge_request);
    }
    if (export_command->parsed()) {
      return service::export_case(cfg, export_request);
    }
    if (doctor->parsed()) {
      doctor_request.config_source = config_source;
      return service::run_doctor(cfg, doctor_request);
    }
    if (lock_probe->parsed()) {
      return service::lock_probe(cfg, lock_probe_json);
    }
    if (audit->parsed()) {
      audit_request.verify = audit_verify->parsed();
      return service::audit(cfg, audit_request);
    }
    if (cases->parsed()) {
      cases_request.endpoint = cases->get_subcommands().front()->get_name();
      return service::cases(cfg, cases_request);
    }
    if (probe->parsed()) {
      return service::probe(cfg, probe_request);
    }
    if (status->parsed()) {
      return service::status(cfg, status_json);
    }
    if (jobs->parsed()) {
      jobs_request.action = jobs->get_subcommands().front()->get_name();
      return service::jobs(cfg, jobs_request);
    }
    if (verify->parsed()) {
      return service::verify(cfg, verify_case, verify_json);
    }
    if (backfill->parsed()) {
      return service::backfill(cfg, backfill_request);
    }
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return service::exit_failure;
  }
  return service::exit_usage;
}
