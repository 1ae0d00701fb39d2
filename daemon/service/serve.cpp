#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <memory>
#include <optional>

#include "db/migrations.hpp"
#include "db/pool.hpp"
#include "encoding/json.hpp"
#include "http/server.hpp"
#include "ops/logging.hpp"
#include "ops/metrics.hpp"
#include "ops/notify.hpp"
#include "service/pipeline.hpp"
#include "service/service.hpp"
#include "webhook/intake.hpp"

namespace archiver::service {
namespace bhttp = beast::http;

namespace {

std::string one_line(std::string text) {
  while (!text.empty() && text.back() == '\n') {
    text.pop_back();
  }
  for (char& c : text) {
    if (c == '\n') {
      c = ' ';
    }
  }
  return text;
}

tcp::endpoint resolve_listen(asio::io_context& io, const std::string& key,
                             const std::string& value) {
  const config::host_port where = config::parse_host_port(key, value);
  tcp::resolver resolver(io);
  error_code ec;
  const auto results =
      resolver.resolve(where.host, std::to_string(where.port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    throw config::config_error(key, "cannot resolve \"" + where.host + "\": " + ec.message());
  }
  return results.begin()->endpoint();
}

http::limits limits_from(const config::server_settings& s) {
  return http::limits{
      .max_body_bytes = s.max_body_bytes,
      .max_header_bytes = s.max_header_bytes,
      .max_uri_bytes = s.max_uri_bytes,
      .max_connections = s.max_connections,
      .max_requests_per_connection = s.max_requests_per_connection,
      .header_timeout = s.header_timeout,
      .body_timeout = s.body_timeout,
      .idle_timeout = s.idle_timeout,
  };
}

// What /readyz and start-up ask of the database: reachable, and the schema current. Readiness
// means "can accept webhooks": intake needs nothing else, so Certn refusing the API key or a
// store that is down never takes the listener out of service (they show in /statusz and
// metrics). `reason` is fixed text, fit for a public listener; `detail` is the library's error
// text, for the log and the admin listener only.
struct readiness {
  bool ready = false;
  std::string reason;
  std::string detail;
};

awaitable<readiness> check_database(db::pool& database, std::chrono::milliseconds wait) {
  try {
    const db::schema_status schema = co_await database.query_within<db::schema_status>(
        wait, [](pqxx::connection& conn) { return db::check_schema(conn); });
    if (!schema.current()) {
      co_return readiness{false,
                          "database schema is at version " +
                              std::to_string(schema.database_version) + ", this build needs " +
                              std::to_string(schema.expected_version) +
                              ": run `certn-archiver migrate`",
                          ""};
    }
    co_return readiness{true, "ready", ""};
  } catch (const std::exception& e) {
    co_return readiness{false, "database unreachable", one_line(e.what())};
  }
}

// "reason" with its detail, when there is one and the listener may show it.
std::string explained(const readiness& state, bool with_detail) {
  return with_detail && !state.detail.empty() ? state.reason + ": " + state.detail : state.reason;
}

// Health routes on `routes`: the admin listener's (`private_listener`: error details shown) or
// the main, public one (fixed reasons only). Database checks wait up to `database_wait`.
// `archiving` is read at each request (a reload may start it) and must outlive the routes.
void add_admin_routes(http::router& routes, ops::registry& registry, db::pool& database,
                      std::chrono::milliseconds database_wait,
                      const std::unique_ptr<pipeline>& archiving, bool private_listener) {
  routes.add("/healthz", [](const http::request&) -> awaitable<http::response> {
    co_return http::text_response(http::status::ok, "ok\n");
  });
  // The last reason logged (its fixed part: details vary), so that a probe every second logs a
  // lasting outage once.
  auto last_logged = std::make_shared<std::string>();
  routes.add("/readyz",
             [&database, database_wait, private_listener,
              last_logged](const http::request&) -> awaitable<http::response> {
               const readiness state = co_await check_database(database, database_wait);
               const std::string reason = state.ready ? "" : state.reason;
               if (reason != *last_logged) {
                 if (state.ready) {
                   spdlog::info("ready again");
                 } else {
                   spdlog::warn("not ready: {}", explained(state, true));
                 }
                 *last_logged = reason;
               }
               co_return http::text_response(
                   state.ready ? http::status::ok : http::status::service_unavailable,
                   explained(state, private_listener) + "\n");
             });
  // What else an operator needs to know, as JSON; never affects readiness.
  routes.add(
      "/statusz",
      [&database, database_wait, &archiving,
       private_listener](const http::request&) -> awaitable<http::response> {
        const readiness state = co_await check_database(database, database_wait);
        encoding::json_writer out;
        out.begin_object();
        out.key("ready").boolean(state.ready);
        out.key("database").value(state.ready ? "ok" : explained(state, private_listener));
        out.key("archiving").value(archiving != nullptr ? "on" : "off: certn.api_key is not set");
        out.key("certn_api_key")
            .value(archiving == nullptr              ? "not set"
                   : archiving->certn_auth_refused() ? "refused"
                                                     : "accepted or not yet used");
        out.end_object();
        http::response res = http::text_response(http::status::ok, out.str() + "\n");
        res.set(bhttp::field::content_type, "application/json");
        co_return res;
      });
  routes.add("/metrics", [&registry](const http::request&) -> awaitable<http::response> {
    http::response res = http::text_response(http::status::ok, registry.expose());
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    co_return res;
  });
}

}  // namespace

int serve(const config::config& cfg, const std::function<config::config()>& reload) {
  config::require_serve_settings(cfg);
  ops::notify_status("starting");

  // Declaration order is destruction order in reverse: the pools join their threads (finishing
  // work that writes into coroutine frames) before the io_context destroys those frames.
  asio::io_context io(1);
  ops::registry registry;
  // Lanes: connections of their own for intake, the queue and the jobs' work, so that jobs
  // waiting on locks or a slow disk never delay storing a webhook or renewing a lease.
  auto lane = [&cfg](std::size_t connections, std::chrono::milliseconds statement_timeout,
                     std::vector<std::pair<std::string, std::string>> session_settings = {}) {
    const std::chrono::milliseconds lock_timeout =
        statement_timeout.count() > 0 && cfg.database.lock_timeout.count() > 0
            ? std::min(cfg.database.lock_timeout, statement_timeout)
            : cfg.database.lock_timeout;
    return std::make_unique<db::pool>(
        cfg.database.url, connections, static_cast<int>(cfg.database.connect_timeout.count()),
        db::pool_limits{cfg.database.dead_connection_seconds,
                        static_cast<int>(statement_timeout.count()),
                        static_cast<int>(lock_timeout.count()),
                        static_cast<int>(cfg.database.call_limit.count()),
                        std::move(session_settings)});
  };
  const auto intake_database =
      lane(cfg.database.intake_pool_size, cfg.database.intake_statement_timeout);
  const auto queue_database =
      lane(cfg.database.queue_pool_size, cfg.database.queue_statement_timeout,
           queue::claiming_session_settings());
  const auto work_database = lane(cfg.database.pool_size, cfg.database.statement_timeout);
  const std::array<db::pool*, 3> lanes{intake_database.get(), queue_database.get(),
                                       work_database.get()};
  registry.gauge_callback("certn_archiver_db_connections_in_use",
                          "Database connections executing work right now (all lanes).",
                          [lanes] {
                            std::size_t busy = 0;
                            for (const db::pool* each : lanes) {
                              busy += each->in_use();
                            }
                            return static_cast<double>(busy);
                          });
  http::server_metrics server_metrics(registry);
  webhook::intake_metrics intake_metrics(registry);
  webhook::intake intake(cfg.webhook, cfg.workers.max_attempts, *intake_database, intake_metrics);

  std::shared_ptr<http::tls_credentials> tls;
  if (!cfg.server.tls_cert_file.empty()) {
    tls =
        std::make_shared<http::tls_credentials>(cfg.server.tls_cert_file, cfg.server.tls_key_file);
  }

  http::router main_routes;
  main_routes.add(cfg.server.webhook_path,
                  [&intake](const http::request& req) { return intake.handle(req); });
  // Without an API key the daemon still stores every event and queues its jobs; they run once a
  // key is configured, by a reload (start_archiving) or a restart.
  config::config archiving_cfg = cfg;  // what the pipeline reads, for as long as it lives
  std::unique_ptr<pipeline> archiving;
  // A pipeline is set up at most once per process: its metrics stay registered (and its
  // callbacks point into it) for the life of the registry.
  bool archiving_set_up = false;
  const auto set_up_archiving = [&] {
    archiving_set_up = true;
    archiving = std::make_unique<pipeline>(
        io, archiving_cfg, pipeline_databases{*queue_database, *work_database}, registry);
    queue::workers& local_workers = archiving->workers();
    intake.on_job_due_later(
        [&local_workers](std::chrono::seconds delay) { local_workers.due_in(delay); });
  };
  if (cfg.certn.api_key.empty()) {
    spdlog::warn(
        "certn.api_key is not set: events are stored and queued, but nothing is archived "
        "until a key is configured (a reload applies it)");
  } else {
    try {
      set_up_archiving();
    } catch (const std::exception& e) {
      spdlog::error("cannot set up archiving: {}", e.what());
      return 1;
    }
  }

  http::router admin_routes;
  const bool separate_admin = !cfg.server.admin_listen.empty();
  add_admin_routes(separate_admin ? admin_routes : main_routes, registry, *intake_database,
                   cfg.webhook.store_timeout, archiving, separate_admin);

  std::vector<std::unique_ptr<http::server>> servers;
  try {
    servers.push_back(std::make_unique<http::server>(
        io, "main", resolve_listen(io, "server.listen", cfg.server.listen), std::move(main_routes),
        limits_from(cfg.server), server_metrics, tls));
    if (separate_admin) {
      http::limits admin_limits = limits_from(cfg.server);
      admin_limits.max_connections = 64;
      servers.push_back(std::make_unique<http::server>(
          io, "admin", resolve_listen(io, "server.admin_listen", cfg.server.admin_listen),
          std::move(admin_routes), admin_limits, server_metrics));
    }
  } catch (const boost::system::system_error& e) {
    spdlog::error("cannot listen: {}", e.what());
    return 1;
  }

  int exit_code = 0;
  bool stopping = false;
  asio::steady_timer watchdog(io);
  asio::signal_set stop_signals(io, SIGTERM, SIGINT);
  asio::signal_set reload_signal(io, SIGHUP);

  auto log_failure = [](std::string what) {
    return [what](std::exception_ptr error) { ops::log_exception(what, error); };
  };

  auto shut_down = [&]() -> awaitable<void> {
    stopping = true;
    ops::notify_stopping();
    ops::notify_status("draining");
    spdlog::info("stopping: draining requests in flight (up to {} ms)",
                 cfg.server.shutdown_timeout.count());
    for (auto& listener : servers) {
      co_await listener->drain(cfg.server.shutdown_timeout);
    }
    if (archiving) {
      co_await archiving->drain();
    }
    watchdog.cancel();
    reload_signal.cancel();
    stop_signals.cancel();
    spdlog::info("stopped");
    io.stop();
  };

  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        // Read before the first suspension: a reload meanwhile may set up and start its own.
        pipeline* const archiving_at_start = archiving.get();
        ops::notify_status("checking database");
        const readiness state =
            co_await check_database(*intake_database, cfg.webhook.store_timeout);
        if (!state.ready) {
          spdlog::error("not starting: {}", explained(state, true));
          exit_code = 1;
          io.stop();
          co_return;
        }
        if (archiving_at_start != nullptr) {
          // Before the listeners: a daemon that cannot archive must not look healthy. Exiting
          // lets the service manager restart it (the database may have gone since the check).
          std::string failure;
          try {
            co_await archiving_at_start->start();
          } catch (const std::exception& e) {
            failure = e.what();
          }
          if (!failure.empty()) {
            spdlog::error("not starting: cannot start archiving: {}", failure);
            exit_code = 1;
            co_await shut_down();
            co_return;
          }
        }
        if (stopping) {
          co_return;  // a SIGTERM (or a reload that could not set up archiving) while starting
        }
        for (auto& listener : servers) {
          listener->start();
        }
        const auto endpoint_text = [](const tcp::endpoint& e) {
          return e.address().to_string() + ":" + std::to_string(e.port());
        };
        std::string where = endpoint_text(servers.front()->local_endpoint());
        spdlog::info("certn-archiver {} serving webhooks at {}://{}{}", ARCHIVER_VERSION,
                     tls ? "https" : "http", where, cfg.server.webhook_path);
        if (separate_admin) {
          const std::string admin = endpoint_text(servers.back()->local_endpoint());
          spdlog::info("health and metrics at http://{}/healthz, /readyz, /statusz, /metrics",
                       admin);
          where += ", admin on " + admin;
        }
        ops::notify_ready();
        ops::notify_status("serving on " + where);
      },
      log_failure("start-up"));

