#include "queue/queue.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <pqxx/pqxx>

#include "db/sql_array.hpp"

namespace archiver::queue {

namespace {

std::string id_array(const std::vector<lease_ref>& runs) {
  std::vector<std::int64_t> ids;
  for (const lease_ref& run : runs) {
    ids.push_back(run.id);
  }
  return db::array_literal(ids);
}

std::string token_array(const std::vector<lease_ref>& runs) {
  std::vector<std::int64_t> tokens;
  for (const lease_ref& run : runs) {
    tokens.push_back(run.token);
  }
  return db::array_literal(tokens);
}

// The runs, as (id, token) rows, for "(id, lease_token) IN (SELECT ...)" with $1 ids, $2 tokens.
constexpr const char* runs_given = "SELECT * FROM unnest($1::bigint[], $2::bigint[])";

double seconds_of(std::chrono::milliseconds delay) {
  return static_cast<double>(delay.count()) / 1000.0;
}

// The pending (queued or failed) job of (kind, key), locked, if any.
std::optional<std::int64_t> pending_successor(pqxx::work& tx, const std::string& kind,
                                              const std::string& key) {
  const pqxx::result row = tx.exec_params(
      "SELECT id FROM jobs WHERE kind = $1 AND key = $2 AND state IN ('queued', 'failed') "
      "FOR UPDATE",
      kind, key);
  if (row.empty()) {
    return std::nullopt;
  }
  return row[0][0].as<std::int64_t>();
}

// Ends running job `id` (kind, key, attempts) and hands its remaining work to the pending
// successor: the successor waits at least until `not_before`, inherits the attempt count (so that
// events arriving during a failing job cannot reset its retry budget) and the more urgent class
// of the two (live work merged into a queued bulk job stays live).
void merge_into(pqxx::work& tx, std::int64_t id, std::int64_t successor, int attempts,
                std::chrono::milliseconds not_before, const std::string& why) {
  // The successor that inherits the wait inherits its reason too (SET reads the old run_at), so
  // that what looks for that reason (queue::bring_forward) finds it.
  tx.exec_params(
      "UPDATE jobs SET last_error = CASE WHEN $5 <> '' AND "
      "  run_at < now() + make_interval(secs => $2) THEN $5 ELSE last_error END, "
      "run_at = GREATEST(run_at, now() + make_interval(secs => $2)), "
      "attempts = GREATEST(attempts, $3), "
      "priority = LEAST(priority, (SELECT priority FROM jobs WHERE id = $4)), "
      "updated_at = now() WHERE id = $1",
      successor, seconds_of(not_before), attempts, id, why);
  tx.exec_params(
      "UPDATE jobs SET state = 'cancelled', lease_owner = NULL, lease_expires = NULL, "
      "finished_at = now(), updated_at = now(), last_error = $2 WHERE id = $1",
      id, why + "; merged into pending job " + std::to_string(successor));
}

// Puts running job `row` back in line (`failed` after an error, `queued` when released), or
// merges it into a pending successor when one exists. Retries once when a successor is inserted
// between the check and the update (the unique index then refuses the update).
void requeue(pqxx::work& tx, std::int64_t id, const std::string& kind, const std::string& key,
             int attempts, const char* state, std::chrono::milliseconds delay,
             const std::string& error) {
  for (int round = 0; round < 2; ++round) {
    if (const auto successor = pending_successor(tx, kind, key)) {
      merge_into(tx, id, *successor, attempts, delay, error);
      return;
    }
    // A plain savepoint, not pqxx::subtransaction: with libpqxx 6.4 a failed exec_params inside
    // a subtransaction leaves the outer transaction aborted.
    tx.exec0("SAVEPOINT requeue");
    try {
      tx.exec_params0(
          "UPDATE jobs SET state = $2::job_state, attempts = $3, lease_owner = NULL, "
          "lease_expires = NULL, run_at = now() + make_interval(secs => $4), "
          "last_error = COALESCE($5, last_error), updated_at = now() WHERE id = $1",
          id, state, attempts, seconds_of(delay),
          error.empty() ? std::optional<std::string>{} : std::optional<std::string>{error});
      tx.exec0("RELEASE SAVEPOINT requeue");
      return;
    } catch (const pqxx::unique_violation&) {
      // A successor committed meanwhile: merge into it on the next round.
      tx.exec0("ROLLBACK TO SAVEPOINT requeue");
    }
  }
  throw std::runtime_error("job " + std::to_string(id) + ": could not requeue or merge");
}

}  // namespace

enqueue_outcome enqueue(pqxx::work& tx, const job_spec& job) {
  // ON CONFLICT against the partial unique index on pending jobs: a duplicate changes nothing but
  // may bring the pending job forward or raise its class. xmax = 0 tells a fresh row from an
  // updated one.
  const pqxx::result row = tx.exec_params(
      "INSERT INTO jobs (kind, key, payload, max_attempts, run_at, priority) "
      "VALUES ($1, $2, $3::jsonb, $4, now() + make_interval(secs => $5), $6) "
      "ON CONFLICT (kind, key) WHERE state IN ('queued', 'failed') "
      "DO UPDATE SET run_at = LEAST(jobs.run_at, EXCLUDED.run_at), "
      "  priority = LEAST(jobs.priority, EXCLUDED.priority) "
      "RETURNING (xmax = 0) AS inserted",
      job.kind, job.key, job.payload, job.max_attempts, static_cast<double>(job.delay.count()),
      ops::index_of(job.priority));
  tx.exec0(std::string("NOTIFY ") + notify_channel);
  return row[0][0].as<bool>() ? enqueue_outcome::enqueued : enqueue_outcome::already_pending;
}

namespace {

constexpr const char* enqueue_many_sql =
    "INSERT INTO jobs (kind, key, payload, max_attempts, run_at, priority) "
    "SELECT j.kind, j.key, j.payload::jsonb, j.max_attempts, "
    "  now() + make_interval(secs => j.delay), j.priority "
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::int[]) "
    "  AS j(kind, key, payload, max_attempts, delay, priority) "
    "ON CONFLICT (kind, key) WHERE state IN ('queued', 'failed') "
    "DO UPDATE SET run_at = LEAST(jobs.run_at, EXCLUDED.run_at), "
    "  priority = LEAST(jobs.priority, EXCLUDED.priority)";

}  // namespace

