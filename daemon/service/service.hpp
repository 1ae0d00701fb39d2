// The daemon's commands, wired from the parts: `serve` (listeners, database pool, signals,
// systemd notification, drain) and `migrate`. Each returns the process exit code.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "certn/api.hpp"
#include "config/config.hpp"

namespace archiver::service {

// Every command's exit status, as `--help` lists them: 0 done, 1 failed, 2 bad usage.
inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

// Runs until SIGTERM or SIGINT, then drains and returns 0. Start-up failures (database
// unreachable, schema behind, address in use) are logged and return 1. On SIGHUP it re-reads the
// TLS certificate and, through `reload` (which loads and checks the configuration again, or
// throws), applies what can change while running: webhook.secrets, certn.api_key,
// certn.api_key_created, storage.s3 credentials and log.level; it logs the keys that changed,
// never their values, and keeps the running configuration when the new one is refused.
int serve(const config::config& cfg, const std::function<config::config()>& reload = {});

// Applies missing migrations and prints what it did; returns 0, or 1 on failure.
int migrate(const config::config& cfg);

// `certn-archiver cases <endpoint>`: one Cases API call, its answer as JSON on stdout.
struct cases_request {
  std::string endpoint;  // list, get, cancel, generate-report, report-file, supplementary-files,
                         // supplementary-information, order, order-package
  std::string id;
  certn::case_filter filter;     // list
  int page = 1;                  // list
  int page_size = 10;            // list
  bool all_pages = false;        // list: every page, results as one JSON array
  std::string language;          // generate-report
  std::string download_path;     // report-file: save the PDF there
  std::string order_json_file;   // order: a file, or "-" for standard input
  certn::package_order package;  // order-package
};

// `certn-archiver doctor`: checks the installation end to end (service/doctor.hpp): the
// configuration, the database (reachable, schema, privileges), the object store (a probe object
// written, read back and deleted), Certn (one GET /cases/, the key's expiry) and, with
// public_url, the webhook path (challenge, and a signed POST per secret that is not an event).
// Prints one line per check, or JSON. Returns 0 when nothing failed, else 1.
struct doctor_request {
  std::optional<std::string> public_url;
  bool json = false;
  std::string config_source;  // for the config line: the file, or "built-in defaults"
};
int run_doctor(const config::config& cfg, const doctor_request& request);
// The same report when the configuration cannot even be loaded: one failing line. Returns 1.
int doctor_config_error(const std::string& message, const doctor_request& request);

// `certn-archiver copy-secrets --from DIR --to DIR`, for the systemd unit (as root, at start and
// on reload): copies webhook-secrets, certn-api-key and database-url from `from` into `to` (the
// service's RuntimeDirectory), owned by `to`'s owner, mode 0400, each replaced atomically; a
// missing file becomes an empty value. s3-access-key-id and s3-secret-access-key are copied when
// present. Returns 0, or 1 naming the file that failed (files before it are already replaced).
int copy_secrets(const std::string& from, const std::string& to);

// Returns 0 on success; 1 when the call failed (Certn's code and detail on stderr); 2 when the
// configuration lacks what the call needs (certn.api_key).
int cases(const config::config& cfg, const cases_request& request);

// `certn-archiver probe`: read-only calls (one page of cases, one case with its supplementary
// information and files listing, a report file when asked) and, for each answer, which accepted
// name matched each field, what is missing, unknown keys, and whether the pipeline could archive
// it. Never orders, cancels or generates; never opens the database or the archive.
struct probe_request {
  std::optional<std::string> case_id;         // else the first closed case listed, else the first
  std::optional<std::string> report_file_id;  // also GET /cases/report-files/{id}/
  int page_size = 5;
  bool json = false;  // one JSON document instead of text
};

// Returns 0 when every answer can be archived; 1 when one cannot or a call failed; 2 when
// certn.api_key is missing or an id is malformed.
int probe(const config::config& cfg, const probe_request& request);

// The environment probe loads its configuration from: the secrets of sections it does not use
// (database.url, webhook.secrets, storage.s3 keys) set to a placeholder, so that their files are
// never read and an unreachable or unconfigured database does not matter.
config::environment probe_environment(config::environment env);

// `certn-archiver status`: counts of events, jobs and artifacts, as a table or (json) one JSON
// object (queue::to_json(status_counts)). Returns 0, or 1 when the database fails.
int status(const config::config& cfg, bool json);

// `certn-archiver jobs <action>`: the operator's view of the job queue (queue/admin.hpp).
struct jobs_request {
  std::string action;                // list, show, retry, cancel, prune
  std::optional<std::string> state;  // list
  std::optional<std::string> kind;   // list
  int limit = 50;                    // list
  bool json = false;                 // list, show
  std::int64_t id = 0;               // show, retry, cancel
  bool all_dead = false;             // retry: every dead job instead of `id`
  int older_than_days = 0;           // prune
};

// Returns 0 on success; 1 when the job does not exist, cannot take the action (retry of a
// running job, cancel of a finished one) or the database fails.
int jobs(const config::config& cfg, const jobs_request& request);

// `certn-archiver backfill`: a sync_case job for every case the Cases API lists for the period.
struct backfill_request {
  std::string since;                  // ISO 8601 date or date-time: order_timeframe_after
  std::optional<std::string> until;   // order_timeframe_before
  std::vector<std::string> statuses;  // overall_status filter, any of
  bool pause = false;   // instead of listing: pause bulk work (every replica, until resumed)
  bool resume = false;  // instead of listing: resume it
};

// Lists the period's cases and enqueues a bulk sync_case for each, after printing an estimate of
// the Certn calls and days it takes at the configured budget. Returns 0 when every page was
// listed and enqueued (or the pause/resume was done); 1 when a call or the database failed (what
// was enqueued stays); 2 for a malformed date, a missing --since or certn.api_key.
int backfill(const config::config& cfg, const backfill_request& request);

// `certn-archiver verify [--case ID]`: reads back every recorded object (or one case's) and
// compares its sha256 and size with the database; prints each mismatch as found, then a summary,
// or (json) one JSON object at the end: store, objects, ok, ok_bytes, problems [{key, problem,
// detail}]. Progress on a terminal. Returns 0 when all match, 1 on any mismatch, missing or
// unreadable object, or when the database cannot be read.
int verify(const config::config& cfg, const std::string& case_id, bool json = false);

// `certn-archiver lock-probe [--json]`: whether the S3 store enforces Object Lock, found by trying
// (storage::s3_store::probe_object_lock): one line per finding, then the verdict. Returns 0 when
// the bucket has Object Lock enabled and a locked version could not be deleted; 1 otherwise; 2
// when storage.backend is not s3.
int lock_probe(const config::config& cfg, bool json);

// `certn-archiver export --case ID --out FILE.zip|DIR [--all-versions]`: the case as a BagIt bag
// (records/bag.hpp): its current artifacts (or every version), each re-read from the store and
// checked against its recorded sha256 and size, with bagit.txt, bag-info.txt (Payload-Oxum),
// manifest-sha256.txt and tagmanifest-sha256.txt; audited. Never replaces a file or a non-empty
// directory. Returns 0; 1 on any mismatch or failure (nothing is left behind).
struct export_request {
  std::string case_id;
  std::string out;
  bool all_versions = false;
};
int export_case(const config::config& cfg, const export_request& request);

// `certn-archiver purge [--case ID --reason TEXT] [--execute] [--limit N]`: the cases whose
// retention date has passed (up to `limit`), or one case ahead of its date (an erasure request,
// which needs a reason), purged as records/purger.hpp does; a dry run unless `execute`. Under
// records.purge_approval = "two-person", `--case --reason --execute` only records the request,
// and `--case --approve --execute` by another operator approves it and purges
// (records/erasure.hpp). Returns 0; 1 when a case is not purged (held, open, ...), an object
// could not be deleted, or an approval is refused; 2 when --case comes without --reason, or
// --approve without --case or two-person approval.
struct purge_request {
  std::string case_id;
  std::string reason;
  bool approve = false;
  bool execute = false;
  int limit = 100;
};
int purge(const config::config& cfg, const purge_request& request);

// `certn-archiver hold --case ID --reason TEXT` (or `release`): places (releases) a legal hold,
// with an audit row naming the OS user (records/holds.hpp). Returns 0; 1 when the case is already
// held (hold) or not held (release), or the database fails.
struct hold_request {
  bool release = false;
  std::string case_id;
  std::string reason;
};
int hold(const config::config& cfg, const hold_request& request);

// `certn-archiver cases list --held`: the legal holds in force, as one JSON array (as the other
// `cases` commands print); from the database, not Certn. Returns 0, or 1 when the database fails.
int list_held(const config::config& cfg);

// `certn-archiver audit [--case ID] [--since D] [--limit N] [--json]`: the audit trail, oldest
// first; `audit verify`: re-computes its hash chain. Returns 0; 1 when the chain is broken or the
// database fails.
struct audit_request {
  bool verify = false;
  std::optional<std::string> case_id;
  std::optional<std::string> since;
  int limit = 1000;
  bool json = false;
};
int audit(const config::config& cfg, const audit_request& request);

}  // namespace archiver::service
