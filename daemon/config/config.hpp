// The daemon's configuration: one TOML file, environment overrides and secret files, turned
// into one validated, immutable `config`. Every error names the key and what is wrong.
// Thread safety: no function here keeps state; any may run on any thread (from_environ() only
// while no thread changes the environment).
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace archiver::config {

// Thrown by load(): `key()` is the dotted key ("server.listen"), or "" for file-level errors.
// what() is one line fit for an operator: "server.listen: expected host:port, got \"x\"";
// control characters, in both, are written as \xNN.
class config_error : public std::runtime_error {
 public:
  config_error(std::string key, const std::string& message);
  const std::string& key() const noexcept { return key_; }

 private:
  std::string key_;
};

struct server_settings {
  std::string listen = "127.0.0.1:8080";  // host:port, IPv6 as [::1]:8080
  std::string webhook_path = "/webhooks/certn";
  std::size_t max_body_bytes = 64 * 1024;
  std::string admin_listen;  // empty: /healthz, /readyz, /metrics share `listen`
  std::string tls_cert_file;  // both set or both empty
  std::string tls_key_file;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_uri_bytes = 8 * 1024;
  std::size_t max_connections = 1024;
  std::size_t max_requests_per_connection = 1000;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{10'000};
  std::chrono::milliseconds idle_timeout{30'000};
  std::chrono::milliseconds shutdown_timeout{20'000};
};

// How webhook requests are signed. `auto`: the X-Signature MAC in whichever encoding its value
// has (hex, base64, base64url), else Certn-Signature; the others accept one form only.
enum class signature_scheme { auto_detect, x_signature_hex, x_signature_base64, certn_signature };

struct webhook_settings {
  std::vector<std::string> secrets;  // secret; any one matching accepts the request
  signature_scheme scheme = signature_scheme::auto_detect;
  std::chrono::seconds timestamp_tolerance{300};  // certn-signature (and auto's fallback to it)
  std::size_t max_challenge_bytes = 1024;
  // The jobs an event asks for about a case or a check wait this long, so that the burst of
  // events one change sends (the case's and each check's) costs one GET of the case.
  std::chrono::seconds coalesce{2};
  // Processed events older than this are deleted (hourly, in batches); unprocessed ones (their
  // job pending or dead) are kept. 0: kept forever.
  int keep_events_days = 90;
  // An event not stored within this long is answered 503 (Certn delivers it again); /readyz
  // uses the same limit for its database check.
  std::chrono::milliseconds store_timeout{5'000};
  // Events that arrive while every commit slot is busy are stored together,
  // up to this many per transaction (one WAL flush for the group). 1: a transaction per event.
  int max_events_per_commit = 64;
  // Commit groups in flight at once (at most database.intake_pool_size). Few and large beats
  // many and small: one group fills while the other commits (bench/intake measured 2 best).
  int concurrent_commits = 2;
};

struct certn_settings {
  std::string base_url = "https://api.sandbox.certn.co";
  std::string api_key;  // secret
  // The day the key was created, "YYYY-MM-DD" (UTC); Certn's keys expire 365 days later. Empty:
  // unknown (no expiry gauge, no warning).
  std::string api_key_created;
  // Names the account's shared rate limit and daily budget (with base_url) when several Certn
  // accounts share one database; "" is one account per base URL.
  std::string account;
  int requests_per_minute = 60;
  // The day's budget (UTC day), shared by every replica; 0: none. The reserve is the part only
  // live work may spend.
  int requests_per_day = 7000;
  int live_reserve_percent = 20;
  std::vector<std::string> download_hosts = {"*.amazonaws.com", "*.certn.co"};
  // For a local certn-sim or a test setup only: plain http, and loopback/private addresses.
  bool allow_plain_http = false;
  bool allow_special_addresses = false;
  std::string ca_file;  // extra trusted CA certificates (PEM); empty: the system store only
};

struct database_settings {
  std::string url = "postgresql:///certn_archiver";  // secret (may hold a password)
  std::size_t pool_size = 4;  // serve: the work lane's; the intake and queue lanes' are below
  std::size_t intake_pool_size = 4;
  std::size_t queue_pool_size = 2;
  std::chrono::seconds connect_timeout{5};
  // A connection whose server stops answering without closing it fails its calls within about
  // this long (TCP keepalives, tcp_user_timeout); 0 leaves the kernel's defaults (~15 min).
  int dead_connection_seconds = 20;
  // Limits on every statement of serve's connections (server-side; 0: none): a runaway query or a
  // lock held by a stuck session fails the call instead of holding a pool thread.
  std::chrono::milliseconds statement_timeout{60'000};
  std::chrono::milliseconds lock_timeout{15'000};
  // The same limit (lock waits capped by it too) for serve's other lanes: intake (storing an
  // event, /readyz) and the queue (claims, heartbeats, outcomes, housekeeping). Short, since an
  // answer is due (Certn's, within webhook.store_timeout_ms) or a lease runs out.
  std::chrono::milliseconds intake_statement_timeout{5'000};
  std::chrono::milliseconds queue_statement_timeout{10'000};
  // The operator commands' (status, jobs, verify, backfill, cases ...): long enough for a report
  // over many rows, bounded so that a command waiting on a lock or a runaway query ends.
  std::chrono::milliseconds admin_statement_timeout{300'000};
  // Client-side limit on one call of serve's (from submission to its end, queueing included):
  // past it the call's connection is broken, which also frees a thread from a server that
  // accepts bytes and never answers, where no server-side limit can act. 0: none.
  std::chrono::milliseconds call_limit{75'000};
};

struct s3_settings {
  std::string endpoint;
  std::string bucket;
  std::string region = "us-east-1";
  std::string access_key_id;      // secret
  std::string secret_access_key;  // secret
  bool path_style = false;
  // Objects larger than this go up as a multipart upload of part_size_bytes parts, at most
  // max_parallel_parts at once (each streamed from the staging file, never held in memory).
  std::size_t multipart_threshold_bytes = 64 * 1024 * 1024;
  std::size_t part_size_bytes = 16 * 1024 * 1024;
  std::size_t max_parallel_parts = 4;
  std::chrono::milliseconds timeout{300'000};  // one request, body included
  std::string ca_file;  // extra trusted CA certificates (PEM) for an https endpoint
  // Encryption at rest asked of the store for every new object: "" (the bucket's default),
  // "AES256" (SSE-S3) or "aws:kms" (SSE-KMS, with sse_kms_key_id or the account's default key).
  std::string sse;
  std::string sse_kms_key_id;
  // S3 Object Lock on every new object: "" (none), "GOVERNANCE" or "COMPLIANCE", retained until
  // the case's retain_until, or object_lock_days from the write while the case has none (open,
  // or kept forever). The bucket must have Object Lock enabled: serve refuses to start otherwise.
  std::string object_lock_mode;
  int object_lock_days = 365;
};

struct storage_settings {
  std::string backend = "filesystem";  // "filesystem" | "s3"
  std::string path = "/var/lib/certn-archiver/archive";
  std::string prefix;
  // Where objects bound for S3 are staged; empty: storage.path + "/.staging". (The filesystem
  // backend always stages in the object's own directory.)
  std::string staging_path;
  s3_settings s3;
};

// Whether new objects get S3 Object Lock (storage.s3.object_lock_mode on the s3 backend).
inline bool locks_objects(const storage_settings& storage) {
  return storage.backend == "s3" && !storage.s3.object_lock_mode.empty();
}

struct archive_settings {
  std::vector<std::string> on_statuses = {"COMPLETE", "CANCELLED"};
  bool generate_report = true;
  std::string report_language = "en-CA";
};

// Records management (issue 16). retention: "STATUS=PERIOD" entries and "default=PERIOD"
// (records/retention.hpp parses and checks them); none: every case is kept forever.
struct records_settings {
  std::vector<std::string> retention;
  // serve purges the cases whose retention has passed every this many seconds (0: never), at
  // most purge_batch cases a run.
  int purge_interval_seconds = 3600;
  int purge_batch = 100;
  // serve writes a digest of the audit trail's head to the archive every this many seconds
  // (0: never), which `audit verify` checks the trail against (records/audit.hpp).
  int audit_digest_interval_seconds = 3600;
  // "single" (one operator may purge a case ahead of its retention) or "two-person" (one
  // operator requests it, another approves it: records/erasure.hpp).
  std::string purge_approval = "single";
};

struct workers_settings {
  int concurrency = 4;
  int max_attempts = 10;
  int lease_seconds = 20;
  std::chrono::milliseconds poll_interval{2'000};  // fallback when no NOTIFY arrives
  int claim_batch = 8;            // jobs taken per claim
  std::chrono::seconds backoff_base{5};    // first retry delay; doubles per attempt, with jitter
  std::chrono::seconds backoff_max{3'600};
  std::chrono::seconds drain_timeout{20};  // SIGTERM: time for running jobs before release
  std::chrono::seconds reconcile_interval{900};  // 0: no periodic reconcile
  // Reconcile's listings (archive/policy.hpp reconcile_scope): the window of every case, the
  // recent cases in an archive status listed at every run, and open cases older than the window.
  std::chrono::seconds reconcile_full_interval{21'600};
  int reconcile_lookback_days = 30;
  int reconcile_recent_days = 3;
  int reconcile_old_case_days = 90;
  std::chrono::seconds reconcile_recheck_open{86'400};  // open cases outside the listing window
  std::chrono::seconds reconcile_recheck_old{604'800};  // ... ordered before old_case_days
  std::chrono::seconds report_poll_delay{60};  // first report-file check after generate-report
  int keep_finished_days = 30;    // finished jobs older than this are pruned
  // Priority classes (ops/priority.hpp): the share of workers and Certn turns kept for work
  // below live, and the wait after which anything goes first.
  int priority_reserve_percent = 10;
  std::chrono::seconds priority_max_wait{300};
};

// journal: straight to systemd-journald, with the record's ids as fields of their own.
enum class log_format { text, json, journal };

struct log_settings {
  std::string level = "info";  // trace|debug|info|warn|error|critical|off
  log_format format = log_format::text;
};

struct config {
  server_settings server;
  webhook_settings webhook;
  certn_settings certn;
  database_settings database;
  storage_settings storage;
  archive_settings archive;
  records_settings records;
  workers_settings workers;
  log_settings log;
};

// Environment variables as name -> value; tests pass their own, main passes from_environ().
using environment = std::map<std::string, std::string>;
// The process environment (`environ`) as a map; entries without '=' are skipped. Never throws
// except std::bad_alloc.
environment from_environ();

// Builds the configuration: defaults, then `file` (TOML) when given, then every
// CERTN_ARCHIVER_<SECTION>_<KEY> variable of `env`, then secret files (`<key>_file`, in the file or
// the environment; "${CREDENTIALS_DIRECTORY}" in such a path is expanded from `env`).
// Unknown keys, in the file or as CERTN_ARCHIVER_* variables, are errors.
// Throws config_error on any problem; never returns a config that failed validation.
config load(const std::optional<std::filesystem::path>& file, const environment& env);

// The dotted keys ("webhook.secrets", "server.listen") whose values differ between the two, in
// the key table's order: for a reload to say what changed, secrets by name only.
std::vector<std::string> changed_keys(const config& before, const config& after);

// What `serve` needs beyond load(): at least one webhook secret. Throws config_error.
void require_serve_settings(const config& cfg);

// Parses "host:port" / "[v6]:port". Throws config_error naming `key` when malformed.
struct host_port {
  std::string host;
  unsigned short port = 0;
};
host_port parse_host_port(const std::string& key, const std::string& value);

// The TOML spelling of `scheme` ("auto", "x-signature-hex", ...), a static string; never throws.
const char* to_string(signature_scheme scheme);

}  // namespace archiver::config
