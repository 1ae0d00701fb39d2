// The workflows' construction, registration and the steps every job kind shares: storing bytes
// and downloads as artifacts, keeping Certn's answers, and turning failures into job results. The
// job kinds themselves are in workflows_<kind>.cpp (workflows_detail.hpp lists them).
#include "archive/workflows.hpp"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include "archive/policy.hpp"
#include "archive/repository.hpp"
#include "retry/table.hpp"
#include "archive/workflows_detail.hpp"
#include "encoding/json.hpp"
#include "queue/queue.hpp"
#include "storage/digest.hpp"

namespace archiver::archive {

using queue::job_result;
using workflows_detail::archive_supplementary_kind;
using workflows_detail::case_payload;
using workflows_detail::fetch_report_kind;
using workflows_detail::from_store_failure;
using workflows_detail::job;
using workflows_detail::request_report_kind;
using workflows_detail::write_manifest_kind;

std::string workflows_detail::payload_field(const std::string& payload, const char* name) {
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

std::string workflows_detail::case_payload(const std::string& case_id, const std::string& source,
                                           const std::string& source_event) {
  encoding::json_writer out;
  out.begin_object().key("case_id").value(case_id).key("source").value(source);
  if (!source_event.empty()) {
    out.key("source_event").value(source_event);
  }
  out.end_object();
  return out.str();
}

queue::job_spec workflows_detail::job(const char* kind, const std::string& key, std::string payload,
                                      int max_attempts, ops::priority parent,
                                      std::chrono::seconds delay) {
  return queue::job_spec{kind, key, std::move(payload), max_attempts, delay,
                         follow_up_priority(kind, parent)};
}

job_result workflows_detail::from_store_failure(const storage::store_failure& failure) {
  return retry::store_verdict(failure.retryable, failure.message);
}

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
          {"endpoint"})),
      reconcile_finished(registry.gauge(
          "certn_archiver_reconcile_last_success_timestamp_seconds",
          "Unix time at which a reconcile listing last completed, by any replica as far as this "
          "one knows (read from the database at start-up); 0 before the first.")) {}

workflows::workflows(db::pool& database, certn::api_client& api, storage::object_store& store,
                     settings config, metrics& counters, const ops::clock& time)
    : database_(database),
      api_(api),
      store_(store),
      settings_(std::move(config)),
      layout_(settings_.prefix),
      metrics_(counters),
      time_(time) {}

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
  workers.add(protect_case_kind, bind(&workflows::protect_case));
  workers.add(reconcile_kind, bind(&workflows::reconcile));
}

job_result workflows::from_failure(const certn::call_failure& failure,
                                   const std::string& kept_at) {
  // The verdict is the retry table's; what the daemon does besides is here: /readyz learns whether
  // Certn refuses the key, and the log says so loudly.
  // Only an answer from Certn tells whether the key works: a local throttle or a network error
  // (no status) says nothing, nor does a 429 (which may come before authentication).
  if (failure.kind == certn::failure_class::authentication) {
    auth_failing_ = true;
  } else if (failure.http_status != 0 && failure.kind != certn::failure_class::rate_limited) {
    auth_failing_ = false;
  }
  if (failure.kind == certn::failure_class::authentication) {
    spdlog::error("Certn refused the API key: {} (check certn.api_key)", failure.message);
  }
  return retry::job_verdict(failure.kind, failure.message, failure.retry_after, kept_at);
}

job_result workflows::from_failure(const certn::call_failure& failure) {
  return from_failure(failure, "");
}

awaitable<bool> workflows::is_archived(const std::string& key) {
  const bool found = co_await database_.query<bool>([&](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    return repository::is_archived(tx, key);
  });
  co_return found;
}

awaitable<storage::object_protection> workflows::protection_of(const std::string& case_id) {
  const storage::object_protection protection =
      co_await database_.query<storage::object_protection>([&](pqxx::connection& conn) {
        pqxx::read_transaction tx(conn);
        return repository::protection_of(tx, case_id);
      });
  co_return protection;
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
  const storage::object_protection protection = co_await protection_of(case_id);
  const storage::put_result put =
      co_await store_.put_bytes(key, std::move(bytes), "application/json", protection);
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
  const storage::object_protection protection = co_await protection_of(case_id);
  const storage::put_result put = co_await store_.put(key, *staged, content_type, protection);
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

}  // namespace archiver::archive
