#include "records/audit.hpp"

#include <pwd.h>
#include <simdjson.h>
#include <unistd.h>

#include <cstdlib>
#include <pqxx/pqxx>

#include "db/sql_array.hpp"
#include "encoding/json.hpp"
#include "ops/host.hpp"
#include "storage/digest.hpp"

namespace archiver::records {

namespace {

// "audit": the key of the advisory lock appenders take (ASCII, as db/migrations.hpp's).
constexpr std::int64_t audit_lock_key = 0x6175646974;

constexpr const char* entry_columns =
    "seq, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), actor, action, "
    "case_id, detail, prev_hash, hash";

audit_entry entry_of(const pqxx::row& row) {
  audit_entry entry;
  entry.seq = row[0].as<std::int64_t>();
  entry.at = row[1].as<std::string>();
  entry.actor = row[2].as<std::string>();
  entry.action = row[3].as<std::string>();
  entry.case_id = row[4].as<std::string>();
  entry.detail = row[5].as<std::string>();
  entry.prev_hash = row[6].as<std::string>();
  entry.hash = row[7].as<std::string>();
  return entry;
}

void add_field(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
  out += ';';
}

}  // namespace

std::string entry_hash(const audit_entry& entry) {
  std::string encoded;
  add_field(encoded, entry.prev_hash);
  add_field(encoded, std::to_string(entry.seq));
  add_field(encoded, entry.at);
  add_field(encoded, entry.actor);
  add_field(encoded, entry.action);
  add_field(encoded, entry.case_id);
  add_field(encoded, entry.detail);
  return storage::sha256_hex(encoded);
}

audit_entry append_audit(pqxx::transaction_base& tx, std::string_view actor,
                         std::string_view action, std::string_view case_id,
                         std::string_view detail) {
  tx.exec_params("SELECT pg_advisory_xact_lock($1)", audit_lock_key);
  const pqxx::row head = tx.exec1(
      "SELECT COALESCE(max(seq), 0), "
      "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
      "(SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1) FROM audit_log");
  audit_entry entry;
  entry.seq = head[0].as<std::int64_t>() + 1;
  entry.at = head[1].as<std::string>();
  entry.actor = actor;
  entry.action = action;
  entry.case_id = case_id;
  entry.detail = detail;
  entry.prev_hash = head[2].is_null() ? std::string(genesis_hash) : head[2].as<std::string>();
  entry.hash = entry_hash(entry);
  tx.exec_params0(
      "INSERT INTO audit_log (seq, at, actor, action, case_id, detail, prev_hash, hash) "
      "VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7, $8)",
      entry.seq, entry.at, entry.actor, entry.action, entry.case_id, entry.detail, entry.prev_hash,
      entry.hash);
  return entry;
}

bool append_audit_if_changed(pqxx::transaction_base& tx, std::string_view actor,
                             std::string_view action, std::string_view detail) {
  tx.exec_params("SELECT pg_advisory_xact_lock($1)", audit_lock_key);
  const pqxx::result last =
      tx.exec_params("SELECT detail FROM audit_log WHERE action = $1 ORDER BY seq DESC LIMIT 1",
                     std::string(action));
  if (!last.empty() && last[0][0].as<std::string>() == detail) {
    return false;
  }
  append_audit(tx, actor, action, "", detail);
  return true;
}

std::vector<audit_entry> list_audit(pqxx::transaction_base& tx, const audit_filter& filter) {
  const pqxx::result rows =
      tx.exec_params(std::string("SELECT * FROM (SELECT ") + entry_columns +
                         " FROM audit_log WHERE ($1::text IS NULL OR case_id = $1) "
                         "AND ($2::timestamptz IS NULL OR at >= $2::timestamptz) "
                         "ORDER BY seq DESC LIMIT $3) newest ORDER BY seq",
                     filter.case_id, filter.since, filter.limit);
  std::vector<audit_entry> entries;
  entries.reserve(rows.size());
  for (const auto& row : rows) {
    entries.push_back(entry_of(row));
  }
  return entries;
}

chain_check check_chain(const std::vector<audit_entry>& entries, std::int64_t prev_seq,
                        std::string_view prev_hash) {
  chain_check result;
  result.head_hash = prev_hash;
  for (const audit_entry& entry : entries) {
    std::string problem;
    if (entry.seq != prev_seq + 1) {
      problem = "expected seq " + std::to_string(prev_seq + 1) + " (a row is missing)";
    } else if (entry.prev_hash != result.head_hash) {
      problem = "prev_hash is not the hash of row " + std::to_string(prev_seq) +
                " (a row before it was changed or removed)";
    } else if (entry.hash != entry_hash(entry)) {
      problem = "hash does not match the row's contents (the row was changed)";
    }
    if (!problem.empty()) {
      result.first_bad_seq = entry.seq;
      result.problem = std::move(problem);
      return result;
    }
    ++result.rows;
    prev_seq = entry.seq;
    result.head_hash = entry.hash;
  }
  return result;
}

chain_check verify_chain(pqxx::transaction_base& tx) {
  constexpr int page = 10'000;
  chain_check total;
  total.head_hash = genesis_hash;
  std::int64_t last_seq = 0;
  for (;;) {
    const pqxx::result rows =
        tx.exec_params(std::string("SELECT ") + entry_columns +
                           " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                       last_seq, page);
    std::vector<audit_entry> entries;
    entries.reserve(rows.size());
    for (const auto& row : rows) {
      entries.push_back(entry_of(row));
    }
    chain_check part = check_chain(entries, last_seq, total.head_hash);
    total.rows += part.rows;
    total.head_hash = part.head_hash;
    if (!part.intact()) {
      total.first_bad_seq = part.first_bad_seq;
      total.problem = std::move(part.problem);
      return total;
    }
    if (entries.size() < static_cast<std::size_t>(page)) {
      return total;
    }
    last_seq = entries.back().seq;
  }
}

std::string command_actor() {
  std::string name;
  if (const passwd* user = ::getpwuid(::geteuid()); user != nullptr && user->pw_name != nullptr) {
    name = user->pw_name;
  } else {
    name = "uid " + std::to_string(::geteuid());
  }
  // sudo sets SUDO_USER for root; anyone else could set it to be someone else.
  const char* sudo_user = ::geteuid() == 0 ? std::getenv("SUDO_USER") : nullptr;
  if (sudo_user != nullptr && *sudo_user != '\0' && name != sudo_user) {
    return "user:" + std::string(sudo_user) + " (via sudo as " + name + ")";
  }
  return "user:" + name;
}

std::optional<audit_digest> chain_head(pqxx::transaction_base& tx) {
  const pqxx::result last = tx.exec(
      "SELECT seq, hash, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
      "FROM audit_log ORDER BY seq DESC LIMIT 1");
  if (last.empty()) {
    return std::nullopt;
  }
  return audit_digest{last[0][0].as<std::int64_t>(), last[0][1].as<std::string>(),
                      last[0][2].as<std::string>()};
}

std::string digest_json(const audit_digest& digest) {
  encoding::json_writer out;
  out.begin_object()
      .key("seq")
      .number(digest.seq)
      .key("hash")
      .value(digest.hash)
      .key("at")
      .value(digest.at)
      .end_object();
  return out.str() + "\n";
}

std::optional<audit_digest> parse_digest(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::object object;
  if (parser.parse(json.data(), json.size()).get(object) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  std::int64_t seq = 0;
  std::string_view hash;
  std::string_view at;
  if (object["seq"].get(seq) != simdjson::SUCCESS ||
      object["hash"].get(hash) != simdjson::SUCCESS || object["at"].get(at) != simdjson::SUCCESS ||
      seq <= 0 || hash.size() != 64) {
    return std::nullopt;
  }
  return audit_digest{seq, std::string(hash), std::string(at)};
}

std::vector<std::string> check_digests(const std::vector<audit_digest>& digests,
                                       const std::map<std::int64_t, std::string>& hashes,
                                       std::int64_t last_seq) {
  std::vector<std::string> problems;
  for (const audit_digest& digest : digests) {
    const auto row = hashes.find(digest.seq);
    const std::string where = "the digest of seq " + std::to_string(digest.seq) + " (" + digest.at +
                              ", hash " + digest.hash.substr(0, 12) + "...)";
    if (row == hashes.end()) {
      problems.push_back(where + " names a row the trail no longer has" +
                         (digest.seq > last_seq
                              ? " (it ends at seq " + std::to_string(last_seq) + ": cut short)"
                              : std::string()));
    } else if (row->second != digest.hash) {
      problems.push_back(where + " does not match the row, whose hash is now " +
                         row->second.substr(0, 12) + "...");
    }
  }
  return problems;
}

std::map<std::int64_t, std::string> hashes_of(pqxx::transaction_base& tx,
                                              const std::vector<std::int64_t>& seqs) {
  std::map<std::int64_t, std::string> hashes;
  for (const auto& row :
       tx.exec_params("SELECT seq, hash FROM audit_log WHERE seq = ANY($1::bigint[])",
                      db::array_literal(seqs))) {
    hashes.emplace(row[0].as<std::int64_t>(), row[1].as<std::string>());
  }
  return hashes;
}

std::string daemon_actor() {
  return "daemon:" + ops::host_name() + ":" + std::to_string(::getpid());
}

std::string to_json(const audit_entry& entry) {
  encoding::json_writer out;
  out.begin_object();
  out.key("seq").number(entry.seq);
  out.key("at").value(entry.at);
  out.key("actor").value(entry.actor);
  out.key("action").value(entry.action);
  out.key("case_id").value(entry.case_id);
  out.key("detail").value(entry.detail);
  out.key("prev_hash").value(entry.prev_hash);
  out.key("hash").value(entry.hash);
  out.end_object();
  return out.str();
}

}  // namespace archiver::records
