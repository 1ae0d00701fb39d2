// The key table: every settable key, the member it sets, its environment variable name, and
// how the TOML spelling of an enum becomes its value.
#include "config/detail.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace archiver::config::detail {

namespace {

constexpr std::pair<signature_scheme, std::string_view> scheme_names[] = {
    {signature_scheme::auto_detect, "auto"},
    {signature_scheme::x_signature_hex, "x-signature-hex"},
    {signature_scheme::x_signature_base64, "x-signature-base64"},
    {signature_scheme::certn_signature, "certn-signature"},
};

constexpr std::pair<log_format, std::string_view> format_names[] = {
    {log_format::text, "text"},
    {log_format::json, "json"},
    {log_format::journal, "journal"},
};

template <typename Enum, std::size_t N>
void set_enum(const std::string& key, std::string_view text,
              const std::pair<Enum, std::string_view> (&names)[N], Enum& out) {
  std::string expected;
  for (const auto& [value, name] : names) {
    if (name == text) {
      out = value;
      return;
    }
    expected += (expected.empty() ? "" : ", ") + std::string(name);
  }
  throw config_error(key, "expected one of " + expected + "; got " + quote_value(text));
}

// Upper case, with '.' as '_': the section part of an environment variable's name.
std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    } else if (c == '.') {
      c = '_';
    }
  }
  return out;
}

}  // namespace

std::vector<field> fields_of(config& c) {
  server_settings& sv = c.server;
  webhook_settings& wh = c.webhook;
  certn_settings& cn = c.certn;
  database_settings& db = c.database;
  storage_settings& st = c.storage;
  archive_settings& ar = c.archive;
  records_settings& rc = c.records;
  workers_settings& wk = c.workers;
  log_settings& lg = c.log;
  return {
      {"server", "listen", &sv.listen},
      {"server", "webhook_path", &sv.webhook_path},
      {"server", "max_body_bytes", &sv.max_body_bytes},
      {"server", "admin_listen", &sv.admin_listen},
      {"server", "tls_cert_file", &sv.tls_cert_file},
      {"server", "tls_key_file", &sv.tls_key_file},
      {"server", "max_header_bytes", &sv.max_header_bytes},
      {"server", "max_uri_bytes", &sv.max_uri_bytes},
      {"server", "max_connections", &sv.max_connections},
      {"server", "max_requests_per_connection", &sv.max_requests_per_connection},
      {"server", "header_timeout_ms", &sv.header_timeout},
      {"server", "body_timeout_ms", &sv.body_timeout},
      {"server", "idle_timeout_ms", &sv.idle_timeout},
      {"server", "shutdown_timeout_ms", &sv.shutdown_timeout},
      {"webhook", "secrets", &wh.secrets, true},
      {"webhook", "signature_scheme", &wh.scheme},
      {"webhook", "timestamp_tolerance_seconds", &wh.timestamp_tolerance},
      {"webhook", "max_challenge_bytes", &wh.max_challenge_bytes},
      {"webhook", "coalesce_seconds", &wh.coalesce},
      {"webhook", "keep_events_days", &wh.keep_events_days},
      {"webhook", "store_timeout_ms", &wh.store_timeout},
      {"webhook", "max_events_per_commit", &wh.max_events_per_commit},
      {"webhook", "concurrent_commits", &wh.concurrent_commits},
      {"certn", "base_url", &cn.base_url},
      {"certn", "api_key", &cn.api_key, true},
      {"certn", "api_key_created", &cn.api_key_created},
      {"certn", "account", &cn.account},
      {"certn", "requests_per_minute", &cn.requests_per_minute},
      {"certn", "requests_per_day", &cn.requests_per_day},
      {"certn", "live_reserve_percent", &cn.live_reserve_percent},
      {"certn", "download_hosts", &cn.download_hosts},
      {"certn", "allow_plain_http", &cn.allow_plain_http},
      {"certn", "allow_special_addresses", &cn.allow_special_addresses},
      {"certn", "ca_file", &cn.ca_file},
      {"database", "url", &db.url, true},
      {"database", "pool_size", &db.pool_size},
      {"database", "intake_pool_size", &db.intake_pool_size},
      {"database", "queue_pool_size", &db.queue_pool_size},
      {"database", "connect_timeout_seconds", &db.connect_timeout},
      {"database", "dead_connection_seconds", &db.dead_connection_seconds},
      {"database", "statement_timeout_ms", &db.statement_timeout},
      {"database", "lock_timeout_ms", &db.lock_timeout},
      {"database", "call_limit_ms", &db.call_limit},
      {"database", "intake_statement_timeout_ms", &db.intake_statement_timeout},
      {"database", "queue_statement_timeout_ms", &db.queue_statement_timeout},
      {"database", "admin_statement_timeout_ms", &db.admin_statement_timeout},
      {"storage", "backend", &st.backend},
      {"storage", "path", &st.path},
      {"storage", "prefix", &st.prefix},
      {"storage", "staging_path", &st.staging_path},
      {"storage.s3", "endpoint", &st.s3.endpoint},
      {"storage.s3", "bucket", &st.s3.bucket},
      {"storage.s3", "region", &st.s3.region},
      {"storage.s3", "access_key_id", &st.s3.access_key_id, true},
      {"storage.s3", "secret_access_key", &st.s3.secret_access_key, true},
      {"storage.s3", "path_style", &st.s3.path_style},
      {"storage.s3", "multipart_threshold_bytes", &st.s3.multipart_threshold_bytes},
      {"storage.s3", "part_size_bytes", &st.s3.part_size_bytes},
      {"storage.s3", "max_parallel_parts", &st.s3.max_parallel_parts},
      {"storage.s3", "timeout_ms", &st.s3.timeout},
      {"storage.s3", "ca_file", &st.s3.ca_file},
      {"storage.s3", "sse", &st.s3.sse},
      {"storage.s3", "sse_kms_key_id", &st.s3.sse_kms_key_id},
      {"storage.s3", "object_lock_mode", &st.s3.object_lock_mode},
      {"storage.s3", "object_lock_days", &st.s3.object_lock_days},
      {"archive", "on_statuses", &ar.on_statuses},
      {"archive", "generate_report", &ar.generate_report},
      {"archive", "report_language", &ar.report_language},
      {"records", "retention", &rc.retention},
      {"records", "purge_interval_seconds", &rc.purge_interval_seconds},
      {"records", "purge_batch", &rc.purge_batch},
      {"records", "audit_digest_interval_seconds", &rc.audit_digest_interval_seconds},
      {"records", "purge_approval", &rc.purge_approval},
      {"workers", "concurrency", &wk.concurrency},
      {"workers", "max_attempts", &wk.max_attempts},
      {"workers", "lease_seconds", &wk.lease_seconds},
      {"workers", "poll_interval_ms", &wk.poll_interval},
      {"workers", "claim_batch", &wk.claim_batch},
      {"workers", "backoff_base_seconds", &wk.backoff_base},
      {"workers", "backoff_max_seconds", &wk.backoff_max},
      {"workers", "drain_timeout_seconds", &wk.drain_timeout},
      {"workers", "reconcile_interval_seconds", &wk.reconcile_interval},
      {"workers", "reconcile_full_interval_seconds", &wk.reconcile_full_interval},
      {"workers", "reconcile_lookback_days", &wk.reconcile_lookback_days},
      {"workers", "reconcile_recent_days", &wk.reconcile_recent_days},
      {"workers", "reconcile_old_case_days", &wk.reconcile_old_case_days},
      {"workers", "reconcile_recheck_open_seconds", &wk.reconcile_recheck_open},
      {"workers", "reconcile_recheck_old_seconds", &wk.reconcile_recheck_old},
      {"workers", "report_poll_delay_seconds", &wk.report_poll_delay},
      {"workers", "keep_finished_days", &wk.keep_finished_days},
      {"workers", "priority_reserve_percent", &wk.priority_reserve_percent},
      {"workers", "priority_max_wait_seconds", &wk.priority_max_wait},
      {"log", "level", &lg.level},
      {"log", "format", &lg.format},
  };
}