  stop_signals.async_wait([&](const error_code& ec, int signal) {
    if (ec || stopping) {
      return;
    }
    spdlog::info("received {}", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    asio::co_spawn(io, shut_down(), log_failure("shutdown"));
  });

  // What the running daemon uses of the settings a reload may change; the others stay as they
  // were at start, so a reload names them again until a restart applies them.
  config::config running = cfg;

  // A key given by a reload where serve started without one: archiving starts now, with the
  // settings of the start and the reloaded secrets. If it cannot start, serve stops with exit
  // status 1, as at start-up (a daemon that cannot archive must not look healthy). A start-up
  // still checking the database does not start it again (it looked before: archiving_at_start).
  const auto start_archiving = [&](const config::config& next,
                                   const std::vector<std::string>& changed,
                                   std::vector<std::string>& applied) {
    if (archiving_set_up) {
      return;  // set up and failed earlier in this process: the key stays pending
    }
    archiving_cfg = running;
    archiving_cfg.certn.api_key = next.certn.api_key;
    archiving_cfg.certn.api_key_created = next.certn.api_key_created;
    archiving_cfg.storage.s3.access_key_id = next.storage.s3.access_key_id;
    archiving_cfg.storage.s3.secret_access_key = next.storage.s3.secret_access_key;
    try {
      set_up_archiving();
    } catch (const std::exception& e) {
      // As at start-up: exit for the service manager to restart it. Not a drain: metrics the
      // half-built pipeline registered may point into it.
      spdlog::error("stopping: certn.api_key is set, but archiving cannot be set up: {}", e.what());
      exit_code = 1;
      stopping = true;
      ops::notify_stopping();
      io.stop();
      return;
    }
    running = archiving_cfg;
    for (const char* key : {"certn.api_key", "certn.api_key_created", "storage.s3.access_key_id",
                            "storage.s3.secret_access_key"}) {
      if (std::find(changed.begin(), changed.end(), key) != changed.end()) {
        applied.emplace_back(key);
      }
    }
    spdlog::info("SIGHUP: certn.api_key is set: starting archiving");
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          std::string failure;
          try {
            co_await archiving->start();
          } catch (const std::exception& e) {
            failure = e.what();
          }
          if (stopping) {
            co_return;
          }
          if (!failure.empty()) {
            spdlog::error("stopping: cannot start archiving: {}", failure);
            exit_code = 1;
            co_await shut_down();
            co_return;
          }
          spdlog::info("archiving started");
        },
        log_failure("starting archiving"));
  };
  const auto reload_configuration = [&] {
    config::config next;
    try {
      next = reload();
    } catch (const std::exception& e) {
      spdlog::error("SIGHUP: configuration refused, the running one is kept: {}", e.what());
      return;
    }
    const std::vector<std::string> changed = config::changed_keys(running, next);
    if (changed.empty()) {
      spdlog::info("SIGHUP: configuration unchanged");
      return;
    }
    const auto has = [&](std::string_view key) {
      return std::find(changed.begin(), changed.end(), key) != changed.end();
    };
    std::vector<std::string> applied;
    if (has("webhook.secrets")) {
      intake.set_secrets(next.webhook.secrets);
      running.webhook.secrets = next.webhook.secrets;
      applied.emplace_back("webhook.secrets");
      spdlog::info("SIGHUP: webhook.secrets: {} secret(s) accepted from now on",
                   next.webhook.secrets.size());
    }
    if (has("log.level")) {
      ops::set_log_level(next.log.level);
      running.log.level = next.log.level;
      applied.emplace_back("log.level");
    }
    if (!archiving && has("certn.api_key") && !next.certn.api_key.empty()) {
      start_archiving(next, changed, applied);
    } else if (archiving) {
      for (const std::string& key : archiving->apply_reload(next, changed)) {
        applied.push_back(key);
        if (key == "certn.api_key") {
          running.certn.api_key = next.certn.api_key;
        } else if (key == "certn.api_key_created") {
          running.certn.api_key_created = next.certn.api_key_created;
        } else if (key == "storage.s3.access_key_id") {
          running.storage.s3.access_key_id = next.storage.s3.access_key_id;
        } else if (key == "storage.s3.secret_access_key") {
          running.storage.s3.secret_access_key = next.storage.s3.secret_access_key;
        }
      }
    }
    std::vector<std::string> pending;
    for (const std::string& key : changed) {
      if (std::find(applied.begin(), applied.end(), key) == applied.end()) {
        pending.push_back(key);
      }
    }
    const auto joined = [](const std::vector<std::string>& keys) {
      std::string out;
      for (const std::string& key : keys) {
        out += (out.empty() ? "" : ", ") + key;
      }
      return out;
    };
    if (!applied.empty()) {
      spdlog::info("SIGHUP: applied {}", joined(applied));
    }
    if (!pending.empty()) {
      spdlog::warn("SIGHUP: changed, but applies only at the next restart: {}", joined(pending));
    }
  };

  std::function<void()> wait_for_reload = [&] {
    reload_signal.async_wait([&](const error_code& ec, int) {
      if (ec || stopping) {
        return;
      }
      if (tls) {
        try {
          tls->reload();
          spdlog::info("SIGHUP: TLS certificate and key re-read");
        } catch (const std::exception& e) {
          spdlog::error("SIGHUP: keeping the previous TLS certificate: {}", e.what());
        }
      }
      if (reload) {
        reload_configuration();
      }
      wait_for_reload();
    });
  };
  wait_for_reload();

  std::function<void()> ping;
  if (const auto interval = ops::watchdog_ping_interval()) {
    // Pinged from the io thread, so a stuck event loop stops the pings and systemd restarts us.
    ping = [&, interval = *interval] {
      ops::notify_watchdog();
      watchdog.expires_after(interval);
      watchdog.async_wait([&](const error_code& ec) {
        if (!ec && !stopping) {
          ping();
        }
      });
    };
    ping();
  }

  io.run();
  // Calls still out (the database stopped answering during the drain) refer to the pipeline's
  // objects: they end before the pipeline is destroyed.
  for (db::pool* each : lanes) {
    each->stop();
  }
  return exit_code;
}

}  // namespace archiver::service
