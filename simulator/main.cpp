// certn-sim's command line: flags into settings, one io_context thread, a clean exit on SIGTERM
// or SIGINT. Exit codes: 0 stopped by a signal, 2 bad flags, 1 the simulator could not start
// (listen address taken, webhook challenge failed).
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <map>

#include "config/config.hpp"
#include "ops/logging.hpp"
#include "simulator.hpp"

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

}  // namespace

int main(int argc, char** argv) {
  namespace asio = boost::asio;
  certn_sim::settings config;
  CLI::App app{"certn-sim: a stand-in for Certn's Cases API, downloads and webhooks", "certn-sim"};
  app.set_version_flag("--version", std::string("certn-sim ") + ARCHIVER_VERSION);
  app.footer(
      "For tests, demos and benchmarks of certn-archiver; never expose it to a network. It prints "
      "\"listening on URL\" once it listens, and runs until SIGTERM or SIGINT. Exit status: 0 "
      "after a signal, 1 on a start-up failure, 2 on a usage error.");
  std::vector<std::string> api_keys;
  std::int64_t report_delay_ms = config.report_delay.count();
  std::int64_t url_ttl_seconds = config.url_ttl.count();
  std::string scheme = "hex";
  std::int64_t retry_base_ms = config.webhooks.retry_base_delay.count();
  std::int64_t slow_ms = 0;
  std::string shapes;
  std::vector<std::string> vary;
  app.add_option("--listen", config.listen, "HOST:PORT to listen on (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--api-key", api_keys, "An accepted API key (repeatable; default sim-key)");
  app.add_option("--refused-key-status", config.refused_key_status,
                 "Status of an answer to a missing or refused API key (401, or 403 as DRF)")
      ->check(CLI::IsMember({401, 403}))
      ->capture_default_str();
  app.add_option("--public-base-url", config.public_base_url,
                 "Base URL clients reach us at (default http://<bound address>)");
  app.add_option("--report-delay-ms", report_delay_ms, "generate-report to COMPLETE delay")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--url-ttl-seconds", url_ttl_seconds, "Presigned URL lifetime")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--file-size", config.default_file_size, "Bytes per supplementary file")
      ->capture_default_str();
  app.add_option("--seed", config.seed, "Seed of every id and random choice")->capture_default_str();
  app.add_option("--webhook-url", config.webhooks.url, "Where webhooks go (none when empty)");
  app.add_option("--webhook-secret", config.webhooks.secret, "HMAC key of webhook signatures");
  app.add_option("--signature-scheme", scheme, "hex|base64|sha256|certn")
      ->check(CLI::IsMember({"hex", "base64", "sha256", "certn"}))->capture_default_str();
  app.add_option("--webhook-retry-base-ms", retry_base_ms, "First webhook retry delay")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--report-ready-object", config.report_ready_object_type,
                 "object_type of CASE_REPORT_READY: CASE or CASE_REPORT_FILE")
      ->check(CLI::IsMember({"CASE", "CASE_REPORT_FILE"}))->capture_default_str();
  const auto rate = CLI::Range(0.0, 1.0);
  app.add_option("--fault-429-rate", config.faults.rate_429, "Chance of a 429")->check(rate);
  app.add_option("--fault-retry-after-rate", config.faults.retry_after_rate,
                 "Chance a 429 carries Retry-After")->check(rate);
  app.add_option("--fault-500-rate", config.faults.rate_500, "Chance of a 500")->check(rate);
  app.add_option("--fault-slow-rate", config.faults.slow_rate, "Chance of a slow answer")
      ->check(rate);
  app.add_option("--fault-slow-ms", slow_ms, "Delay of a slow answer")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--fault-truncate-rate", config.faults.truncate_rate,
                 "Chance a download stops half-way")->check(rate);
  app.add_option("--fault-expire-next-urls", config.faults.expire_next_urls,
                 "The next N presigned URLs handed out are already expired")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1000000}));
  app.add_option("--webhook-duplicate-rate", config.webhooks.duplicate_rate,
                 "Chance a webhook is sent twice")->check(rate);
  app.add_option("--webhook-reorder-rate", config.webhooks.reorder_rate,
                 "Chance a webhook is held back behind the next")->check(rate);
  app.add_option("--webhook-drop-rate", config.webhooks.drop_rate,
                 "Chance a webhook is never sent")->check(rate);
  app.add_option("--rate-limit-per-minute", config.faults.requests_per_minute_per_key,
                 "Requests per API key per sliding minute (0: unlimited)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--cases", config.initial_cases, "Cases to create at start")
      ->check(CLI::Range(0, 100000));
  app.add_option("--shapes", shapes,
                 "Response shapes: assumed|observed (default $CERTN_SIM_SHAPES, else assumed)")
      ->check(CLI::IsMember({"assumed", "observed"}));
  app.add_option("--vary", vary, "KNOB=VALUE: one field's shape, whatever --shapes says "
                                 "(repeatable; see README \"Response shapes\")");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? exit_ok : exit_usage;
  }
  if (!api_keys.empty()) {
    config.api_keys = api_keys;
  }
  config.report_delay = std::chrono::milliseconds(report_delay_ms);
  config.url_ttl = std::chrono::seconds(url_ttl_seconds);
  config.webhooks.retry_base_delay = std::chrono::milliseconds(retry_base_ms);
  config.faults.slow_delay = std::chrono::milliseconds(slow_ms);
  const std::map<std::string, certn_sim::signature_scheme> schemes = {
      {"hex", certn_sim::signature_scheme::x_signature_hex},
      {"base64", certn_sim::signature_scheme::x_signature_base64},
      {"sha256", certn_sim::signature_scheme::sha256_prefixed},
      {"certn", certn_sim::signature_scheme::certn_signature}};
  config.webhooks.scheme = schemes.at(scheme);
  // The variable lets a test script switch every certn-sim it starts; a flag still wins.
  const char* shapes_variable = std::getenv("CERTN_SIM_SHAPES");
  if (!shapes.empty()) {
    config.shapes.family = shapes;
  } else if (shapes_variable != nullptr && *shapes_variable != '\0') {
    config.shapes.family = shapes_variable;
    if (config.shapes.family != "assumed" && config.shapes.family != "observed") {
      std::fprintf(stderr,
                   "certn-sim: CERTN_SIM_SHAPES: expected assumed or observed, got \"%s\"\n",
                   shapes_variable);
      return exit_usage;
    }
  }
  for (const std::string& item : vary) {
    const std::size_t equals = item.find('=');
    if (equals == std::string::npos || equals == 0) {
      std::fprintf(stderr, "certn-sim: --vary: expected KNOB=VALUE, got \"%s\"\n", item.c_str());
      return exit_usage;
    }
    config.shapes.vary[item.substr(0, equals)] = item.substr(equals + 1);
  }

  archiver::ops::setup_logging(archiver::config::log_format::text, "info");
  asio::io_context io;
  std::unique_ptr<certn_sim::simulator> sim;
  try {
    sim = std::make_unique<certn_sim::simulator>(io, config);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "certn-sim: %s\n", e.what());
    return exit_usage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "certn-sim: cannot listen on %s: %s\n", config.listen.c_str(), e.what());
    return exit_failure;
  }

  int exit_code = exit_ok;
  const std::string host = config.listen.substr(0, config.listen.rfind(':'));
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await sim->start();
        std::printf("certn-sim listening on http://%s:%u\n", host.c_str(),
                    static_cast<unsigned>(sim->port()));
        std::fflush(stdout);
        spdlog::info("certn-sim: serving at {}", sim->base_url());
      },
      [&](std::exception_ptr failure) {
        if (failure) {
          archiver::ops::log_exception("certn-sim start", failure);
          exit_code = exit_failure;
          io.stop();
        }
      });

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) {
      return;
    }
    spdlog::info("certn-sim: stopping");
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { co_await sim->stop(); },
        [&](std::exception_ptr failure) {
          archiver::ops::log_exception("certn-sim stop", failure);
          // Webhook retries may still be waiting: they are abandoned.
          io.stop();
        });
  });
  io.run();
  return exit_code;
}