field* find_field(std::vector<field>& fields, std::string_view section, std::string_view name) {
  for (field& f : fields) {
    if (f.section == section && f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

std::string env_name(const field& f) {
  return std::string(env_prefix) + upper(f.section) + "_" + upper(f.name);
}

void set_enum_value(const std::string& key, std::string_view text, signature_scheme& out) {
  set_enum(key, text, scheme_names, out);
}

void set_enum_value(const std::string& key, std::string_view text, log_format& out) {
  set_enum(key, text, format_names, out);
}

}  // namespace archiver::config::detail

namespace archiver::config {

const char* to_string(signature_scheme scheme) {
  for (const auto& [value, name] : detail::scheme_names) {
    if (value == scheme) {
      return name.data();  // the names are string literals, so NUL-terminated
    }
  }
  return "unknown";
}

std::vector<std::string> changed_keys(const config& before, const config& after) {
  config a = before;
  config b = after;
  const std::vector<detail::field> old_fields = detail::fields_of(a);
  const std::vector<detail::field> new_fields = detail::fields_of(b);
  std::vector<std::string> changed;
  for (std::size_t i = 0; i < old_fields.size(); ++i) {
    const bool same = std::visit(
        [&](auto* old_value) {
          using pointer = decltype(old_value);
          return *old_value == *std::get<pointer>(new_fields[i].where);
        },
        old_fields[i].where);
    if (!same) {
      changed.push_back(old_fields[i].key());
    }
  }
  return changed;
}

}  // namespace archiver::config
