#include "archive/workflows.hpp"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <map>
#include <pqxx/pqxx>
#include <set>

#include "archive/policy.hpp"
#include "archive/repository.hpp"
#include "encoding/json.hpp"
#include "queue/queue.hpp"
#include "storage/digest.hpp"

namespace archiver::archive {

namespace {

using queue::job_result;

constexpr const char* request_report_kind = "request_report";
constexpr const char* fetch_report_kind = "fetch_report";
constexpr const char* archive_supplementary_kind = "archive_supplementary";
constexpr const char* write_manifest_kind = "write_manifest";

// A string field of a job's JSON payload, "" when absent or not a string.
std::string payload_field(const std::string& payload, const char* name) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(payload).get(root) != simdjson::SUCCESS) {
    return {};
  }
  std::string_view value;
  if (root[name].get(value) != simdjson::SUCCESS) {
    return {};
  }
  return std::string(value);
}

// Where a sync came from, for case_status_history.source.
std::string sync_source(const std::string& payload) {
  std::string source = payload_field(payload, "source_event");
  if (source.empty()) {
    source = payload_field(payload, "source");
  }
  return source.empty() ? "job" : source;
}

// `source_event`: the webhook event that asked for the job, passed on to the jobs it enqueues so
// that sync_case knows it was asked by an event (policy sync_needs_fetch).
std::string case_payload(const std::string& case_id, const std::string& source,
                         const std::string& source_event = "") {
  encoding::json_writer out;
  out.begin_object().key("case_id").value(case_id).key("source").value(source);
  if (!source_event.empty()) {
    out.key("source_event").value(source_event);
  }
  out.end_object();
  return out.str();
}

// A job enqueued by a run of class `parent` (policy follow_up_priority gives its class).
queue::job_spec job(const char* kind, const std::string& key, std::string payload, int max_attempts,
                    ops::priority parent, std::chrono::seconds delay = std::chrono::seconds(0)) {
  return queue::job_spec{kind, key, std::move(payload), max_attempts, delay,
                         follow_up_priority(kind, parent)};
}

std::string utc_date_days_ago(int days) {
  const std::time_t then = std::time(nullptr) - static_cast<std::time_t>(days) * 86'400;
  std::tm parts{};
  gmtime_r(&then, &parts);
  char text[16];
  std::strftime(text, sizeof text, "%Y-%m-%d", &parts);
  return text;
}

job_result from_store_failure(const storage::store_failure& failure) {
  return failure.retryable ? job_result::retry(failure.message)
                           : job_result::permanent(failure.message);
}

}  // namespace

struct workflows::download_outcome {
  bool expired = false;               // the presigned URL expired: list again
  std::optional<job_result> failure;  // anything else that ends this run
};

metrics::metrics(ops::registry& registry)
    : artifacts(registry.counter("certn_archiver_artifacts_total",
                                 "Artifacts written to the object store, by kind.", {"kind"})),
      downloaded_bytes(registry.counter("certn_archiver_downloaded_bytes_total",
                                        "Bytes downloaded from Certn, by artifact kind.",
                                        {"kind"})),
      stored_bytes(registry.counter("certn_archiver_stored_bytes_total",
                                    "Bytes written to the object store, by artifact kind.",
                                    {"kind"})),
      skipped_entries(registry.counter(
          "certn_archiver_certn_skipped_entries_total",
          "Entries of Certn answers (cases of a list, files of a listing) left out because "
          "they lack a field we need.",
          {"endpoint"})),
      unusable_answers(registry.counter(
          "certn_archiver_certn_unusable_answers_total",
          "Successful Certn answers the reader could not use (kept in the archive as received).",
          {"endpoint"})) {}

workflows::workflows(db::pool& database, certn::api_client& api, storage::object_store& store,
                     settings config, metrics& counters)
    : database_(database),
      api_(api),
      store_(store),
      settings_(std::move(config)),
      layout_(settings_.prefix),
      metrics_(counters) {}

void workflows::register_with(queue::workers& workers) {
  const auto bind = [this](auto member) {
    return [this, member](const queue::claimed_job& j) { return (this->*member)(j); };
  };
  workers.add(sync_case_kind, bind(&workflows::sync_case));
  workers.add(check_changed_kind, bind(&workflows::check_changed));
  workers.add(request_report_kind, bind(&workflows::request_report));
  workers.add(report_ready_kind, bind(&workflows::report_ready));
  workers.add(fetch_report_kind, bind(&workflows::fetch_report));
  workers.add(archive_supplementary_kind, bind(&workflows::archive_supplementary));
  workers.add(write_manifest_kind, bind(&workflows::write_manifest));
  workers.add(reconcile_kind, bind(&workflows::reconcile));
}

