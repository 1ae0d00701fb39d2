// request_report, report_ready and fetch_report: a report asked of Certn, brought forward by its
// event, and its PDF archived once Certn says it is ready.
#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include "archive/policy.hpp"
#include "archive/repository.hpp"
#include "archive/workflows_detail.hpp"

namespace archiver::archive {

using queue::job_result;
using workflows_detail::case_payload;
using workflows_detail::fetch_report_kind;
using workflows_detail::job;
using workflows_detail::payload_field;

awaitable<job_result> workflows::request_report(const queue::claimed_job& job_run) {
  const std::string& case_id = job_run.key;
  certn::api_client api = api_.for_priority(job_run.priority);
  const certn::call_result<std::string> got =
      co_await api.generate_report(case_id, settings_.policy.report_language);
  if (got.failure) {
    std::string kept_at;
    if (got.failure->unreadable_answer) {
      metrics_.unusable_answers.inc({"generate_report"});
      if (!got.body.empty()) {
        const kept_answer kept =
            co_await keep_answer(case_id, "certn_response", "generate-report", case_id, got.body);
        if (kept.failure) {
          co_return *kept.failure;
        }
        kept_at = kept.key;
      }
    }
    co_return from_failure(*got.failure, kept_at);
  }
  auth_failing_ = false;
  const std::string report_id = *got.value;
  co_await database_.run([&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    repository::record_report_file(tx, report_id, case_id);
    // Polling in case CASE_REPORT_READY never arrives; the event brings this job forward.
    queue::enqueue(tx, job(fetch_report_kind, report_id, case_payload(case_id, "request_report"),
                           settings_.max_attempts, job_run.priority, settings_.report_poll_delay));
    tx.commit();
  });
  spdlog::info("case {}: report {} requested", case_id, report_id);
  co_return job_result::done();
}

awaitable<job_result> workflows::report_ready(const queue::claimed_job& job_run) {
  const std::string& object_id = job_run.key;
  const std::string source_event = payload_field(job_run.payload, "source_event");
  co_await database_.run([&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    // certn-api.md: the event may name the report file or the case.
    const auto reports = repository::report_files_named_by(tx, object_id);
    for (const auto& [report_id, case_id] : reports) {
      queue::enqueue(tx, job(fetch_report_kind, report_id, case_payload(case_id, "report_ready"),
                             settings_.max_attempts, job_run.priority));
    }
    if (reports.empty()) {
      // A report we did not request (or a case we have not seen): look at the case afresh.
      queue::enqueue(tx, job(sync_case_kind, object_id,
                             case_payload(object_id, "report_ready", source_event),
                             settings_.max_attempts, job_run.priority));
    }
    repository::mark_events_processed(tx, object_id);
    tx.commit();
  });
  co_return job_result::done();
}

awaitable<job_result> workflows::fetch_report(const queue::claimed_job& job_run) {
  const std::string& report_id = job_run.key;
  const std::string case_id = co_await database_.query<std::string>([&](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    return repository::case_of_report_file(tx, report_id).value_or("");
  });
  if (case_id.empty()) {
    co_return job_result::permanent("report file " + report_id + " was never requested here");
  }
  const std::string endpoint = "GET /cases/report-files/" + report_id + "/";
  const std::string key = layout_.report(case_id, report_id);
  certn::api_client api = api_.for_priority(job_run.priority);
  // GCC 12 mishandles a string temporary made by ?: inside co_await (freed as if on the heap):
  // callers pass named strings.
  const auto set_status = [&](const std::string& status) {
    return database_.run([&](pqxx::connection& conn) {
      pqxx::work tx(conn);
      repository::set_report_status(tx, report_id, status);
      tx.commit();
    });
  };
  for (int listing = 1; listing <= 2; ++listing) {
    const certn::call_result<certn::report_file> got = co_await api.get_report_file(report_id);
    std::string kept_at;
    if (!got.body.empty()) {
      const kept_answer kept =
          co_await keep_answer(case_id, "report_file_metadata", "report-file", report_id, got.body);
      if (kept.failure) {
        co_return *kept.failure;
      }
      kept_at = kept.key;
    }
    if (got.failure) {
      if (got.failure->unreadable_answer) {
        metrics_.unusable_answers.inc({"report_file"});
      }
      co_return from_failure(*got.failure, got.failure->unreadable_answer ? kept_at : "");
    }
    auth_failing_ = false;
    const certn::report_file& report = *got.value;
    const std::string status = report.status.empty() ? "(no status)" : report.status;
    switch (decide_report(report)) {
      case report_step::failed:
        co_await set_status(report.status);
        co_return job_result::permanent("Certn reports report file " + report_id + " of case " +
                                        case_id + " as " + report.status);
      case report_step::wait: {
        const std::string waiting_status = report.status.empty() ? "IN_PROGRESS" : report.status;
        co_await set_status(waiting_status);
        co_return job_result::retry(
            "report file " + report_id + " is " + status + ", not COMPLETE yet",
            settings_.report_poll_delay);
      }
      case report_step::no_url:
        // Retried (a URL may follow), then dead with this reason.
        metrics_.unusable_answers.inc({"report_file"});
        co_return job_result::retry(endpoint + ": " + status +
                                    " without a URL (none of pdf_url, url, report_url, file_url, "
                                    "download_url, presigned_url); answer kept at " +
                                    kept_at);
      case report_step::download:
        break;
    }
    const bool archived = co_await is_archived(key);
    if (!archived) {
      const download_outcome outcome = co_await archive_download(
          case_id, "report", report_id, key, *report.url, "application/pdf", std::nullopt);
      if (outcome.failure) {
        co_return *outcome.failure;
      }
      if (outcome.expired) {
        spdlog::info("report {}: download URL expired; asking Certn for a fresh one", report_id);
        continue;
      }
    }
    const std::string complete = "COMPLETE";
    co_await set_status(complete);
    co_return job_result::done();
  }
  co_return job_result::retry("report file " + report_id +
                              ": the download URL had expired again after a fresh listing");
}

}  // namespace archiver::archive
