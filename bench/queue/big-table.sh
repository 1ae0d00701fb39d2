#!/bin/bash
# bench/queue/big-table.sh: the queue's housekeeping queries on a jobs table of FINISHED finished
# jobs (issue 15, "unbounded growth"), on a throwaway PostgreSQL migrated by certn-archiver:
#   1. the workers' depth refresh (every 5 s): the query before migration 0010 (one GROUP BY over
#      the states, which scans the table) against today's (one part per partial index);
#   2. whether heartbeats are HOT updates: HEARTBEATS updates of the running jobs' lease_expires,
#      with pg_stat_user_tables' n_tup_upd and n_tup_hot_upd before and after;
#   3. claim latency: bench-queue (queue::workers, as the daemon runs them) on an empty jobs table
#      and on one of FINISHED finished jobs, RUNS times each, alternately: pickup p50 (commit of
#      one job into idle workers -> its handler's start) and the backlog rate. Goal: p50 on the big
#      table within 2x of the empty one;
#   4. the same claims beside HELD due jobs of the bulk class, paused (a backfill an operator
#      paused): every claim passes them over. Same goal.
# Prints, does not assert. Usage: bash bench/queue/big-table.sh (env: FINISHED=1000000
# HELD=300000 HEARTBEATS=50 RUNS=3; BUILD=DIR uses certn-archiver and bench-queue built there
# instead of building build/release)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
finished=${FINISHED:-1000000}
held=${HELD:-300000}
heartbeats=${HEARTBEATS:-50}
runs=${RUNS:-3}

source "$root/scripts/common.sh"
build=${BUILD:-}
if [[ -z $build ]]; then
  build_release --target certn-archiver bench-queue >/dev/null
  build="$root/build/release"
else
  cmake --build "$build" --target bench-queue >/dev/null
fi
pg_dir=$(mktemp -d /tmp/queue-big-table.XXXXXX)
chmod 755 "$pg_dir"  # the postgres user runs the server in it
trap 'bash "$root/scripts/pg.sh" stop "$pg_dir/pg" >/dev/null 2>&1; rm -rf "$pg_dir"' EXIT
dsn=$(bash "$root/scripts/pg.sh" start "$pg_dir/pg" "$(free_port)")
CERTN_ARCHIVER_DATABASE_URL=$dsn "$build/certn-archiver" migrate >/dev/null 2>&1
q() { psql -w -qtA -v ON_ERROR_STOP=1 "$dsn" -c "$1"; }

q "INSERT INTO jobs (kind, key, state, finished_at) SELECT 'k', 'done-' || g, 'succeeded',
     now() - interval '1 day' FROM generate_series(1, $finished) g" >/dev/null
q "INSERT INTO jobs (kind, key, state) SELECT 'k', 'q-' || g, 'queued' FROM generate_series(1, 100) g" >/dev/null
q "INSERT INTO jobs (kind, key, state, lease_expires, lease_token) SELECT 'k', 'r-' || g, 'running',
     now() + interval '20 seconds', g FROM generate_series(1, 10) g" >/dev/null
q "INSERT INTO jobs (kind, key, state, finished_at) SELECT 'k', 'd-' || g, 'dead', now()
     FROM generate_series(1, 5) g" >/dev/null
q "VACUUM ANALYZE jobs" >/dev/null
echo "bench/queue/big-table: $finished finished jobs, 100 queued, 10 running, 5 dead"

execution_ms() { q "EXPLAIN (ANALYZE, FORMAT JSON) $1" | jq '.[0]["Execution Time"]'; }
before="SELECT state::text, count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(
  CASE WHEN state = 'dead' THEN finished_at
       WHEN state IN ('queued', 'failed') AND run_at <= now() THEN run_at END)), 0)
  FROM jobs WHERE state IN ('queued', 'failed', 'running', 'dead') GROUP BY state"
today=$(grep -A8 'const pqxx::result r = tx.exec(' "$root/daemon/queue/worker_outcome.cpp" |
  sed -n 's/^ *"\(.*\)"[);]*$/\1/p' | tr -d '\n')
[[ $today == SELECT* ]] || { echo "cannot read the depth query from daemon/queue/worker_outcome.cpp"; exit 1; }
best() {  # the fastest of five runs, in ms
  local sql=$1 i
  for i in 1 2 3 4 5; do execution_ms "$sql"; done | sort -n | head -1
}
echo "1. depth refresh: $(best "$before") ms with one GROUP BY (before 0010), $(best "$today") ms by partial indexes (today)"

stats() { q "SELECT n_tup_upd || ' updates, ' || n_tup_hot_upd || ' HOT' FROM pg_stat_user_tables WHERE relname = 'jobs'"; }
q "SELECT pg_stat_reset()" >/dev/null
for _ in $(seq "$heartbeats"); do
  echo "UPDATE jobs SET lease_expires = now() + interval '20 seconds', updated_at = now()
        WHERE (id, lease_token) IN (SELECT id, lease_token FROM jobs WHERE state = 'running')
        AND state = 'running';"
done | psql -w -qtA -v ON_ERROR_STOP=1 "$dsn" >/dev/null
sleep 1  # the statistics collector's delay
echo "2. $heartbeats heartbeats of 10 running jobs: $(stats)"

# 3. and 4. Claim latency, empty against big. bench-queue fills its database's table itself
# (TRUNCATE, then FINISHED or HELD rows), so it gets a database of its own.
psql -w -q "$dsn" -c "CREATE DATABASE claims" >/dev/null
claims_dsn=${dsn%/*}/claims
field() { sed -E "s/.*\\<$1=([^ ]+).*/\\1/" <<<"$2"; }
# Blank lines are not values (the here-strings below end with one).
median() { sort -g | awk 'NF { v[++n] = $1 } END { print (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'; }
declare -A p50s rates
for run in $(seq "$runs"); do
  for table in empty finished held; do
    case $table in
      empty) extra=(0 0) ;;
      finished) extra=("$finished" 0) ;;
      held) extra=(0 "$held") ;;
    esac
    line=$("$build/bench/queue/bench-queue" "$claims_dsn" 2000 10 10 10 300 5 "${extra[@]}")
    echo "   run $run, $table: $line"
    p50s[$table]+="$(field p50_ms "$line")"$'\n'
    rates[$table]+="$(field rate "$line")"$'\n'
  done
done
empty_p50=$(median <<<"${p50s[empty]}")
for table in finished held; do
  p50=$(median <<<"${p50s[$table]}")
  case $table in
    finished) echo -n "3. claims, medians of $runs runs, on $finished finished jobs:" ;;
    held) echo -n "4. claims, medians of $runs runs, beside $held due jobs of the paused bulk class:" ;;
  esac
  echo " pickup p50 $p50 ms against $empty_p50 ms on an empty table ($(awk -v a="$p50" -v b="$empty_p50" 'BEGIN { printf "%.2f", a / b }')x, goal <= 2); backlog rate $(median <<<"${rates[$table]}") against $(median <<<"${rates[empty]}") jobs/s"
done