job_result workflows::from_failure(const certn::call_failure& failure,
                                   const std::string& kept_at) {
  job_result result = from_failure(failure);
  if (!kept_at.empty()) {
    result.error += " (answer kept at " + kept_at + ")";
  }
  return result;
}

job_result workflows::from_failure(const certn::call_failure& failure) {
  using certn::failure_class;
  auth_failing_ = failure.kind == failure_class::authentication;
  switch (failure.kind) {
    case failure_class::forbidden:
      // Retrying does not grant a permission: an operator has to.
      return job_result::permanent(failure.message +
                                   " (the API key lacks permission for this endpoint)");
    case failure_class::rate_limited:
      return job_result::throttled(failure.message, failure.retry_after);
    case failure_class::retryable:
    case failure_class::expired_url:
      return job_result::retry(failure.message, failure.retry_after);
    case failure_class::authentication:
      // An operator can replace the key file; until then the job keeps its place.
      spdlog::error("Certn refused the API key: {} (check certn.api_key)", failure.message);
      return job_result::retry(failure.message + " (check certn.api_key)", failure.retry_after);
    case failure_class::permanent:
      break;
  }
  return job_result::permanent(failure.message);
}

awaitable<bool> workflows::is_archived(const std::string& key) {
  const bool found = co_await database_.query<bool>([&](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    return repository::is_archived(tx, key);
  });
  co_return found;
}

awaitable<std::optional<job_result>> workflows::archive_bytes(const std::string& case_id,
                                                              const std::string& kind,
                                                              const std::string& source_id,
                                                              const std::string& key,
                                                              std::string bytes) {
  const bool archived = co_await is_archived(key);
  if (archived) {
    co_return std::nullopt;
  }
  const storage::object_digest digest = storage::digest_of(bytes);
  const std::uint64_t size = bytes.size();
  const storage::put_result put =
      co_await store_.put_bytes(key, std::move(bytes), "application/json");
  if (put.failure) {
    co_return from_store_failure(*put.failure);
  }
  co_await database_.run([&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    repository::record_artifact(tx, case_id, kind, source_id, key, digest, "application/json");
    queue::enqueue(
        tx, job(write_manifest_kind, case_id, case_payload(case_id, kind), settings_.max_attempts,
                ops::priority::archive, settings_.manifest_wait));
    tx.commit();
  });
  metrics_.artifacts.inc({kind});
  if (!put.already_present) {
    metrics_.stored_bytes.inc({kind}, static_cast<double>(size));
  }
  co_return std::nullopt;
}

awaitable<workflows::download_outcome> workflows::archive_download(
    const std::string& case_id, const std::string& kind, const std::string& source_id,
    const std::string& key, const std::string& url, const std::string& content_type,
    std::optional<std::int64_t> expected_size) {
  std::unique_ptr<storage::staged_file> staged = store_.stage(key, settings_.max_object_bytes);
  const certn::call_result<std::uint64_t> got = co_await api_.download(url, *staged);
  if (got.failure) {
    if (got.failure->kind == certn::failure_class::expired_url) {
      co_return download_outcome{true, std::nullopt};
    }
    co_return download_outcome{false, from_failure(*got.failure)};
  }
  metrics_.downloaded_bytes.inc({kind}, static_cast<double>(*got.value));
  if (expected_size && *expected_size >= 0 &&
      static_cast<std::uint64_t>(*expected_size) != staged->size()) {
    co_return download_outcome{
        false, job_result::retry(key + ": Certn announced " + std::to_string(*expected_size) +
                                 " bytes, the download gave " + std::to_string(staged->size()))};
  }
  const storage::put_result put = co_await store_.put(key, *staged, content_type);
  if (put.failure) {
    co_return download_outcome{false, from_store_failure(*put.failure)};
  }
  const storage::object_digest digest = staged->digest();
  co_await database_.run([&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    repository::record_artifact(tx, case_id, kind, source_id, key, digest, content_type);
    queue::enqueue(
        tx, job(write_manifest_kind, case_id, case_payload(case_id, kind), settings_.max_attempts,
                ops::priority::archive, settings_.manifest_wait));
    tx.commit();
  });
  metrics_.artifacts.inc({kind});
  if (!put.already_present) {
    metrics_.stored_bytes.inc({kind}, static_cast<double>(digest.size));
  }
  co_return download_outcome{};
}

