#include <algorithm>
#include <iostream>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "db/migrations.hpp"
#include "db/pool.hpp"
#include "queue/admin.hpp"
#include "records/audit.hpp"
#include "service/cli_database.hpp"
#include "service/service.hpp"

namespace archiver::service {

namespace {

// Errors can be long (a remote's answer): one line, cut to fit a table.
std::string short_error(const std::optional<std::string>& error) {
  if (!error) {
    return "";
  }
  std::string text = error->substr(0, error->find('\n'));
  constexpr std::size_t max = 60;
  return text.size() > max ? text.substr(0, max - 3) + "..." : text;
}

void print_list(const std::vector<queue::job_row>& jobs) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "STATE", "KIND", "KEY", "ATTEMPTS", "RUN AT", "UPDATED AT", "LAST ERROR"}};
  for (const auto& job : jobs) {
    rows.push_back({std::to_string(job.id), job.state, job.kind, job.key,
                    std::to_string(job.attempts) + "/" + std::to_string(job.max_attempts),
                    job.run_at, job.updated_at, short_error(job.last_error)});
  }
  std::vector<std::size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i] + std::string(widths[i] - row[i].size() + 2, ' ');
    }
    line.erase(line.find_last_not_of(' ') + 1);
    std::cout << line << "\n";
  }
  if (jobs.empty()) {
    std::cout << "(no jobs)\n";
  }
}

void print_job(const queue::job_row& job) {
  const auto field = [](const char* name, const std::string& value) {
    std::cout << name << std::string(15 - std::string_view(name).size(), ' ') << value << "\n";
  };
  const auto optional = [&](const char* name, const std::optional<std::string>& value) {
    field(name, value.value_or("-"));
  };
  field("id:", std::to_string(job.id));
  field("kind:", job.kind);
  field("key:", job.key);
  field("state:", job.state);
  field("attempts:", std::to_string(job.attempts) + " of " + std::to_string(job.max_attempts));
  field("run_at:", job.run_at);
  optional("lease_owner:", job.lease_owner);
  optional("lease_expires:", job.lease_expires);
  field("created_at:", job.created_at);
  field("updated_at:", job.updated_at);
  optional("finished_at:", job.finished_at);
  field("payload:", job.payload);
  optional("last_error:", job.last_error);
}

int list(pqxx::connection& conn, const jobs_request& request) {
  pqxx::read_transaction tx(conn);
  const auto jobs = queue::list_jobs(tx, {request.state, request.kind, request.limit});
  if (!request.json) {
    print_list(jobs);
    return exit_ok;
  }
  std::cout << "[";
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    std::cout << (i == 0 ? "\n" : ",\n") << queue::to_json(jobs[i]);
  }
  std::cout << (jobs.empty() ? "]\n" : "\n]\n");
  return exit_ok;
}

int show(pqxx::connection& conn, const jobs_request& request) {
  pqxx::read_transaction tx(conn);
  const auto job = queue::show_job(tx, request.id);
  if (!job) {
    std::cerr << "certn-archiver: no job " << request.id << "\n";
    return exit_failure;
  }
  if (request.json) {
    std::cout << queue::to_json(*job) << "\n";
  } else {
    print_job(*job);
  }
  return exit_ok;
}

// The case a job is about, for its audit row: its payload's case_id ("" for reconcile and the
// like).
std::string case_of_job(pqxx::work& tx, std::int64_t id) {
  const pqxx::result row =
      tx.exec_params("SELECT COALESCE(payload->>'case_id', '') FROM jobs WHERE id = $1", id);
  return row.empty() ? std::string() : row[0][0].as<std::string>();
}

