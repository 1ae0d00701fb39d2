// `certn-archiver doctor`: the checks, in the order an installation depends on them. Each finding
// becomes a line through the pure functions of service/doctor.hpp.
#include "service/doctor.hpp"

#include <unistd.h>

#include <iostream>
#include <pqxx/pqxx>
#include <string>

#include "config/config.hpp"
#include "db/migrations.hpp"
#include "db/pool.hpp"
#include "http/client.hpp"
#include "ops/host.hpp"
#include "service/certn_clients.hpp"
#include "service/cli_database.hpp"
#include "service/pipeline.hpp"
#include "service/service.hpp"
#include "storage/digest.hpp"
#include "storage/object_store.hpp"
#include "webhook/signature.hpp"

namespace archiver::service {

namespace {

using doctor::line;
using doctor::status;

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

line config_line(const config::config& cfg, const std::string& source) {
  try {
    config::require_serve_settings(cfg);
  } catch (const std::exception& e) {
    return {"config", status::fail, source + " loads, but serve would refuse it: " + e.what(),
            "fix the setting named"};
  }
  return {
      "config", status::ok,
      source + ": valid (storage " + cfg.storage.backend + ", Certn " + cfg.certn.base_url + ")",
      ""};
}

std::vector<line> database_lines(const config::config& cfg) {
  std::vector<line> out;
  try {
    const db::pool_limits limits = admin_limits(cfg);
    pqxx::connection conn(db::with_statement_limits(
        db::with_connect_timeout(cfg.database.url,
                                 static_cast<int>(cfg.database.connect_timeout.count())),
        limits.statement_timeout_ms, limits.lock_timeout_ms));
    pqxx::read_transaction tx(conn, "doctor");
    const std::string role = tx.exec1("SELECT current_user")[0].as<std::string>();
    const std::string version = tx.exec1("SHOW server_version")[0].as<std::string>();
    out.push_back(
        {"database", status::ok,
         "reachable: PostgreSQL " + version + ", database " + conn.dbname() + " as role " + role,
         ""});
    tx.commit();
    const db::schema_status schema = db::check_schema(conn);
    if (schema.database_version == 0) {
      out.push_back({"database schema", status::fail, "no schema (no migration applied)",
                     "run `certn-archiver migrate`"});
      return out;
    }
    if (!schema.current()) {
      out.push_back({"database schema", status::fail,
                     "at version " + std::to_string(schema.database_version) +
                         ", this build needs " + std::to_string(schema.expected_version),
                     "run `certn-archiver migrate`"});
    } else if (schema.database_version > schema.expected_version) {
      out.push_back({"database schema", status::warn,
                     "at version " + std::to_string(schema.database_version) +
                         ", newer than this build's " + std::to_string(schema.expected_version),
                     "upgrade certn-archiver to the release that migrated it"});
    } else {
      out.push_back({"database schema", status::ok,
                     "current (version " + std::to_string(schema.database_version) + ")", ""});
    }
    pqxx::read_transaction grants(conn, "doctor privileges");
    const pqxx::result rows = grants.exec(
        "SELECT c.relname, c.relkind::text, "
        "  CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'USAGE') END, "
        "  CASE WHEN c.relkind <> 'S' THEN has_table_privilege(c.oid, 'SELECT') END, "
        "  CASE WHEN c.relkind <> 'S' THEN has_table_privilege(c.oid, 'INSERT') END, "
        "  CASE WHEN c.relkind <> 'S' THEN has_table_privilege(c.oid, 'UPDATE') END, "
        "  CASE WHEN c.relkind <> 'S' THEN has_table_privilege(c.oid, 'DELETE') END "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'S') "
        "ORDER BY c.relname");
    std::vector<doctor::missing_privileges> missing;
    for (const auto& row : rows) {
      const std::string relation = row[0].as<std::string>();
      const char kind = row[1].as<std::string>().front();
      const auto has = [&](const std::string& privilege) {
        const int column = privilege == "USAGE"    ? 2
                           : privilege == "SELECT" ? 3
                           : privilege == "INSERT" ? 4
                           : privilege == "UPDATE" ? 5
                                                   : 6;
        return !row[column].is_null() && row[column].as<bool>();
      };
      doctor::missing_privileges lacking{relation, {}};
      for (const std::string& privilege : doctor::privileges_needed(relation, kind)) {
        if (!has(privilege)) {
          lacking.privileges.push_back(privilege);
        }
      }
      if (!lacking.privileges.empty()) {
        missing.push_back(std::move(lacking));
      }
    }
    out.push_back(doctor::privileges_check(missing, role));
  } catch (const pqxx::failure& e) {
    out.push_back({"database", status::fail, "unusable: " + first_line(e.what()),
                   "check database.url (host, port, database, user, password) and that "
                   "PostgreSQL accepts this host"});
  }
  return out;
}

awaitable<line> storage_line(asio::io_context& io, const config::config& cfg) {
  std::unique_ptr<storage::object_store> store;
  try {
    store = make_store(io, cfg.storage);
  } catch (const std::exception& e) {
    co_return line{"storage", status::fail, e.what(), "fix the storage.* setting named"};
  }
  const std::string where = store->describe();
  const std::string key = cfg.storage.prefix + "doctor/" + ops::host_name() + "-" +
                          std::to_string(::getpid()) + "-" +
                          storage::random_hex("the probe object's name") + ".probe";
  const std::string body = "certn-archiver doctor probe object, safe to delete\n";
  const std::string expected = storage::sha256_hex(body);
  const storage::object_protection unprotected;
  const storage::put_result put = co_await store->put_bytes(key, body, "text/plain", unprotected);
  if (put.failure) {
    co_return line{"storage", status::fail,
                   where + ": cannot write " + key + ": " + put.failure->message,
                   cfg.storage.backend == "s3"
                       ? "check storage.s3.bucket exists, the endpoint, region and credentials"
                       : "check that storage.path exists and this user may write there"};
  }
  const storage::read_result read = co_await store->read_digest(key);
  if (read.failure || read.digest.sha256_hex != expected) {
    co_return line{"storage", status::fail,
                   where + ": wrote " + key + " but read back " +
                       (read.failure ? read.failure->message
                                     : "other bytes (sha256 " + read.digest.sha256_hex + ")"),
                   "check the store: it does not return what it was given"};
  }
  const storage::remove_result removed = co_await store->remove(key);
  if (removed.failure) {
    co_return line{"storage", status::warn,
                   where + ": write and read back ok, but the probe object stays at " + key + ": " +
                       removed.failure->message,
                   cfg.storage.s3.object_lock_mode.empty()
                       ? "check the credentials may delete objects (the purge needs it)"
                       : "expected under Object Lock; it expires with the bucket's retention"};
  }
  co_return line{"storage", status::ok,
                 where + ": wrote, read back (sha256 matches) and deleted a probe object", ""};
}

awaitable<line> certn_line(asio::io_context& io, const config::config& cfg, db::pool& database) {
  if (cfg.certn.api_key.empty()) {
    co_return line{"certn", status::fail, "certn.api_key is not set: serve archives nothing",
                   "set certn.api_key or certn.api_key_file"};
  }
  try {
    certn_clients clients(io, cfg.certn, nullptr, &database);
    const certn::case_filter any;
    const certn::call_result<certn::case_page> page = co_await clients.api().list_cases(any, 1, 1);
    co_return doctor::certn_check(page.failure, cfg.certn.base_url);
  } catch (const std::exception& e) {
    co_return line{"certn", status::fail, e.what(), "check certn.base_url and certn.ca_file"};
  }
}

// The daemon behind `url` (the one Certn posts to): the challenge echoed, then one POST signed
// with each configured secret whose body is not an event.
awaitable<std::vector<line>> webhook_lines(asio::io_context& io, const config::config& cfg,
                                           const std::string& url) {
  std::vector<line> out;
  ssl::context tls(ssl::context::tls_client);
  tls.set_default_verify_paths();
  if (!cfg.certn.ca_file.empty()) {
    tls.load_verify_file(cfg.certn.ca_file);
  }
  tls.set_verify_mode(ssl::verify_peer);
  // The operator names the URL: any address, plain http too (a local test set-up).
  http::client client(io, http::destination_policy{true, true, {}}, &tls);
  http::request_options get;
  get.connect_timeout = std::chrono::seconds(10);
  get.total_timeout = std::chrono::seconds(20);
  const std::string token = storage::random_hex("the challenge token");
  const std::string separator = url.find('?') == std::string::npos ? "?" : "&";
  const std::string challenge_url = url + separator + "challenge=" + token;
  http::string_sink echo(4096);
  const http::fetch_result answered = co_await client.fetch(challenge_url, get, echo);
  if (answered.error != http::failure::none) {
    out.push_back({"webhook challenge", status::fail, "GET " + url + ": " + answered.message,
                   "check that the URL reaches this daemon (DNS, TLS certificate, proxy)"});
    co_return out;
  }
  if (answered.head.status != 200 || echo.data() != token) {
    out.push_back({"webhook challenge", status::fail,
                   "GET " + url + "?challenge=... answered " +
                       std::to_string(answered.head.status) + " without echoing the challenge",
                   "check that the URL's path is server.webhook_path and reaches this daemon"});
    co_return out;
  }
  out.push_back({"webhook challenge", status::ok, "GET " + url + " echoes Certn's challenge", ""});

  const std::string body = R"({"certn_archiver_doctor":"signature probe, not an event"})";
  const std::vector<std::string>& secrets = cfg.webhook.secrets;
  for (std::size_t i = 0; i < secrets.size(); ++i) {
    http::request_options post;
    post.method = "POST";
    post.body = body;
    post.connect_timeout = get.connect_timeout;
    post.total_timeout = get.total_timeout;
    post.headers.emplace_back("Content-Type", "application/json");
    switch (cfg.webhook.scheme) {
      case config::signature_scheme::certn_signature:
        post.headers.emplace_back(
            "Certn-Signature",
            webhook::sign_certn(secrets[i], body,
                                std::chrono::duration_cast<std::chrono::seconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count()));
        break;
      case config::signature_scheme::x_signature_base64:
        post.headers.emplace_back("X-Signature", webhook::sign_base64(secrets[i], body));
        break;
      case config::signature_scheme::auto_detect:
      case config::signature_scheme::x_signature_hex:
        post.headers.emplace_back("X-Signature", webhook::sign_hex(secrets[i], body));
        break;
    }
    http::string_sink ignored(64 * 1024);
    const http::fetch_result posted = co_await client.fetch(url, post, ignored);
    if (posted.error != http::failure::none) {
      out.push_back({"webhook signature", status::fail, "POST " + url + ": " + posted.message, ""});
      continue;
    }
    out.push_back(doctor::signature_check(posted.head.status, url, i, secrets.size()));
  }
  co_return out;
}

void print(const doctor::report& report, bool json) {
  std::cout << (json ? doctor::to_json(report) : doctor::to_text(report)) << std::flush;
}

}  // namespace

