#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <pqxx/pqxx>
#include <string>

#include "certn/budget.hpp"
#include "db/migrations.hpp"
#include "db/pool.hpp"
#include "encoding/json.hpp"
#include "queue/admin.hpp"
#include "records/purge.hpp"
#include "service/cli_database.hpp"
#include "service/service.hpp"
#include "service/shared_rate_limit.hpp"

namespace archiver::service {

namespace {

std::string human_bytes(std::int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return text;
}

std::string duration(double seconds) {
  char text[32];
  if (seconds < 120) {
    std::snprintf(text, sizeof text, "%.0f s", seconds);
  } else if (seconds < 2 * 3600) {
    std::snprintf(text, sizeof text, "%.0f min", seconds / 60);
  } else if (seconds < 2 * 86400) {
    std::snprintf(text, sizeof text, "%.1f h", seconds / 3600);
  } else {
    std::snprintf(text, sizeof text, "%.1f days", seconds / 86400);
  }
  return text;
}

void print_table(const queue::status_counts& status) {
  std::cout << "events      " << status.events_total << " received, " << status.events_unprocessed
            << " not processed\n";
  std::cout << "artifacts   " << status.artifacts << " (" << human_bytes(status.artifact_bytes)
            << ")\n";
  std::cout << "oldest due  "
            << (status.oldest_due_seconds ? duration(*status.oldest_due_seconds) + " overdue"
                                          : std::string("none"))
            << "\n";
  std::cout << "dead jobs   " << status.jobs_by_state.at("dead") << "\n\n";

  std::size_t name_width = 4;
  for (const auto& [kind, counts] : status.jobs_by_kind) {
    name_width = std::max(name_width, kind.size());
  }
  const auto row = [&](const std::string& name, const auto& cells) {
    std::cout << name << std::string(name_width + 2 - name.size(), ' ');
    for (const auto& cell : cells) {
      std::cout << "  " << cell;
    }
    std::cout << "\n";
  };
  std::vector<std::string> header;
  for (const char* state : queue::job_states) {
    header.emplace_back(state);
  }
  row("jobs", header);
  const auto counts_row = [&](const std::string& name,
                              const std::map<std::string, std::int64_t>& counts) {
    std::vector<std::string> cells;
    for (std::size_t i = 0; i < header.size(); ++i) {
      const std::string count = std::to_string(counts.at(header[i]));
      cells.push_back(
          std::string(header[i].size() - std::min(header[i].size(), count.size()), ' ') + count);
    }
    row(name, cells);
  };
  counts_row("all", status.jobs_by_state);
  for (const auto& [kind, counts] : status.jobs_by_kind) {
    counts_row(kind, counts);
  }
}

// The day's Certn budget as `status` shows it: calls charged today by every process of this
// database, and when the budget runs out at today's rate.
struct budget_line {
  int used = 0;
  int per_day = 0;
  int reserve = 0;
  std::optional<double> runs_out_at;  // hours after 00:00 UTC
};

std::string clock_time(double hours) {
  const int minutes = static_cast<int>(hours * 60);
  char text[8];
  std::snprintf(text, sizeof text, "%02d:%02d", minutes / 60 % 24, minutes % 60);
  return text;
}

void print_budget(const budget_line& b) {
  std::cout << "\ncertn calls " << b.used << " today (UTC)";
  if (b.per_day > 0) {
    std::cout << " of " << b.per_day << ", " << b.reserve << " kept for live work; ";
    std::cout << (b.runs_out_at ? "at this rate the budget runs out at " +
                                      clock_time(*b.runs_out_at) + " UTC"
                                : std::string("at this rate it lasts the day"));
  }
  std::cout << "\n";
}

// Backfill's progress: its open jobs, and whether an operator paused them.
void print_bulk(const queue::class_status& bulk) {
  std::cout << "\nbulk work   " << bulk.open_jobs << " open job(s) (backfill)";
  if (bulk.paused_at) {
    std::cout << ", paused since " << *bulk.paused_at << " by " << bulk.paused_by.value_or("?")
              << " (`backfill --resume`)";
  }
  std::cout << "\n";
}

std::string bulk_json(const queue::class_status& bulk) {
  encoding::json_writer out;
  out.begin_object().key("open_jobs").number(bulk.open_jobs).key("paused_at");
  if (bulk.paused_at) {
    out.value(*bulk.paused_at);
  } else {
    out.null();
  }
  out.end_object();
  return out.str();
}

// Records management: retention, holds, purges, erasures waiting for approval.
void print_records(const records::records_status& r, const config::records_settings& settings) {
  std::cout << "\nrecords     " << r.held_cases << " case(s) held, " << r.objects_retained
            << " object(s) (" << human_bytes(r.bytes_retained) << ") under retention, "
            << r.cases_due << " case(s) due for purge, " << r.cases_purged << " purged";
  if (r.erasures_pending > 0) {
    std::cout << ", " << r.erasures_pending << " erasure(s) awaiting approval";
  }
  std::cout << "\n            last purge " << r.last_purge_at.value_or("never") << "; serve purges "
            << (settings.purge_interval_seconds > 0
                    ? "every " + duration(settings.purge_interval_seconds)
                    : std::string("never (records.purge_interval_seconds = 0)"))
            << "\n";
}

std::string records_json(const records::records_status& r,
                         const config::records_settings& settings) {
  encoding::json_writer out;
  out.begin_object()
      .key("held_cases")
      .number(r.held_cases)
      .key("objects_retained")
      .number(r.objects_retained)
      .key("bytes_retained")
      .number(r.bytes_retained)
      .key("cases_due")
      .number(r.cases_due)
      .key("cases_purged")
      .number(r.cases_purged)
      .key("erasures_pending")
      .number(r.erasures_pending)
      .key("last_purge_at")
      .value_or_null(r.last_purge_at)
      .key("purge_interval_seconds")
      .number(settings.purge_interval_seconds)
      .end_object();
  return out.str();
}

std::string budget_json(const budget_line& b) {
  encoding::json_writer out;
  out.begin_object().key("used_today").number(b.used).key("per_day").number(b.per_day);
  out.key("live_reserve").number(b.reserve);
  if (b.runs_out_at) {
    out.key("runs_out_at").value(clock_time(*b.runs_out_at));
  }
  out.end_object();
  return out.str();
}

}  // namespace

int status(const config::config& cfg, bool json) {
  return with_database(cfg, [&](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    const queue::status_counts counts = queue::read_status(tx);
    // The budget's row is the account's, named by base URL and key: without a key, none.
    std::optional<budget_line> budget;
    if (!cfg.certn.api_key.empty()) {
      const auto today =
          read_budget_today(tx, rate_limit_name(cfg.certn.base_url, cfg.certn.account));
      budget_line line;
      line.per_day = cfg.certn.requests_per_day;
      line.reserve = line.per_day - certn::budget_cap(
                                        ops::priority::bulk, {line.per_day,
                                                              cfg.certn.live_reserve_percent});
      if (today) {
        line.used = today->used;
        line.runs_out_at = certn::budget_runs_out_at(today->used, today->hours_elapsed, line.per_day);
      }
      budget = line;
    }
    const queue::class_status bulk = queue::read_class_status(tx, ops::priority::bulk);
    const records::records_status records_now = records::read_records_status(tx);
    if (json) {
      std::string text = queue::to_json(counts);
      if (!text.empty() && text.back() == '}') {
        text.pop_back();
        if (budget) {
          text += ",\"certn_budget\":" + budget_json(*budget);
        }
        text += ",\"bulk\":" + bulk_json(bulk);
        text += ",\"records\":" + records_json(records_now, cfg.records) + "}";
      }
      std::cout << text << "\n";
    } else {
      print_table(counts);
      print_bulk(bulk);
      if (budget) {
        print_budget(*budget);
      }
      print_records(records_now, cfg.records);
    }
    return exit_ok;
  });
}

}  // namespace archiver::service