awaitable<workflows::kept_answer> workflows::keep_answer(const std::string& case_id,
                                                         const std::string& kind,
                                                         const std::string& endpoint,
                                                         const std::string& source_id,
                                                         const std::string& body) {
  kept_answer kept;
  kept.key = layout_.certn_response(case_id, endpoint, storage::sha256_hex(body));
  kept.failure = co_await archive_bytes(case_id, kind, source_id, kept.key, body);
  co_return kept;
}

awaitable<job_result> workflows::sync_case(const queue::claimed_job& job_run) {
  const std::string& case_id = job_run.key;
  const repository::fetch_fence fence =
      co_await database_.query<repository::fetch_fence>([&](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        return repository::fence_of(tx, case_id);
      });
  const bool event_driven = !payload_field(job_run.payload, "source_event").empty();
  if (!sync_needs_fetch({event_driven, fence.fetched_before, fence.event_since_fetch})) {
    co_await database_.run([&](pqxx::connection& conn) {
      pqxx::work tx(conn);
      repository::mark_case_events_processed(tx, case_id);
      tx.commit();
    });
    spdlog::debug("case {}: its events predate the last GET of it; no call needed", case_id);
    co_return job_result::done();
  }
  certn::api_client api = api_.for_priority(job_run.priority);
  const certn::call_result<certn::case_record> got = co_await api.get_case(case_id);
  // Raw first: the snapshot exactly as received, once per distinct content, whether or not we
  // can read it.
  std::string snapshot_key;
  if (!got.body.empty()) {
    snapshot_key = layout_.case_snapshot(case_id, storage::sha256_hex(got.body));
    const std::optional<job_result> stored =
        co_await archive_bytes(case_id, "case_snapshot", case_id, snapshot_key, got.body);
    if (stored) {
      co_return *stored;
    }
  }
  if (got.failure) {
    if (got.failure->unreadable_answer) {
      metrics_.unusable_answers.inc({"get_case"});
    }
    co_return from_failure(*got.failure, got.failure->unreadable_answer ? snapshot_key : "");
  }
  auth_failing_ = false;
  const certn::case_record& record = *got.value;
  if (record.id != case_id) {
    co_return job_result::permanent("GET /cases/" + case_id + "/ answered case \"" + record.id +
                                    "\" (answer kept at " + snapshot_key + ")");
  }

  const std::string source = sync_source(job_run.payload);
  const bool archivable = is_archive_status(record.overall_status, settings_.policy.on_statuses);
  const bool archive_now = co_await database_.query<bool>([&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    case_facts facts = repository::lock_case(tx, case_id, got.body);
    facts.new_status = record.overall_status;
    facts.archivable = archivable;
    const case_decision decision = decide_case(facts);
    repository::save_case(tx, case_id, record, got.body, archivable, fence.now);
    repository::save_case_checks(tx, case_id, record.checks);
    if (decision.record_status) {
      repository::record_status_change(tx, case_id, record.overall_status, source);
    }
    if (decision.archive) {
      if (settings_.policy.generate_report) {
        queue::enqueue(tx, job(request_report_kind, case_id, case_payload(case_id, source),
                               settings_.max_attempts, job_run.priority));
      }
      queue::enqueue(tx, job(archive_supplementary_kind, case_id, case_payload(case_id, source),
                             settings_.max_attempts, job_run.priority));
    }
    repository::mark_case_events_processed(tx, case_id);
    tx.commit();
    return decision.archive;
  });
  if (archive_now) {
    spdlog::info("case {} is {}: archiving", case_id, record.overall_status);
  }
  co_return job_result::done();
}

awaitable<job_result> workflows::check_changed(const queue::claimed_job& job_run) {
  const std::string& check_id = job_run.key;
  const std::string source_event = payload_field(job_run.payload, "source_event");
  const check_step step = co_await database_.query<check_step>([&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    const std::optional<std::string> owner = repository::case_of_check(tx, check_id);
    const check_step decided = decide_check(
        owner.has_value(), repository::event_age(tx, source_event), settings_.unknown_check_wait);
    switch (decided) {
      case check_step::sync_owner:
        queue::enqueue(tx, job(sync_case_kind, *owner,
                               case_payload(*owner, "check " + check_id, source_event),
                               settings_.max_attempts, job_run.priority));
        break;
      case check_step::wait_for_case:
        return decided;  // nothing to commit
      case check_step::reconcile:
        // A check of a case we have not seen yet: the listing of recent cases shows it.
        queue::enqueue(tx,
                       job(reconcile_kind, targeted_reconcile_key, "{}", settings_.max_attempts,
                           job_run.priority));
        break;
    }
    repository::mark_events_processed(tx, check_id);
    tx.commit();
    return decided;
  });
  if (step == check_step::wait_for_case) {
    co_return job_result::throttled("check " + check_id +
                                        " belongs to no case held here yet; waiting for its "
                                        "case's event before listing recent cases",
                                    std::chrono::seconds(2));
  }
  if (step == check_step::reconcile) {
    spdlog::info("check {} belongs to no case held here: reconciling recent cases", check_id);
  }
  co_return job_result::done();
}

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