void enqueue_many(pqxx::work& tx, const std::vector<job_spec>& jobs) {
  // One row per (kind, key), in (kind, key) order: a statement may not update a row twice, and
  // concurrent transactions that take their rows' locks in one order cannot deadlock.
  std::map<std::pair<std::string, std::string>, job_spec> merged;
  for (const job_spec& job : jobs) {
    const auto [at, fresh] = merged.try_emplace({job.kind, job.key}, job);
    if (!fresh) {
      at->second.delay = std::min(at->second.delay, job.delay);
      at->second.priority = std::min(at->second.priority, job.priority);  // the more urgent
    }
  }
  if (merged.empty()) {
    return;
  }
  std::vector<std::string> kinds, keys, payloads;
  std::vector<std::int64_t> max_attempts, delays, priorities;
  bool due_now = false;
  for (const auto& [kind_key, job] : merged) {
    kinds.push_back(job.kind);
    keys.push_back(job.key);
    payloads.push_back(job.payload);
    max_attempts.push_back(job.max_attempts);
    delays.push_back(job.delay.count());
    priorities.push_back(ops::index_of(job.priority));
    due_now = due_now || job.delay.count() <= 0;
  }
  // Prepared (once per connection: libpqxx keeps the definition): intake runs it all the time.
  tx.conn().prepare("enqueue_many", enqueue_many_sql);
  tx.exec_prepared0("enqueue_many",
      db::array_literal(kinds), db::array_literal(keys), db::array_literal(payloads),
      db::array_literal(max_attempts), db::array_literal(delays), db::array_literal(priorities));
  if (due_now) {
    // One NOTIFY per transaction at most: Postgres serializes the commits of transactions that
    // notify (a global lock held through the WAL flush). Jobs not yet due are found by the
    // workers' polling, which a NOTIFY now could not spare them.
    tx.exec0(std::string("NOTIFY ") + notify_channel);
  }
}

