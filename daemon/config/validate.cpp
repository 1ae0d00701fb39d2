// Validation: the rules a loaded configuration must meet, each failure one config_error naming
// the key; also require_serve_settings() and parse_host_port().
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "config/detail.hpp"
#include "encoding/encoding.hpp"

namespace archiver::config::detail {

namespace {

constexpr std::int64_t kib = 1024;
constexpr std::int64_t mib = 1024 * 1024;
// Generous, but keeps deadlines far away from time_point overflow.
constexpr std::int64_t max_timeout_ms = 24 * 60 * 60 * 1000;

constexpr std::string_view log_levels[] = {"trace", "debug", "info",    "warn",
                                           "error", "critical", "off"};

void check_range(const std::string& key, std::int64_t value, std::int64_t min, std::int64_t max) {
  if (value < min || value > max) {
    throw config_error(key, "must be between " + std::to_string(min) + " and " +
                                std::to_string(max) + ", got " + std::to_string(value));
  }
}

void check_size(const std::string& key, std::size_t value, std::int64_t min, std::int64_t max) {
  // Values came from non-negative int64s (or defaults), so the cast is lossless.
  check_range(key, static_cast<std::int64_t>(value), min, max);
}

bool has_space_or_control(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
  });
}

// An absolute http(s) URL with a host; the daemon's client does the real parsing later.
void check_http_url(const std::string& key, const std::string& value) {
  std::string_view rest = value;
  if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    throw config_error(key, "expected an http:// or https:// URL, got " + quote_value(value));
  }
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty() || has_space_or_control(value)) {
    throw config_error(key, "expected an http:// or https:// URL with a host, got " +
                                quote_value(value));
  }
}

void check_readable(const std::string& key, const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw config_error(key, "cannot read " + quote_value(path) + ": " +
                                std::generic_category().message(errno));
  }
  // A read catches directories, which open() accepts.
  char byte = 0;
  const ssize_t n = ::read(fd, &byte, 1);
  const int saved = errno;
  ::close(fd);
  if (n < 0) {
    throw config_error(key, "cannot read " + quote_value(path) + ": " +
                                std::generic_category().message(saved));
  }
}

void validate_server(const server_settings& s) {
  parse_host_port("server.listen", s.listen);
  if (!s.admin_listen.empty()) {
    parse_host_port("server.admin_listen", s.admin_listen);
  }
  if (!s.webhook_path.starts_with('/') || s.webhook_path.find_first_of("?#") != std::string::npos ||
      has_space_or_control(s.webhook_path)) {
    throw config_error("server.webhook_path",
                       "expected an absolute path without spaces, '?' or '#', got " +
                           quote_value(s.webhook_path));
  }
  check_size("server.max_body_bytes", s.max_body_bytes, 1, 16 * mib);
  check_size("server.max_header_bytes", s.max_header_bytes, 1 * kib, 1 * mib);
  check_size("server.max_uri_bytes", s.max_uri_bytes, 256,
             static_cast<std::int64_t>(s.max_header_bytes));
  check_size("server.max_connections", s.max_connections, 1, std::numeric_limits<int>::max());
  check_size("server.max_requests_per_connection", s.max_requests_per_connection, 1,
             std::numeric_limits<int>::max());
  check_range("server.header_timeout_ms", s.header_timeout.count(), 1, max_timeout_ms);
  check_range("server.body_timeout_ms", s.body_timeout.count(), 1, max_timeout_ms);
  check_range("server.idle_timeout_ms", s.idle_timeout.count(), 1, max_timeout_ms);
  check_range("server.shutdown_timeout_ms", s.shutdown_timeout.count(), 1, max_timeout_ms);
  if (s.tls_cert_file.empty() != s.tls_key_file.empty()) {
    const bool cert_missing = s.tls_cert_file.empty();
    throw config_error(cert_missing ? "server.tls_cert_file" : "server.tls_key_file",
                       std::string("must be set when ") +
                           (cert_missing ? "server.tls_key_file" : "server.tls_cert_file") +
                           " is set");
  }
  if (!s.tls_cert_file.empty()) {
    check_readable("server.tls_cert_file", s.tls_cert_file);
    check_readable("server.tls_key_file", s.tls_key_file);
  }
}