int retry(pqxx::connection& conn, const jobs_request& request) {
  pqxx::work tx(conn);
  if (request.all_dead) {
    const queue::retry_counts counts = queue::retry_all_dead(tx);
    if (counts.queued > 0) {
      records::append_audit(tx, records::command_actor(), "jobs_retry", "",
                            "every dead job: " + std::to_string(counts.queued) + " queued again");
    }
    tx.commit();
    std::cout << "queued " << counts.queued << " dead jobs again; " << counts.already_pending
              << " left as they are: their (kind, key) already has a pending job\n";
    return exit_ok;
  }
  const queue::retry_result result = queue::retry_job(tx, request.id);
  if (result.outcome == queue::retry_outcome::queued) {
    records::append_audit(tx, records::command_actor(), "job_retry", case_of_job(tx, request.id),
                          "job " + std::to_string(request.id) + " " + result.before->kind + " " +
                              result.before->key + " (was " + result.before->state + " after " +
                              std::to_string(result.before->attempts) + " attempts)");
  }
  tx.commit();
  switch (result.outcome) {
    case queue::retry_outcome::queued:
      std::cout << "job " << request.id << " queued (it was " << result.before->state << " after "
                << result.before->attempts
                << " attempts; last error: " << result.before->last_error.value_or("none") << ")\n";
      return exit_ok;
    case queue::retry_outcome::already_pending:
      // The work will be done: the pending job covers the same (kind, key).
      std::cout << "job " << request.id << " left " << result.before->state
                << ": already pending as job " << result.pending_id << "\n";
      return exit_ok;
    case queue::retry_outcome::not_retryable:
      std::cerr << "certn-archiver: job " << request.id << " is " << result.before->state
                << ": only dead, failed or cancelled jobs can be retried\n";
      return exit_failure;
    case queue::retry_outcome::not_found:
      break;
  }
  std::cerr << "certn-archiver: no job " << request.id << "\n";
  return exit_failure;
}

int cancel(pqxx::connection& conn, const jobs_request& request) {
  pqxx::work tx(conn);
  const queue::cancel_result result = queue::cancel_job(tx, request.id);
  if (result.outcome == queue::cancel_outcome::cancelled) {
    records::append_audit(
        tx, records::command_actor(), "job_cancel", case_of_job(tx, request.id),
        "job " + std::to_string(request.id) + " (was " + result.previous_state + ")");
  }
  tx.commit();
  switch (result.outcome) {
    case queue::cancel_outcome::cancelled:
      std::cout << "job " << request.id << " cancelled (it was " << result.previous_state;
      if (result.previous_state == "running") {
        std::cout << "; its worker stops at its next heartbeat";
      }
      std::cout << ")\n";
      return exit_ok;
    case queue::cancel_outcome::already_finished:
      std::cerr << "certn-archiver: job " << request.id << " is already finished ("
                << result.previous_state << ")\n";
      return exit_failure;
    case queue::cancel_outcome::not_found:
      break;
  }
  std::cerr << "certn-archiver: no job " << request.id << "\n";
  return exit_failure;
}

int prune(pqxx::connection& conn, const jobs_request& request) {
  // In batches, each its own transaction, as the workers prune.
  constexpr int batch = 10'000;
  std::int64_t pruned = 0;
  std::int64_t deleted = 0;
  do {
    pqxx::work tx(conn);
    deleted = queue::prune_finished(tx, std::chrono::hours(24) * request.older_than_days, batch);
    tx.commit();
    pruned += deleted;
  } while (deleted == batch);
  std::cout << "pruned " << pruned << " succeeded or cancelled jobs finished more than "
            << request.older_than_days << " days ago\n";
  return exit_ok;
}

}  // namespace

int jobs(const config::config& cfg, const jobs_request& request) {
  return with_database(cfg, [&](pqxx::connection& conn) {
    const std::string& action = request.action;
    if (action == "list") {
      return list(conn, request);
    }
    if (action == "show") {
      return show(conn, request);
    }
    if (action == "retry") {
      return retry(conn, request);
    }
    if (action == "cancel") {
      return cancel(conn, request);
    }
    if (action == "prune") {
      return prune(conn, request);
    }
    std::cerr << "certn-archiver: unknown jobs action " << action << "\n";
    return exit_usage;
  });
}

}  // namespace archiver::service