awaitable<job_result> workflows::archive_supplementary(const queue::claimed_job& job_run) {
  const std::string& case_id = job_run.key;
  // What could not be archived this run; the job ends with the first of these once everything
  // else is done, so one unusable answer never costs the rest.
  std::optional<job_result> deferred;
  const auto defer = [&deferred](job_result result) {
    if (!deferred) {
      deferred = std::move(result);
    }
  };

  certn::api_client api = api_.for_priority(job_run.priority);
  const certn::call_result<certn::supplementary_information> info =
      co_await api.get_supplementary_information(case_id);
  if (!info.body.empty()) {
    // As received, whether or not it reads: nothing in it is needed for what follows.
    const std::optional<job_result> info_stored = co_await archive_bytes(
        case_id, "supplementary_information", case_id,
        layout_.supplementary_information(case_id, storage::sha256_hex(info.body)), info.body);
    if (info_stored) {
      co_return *info_stored;
    }
  }
  if (info.failure && info.failure->unreadable_answer) {
    metrics_.unusable_answers.inc({"supplementary_information"});
    spdlog::warn("case {}: supplementary information archived as received, but unreadable: {}",
                 case_id, info.failure->message);
  } else if (info.failure) {
    defer(from_failure(*info.failure));
  } else {
    auth_failing_ = false;
  }

  for (int listing = 1; listing <= 3; ++listing) {
    const certn::call_result<certn::supplementary_files> files =
        co_await api.get_supplementary_files(case_id);
    std::string kept_at;
    if (!files.body.empty()) {
      const kept_answer kept = co_await keep_answer(case_id, "supplementary_files_listing",
                                                    "supplementary-files", case_id, files.body);
      if (kept.failure) {
        co_return *kept.failure;
      }
      kept_at = kept.key;
    }
    if (files.failure) {
      if (files.failure->unreadable_answer) {
        metrics_.unusable_answers.inc({"supplementary_files"});
      }
      defer(from_failure(*files.failure, files.failure->unreadable_answer ? kept_at : ""));
      break;
    }
    auth_failing_ = false;
    bool expired = false;
    for (const certn::supplementary_check& check : files.value->checks) {
      for (const certn::supplementary_file& file : check.files) {
        const std::string key = layout_.supplementary_file(case_id, check.id, file.id, file.name);
        const bool archived = co_await is_archived(key);
        if (archived) {
          continue;
        }
        const std::string content_type =
            file.content_type.empty() ? "application/octet-stream" : file.content_type;
        const download_outcome outcome = co_await archive_download(
            case_id, "supplementary_file", file.id, key, file.url, content_type, file.size);
        if (outcome.failure) {
          co_return *outcome.failure;
        }
        expired = expired || outcome.expired;
      }
    }
    if (!files.value->unusable.empty()) {
      metrics_.skipped_entries.inc({"supplementary_files"},
                                   static_cast<double>(files.value->unusable.size()));
      std::string reason = "GET /cases/" + case_id + "/supplementary-files/: " +
                           std::to_string(files.value->unusable.size()) +
                           " file entr(y/ies) cannot be archived: " + files.value->unusable.front();
      if (files.value->unusable.size() > 1) {
        reason += " (+" + std::to_string(files.value->unusable.size() - 1) + " more)";
      }
      spdlog::warn("case {}: {}", case_id, reason);
      defer(job_result::permanent(reason + "; answer kept at " + kept_at));
    }
    if (!expired) {
      break;
    }
    spdlog::info("case {}: some download URLs expired; listing the files again", case_id);
    if (listing == 3) {
      defer(job_result::retry("case " + case_id +
                              ": download URLs kept expiring after fresh listings"));
    }
  }
  co_return deferred.value_or(job_result::done());
}