void validate_webhook(const webhook_settings& w) {
  for (std::size_t i = 0; i < w.secrets.size(); ++i) {
    if (w.secrets[i].empty()) {
      throw config_error("webhook.secrets", "secret number " + std::to_string(i + 1) + " is empty");
    }
  }
  check_range("webhook.timestamp_tolerance_seconds", w.timestamp_tolerance.count(), 1, 86'400);
  check_size("webhook.max_challenge_bytes", w.max_challenge_bytes, 1, 64 * kib);
  check_range("webhook.coalesce_seconds", w.coalesce.count(), 0, 300);
  check_range("webhook.keep_events_days", w.keep_events_days, 0, 36'500);
  check_range("webhook.store_timeout_ms", w.store_timeout.count(), 100, 600'000);
  check_range("webhook.max_events_per_commit", w.max_events_per_commit, 1, 1'000);
  check_range("webhook.concurrent_commits", w.concurrent_commits, 1, 64);
}

void validate_certn(const certn_settings& c) {
  check_http_url("certn.base_url", c.base_url);
  check_range("certn.requests_per_minute", c.requests_per_minute, 1, 100'000);
  check_range("certn.requests_per_day", c.requests_per_day, 0, 100'000'000);
  check_range("certn.live_reserve_percent", c.live_reserve_percent, 0, 90);
  if (!c.api_key_created.empty() && !encoding::parse_utc_day(c.api_key_created)) {
    throw config_error(
        "certn.api_key_created",
        "expected the key's creation date as YYYY-MM-DD, got " + quote_value(c.api_key_created));
  }
  if (!c.ca_file.empty()) {
    check_readable("certn.ca_file", c.ca_file);
  }
  for (const std::string& host : c.download_hosts) {
    if (host.empty() || has_space_or_control(host)) {
      throw config_error("certn.download_hosts",
                         "expected host names or globs such as \"*.certn.co\", got " +
                             quote_value(host));
    }
  }
}

void validate_storage(const storage_settings& s) {
  if (s.backend == "filesystem") {
    if (s.path.empty()) {
      throw config_error("storage.path", "required when storage.backend is \"filesystem\"");
    }
  } else if (s.backend == "s3") {
    if (s.s3.bucket.empty()) {
      throw config_error("storage.s3.bucket", "required when storage.backend is \"s3\"");
    }
    if (s.s3.region.empty()) {
      throw config_error("storage.s3.region", "required when storage.backend is \"s3\"");
    }
    if (!s.s3.endpoint.empty()) {
      check_http_url("storage.s3.endpoint", s.s3.endpoint);
    }
    // S3 allows 5 MiB to 5 GiB per part (the last may be smaller) and 10,000 parts.
    check_size("storage.s3.part_size_bytes", s.s3.part_size_bytes, 5LL << 20, 5LL << 30);
    check_size("storage.s3.multipart_threshold_bytes", s.s3.multipart_threshold_bytes, 5LL << 20,
               5LL << 30);
    check_size("storage.s3.max_parallel_parts", s.s3.max_parallel_parts, 1, 64);
    check_range("storage.s3.timeout_ms", s.s3.timeout.count(), 1000, 86'400'000);
    if (!s.s3.sse.empty() && s.s3.sse != "AES256" && s.s3.sse != "aws:kms") {
      throw config_error("storage.s3.sse",
                         "\"" + s.s3.sse + "\" is not one of \"\", \"AES256\", \"aws:kms\"");
    }
    if (!s.s3.sse_kms_key_id.empty() && s.s3.sse != "aws:kms") {
      throw config_error("storage.s3.sse_kms_key_id", "needs storage.s3.sse = \"aws:kms\"");
    }
    if (!s.s3.object_lock_mode.empty() && s.s3.object_lock_mode != "GOVERNANCE" &&
        s.s3.object_lock_mode != "COMPLIANCE") {
      throw config_error(
          "storage.s3.object_lock_mode",
          "\"" + s.s3.object_lock_mode + "\" is not one of \"\", \"GOVERNANCE\", \"COMPLIANCE\"");
    }
    // S3 takes any future date; more than a century is a typo (and irreversible in COMPLIANCE).
    check_range("storage.s3.object_lock_days", s.s3.object_lock_days, 1, 36'500);
    if (!s.s3.ca_file.empty()) {
      check_readable("storage.s3.ca_file", s.s3.ca_file);
    }
  } else {
    throw config_error("storage.backend",
                       "expected one of filesystem, s3; got " + quote_value(s.backend));
  }
}

void validate_archive(const archive_settings& a) {
  for (const std::string& status : a.on_statuses) {
    const bool ok = !status.empty() && std::all_of(status.begin(), status.end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || c == '_';
    });
    if (!ok) {
      throw config_error("archive.on_statuses",
                         "expected upper-case statuses such as \"COMPLETE\", got " +
                             quote_value(status));
    }
  }
}

}  // namespace

void validate(const config& c) {
  validate_server(c.server);
  validate_webhook(c.webhook);
  validate_certn(c.certn);
  if (c.database.url.empty()) {
    // An empty file (systemd's default when /etc/certn-archiver/database-url is missing) must not
    // mean libpq's silent defaults; "postgresql://" asks for those explicitly.
    throw config_error("database.url",
                       "empty: set database.url or database.url_file (\"postgresql://\" for "
                       "libpq's defaults)");
  }
  check_range("database.pool_size", static_cast<std::int64_t>(c.database.pool_size), 1, 256);
  check_range("database.intake_pool_size", static_cast<std::int64_t>(c.database.intake_pool_size),
              1, 256);
  check_range("database.queue_pool_size", static_cast<std::int64_t>(c.database.queue_pool_size), 1,
              256);
  check_range("database.connect_timeout_seconds", c.database.connect_timeout.count(), 1, 300);
  check_range("database.dead_connection_seconds", c.database.dead_connection_seconds, 0, 3600);
  check_range("database.statement_timeout_ms", c.database.statement_timeout.count(), 0,
              3'600'000);
  check_range("database.lock_timeout_ms", c.database.lock_timeout.count(), 0, 3'600'000);
  check_range("database.call_limit_ms", c.database.call_limit.count(), 0, 3'600'000);
  check_range("database.intake_statement_timeout_ms", c.database.intake_statement_timeout.count(),
              0, 3'600'000);
  check_range("database.queue_statement_timeout_ms", c.database.queue_statement_timeout.count(), 0,
              3'600'000);
  check_range("database.admin_statement_timeout_ms", c.database.admin_statement_timeout.count(), 0,
              3'600'000);
  validate_storage(c.storage);
  validate_archive(c.archive);
  check_range("records.purge_interval_seconds", c.records.purge_interval_seconds, 0, 7 * 86'400);
  check_range("records.purge_batch", c.records.purge_batch, 1, 100'000);
  check_range("records.audit_digest_interval_seconds", c.records.audit_digest_interval_seconds, 0,
              7 * 86'400);
  if (c.records.purge_approval != "single" && c.records.purge_approval != "two-person") {
    throw config_error("records.purge_approval",
                       "\"" + c.records.purge_approval + "\" is not \"single\" or \"two-person\"");
  }
  check_range("workers.concurrency", c.workers.concurrency, 1, 1024);
  check_range("workers.max_attempts", c.workers.max_attempts, 1, 1000);
  check_range("workers.lease_seconds", c.workers.lease_seconds, 5, 3600);
  check_range("workers.poll_interval_ms", c.workers.poll_interval.count(), 10, 600'000);
  check_range("workers.claim_batch", c.workers.claim_batch, 1, 1000);
  check_range("workers.backoff_base_seconds", c.workers.backoff_base.count(), 0, 86'400);
  check_range("workers.backoff_max_seconds", c.workers.backoff_max.count(),
              c.workers.backoff_base.count(), 7 * 86'400);
  check_range("workers.drain_timeout_seconds", c.workers.drain_timeout.count(), 0, 3600);
  check_range("workers.reconcile_interval_seconds", c.workers.reconcile_interval.count(), 0,
              7 * 86'400);
  check_range("workers.reconcile_full_interval_seconds", c.workers.reconcile_full_interval.count(),
              0, 30 * 86'400);
  check_range("workers.reconcile_lookback_days", c.workers.reconcile_lookback_days, 1, 3'650);
  check_range("workers.reconcile_recent_days", c.workers.reconcile_recent_days, 0,
              c.workers.reconcile_lookback_days);
  check_range("workers.reconcile_old_case_days", c.workers.reconcile_old_case_days,
              c.workers.reconcile_lookback_days, 36'500);
  check_range("workers.reconcile_recheck_open_seconds", c.workers.reconcile_recheck_open.count(), 0,
              30 * 86'400);
  check_range("workers.reconcile_recheck_old_seconds", c.workers.reconcile_recheck_old.count(), 0,
              365 * 86'400);
  check_range("workers.report_poll_delay_seconds", c.workers.report_poll_delay.count(), 1, 86'400);
  check_range("workers.keep_finished_days", c.workers.keep_finished_days, 1, 36'500);
  check_range("workers.priority_reserve_percent", c.workers.priority_reserve_percent, 0, 50);
  check_range("workers.priority_max_wait_seconds", c.workers.priority_max_wait.count(), 1,
              86'400);
  if (std::find(std::begin(log_levels), std::end(log_levels), c.log.level) ==
      std::end(log_levels)) {
    throw config_error("log.level",
                       "expected one of trace, debug, info, warn, error, critical, off; got " +
                           quote_value(c.log.level));
  }
}

}  // namespace archiver::config::detail

namespace archiver::config {

using detail::has_space_or_control;
using detail::quote_value;

void require_serve_settings(const config& cfg) {
  if (cfg.webhook.secrets.empty()) {
    throw config_error("webhook.secrets",
                       "at least one secret is required to serve (set webhook.secrets, "
                       "webhook.secrets_file or CERTN_ARCHIVER_WEBHOOK_SECRETS)");
  }
}

host_port parse_host_port(const std::string& key, const std::string& value) {
  const auto bad = [&](const std::string& why) -> config_error {
    return config_error(key, why + "; expected host:port (IPv6 as [::1]:8080), got " +
                                 quote_value(value));
  };
  std::string host;
  std::string_view port;
  if (value.starts_with('[')) {
    const std::size_t close = value.find(']');
    if (close == std::string::npos || close + 1 >= value.size() || value[close + 1] != ':') {
      throw bad("unterminated IPv6 address or missing port");
    }
    host = value.substr(1, close - 1);
    port = std::string_view(value).substr(close + 2);
  } else {
    const std::size_t colon = value.rfind(':');
    if (colon == std::string::npos) {
      throw bad("missing port");
    }
    host = value.substr(0, colon);
    port = std::string_view(value).substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      throw bad("IPv6 addresses need brackets");
    }
  }
  if (host.empty() || has_space_or_control(host) ||
      host.find_first_of("[]/@") != std::string::npos) {
    throw bad("bad host");
  }
  unsigned port_number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (port.empty() || port.size() > 5 || ec != std::errc{} || end != port.data() + port.size() ||
      port_number > 65535) {
    throw bad("bad port");
  }
  return host_port{std::move(host), static_cast<unsigned short>(port_number)};
}

}  // namespace archiver::config
