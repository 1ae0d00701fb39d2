#!/bin/bash
# bench/intake: signed webhook POSTs through the daemon (wrk, pre-signed bodies) against a local
# PostgreSQL with fsync on, beside pgbench running the same INSERT transaction on the same
# database at the same concurrency. Prints accepted events/s, p50/p99 latency, pgbench TPS, the
# ratio, and latency at half of pgbench's rate.
# Usage: bash bench/intake/run.sh   (env: CONCURRENCY=16 DURATION=10 WRK_CONNECTIONS=32)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/intake"
concurrency=${CONCURRENCY:-16}
duration=${DURATION:-10}
wrk_connections=${WRK_CONNECTIONS:-32}
secret=bench-secret

source "$root/scripts/common.sh"
build_release >/dev/null
make_workdir bench

dsn=$(PG_DURABLE=1 bash "$root/scripts/pg.sh" start "$work/pg" "$(free_port)")
port=$(free_port)
export CERTN_ARCHIVER_DATABASE_URL=$dsn CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port
export CERTN_ARCHIVER_WEBHOOK_SECRETS=$secret CERTN_ARCHIVER_DATABASE_INTAKE_POOL_SIZE=$concurrency
export CERTN_ARCHIVER_LOG_LEVEL=warn CERTN_ARCHIVER_SERVER_MAX_CONNECTIONS=4096
"$binary" migrate 2>/dev/null
"$binary" serve 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

events=$((duration * 20000))
# Every run gets events of its own: a repeated event is a duplicate, which stores nothing.
for run in warmup full paced; do
  python3 "$here/make_bodies.py" "$events" "$secret" "$work/bodies-$run.txt"
done

psql_value() { psql -w -At "$dsn" -c "$1"; }
ms() {  # wrk latency ("812.00us", "1.23ms", "1.01s") -> milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}
run_wrk() {  # bodies delay-ms -> sets rate p50 p99 non2xx
  local before after
  before=$(psql_value "SELECT count(*) FROM webhook_events")
  BODIES="$work/bodies-$1.txt" THREADS=2 DELAY_MS=$2 \
    wrk -t2 -c"$wrk_connections" -d"${duration}s" --latency -s "$here/post.lua" \
    "http://127.0.0.1:$port/webhooks/certn" >"$work/wrk.txt"
  after=$(psql_value "SELECT count(*) FROM webhook_events")
  rate=$(awk -v n=$((after - before)) -v d="$duration" 'BEGIN { printf "%.0f", n / d }')
  p50=$(ms "$(awk '$1 == "50%" { print $2 }' "$work/wrk.txt")")
  p99=$(ms "$(awk '$1 == "99%" { print $2 }' "$work/wrk.txt")")
  non2xx=$(awk '/Non-2xx/ { print $NF }' "$work/wrk.txt")
  non2xx=${non2xx:-0}
}

echo "warming up..." >&2
BODIES="$work/bodies-warmup.txt" THREADS=2 DELAY_MS=0 wrk -t2 -c8 -d2s -s "$here/post.lua" \
  "http://127.0.0.1:$port/webhooks/certn" >/dev/null

run_wrk full 0
full_rate=$rate full_p50=$p50 full_p99=$p99 full_non2xx=$non2xx

pgbench -n -c "$concurrency" -j 2 -T "$duration" -f "$here/pgbench_insert.sql" "$dsn" >"$work/pgbench.txt" 2>&1
tps=$(awk '/^tps = / { printf "%.0f", $3 }' "$work/pgbench.txt")

# Half of pgbench's rate, paced by wrk's per-request delay on every connection.
half=$((tps / 2))
delay=$(awk -v c="$wrk_connections" -v r="$half" 'BEGIN { d = c * 1000 / r; printf "%d", d }')
run_wrk paced "$delay"
half_rate=$rate half_p50=$p50 half_p99=$p99

ratio=$(awk -v a="$full_rate" -v b="$tps" 'BEGIN { printf "%.2f", a / b }')
cat <<TABLE
bench/intake: fsync on, concurrency $concurrency (daemon intake_pool_size, pgbench -c), wrk -t2 -c$wrk_connections, ${duration}s per run, $(nproc) cores
| run | rate /s | p50 ms | p99 ms |
|---|---|---|---|
| certn-archiver intake, unpaced (events stored) | $full_rate | $full_p50 | $full_p99 |
| pgbench, same transaction (TPS) | $tps | | |
| certn-archiver intake, paced at ~half pgbench TPS ($half/s target) | $half_rate | $half_p50 | $half_p99 |
intake / pgbench TPS: $ratio (goal >= 0.70); p99 at half rate: $half_p99 ms (goal < 50); non-2xx answers in the unpaced run: $full_non2xx
TABLE