awaitable<job_result> workflows::write_manifest(const queue::claimed_job& job_run) {
  const std::string& case_id = job_run.key;
  const std::string key = layout_.manifest(case_id);
  struct manifest_facts {
    repository::open_jobs other_jobs;
    std::optional<std::string> recorded_sha256;
    std::vector<manifest_entry> entries;
  };
  const manifest_facts facts =
      co_await database_.query<manifest_facts>([&](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        return manifest_facts{repository::open_jobs_of_case(tx, case_id, write_manifest_kind),
                              repository::recorded_sha256(tx, key),
                              repository::manifest_entries(tx, case_id)};
      });
  std::string body = manifest_json(case_id, facts.entries);
  const storage::object_digest digest = storage::digest_of(body);
  switch (decide_manifest(facts.other_jobs.count, facts.recorded_sha256 == digest.sha256_hex)) {
    case manifest_step::wait: {
      // Not an attempt: the case's other jobs end (done or dead) within their own attempts. No
      // look before the first of them runs (a report polled every minute, a backfill waiting
      // for the rate limit), so waiting manifests do not crowd the queue.
      const std::chrono::seconds wait =
          std::max(settings_.manifest_wait, facts.other_jobs.first_due_in);
      co_return job_result::throttled("waiting for " + std::to_string(facts.other_jobs.count) +
                                          " other job(s) of the case before writing its manifest",
                                      wait);
    }
    case manifest_step::unchanged:
      co_return job_result::done();
    case manifest_step::write:
      break;
  }
  const storage::put_result put =
      co_await store_.put_bytes(key, std::move(body), "application/json");
  if (put.failure) {
    co_return from_store_failure(*put.failure);
  }
  co_await database_.run([&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    repository::record_artifact(tx, case_id, "manifest", case_id, key, digest, "application/json");
    tx.commit();
  });
  metrics_.artifacts.inc({"manifest"});
  co_return job_result::done();
}

awaitable<job_result> workflows::reconcile(const queue::claimed_job& job_run) {
  // The periodic chain books its next run before anything can fail: whatever becomes of this run
  // (a crash, a 500, an unreadable answer), reconciliation goes on. The pending-job index keeps
  // it one chain, however many replicas restart.
  if (job_run.key == reconcile_key && settings_.reconcile_interval.count() > 0) {
    co_await database_.run([&](pqxx::connection& conn) {
      pqxx::work tx(conn);
      queue::enqueue(tx, job(reconcile_kind, reconcile_key, "{}", settings_.max_attempts,
                             ops::priority::sync, settings_.reconcile_interval));
      tx.commit();
    });
  }
  // What we hold: every case's status and Certn's "modified", and the cases still open here.
  std::map<std::string, held_case> known =
      co_await database_.query<std::map<std::string, held_case>>([](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        return repository::held_cases(tx);
      });

  certn::case_filter recent;
  recent.order_timeframe_after = utc_date_days_ago(settings_.reconcile_lookback_days);
  certn::api_client api = api_.for_priority(job_run.priority);
  certn::case_pages pages(api, recent, 100);
  std::vector<std::string> stale;
  std::set<std::string> listed;
  std::size_t skipped = 0;
  while (!pages.done()) {
    const certn::call_result<certn::case_page> page = co_await pages.next();
    if (page.failure) {
      if (page.failure->unreadable_answer) {
        metrics_.unusable_answers.inc({"list_cases"});
      }
      co_return from_failure(*page.failure);
    }
    auth_failing_ = false;
    for (const std::string& why : page.value->skipped) {
      spdlog::warn("reconcile: a listed case was skipped: {}", why);
    }
    skipped += page.value->skipped.size();
    metrics_.skipped_entries.inc({"list_cases"}, static_cast<double>(page.value->skipped.size()));
    for (const certn::case_record& c : page.value->results) {
      listed.insert(c.id);
      const auto found = known.find(c.id);
      if (listed_case_is_stale(c, found == known.end() ? nullptr : &found->second)) {
        stale.push_back(c.id);
      }
    }
  }
  for (const auto& [id, held] : known) {
    if (!listed.count(id) && unlisted_open_case_is_due(held, settings_.reconcile_recheck_open)) {
      stale.push_back(id);  // ordered before the window, still open here: ask again
    }
  }
  co_await database_.run([&](pqxx::connection& conn) {
    pqxx::work tx(conn);
    for (const std::string& id : stale) {
      queue::enqueue(
          tx, job(sync_case_kind, id, case_payload(id, "reconcile"), settings_.max_attempts,
                  job_run.priority));
    }
    tx.commit();
  });
  spdlog::info("reconcile: {} case(s) listed, {} skipped, {} to sync ({})", listed.size(), skipped,
               stale.size(), job_run.key);
  co_return job_result::done();
}

}  // namespace archiver::archive