std::vector<claimed_job> claim(pqxx::connection& conn, const std::string& owner, int limit,
                               std::chrono::seconds lease, int below_live) {
  pqxx::work tx(conn, "claim");
  auto jobs = claim(tx, owner, limit, lease, below_live);
  tx.commit();
  return jobs;
}

namespace {

// How many due jobs of each class the reserve's claim looks at for `limit` slots: enough to pass
// over those that other claims (each locking at most its own limit) or enqueues hold at the
// moment. Should more be held, the reserve takes fewer this time and the rest of the claim goes to
// the most urgent work; the next claim tries again.
int candidates_per_class(int limit) { return 2 * limit + 16; }

// The classes a claim may take from: those no operator paused. Read before the claiming
// statements and given to them as a constant list, whose rows the planner then estimates from the
// table's statistics. With NOT EXISTS against paused_classes inside the statement, it estimated
// the empty paused_classes at over a thousand rows, expected almost no due job to be left, and so
// scanned and sorted the whole backlog at each claim: 0.96 s with 300,000 jobs due.
std::vector<std::int64_t> open_classes(pqxx::work& tx) {
  std::vector<std::int64_t> open;
  const pqxx::result paused = tx.exec("SELECT priority FROM paused_classes");
  for (int p = 0; p < ops::priority_count; ++p) {
    const bool is_paused = std::any_of(paused.begin(), paused.end(),
                                       [p](const pqxx::row& row) { return row[0].as<int>() == p; });
    if (!is_paused) {
      open.push_back(p);
    }
  }
  return open;
}

// The most urgent due jobs of the open classes: one walk of jobs_due_idx (priority, run_at) in
// order, which stops at `limit`.
constexpr const char* claim_most_urgent_sql =
    "WITH due AS ("
    "  SELECT j.id FROM jobs j"
    "  WHERE j.state IN ('queued', 'failed') AND j.priority = ANY ($4::smallint[])"
    "    AND j.run_at <= now()"
    "    AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.kind = j.kind AND r.key = j.key"
    "                    AND r.state = 'running')"
    "  ORDER BY j.priority, j.run_at LIMIT $2 FOR UPDATE SKIP LOCKED) ";

// The oldest due jobs of the open classes below live, whatever their class. The index is in
// (priority, run_at) order, so each class's oldest few are read on their own (a walk of its part
// of jobs_due_idx that stops early, however long the backlog) and merged. The lock comes last,
// above that merge: it takes rows in claim order and stops at `limit`, rather than locking every
// class's candidates and hiding them from other replicas' claims meanwhile. A job claimed or
// changed since the candidates were read is checked again as it is locked: state, run_at and
// class (an enqueue may have raised it to live).
constexpr const char* claim_oldest_sql =
    "WITH candidate AS ("
    "  SELECT c.id FROM unnest($4::smallint[]) AS class(p)"
    "  CROSS JOIN LATERAL ("
    "    SELECT j.id FROM jobs j"
    "    WHERE j.state IN ('queued', 'failed') AND j.priority = class.p AND j.run_at <= now()"
    "      AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.kind = j.kind AND r.key = j.key"
    "                      AND r.state = 'running')"
    "    ORDER BY j.run_at LIMIT $5"
    "  ) AS c), "
    "due AS ("
    "  SELECT j.id FROM jobs j"
    "  WHERE j.id IN (SELECT id FROM candidate)"
    "    AND j.state IN ('queued', 'failed') AND j.priority = ANY ($4::smallint[])"
    "    AND j.run_at <= now()"
    "  ORDER BY j.run_at LIMIT $2 FOR UPDATE SKIP LOCKED) ";

constexpr const char* take_due_sql =
    "UPDATE jobs SET state = 'running', attempts = jobs.attempts + 1, lease_owner = $1, "
    "  lease_token = nextval('job_lease_tokens'), "
    "  lease_expires = now() + make_interval(secs => $3), updated_at = now() "
    "FROM due WHERE jobs.id = due.id "
    "RETURNING jobs.id, jobs.kind, jobs.key, jobs.payload::text, jobs.attempts, "
    "  jobs.max_attempts, jobs.priority, jobs.lease_token";

void read_claimed(const pqxx::result& rows, std::vector<claimed_job>& jobs) {
  for (const auto& row : rows) {
    claimed_job job;
    job.id = row[0].as<std::int64_t>();
    job.kind = row[1].as<std::string>();
    job.key = row[2].as<std::string>();
    job.payload = row[3].as<std::string>();
    job.attempt = row[4].as<int>();
    job.max_attempts = row[5].as<int>();
    job.priority = ops::priority_of(row[6].as<int>()).value_or(ops::priority::sync);
    job.lease_token = row[7].as<std::int64_t>();
    jobs.push_back(std::move(job));
  }
}

}  // namespace

