// sync_case and check_changed: a case fetched, stored as received and compared with what we held;
// an event about a check turned into its case's sync (or a wait, or a targeted reconcile).
#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include "archive/policy.hpp"
#include "archive/repository.hpp"
#include "archive/workflows_detail.hpp"
#include "records/purge.hpp"
#include "storage/digest.hpp"

namespace archiver::archive {

using queue::job_result;
using workflows_detail::archive_supplementary_kind;
using workflows_detail::case_payload;
using workflows_detail::job;
using workflows_detail::payload_field;
using workflows_detail::request_report_kind;

namespace {

// Where a sync came from, for case_status_history.source.
std::string sync_source(const std::string& payload) {
  std::string source = payload_field(payload, "source_event");
  if (source.empty()) {
    source = payload_field(payload, "source");
  }
  return source.empty() ? "job" : source;
}

}  // namespace

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
    // protect_case's payload names no case_id: see service::hold.
    if (archivable && records::set_retention(tx, case_id, settings_.retention) &&
        settings_.protect_objects) {
      queue::enqueue(
          tx, job(protect_case_kind, case_id, "{}", settings_.max_attempts, job_run.priority));
    }
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

}  // namespace archiver::archive
