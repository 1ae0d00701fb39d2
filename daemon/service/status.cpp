#include <algorithm>
#include <cstdio>
#include <iostream>
#include <pqxx/pqxx>
#include <string>

#include "db/migrations.hpp"
#include "db/pool.hpp"
#include "queue/admin.hpp"
#include "service/cli_database.hpp"
#include "service/service.hpp"

namespace archiver::service {

namespace {

constexpr int exit_ok = 0;

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

}  // namespace

int status(const config::config& cfg, bool json) {
  return with_database(cfg, [&](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    const queue::status_counts counts = queue::read_status(tx);
    if (json) {
      std::cout << queue::to_json(counts) << "\n";
    } else {
      print_table(counts);
    }
    return exit_ok;
  });
}

}  // namespace archiver::service