std::vector<claimed_job> claim(pqxx::work& tx, const std::string& owner, int limit,
                               std::chrono::seconds lease, int below_live) {
  std::vector<claimed_job> jobs;
  if (limit <= 0) {
    return jobs;
  }
  const std::vector<std::int64_t> open = open_classes(tx);
  const auto lease_seconds = static_cast<double>(lease.count());
  // The reserve first; what it leaves (nothing below live is due) goes to the most urgent.
  std::vector<std::int64_t> open_below_live;
  std::copy_if(open.begin(), open.end(), std::back_inserter(open_below_live),
               [](std::int64_t p) { return p != ops::index_of(ops::priority::live); });
  const int reserve = std::min(below_live, limit);
  if (reserve > 0 && !open_below_live.empty()) {
    read_claimed(
        tx.exec_params(std::string(claim_oldest_sql) + take_due_sql, owner, reserve, lease_seconds,
                       db::array_literal(open_below_live), candidates_per_class(reserve)),
        jobs);
  }
  const int rest = limit - static_cast<int>(jobs.size());
  if (rest > 0 && !open.empty()) {
    read_claimed(tx.exec_params(std::string(claim_most_urgent_sql) + take_due_sql, owner, rest,
                                lease_seconds, db::array_literal(open)),
                 jobs);
  }
  return jobs;
}

std::optional<std::chrono::milliseconds> next_due_in(pqxx::work& tx) {
  // One probe of jobs_due_idx (priority, run_at) per class, rather than a scan of every due row.
  const pqxx::row next = tx.exec1(
      "SELECT ceil(extract(epoch FROM min(n.run_at) - now()) * 1000)::bigint FROM ("
      "  SELECT (SELECT j.run_at FROM jobs j"
      "          WHERE j.state IN ('queued', 'failed') AND j.priority = c.p AND j.run_at > now()"
      "          ORDER BY j.run_at LIMIT 1) AS run_at"
      "  FROM generate_series(0, " +
      std::to_string(ops::priority_count - 1) +
      ") AS c(p)"
      "  WHERE NOT EXISTS (SELECT 1 FROM paused_classes pc WHERE pc.priority = c.p)) n");
  if (next[0].is_null()) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(std::max<std::int64_t>(0, next[0].as<std::int64_t>()));
}

int reserved_claims(int wanted, int concurrency, int reserved_percent, int running_below_live) {
  if (reserved_percent <= 0 || wanted <= 0) {
    return 0;
  }
  const int reserved = std::max(1, concurrency * reserved_percent / 100);
  return std::clamp(reserved - running_below_live, 0, wanted);
}

