#!/bin/bash
# bench/queue: certn-archiver's job queue (queue::workers, bench-queue) against graphile-worker
# (node graphile.js) on one throwaway PostgreSQL, a database each, alternately, RUNS times. Each
# side: JOBS no-op jobs enqueued before the clock starts, then run at the same concurrency and
# pool size (jobs/s from the first handler start to the last recorded outcome); then PICKUPS jobs
# enqueued one at a time, PACE_MS apart, into idle workers (commit -> handler start, p50/p99).
# Prints each run and the medians, with the goal: rate ratio >= 1.5 and our pickup p50 <= 5 ms.
# Usage: bash bench/queue/run.sh   (env: JOBS=20000 RUNS=3 CONCURRENCY=10 CLAIM_BATCH=10
# POOL=CONCURRENCY PICKUPS=500 PACE_MS=5 DURABLE=1 (0: fsync off); BUILD=DIR uses a bench-queue
# already built there instead of building build/release)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/queue"
jobs=${JOBS:-20000}
runs=${RUNS:-3}
concurrency=${CONCURRENCY:-10}
claim_batch=${CLAIM_BATCH:-10}
pool=${POOL:-$concurrency}
pickups=${PICKUPS:-500}
pace_ms=${PACE_MS:-5}
durable=${DURABLE:-1}

source "$root/scripts/common.sh"
build=${BUILD:-}
if [[ -z $build ]]; then
  build_release --target bench-queue >/dev/null
  build="$root/build/release"
fi
bench="$build/bench/queue/bench-queue"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends nodejs npm >/dev/null
fi
# graphile-worker as the committed lock pins it, installed once.
if [[ ! -f $here/node_modules/graphile-worker/package.json ]]; then
  (cd "$here" && npm ci --no-audit --no-fund >/dev/null)
fi
graphile_version=$(node -p "require('$here/node_modules/graphile-worker/package.json').version")

make_workdir queue
ours_dsn=$(PG_DURABLE=$durable PG_DB=ours bash "$root/scripts/pg.sh" start "$work/pg" "$(free_port)")
graphile_dsn=${ours_dsn%/ours}/graphile
psql -w -q "$ours_dsn" -c "CREATE DATABASE graphile"

field() { sed -E "s/.*\\<$1=([^ ]+).*/\\1/" <<<"$2"; }
# Blank lines are not values.
median() { sort -g | awk 'NF { v[++n] = $1 } END { print (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'; }

sides=("ours" "graphile")
[[ $claim_batch -ne 1 ]] && sides+=("ours-batch1")
label() {
  case $1 in
    ours) echo "certn-archiver (claim_batch $claim_batch)" ;;
    ours-batch1) echo "certn-archiver (claim_batch 1)" ;;
    graphile) echo "graphile-worker $graphile_version" ;;
  esac
}
run_side() {
  case $1 in
    ours) "$bench" "$ours_dsn" "$jobs" "$concurrency" "$claim_batch" "$pool" "$pickups" "$pace_ms" ;;
    ours-batch1) "$bench" "$ours_dsn" "$jobs" "$concurrency" 1 "$pool" "$pickups" "$pace_ms" ;;
    graphile) node "$here/graphile.js" "$graphile_dsn" "$jobs" "$concurrency" "$pool" "$pickups" "$pace_ms" ;;
  esac
}

printf '%-4s %-38s %9s %9s %8s %8s\n' run queue "jobs/s" seconds "p50 ms" "p99 ms"
declare -A results
for run in $(seq "$runs"); do
  for side in "${sides[@]}"; do
    line=$(run_side "$side")
    results[$side]+="$line"$'\n'
    printf '%-4s %-38s %9s %9s %8s %8s\n' "$run" "$(label "$side")" "$(field rate "$line")" \
      "$(field seconds "$line")" "$(field p50_ms "$line")" "$(field p99_ms "$line")"
  done
done

declare -A rate p50 p99
for side in "${sides[@]}"; do
  rate[$side]=$(grep -o 'rate=[0-9.]*' <<<"${results[$side]}" | cut -d= -f2 | median)
  p50[$side]=$(grep -o 'p50_ms=[0-9.]*' <<<"${results[$side]}" | cut -d= -f2 | median)
  p99[$side]=$(grep -o 'p99_ms=[0-9.]*' <<<"${results[$side]}" | cut -d= -f2 | median)
done
ratio=$(awk -v a="${rate[ours]}" -v b="${rate[graphile]}" 'BEGIN { printf "%.2f", a / b }')
ratio_met=$(awk -v r="$ratio" 'BEGIN { print (r >= 1.5) ? "met" : "NOT met" }')
p50_met=$(awk -v p="${p50[ours]}" 'BEGIN { print (p <= 5) ? "met" : "NOT met" }')
fsync=$([[ $durable == 1 ]] && echo on || echo off)

echo
echo "bench/queue: $jobs no-op jobs per run, medians of $runs runs; concurrency $concurrency, $pool database connections each; pickup: $pickups jobs ${pace_ms} ms apart into idle workers; PostgreSQL fsync $fsync; $(nproc) cores"
echo "graphile-worker in its default mode: one job per get_job call, LISTEN/NOTIFY, pollInterval 2000 ms; certn-archiver: claim_batch as shown, poll_interval 2000 ms"
echo "| queue | jobs/s | pickup p50 ms | pickup p99 ms |"
echo "|---|---|---|---|"
for side in "${sides[@]}"; do
  echo "| $(label "$side") | ${rate[$side]} | ${p50[$side]} | ${p99[$side]} |"
done
echo "rate ratio (certn-archiver claim_batch $claim_batch / graphile-worker): $ratio (goal >= 1.5: $ratio_met)"
if [[ $claim_batch -ne 1 ]]; then
  awk -v a="${rate[ours-batch1]}" -v b="${rate[graphile]}" \
    'BEGIN { printf "rate ratio at claim_batch 1 (graphile-worker'"'"'s one job per claim): %.2f\n", a / b }'
fi
echo "our pickup p50: ${p50[ours]} ms (goal <= 5 ms: $p50_met)"
