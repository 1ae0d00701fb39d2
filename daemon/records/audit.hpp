// The audit trail (table audit_log, migrations/0011_records.sql): who did what to which case,
// when and why, append-only and hash-chained so that a row changed or removed behind the
// trigger's back (by a superuser) is found by verify_chain.
//
// Each row's hash is sha256 over its fields and the previous row's hash (entry_hash); the first
// row's previous hash is genesis_hash. Appenders serialize on a transaction-level advisory lock,
// which also keeps seq gapless. Functions taking a transaction are called on a database thread;
// the pure ones are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <pqxx/transaction>
#include <string>
#include <string_view>
#include <vector>

namespace archiver::records {

inline constexpr std::string_view genesis_hash =
    "0000000000000000000000000000000000000000000000000000000000000000";

struct audit_entry {
  std::int64_t seq = 0;
  std::string at;  // UTC, microseconds: "2026-12-07T05:30:00.123456Z"
  std::string actor;
  std::string action;
  std::string case_id;  // empty when the action concerns no one case
  std::string detail;
  std::string prev_hash;
  std::string hash;
};

// The hash of `entry` chained to entry.prev_hash: lowercase hex of sha256 over prev_hash, seq,
// at, actor, action, case_id and detail, each written as "<byte length>:<bytes>;" so that no
// two different rows encode alike. Pure.
std::string entry_hash(const audit_entry& entry);

// Appends one row in `tx` (committed with it, so that an action and its audit row stand or fall
// together) and returns it. Holds the audit advisory lock until `tx` ends: keep such
// transactions short. REQUIRES: `tx` is READ COMMITTED (libpqxx's default), so that the last row
// it reads after taking the lock is the last one committed.
audit_entry append_audit(pqxx::transaction_base& tx, std::string_view actor,
                         std::string_view action, std::string_view case_id,
                         std::string_view detail);

// Appends `action` with `detail` unless the latest row of that action has the same detail: for
// settings recorded when they change (the retention policy at start-up). Returns whether it
// appended. Replicas starting together append one row between them.
bool append_audit_if_changed(pqxx::transaction_base& tx, std::string_view actor,
                             std::string_view action, std::string_view detail);

struct audit_filter {
  std::optional<std::string> case_id;
  std::optional<std::string> since;  // an ISO 8601 date or date-time PostgreSQL accepts
  int limit = 1000;                  // the newest `limit` rows, returned oldest first
};

std::vector<audit_entry> list_audit(pqxx::transaction_base& tx, const audit_filter& filter);

// What verify_chain found: `rows` checked; when broken, the first row that does not follow from
// the one before (`first_bad_seq`) and what is wrong with it.
struct chain_check {
  std::int64_t rows = 0;
  std::optional<std::int64_t> first_bad_seq;
  std::string problem;
  std::string head_hash;  // the last row's hash (genesis_hash when empty)
  bool intact() const { return !first_bad_seq.has_value(); }
};

// Checks that `entries` (consecutive rows, in seq order) continue a chain whose last row had
// `prev_seq` and `prev_hash`: seq one more each time, prev_hash the previous row's hash, hash
// as entry_hash computes it. Stops at the first row that does not. Pure.
chain_check check_chain(const std::vector<audit_entry>& entries, std::int64_t prev_seq,
                        std::string_view prev_hash);

// Re-reads the whole trail in seq order, in pages, and checks it with check_chain.
chain_check verify_chain(pqxx::transaction_base& tx);

// A digest of the chain's head, written to the archive (under Object Lock where configured) every
// records.audit_digest_interval_seconds, as SQL Server's ledger writes its database digests: a
// trail whose rows were rewritten, or cut from the end, by someone who can bypass the trigger
// and recompute the chain no longer matches the digests already written.
struct audit_digest {
  std::int64_t seq = 0;
  std::string hash;
  std::string at;  // the row's own time
  bool operator==(const audit_digest&) const = default;
};

// The last row as a digest; nullopt when the trail is empty.
std::optional<audit_digest> chain_head(pqxx::transaction_base& tx);

// {"seq":N,"hash":"...","at":"..."} and a newline: the same row always gives the same bytes, so
// replicas writing the same head write the same object. Pure.
std::string digest_json(const audit_digest& digest);

// The digest in `json`, or nullopt when it is not one (a field missing or of another type). Pure.
std::optional<audit_digest> parse_digest(std::string_view json);

// Compares digests with the trail: `hashes` holds the hash of each digest's row that exists
// (by seq), `last_seq` the trail's last row (0 when empty). One line per digest that does not
// match: its row is gone (cut from the end or removed) or has another hash. Pure.
std::vector<std::string> check_digests(const std::vector<audit_digest>& digests,
                                       const std::map<std::int64_t, std::string>& hashes,
                                       std::int64_t last_seq);

// The hashes of the rows numbered `seqs`, by seq (rows that do not exist are absent).
std::map<std::int64_t, std::string> hashes_of(pqxx::transaction_base& tx,
                                              const std::vector<std::int64_t>& seqs);

// The actor of an operator's command: "user:<name>" of the effective OS user, with the user who
// ran sudo when there is one ("user:alice (via sudo as root)"; SUDO_USER is believed only when
// the effective user is root, as sudo leaves it).
std::string command_actor();

// The actor of the daemon's own actions: "daemon:<host>:<pid>".
std::string daemon_actor();

// One JSON object per entry (for `audit --json`).
std::string to_json(const audit_entry& entry);

}  // namespace archiver::records