std::vector<lease_ref> heartbeat(pqxx::connection& conn, const std::vector<lease_ref>& runs,
                                 std::chrono::seconds lease) {
  if (runs.empty()) {
    return {};
  }
  pqxx::work tx(conn, "heartbeat");
  const pqxx::result held = tx.exec_params(
      std::string("UPDATE jobs SET lease_expires = now() + make_interval(secs => $3), "
                  "updated_at = now() WHERE (id, lease_token) IN (") +
          runs_given + ") AND state = 'running' RETURNING id, lease_token",
      id_array(runs), token_array(runs), static_cast<double>(lease.count()));
  tx.commit();
  std::vector<lease_ref> lost = runs;
  for (const auto& row : held) {
    const lease_ref kept{row[0].as<std::int64_t>(), row[1].as<std::int64_t>()};
    lost.erase(std::remove(lost.begin(), lost.end(), kept), lost.end());
  }
  return lost;
}

bool holds_lease(pqxx::transaction_base& tx, const lease_ref& run) {
  return !tx.exec_params(
                "SELECT 1 FROM jobs WHERE id = $1 AND lease_token = $2 "
                "AND state = 'running' FOR UPDATE",
                run.id, run.token)
              .empty();
}

std::string state_of(pqxx::transaction_base& tx, std::int64_t id) {
  const pqxx::result row = tx.exec_params("SELECT state FROM jobs WHERE id = $1", id);
  return row.empty() ? std::string() : row[0][0].as<std::string>();
}

bool has_later_job(pqxx::transaction_base& tx, std::int64_t id) {
  return !tx.exec_params(
                "SELECT 1 FROM jobs j, jobs later WHERE j.id = $1 AND later.kind = j.kind "
                "AND later.key = j.key AND later.id > j.id LIMIT 1",
                id)
              .empty();
}

bool finish(pqxx::work& tx, const lease_ref& run, const outcome& result) {
  const std::int64_t id = run.id;
  const pqxx::result mine = tx.exec_params(
      "SELECT kind, key, attempts, max_attempts FROM jobs "
      "WHERE id = $1 AND lease_token = $2 AND state = 'running' FOR UPDATE",
      id, run.token);
  if (mine.empty()) {
    return false;
  }
  const auto kind = mine[0][0].as<std::string>();
  const auto key = mine[0][1].as<std::string>();
  const int attempts = mine[0][2].as<int>();
  const int max_attempts = mine[0][3].as<int>();

  // A run that does not count (throttled) is given back, and can never be the last.
  const int attempts_used = result.counts_as_attempt ? attempts : attempts - 1;
  const bool out_of_attempts = result.counts_as_attempt && attempts >= max_attempts;
  if (result.what == outcome::kind::succeeded) {
    tx.exec_params(
        "UPDATE jobs SET state = 'succeeded', lease_owner = NULL, lease_expires = NULL, "
        "finished_at = now(), updated_at = now() WHERE id = $1",
        id);
  } else if (result.what == outcome::kind::dead || out_of_attempts) {
    const std::string why =
        result.what == outcome::kind::dead
            ? result.error
            : result.error + " (gave up after " + std::to_string(attempts) + " attempts)";
    tx.exec_params(
        "UPDATE jobs SET state = 'dead', lease_owner = NULL, lease_expires = NULL, "
        "finished_at = now(), updated_at = now(), last_error = $2 WHERE id = $1",
        id, why);
  } else {
    requeue(tx, id, kind, key, attempts_used, "failed", result.delay, result.error);
  }
  return true;
}

