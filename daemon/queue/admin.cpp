#include "queue/admin.hpp"

#include <pqxx/pqxx>

#include <cstdio>

#include "encoding/json.hpp"
#include "queue/queue.hpp"

namespace archiver::queue {

namespace {

// A timestamp column as UTC ISO 8601 text.
std::string iso(const char* column) {
  return std::string("to_char(") + column +
         " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";
}

// The columns in the order read_job() reads them.
const std::string job_columns =
    "id, kind, key, payload::text, state::text, attempts, max_attempts, " + iso("run_at") +
    ", lease_owner, " + iso("lease_expires") + ", last_error, " + iso("created_at") + ", " +
    iso("updated_at") + ", " + iso("finished_at");

const std::string sql_list = "SELECT " + job_columns +
                             " FROM jobs WHERE ($1::text IS NULL OR state::text = $1)"
                             " AND ($2::text IS NULL OR kind = $2) ORDER BY id DESC LIMIT $3";
const std::string sql_show = "SELECT " + job_columns + " FROM jobs WHERE id = $1";
const std::string sql_show_for_update = sql_show + " FOR UPDATE";
constexpr const char* sql_other_pending =
    "SELECT id FROM jobs WHERE kind = $1 AND key = $2 AND state IN ('queued', 'failed')"
    " AND id <> $3 ORDER BY id LIMIT 1";
constexpr const char* sql_requeue =
    "UPDATE jobs SET state = 'queued', attempts = 0, run_at = now(), lease_owner = NULL,"
    " lease_expires = NULL, finished_at = NULL, updated_at = now(), last_error = $2"
    " WHERE id = $1";
constexpr const char* sql_dead_ids = "SELECT id FROM jobs WHERE state = 'dead' ORDER BY id";
constexpr const char* sql_state_for_update =
    "SELECT state::text FROM jobs WHERE id = $1 FOR UPDATE";
constexpr const char* sql_cancel =
    "UPDATE jobs SET state = 'cancelled', lease_owner = NULL, lease_expires = NULL,"
    " finished_at = now(), updated_at = now() WHERE id = $1";
constexpr const char* sql_prune =
    "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE finished_at IS NOT NULL"
    " AND finished_at < now() - make_interval(secs => $1)"
    " AND state IN ('succeeded', 'cancelled') ORDER BY finished_at LIMIT $2)";
constexpr const char* sql_events =
    "SELECT count(*), count(*) FILTER (WHERE processed_at IS NULL) FROM webhook_events";
constexpr const char* sql_jobs_by_kind =
    "SELECT kind, state::text, count(*) FROM jobs GROUP BY kind, state";
constexpr const char* sql_oldest_due =
    "SELECT extract(epoch FROM now() - min(run_at))::float8 FROM jobs"
    " WHERE state IN ('queued', 'failed') AND run_at <= now()";
constexpr const char* sql_artifacts =
    "SELECT count(*), coalesce(sum(size_bytes), 0)::bigint FROM artifacts WHERE purged_at IS NULL";

std::optional<std::string> nullable(const pqxx::field& field) {
  if (field.is_null()) {
    return std::nullopt;
  }
  return field.as<std::string>();
}

job_row read_job(const pqxx::row& row) {
  job_row job;
  job.id = row[0].as<std::int64_t>();
  job.kind = row[1].as<std::string>();
  job.key = row[2].as<std::string>();
  job.payload = row[3].as<std::string>();
  job.state = row[4].as<std::string>();
  job.attempts = row[5].as<int>();
  job.max_attempts = row[6].as<int>();
  job.run_at = row[7].as<std::string>();
  job.lease_owner = nullable(row[8]);
  job.lease_expires = nullable(row[9]);
  job.last_error = nullable(row[10]);
  job.created_at = row[11].as<std::string>();
  job.updated_at = row[12].as<std::string>();
  job.finished_at = nullable(row[13]);
  return job;
}

std::optional<std::int64_t> other_pending(pqxx::transaction_base& tx, const job_row& job) {
  const pqxx::result found = tx.exec_params(sql_other_pending, job.kind, job.key, job.id);
  if (found.empty()) {
    return std::nullopt;
  }
  return found[0][0].as<std::int64_t>();
}

std::map<std::string, std::int64_t> every_state_zero() {
  std::map<std::string, std::int64_t> counts;
  for (const char* state : job_states) {
    counts[state] = 0;
  }
  return counts;
}

void write_counts(encoding::json_writer& out, const std::map<std::string, std::int64_t>& counts) {
  out.begin_object();
  for (const char* state : job_states) {
    const auto it = counts.find(state);
    out.key(state).number(it == counts.end() ? 0 : it->second);
  }
  out.end_object();
}

}  // namespace

std::vector<job_row> list_jobs(pqxx::transaction_base& tx, const job_filter& filter) {
  std::vector<job_row> jobs;
  for (const auto& row : tx.exec_params(sql_list, filter.state, filter.kind, filter.limit)) {
    jobs.push_back(read_job(row));
  }
  return jobs;
}

std::optional<job_row> show_job(pqxx::transaction_base& tx, std::int64_t id) {
  const pqxx::result found = tx.exec_params(sql_show, id);
  if (found.empty()) {
    return std::nullopt;
  }
  return read_job(found[0]);
}

retry_result retry_job(pqxx::work& tx, std::int64_t id) {
  retry_result result;
  const pqxx::result found = tx.exec_params(sql_show_for_update, id);
  if (found.empty()) {
    return result;
  }
  const job_row& job = result.before.emplace(read_job(found[0]));
  if (job.state != "dead" && job.state != "failed" && job.state != "cancelled") {
    result.outcome = retry_outcome::not_retryable;
    return result;
  }
  if (const auto pending = other_pending(tx, job)) {
    result.outcome = retry_outcome::already_pending;
    result.pending_id = *pending;
    return result;
  }
  const std::string history = "retried by operator after " + std::to_string(job.attempts) +
                              " attempts as " + job.state + ": " +
                              job.last_error.value_or("no error recorded");
  // A savepoint: a job of the same (kind, key) enqueued since the check above makes the update
  // violate the unique index. That is the already_pending case, and the caller's transaction
  // must stay usable.
  tx.exec0("SAVEPOINT retry_job");
  try {
    tx.exec_params0(sql_requeue, id, history);
  } catch (const pqxx::unique_violation&) {
    tx.exec0("ROLLBACK TO SAVEPOINT retry_job");
    result.outcome = retry_outcome::already_pending;
    result.pending_id = other_pending(tx, job).value_or(0);
    return result;
  }
  tx.exec0("RELEASE SAVEPOINT retry_job");
  tx.exec0("NOTIFY " + tx.quote_name(notify_channel));
  result.outcome = retry_outcome::queued;
  return result;
}

int bring_forward(pqxx::work& tx, std::string_view note) {
  const pqxx::result moved = tx.exec_params(
      "UPDATE jobs SET run_at = now(), updated_at = now() "
      "WHERE state IN ('queued', 'failed') AND run_at > now() "
      "  AND right(last_error, length($1)) = $1 RETURNING id",
      std::string(note));
  if (!moved.empty()) {
    tx.exec0("NOTIFY " + tx.quote_name(notify_channel));
  }
  return static_cast<int>(moved.size());
}

retry_counts retry_all_dead(pqxx::work& tx) {
  retry_counts counts;
  for (const auto& row : tx.exec(sql_dead_ids)) {
    const retry_result result = retry_job(tx, row[0].as<std::int64_t>());
    if (result.outcome == retry_outcome::queued) {
      ++counts.queued;
    } else if (result.outcome == retry_outcome::already_pending) {
      ++counts.already_pending;
    }
  }
  return counts;
}

cancel_result cancel_job(pqxx::work& tx, std::int64_t id) {
  cancel_result result;
  const pqxx::result found = tx.exec_params(sql_state_for_update, id);
  if (found.empty()) {
    return result;
  }
  result.previous_state = found[0][0].as<std::string>();
  const std::string& state = result.previous_state;
  if (state != "queued" && state != "failed" && state != "running") {
    result.outcome = cancel_outcome::already_finished;
    return result;
  }
  tx.exec_params0(sql_cancel, id);
  result.outcome = cancel_outcome::cancelled;
  return result;
}

std::int64_t prune_finished(pqxx::work& tx, std::chrono::seconds older_than, int limit) {
  const pqxx::result deleted =
      tx.exec_params0(sql_prune, static_cast<double>(older_than.count()), limit);
  return static_cast<std::int64_t>(deleted.affected_rows());
}

bool pause_class(pqxx::work& tx, ops::priority priority, const std::string& by) {
  const pqxx::result row = tx.exec_params(
      "INSERT INTO paused_classes (priority, paused_by) VALUES ($1, $2) "
      "ON CONFLICT (priority) DO NOTHING RETURNING priority",
      ops::index_of(priority), by);
  return !row.empty();
}

bool resume_class(pqxx::work& tx, ops::priority priority) {
  const pqxx::result row = tx.exec_params(
      "DELETE FROM paused_classes WHERE priority = $1 RETURNING priority", ops::index_of(priority));
  if (!row.empty()) {
    tx.exec0(std::string("NOTIFY ") + notify_channel);  // its jobs are due again
  }
  return !row.empty();
}

class_status read_class_status(pqxx::transaction_base& tx, ops::priority priority) {
  class_status out;
  out.open_jobs = tx.exec_params1(
                        "SELECT count(*) FROM jobs WHERE priority = $1 "
                        "AND state IN ('queued', 'failed', 'running')",
                        ops::index_of(priority))[0]
                      .as<std::int64_t>();
  const pqxx::result paused = tx.exec_params(
      "SELECT " + iso("paused_at") + ", paused_by FROM paused_classes WHERE priority = $1",
      ops::index_of(priority));
  if (!paused.empty()) {
    out.paused_at = paused[0][0].as<std::string>();
    out.paused_by = paused[0][1].as<std::string>();
  }
  return out;
}

status_counts read_status(pqxx::transaction_base& tx) {
  status_counts status;
  const pqxx::row events = tx.exec1(sql_events);
  status.events_total = events[0].as<std::int64_t>();
  status.events_unprocessed = events[1].as<std::int64_t>();

  status.jobs_by_state = every_state_zero();
  for (const auto& row : tx.exec(sql_jobs_by_kind)) {
    const std::string kind = row[0].as<std::string>();
    const std::string state = row[1].as<std::string>();
    const auto count = row[2].as<std::int64_t>();
    auto [by_kind, inserted] =
        status.jobs_by_kind.try_emplace(kind, std::map<std::string, std::int64_t>{});
    if (inserted) {
      by_kind->second = every_state_zero();
    }
    by_kind->second[state] += count;
    status.jobs_by_state[state] += count;
  }

  const pqxx::row oldest = tx.exec1(sql_oldest_due);
  if (!oldest[0].is_null()) {
    status.oldest_due_seconds = oldest[0].as<double>();
  }
  const pqxx::row artifacts = tx.exec1(sql_artifacts);
  status.artifacts = artifacts[0].as<std::int64_t>();
  status.artifact_bytes = artifacts[1].as<std::int64_t>();
  return status;
}

std::string to_json(const job_row& job) {
  encoding::json_writer out;
  out.begin_object();
  out.key("id").number(job.id);
  out.key("kind").value(job.kind);
  out.key("key").value(job.key);
  out.key("payload").raw(job.payload);
  out.key("state").value(job.state);
  out.key("attempts").number(job.attempts);
  out.key("max_attempts").number(job.max_attempts);
  out.key("run_at").value(job.run_at);
  out.key("lease_owner").value_or_null(job.lease_owner);
  out.key("lease_expires").value_or_null(job.lease_expires);
  out.key("last_error").value_or_null(job.last_error);
  out.key("created_at").value(job.created_at);
  out.key("updated_at").value(job.updated_at);
  out.key("finished_at").value_or_null(job.finished_at);
  out.end_object();
  return out.str();
}

std::string to_json(const status_counts& status) {
  encoding::json_writer out;
  out.begin_object();
  out.key("events").begin_object();
  out.key("total").number(status.events_total);
  out.key("unprocessed").number(status.events_unprocessed);
  out.end_object();

  out.key("jobs").begin_object();
  out.key("by_state");
  write_counts(out, status.jobs_by_state);
  const auto dead = status.jobs_by_state.find("dead");
  out.key("dead").number(dead == status.jobs_by_state.end() ? 0 : dead->second);
  out.key("oldest_due_seconds");
  if (status.oldest_due_seconds) {
    char number[32];
    std::snprintf(number, sizeof number, "%.3f", *status.oldest_due_seconds);
    out.raw(number);
  } else {
    out.null();
  }
  out.key("by_kind").begin_object();
  for (const auto& [kind, counts] : status.jobs_by_kind) {
    out.key(kind);
    write_counts(out, counts);
  }
  out.end_object();
  out.end_object();

  out.key("artifacts").begin_object();
  out.key("count").number(status.artifacts);
  out.key("total_bytes").number(status.artifact_bytes);
  out.end_object();
  out.end_object();
  return out.str();
}

}  // namespace archiver::queue
