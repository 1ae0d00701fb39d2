// certn-archiver's command line: parses arguments, loads the configuration, and hands over to
// the command. Exit codes: 0 success, 2 usage or configuration error, 1 any other failure.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "config/config.hpp"
#include "ops/logging.hpp"
#include "service/service.hpp"

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

}  // namespace

int main(int argc, char** argv) {
  using namespace archiver;

  CLI::App app{"certn-archiver: archives Certn background-check results into your own storage"};
  app.require_subcommand(1);
  std::string config_file;
  std::string log_format;
  app.add_option("-c,--config", config_file,
                 "TOML configuration file (default: $CERTN_ARCHIVER_CONFIG, else built-in defaults)");
  app.add_option("--log-format", log_format, "Log format: text or json (overrides log.format)")
      ->check(CLI::IsMember({"text", "json"}));

  CLI::App* serve = app.add_subcommand("serve", "Receive Certn webhooks and archive cases");
  CLI::App* migrate = app.add_subcommand("migrate", "Apply missing database migrations");
  CLI::App* version = app.add_subcommand("version", "Print the version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? exit_ok : exit_usage;
  }

  if (version->parsed()) {
    std::cout << "certn-archiver " << ARCHIVER_VERSION << "\n";
    return exit_ok;
  }

  config::config cfg;
  try {
    const config::environment env = config::from_environ();
    std::optional<std::filesystem::path> file;
    if (!config_file.empty()) {
      file = config_file;
    } else if (const auto it = env.find("CERTN_ARCHIVER_CONFIG"); it != env.end()) {
      file = it->second;
    }
    cfg = config::load(file, env);
    if (!log_format.empty()) {
      cfg.log.format = log_format == "json" ? config::log_format::json : config::log_format::text;
    }
    ops::setup_logging(cfg.log.format, cfg.log.level);
    if (serve->parsed()) {
      config::require_serve_settings(cfg);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "certn-archiver: configuration error: %s\n", e.what());
    return exit_usage;
  }

  try {
    if (migrate->parsed()) {
      return service::migrate(cfg);
    }
    if (serve->parsed()) {
      return service::serve(cfg);
    }
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return exit_failure;
  }
  return exit_usage;
}