int doctor_config_error(const std::string& message, const doctor_request& request) {
  doctor::report report;
  report.lines.push_back({"config", status::fail, message, "fix the setting named"});
  print(report, request.json);
  return doctor::exit_code(report);
}

int run_doctor(const config::config& cfg, const doctor_request& request) {
  doctor::report report;
  report.lines.push_back(config_line(cfg, request.config_source));
  for (line& l : database_lines(cfg)) {
    report.lines.push_back(std::move(l));
  }
  asio::io_context io(1);
  // Only to charge the Certn call to the shared budget (as `cases` does); unusable is fine.
  db::pool database(cfg.database.url, 1, static_cast<int>(cfg.database.connect_timeout.count()),
                    admin_limits(cfg));
  std::exception_ptr escaped;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        report.lines.push_back(co_await storage_line(io, cfg));
        report.lines.push_back(co_await certn_line(io, cfg, database));
        report.lines.push_back(
            doctor::key_expiry_check(cfg.certn.api_key_created, std::chrono::system_clock::now()));
        if (!request.public_url) {
          report.lines.push_back({"webhook", status::skip,
                                  "no --public-url: the path from Certn to this daemon is not "
                                  "checked",
                                  "run doctor --public-url https://your.host/webhooks/certn"});
          co_return;
        }
        for (line& l : co_await webhook_lines(io, cfg, *request.public_url)) {
          report.lines.push_back(std::move(l));
        }
      },
      [&](std::exception_ptr error) {
        escaped = error;
        io.stop();  // idle pooled connections would keep run() going
      });
  io.run();
  if (escaped) {
    try {
      std::rethrow_exception(escaped);
    } catch (const std::exception& e) {
      report.lines.push_back({"doctor", status::fail, std::string("stopped: ") + e.what(), ""});
    }
  }
  print(report, request.json);
  return doctor::exit_code(report);
}

}  // namespace archiver::service
