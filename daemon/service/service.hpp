// The daemon's commands, wired from the parts: `serve` (listeners, database pool, signals,
// systemd notification, drain) and `migrate`. Each returns the process exit code.
#pragma once

#include <optional>
#include <string>

#include "certn/api.hpp"
#include "config/config.hpp"

namespace archiver::service {

// Runs until SIGTERM or SIGINT, then drains and returns 0. Start-up failures (database
// unreachable, schema behind, address in use) are logged and return 1.
int serve(const config::config& cfg);

// Applies missing migrations and prints what it did; returns 0, or 1 on failure.
int migrate(const config::config& cfg);

// `certn-archiver cases <endpoint>`: one Cases API call, its answer as JSON on stdout.
struct cases_request {
  std::string endpoint;  // list, get, cancel, generate-report, report-file, supplementary-files,
                         // supplementary-information, order, order-package
  std::string id;
  certn::case_filter filter;        // list
  int page = 1;                     // list
  int page_size = 10;               // list
  bool all_pages = false;           // list: every page, results as one JSON array
  std::string language;             // generate-report
  std::string download_path;        // report-file: save the PDF there
  std::string order_json_file;      // order: a file, or "-" for standard input
  certn::package_order package;     // order-package
};

// Returns 0 on success; 1 when the call failed (Certn's code and detail on stderr); 2 when the
// configuration lacks what the call needs (certn.api_key).
int cases(const config::config& cfg, const cases_request& request);

}  // namespace archiver::service