std::vector<bool> finish_all(pqxx::work& tx, const std::vector<finished_run>& runs) {
  std::vector<lease_ref> succeeded;
  for (const auto& finished : runs) {
    if (finished.result.what == outcome::kind::succeeded) {
      succeeded.push_back(finished.run);
    }
  }
  std::vector<lease_ref> recorded;
  if (!succeeded.empty()) {
    const pqxx::result rows =
        tx.exec_params(std::string("UPDATE jobs SET state = 'succeeded', lease_owner = NULL, "
                                   "lease_expires = NULL, finished_at = now(), updated_at = now() "
                                   "WHERE (id, lease_token) IN (") +
                           runs_given + ") AND state = 'running' RETURNING id, lease_token",
                       id_array(succeeded), token_array(succeeded));
    for (const auto& row : rows) {
      recorded.push_back({row[0].as<std::int64_t>(), row[1].as<std::int64_t>()});
    }
  }
  std::vector<bool> mine;
  mine.reserve(runs.size());
  for (const auto& finished : runs) {
    if (finished.result.what == outcome::kind::succeeded) {
      mine.push_back(std::find(recorded.begin(), recorded.end(), finished.run) != recorded.end());
    } else {
      mine.push_back(finish(tx, finished.run, finished.result));
    }
  }
  return mine;
}

int release(pqxx::connection& conn, const std::string& owner, const std::vector<lease_ref>& runs) {
  if (runs.empty()) {
    return 0;
  }
  pqxx::work tx(conn, "release");
  const pqxx::result held = tx.exec_params(
      std::string("SELECT id, kind, key, attempts FROM jobs WHERE (id, lease_token) IN (") +
          runs_given + ") AND state = 'running' ORDER BY id FOR UPDATE",
      id_array(runs), token_array(runs));
  for (const auto& row : held) {
    // The interrupted run does not count against the job's attempts.
    requeue(tx, row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<std::string>(),
            std::max(0, row[3].as<int>() - 1), "queued", std::chrono::milliseconds{0},
            "released by " + owner + " while draining");
  }
  if (!held.empty()) {
    tx.exec0(std::string("NOTIFY ") + notify_channel);
  }
  tx.commit();
  return static_cast<int>(held.size());
}

int rescue_expired(pqxx::connection& conn) {
  pqxx::work tx(conn, "rescue");
  // SKIP LOCKED: a job being finished or heartbeated right now is not expired for long.
  const pqxx::result expired = tx.exec(
      "SELECT id, kind, key, attempts, max_attempts, lease_owner FROM jobs "
      "WHERE state = 'running' AND lease_expires < now() ORDER BY lease_expires LIMIT 100 "
      "FOR UPDATE SKIP LOCKED");
  for (const auto& row : expired) {
    const auto id = row[0].as<std::int64_t>();
    const int attempts = row[3].as<int>();
    const std::string why =
        "lease of " + row[5].as<std::string>("?") + " expired (worker gone or stuck)";
    if (attempts >= row[4].as<int>()) {
      tx.exec_params(
          "UPDATE jobs SET state = 'dead', lease_owner = NULL, lease_expires = NULL, "
          "finished_at = now(), updated_at = now(), last_error = $2 WHERE id = $1",
          id, why + " on its last attempt");
    } else {
      requeue(tx, id, row[1].as<std::string>(), row[2].as<std::string>(), attempts, "failed",
              std::chrono::milliseconds{0}, why);
    }
  }
  if (!expired.empty()) {
    tx.exec0(std::string("NOTIFY ") + notify_channel);
  }
  tx.commit();
  return static_cast<int>(expired.size());
}

std::chrono::milliseconds retry_delay(int attempt, std::chrono::seconds base,
                                      std::chrono::seconds max,
                                      std::optional<std::chrono::seconds> retry_after,
                                      double unit_random) {
  using std::chrono::milliseconds;
  const double base_ms = static_cast<double>(milliseconds(base).count());
  const double max_ms = static_cast<double>(milliseconds(max).count());
  const double exponent = std::clamp(attempt - 1, 0, 40);
  const double ceiling = std::min(max_ms, base_ms * std::pow(2.0, exponent));
  // "Equal jitter": at least half the step, so retries never bunch up at zero.
  const double jittered = ceiling / 2.0 + ceiling / 2.0 * std::clamp(unit_random, 0.0, 1.0);
  milliseconds delay{static_cast<std::int64_t>(jittered)};
  if (retry_after) {
    delay = std::max(delay, milliseconds(*retry_after));
  }
  return delay;
}

}  // namespace archiver::queue
