#!/bin/bash
# bench/e2e: end-to-end archiving through `serve`, certn-sim posting webhooks, per storage
# backend. Stage "many": CASES cases (one check type, FILES files each, FILE_SIZE bytes per file)
# created and settled first, then all moved to COMPLETE at once (parallel control requests); the
# clock runs from the first COMPLETE to the last artifact recorded / job finished (both from the
# database), with no job left open. Stage "big": one case whose one supplementary file is BIG
# bytes (multipart upload on S3), the same way. Each stage gets a fresh database and a fresh
# `serve`, whose peak RSS (VmHWM) is read just before SIGTERM. Counts are checked (no dead job,
# one report per case), and `certn-archiver verify` re-hashes everything (timed on its own).
# Usage: bash bench/e2e/run.sh   (env: CASES=1000 FILES=3 FILE_SIZE=262144 BIG=2147483648
# BACKENDS="filesystem s3" BIG_BACKENDS=$BACKENDS CONCURRENCY=16 POOL=8 DURABLE=1 (0: fsync off)
# REPORT_DELAY_MS=200 TIMEOUT=1800 (seconds per stage); BUILD=DIR uses certn-archiver and
# simulator/certn-sim already built there instead of building build/release)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cases=${CASES:-1000}
files=${FILES:-3}
file_size=${FILE_SIZE:-262144}
big=${BIG:-2147483648}
backends=${BACKENDS:-filesystem s3}
big_backends=${BIG_BACKENDS:-$backends}
concurrency=${CONCURRENCY:-16}
pool=${POOL:-8}
durable=${DURABLE:-1}
report_delay_ms=${REPORT_DELAY_MS:-200}
timeout=${TIMEOUT:-1800}
rss_goal_mib=64
check_type=CRIMINAL_RECORD_CHECK

source "$root/scripts/common.sh"
build=${BUILD:-}
if [[ -z $build ]]; then
  build_release --target certn-sim >/dev/null
  build="$root/build/release"
fi
binary="$build/certn-archiver"
sim_binary="$build/simulator/certn-sim"
[[ -x $binary && -x $sim_binary ]] || { echo "certn-archiver or certn-sim missing in $build" >&2; exit 1; }

make_workdir e2e
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
sim_pid=""
s3_started=""
cleanup_e2e() {
  if [[ -n $sim_pid ]]; then
    kill -TERM "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  fi
  if [[ -n $s3_started ]]; then
    bash "$root/scripts/s3.sh" stop "$work/s3" >/dev/null 2>&1 || true
  fi
  cleanup_workdir
}
trap cleanup_e2e EXIT

die() { echo "bench/e2e: $*" >&2; exit 1; }
now() { echo "$EPOCHREALTIME"; }

admin_dsn=$(PG_DURABLE=$durable PG_DB=postgres bash "$root/scripts/pg.sh" start "$work/pg" "$(free_port)")
if [[ " $backends $big_backends " == *" s3 "* ]]; then
  s3_endpoint=$(bash "$root/scripts/s3.sh" start "$work/s3" "$(free_port)")
  s3_started=1
fi

# Settings every stage shares; the per-stage ones are set in run_stage.
export CERTN_ARCHIVER_WEBHOOK_SECRETS=sim-webhook-secret CERTN_ARCHIVER_CERTN_API_KEY=sim-key
export CERTN_ARCHIVER_CERTN_ALLOW_PLAIN_HTTP=true CERTN_ARCHIVER_CERTN_ALLOW_SPECIAL_ADDRESSES=true
export CERTN_ARCHIVER_CERTN_DOWNLOAD_HOSTS=127.0.0.1 CERTN_ARCHIVER_CERTN_REQUESTS_PER_MINUTE=100000
export CERTN_ARCHIVER_CERTN_REQUESTS_PER_DAY=0  # the benchmark measures us, not the budget
export CERTN_ARCHIVER_SERVER_MAX_CONNECTIONS=4096
export CERTN_ARCHIVER_DATABASE_POOL_SIZE=$pool CERTN_ARCHIVER_WORKERS_CONCURRENCY=$concurrency
export CERTN_ARCHIVER_WORKERS_REPORT_POLL_DELAY_SECONDS=1 CERTN_ARCHIVER_WORKERS_BACKOFF_BASE_SECONDS=1
export CERTN_ARCHIVER_WORKERS_BACKOFF_MAX_SECONDS=5
export CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=0 CERTN_ARCHIVER_WORKERS_POLL_INTERVAL_MS=500

# Results, one line per stage: "name|backend|cases|artifacts|MiB|seconds|cases/s|MiB/s|rss MiB|verify s|verify line"
results=()

# run_stage NAME BACKEND CASES FILES FILE_SIZE
run_stage() {
  local name=$1 backend=$2 n=$3 per_check=$4 size=$5
  local stage="$name-$backend" dsn port sim_port sim log
  echo "== $stage: $n case(s) x (report + supplementary information + $per_check file(s) of $size bytes)" >&2
  psql -w -q "$admin_dsn" -c "CREATE DATABASE \"$stage\"" >/dev/null
  dsn="${admin_dsn%/*}/$stage"
  export CERTN_ARCHIVER_DATABASE_URL=$dsn
  "$binary" migrate >/dev/null 2>"$work/$stage.migrate.err" || die "migrate failed for $stage: $(tail -3 "$work/$stage.migrate.err")"
  q() { psql -w -qtA "$dsn" -c "$1"; }

  port=$(free_port)
  sim_port=$(free_port)
  sim="http://127.0.0.1:$sim_port"
  export CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port CERTN_ARCHIVER_CERTN_BASE_URL=$sim
  export CERTN_ARCHIVER_STORAGE_BACKEND=$backend CERTN_ARCHIVER_STORAGE_PATH=$work/$stage
  if [[ $backend == s3 ]]; then
    export CERTN_ARCHIVER_STORAGE_PREFIX="$stage/"
    export CERTN_ARCHIVER_STORAGE_S3_ENDPOINT=$s3_endpoint CERTN_ARCHIVER_STORAGE_S3_BUCKET=testbucket
    export CERTN_ARCHIVER_STORAGE_S3_PATH_STYLE=true CERTN_ARCHIVER_STORAGE_S3_REGION=us-east-1
    export CERTN_ARCHIVER_STORAGE_S3_ACCESS_KEY_ID=S3RVER CERTN_ARCHIVER_STORAGE_S3_SECRET_ACCESS_KEY=S3RVER
  else
    unset CERTN_ARCHIVER_STORAGE_PREFIX
  fi

  log="$work/$stage.serve.log"
  "$binary" serve 2>"$log" &
  serve_pid=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || die "serve not ready: $(tail -5 "$log")"

  "$sim_binary" --listen "127.0.0.1:$sim_port" --report-delay-ms "$report_delay_ms" \
    --file-size "$size" --webhook-url "http://127.0.0.1:$port/webhooks/certn" \
    --webhook-retry-base-ms 200 --seed 5 >"$work/$stage.sim.out" 2>"$work/$stage.sim.err" &
  sim_pid=$!
  for _ in $(seq 200); do grep -q "listening on" "$work/$stage.sim.out" && break; sleep 0.05; done
  grep -q "listening on" "$work/$stage.sim.out" || die "certn-sim did not start: $(cat "$work/$stage.sim.err")"

  # Cases created, in requests of at most 500, and settled (their first sync done) before the clock.
  local ids="" left=$n batch
  while ((left > 0)); do
    batch=$((left < 500 ? left : 500))
    ids+=$(curl -sf -X POST "$sim/_sim/cases" \
      -d "{\"count\":$batch,\"files_per_check\":$per_check,\"file_size\":$size,\"check_types\":[\"$check_type\"]}" |
      jq -r '.ids[]')$'\n' || die "control API: create cases"
    left=$((left - batch))
  done
  [[ $(grep -c . <<<"$ids") -eq $n ]] || die "expected $n case ids"
  local open='SELECT count(*) FROM jobs WHERE state IN ('"'queued', 'running', 'failed'"')'
  local deadline=$((SECONDS + timeout))
  until [[ $(curl -sf "$sim/_sim/webhooks" | jq '[.webhooks[] | select(.outcome == "pending")] | length') -eq 0 &&
           $(q "$open") -eq 0 ]]; do
    ((SECONDS < deadline)) || die "creation webhooks not settled"
    sleep 0.2
  done

  # All COMPLETE at once: one curl, 16 requests in flight.
  local requests="$work/$stage.complete.curl"
  while read -r id; do
    [[ -n $id ]] && printf 'url = "%s/_sim/cases/%s/status"\noutput = "/dev/null"\n' "$sim" "$id"
  done <<<"$ids" >"$requests"
  local start
  start=$(now)
  curl -sf --no-progress-meter --parallel --parallel-max 16 -X POST -d '{"status":"COMPLETE"}' \
    -K "$requests" 2>"$work/$stage.complete.err" ||
    die "control API: move to COMPLETE: $(tail -3 "$work/$stage.complete.err")"
  local sent
  sent=$(now)

  local expected=$((n * (2 + per_check)))
  local kinds="kind IN ('report', 'supplementary_file', 'supplementary_information')"
  until [[ $(q "SELECT count(*) FROM artifacts WHERE $kinds") -ge $expected && $(q "$open") -eq 0 ]]; do
    if ((SECONDS >= deadline)); then
      q "SELECT state, kind, count(*) FROM jobs GROUP BY 1, 2 ORDER BY 1, 2" >&2
      tail -20 "$log" >&2
      die "$stage: not archived within $timeout s"
    fi
    sleep 0.25
  done
  # The end, exactly: the last artifact recorded or job finished (same clock as $start).
  local end
  end=$(q "SELECT extract(epoch FROM greatest((SELECT max(archived_at) FROM artifacts),
                                               (SELECT max(finished_at) FROM jobs)))")
  local rss_kib
  rss_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$serve_pid/status")
  kill -TERM "$serve_pid"
  local rc=0
  wait "$serve_pid" || rc=$?
  serve_pid=""
  [[ $rc -eq 0 ]] || die "$stage: serve exited $rc after SIGTERM"

  # Counts: every expected artifact once, one report and one manifest per case, nothing dead.
  local got dead reports manifests artifacts bytes failed_webhooks
  got=$(q "SELECT count(*) FROM artifacts WHERE $kinds")
  [[ $got -eq $expected ]] || die "$stage: $got artifacts of the three kinds, expected $expected"
  dead=$(q "SELECT count(*) FROM jobs WHERE state = 'dead'")
  [[ $dead -eq 0 ]] || die "$stage: $dead dead job(s): $(q "SELECT kind, key, last_error FROM jobs WHERE state = 'dead' LIMIT 5")"
  reports=$(q "SELECT count(DISTINCT case_id) FROM artifacts WHERE kind = 'report'")
  [[ $reports -eq $n && $(q "SELECT count(*) FROM artifacts WHERE kind = 'report'") -eq $n ]] ||
    die "$stage: expected exactly one report for each of $n cases"
  manifests=$(q "SELECT count(*) FROM artifacts WHERE kind = 'manifest'")
  [[ $manifests -ge $n ]] || die "$stage: $manifests manifests for $n cases"
  if [[ $size -eq $big && $n -eq 1 ]]; then
    [[ $(q "SELECT max(size_bytes) FROM artifacts WHERE kind = 'supplementary_file'") -eq $size ]] ||
      die "$stage: the $size-byte file is not recorded at its size"
  fi
  artifacts=$(q "SELECT count(*) FROM artifacts")
  bytes=$(q "SELECT sum(size_bytes) FROM artifacts")
  failed_webhooks=$(curl -sf "$sim/_sim/webhooks" | jq '[.webhooks[] | select(.outcome == "failed")] | length')
  kill -TERM "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  sim_pid=""

  # verify: re-reads every object; timed on its own.
  local vstart vend vline
  vstart=$(now)
  vline=$("$binary" verify 2>"$work/$stage.verify.err" | grep '^verified' | tail -1) || true
  vend=$(now)
  [[ -n $vline ]] || vline="(verify printed no summary)"
  grep -q "0 mismatched, 0 missing, 0 unreadable" <<<"$vline" ||
    die "$stage: verify: $vline $(tail -3 "$work/$stage.verify.err")"

  local seconds mib
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
  mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
  results+=("$name|$backend|$n|$artifacts|$mib|$seconds|$(awk -v n="$n" -v s="$seconds" 'BEGIN { printf "%.1f", n / s }')|$(awk -v m="$mib" -v s="$seconds" 'BEGIN { printf "%.1f", m / s }')|$(awk -v k="$rss_kib" 'BEGIN { printf "%.1f", k / 1024 }')|$(awk -v a="$vstart" -v b="$vend" 'BEGIN { printf "%.2f", b - a }')|$vline")
  printf '   %s: %s s from the first COMPLETE (all %d COMPLETE sent in %.2f s), %s MiB in %d artifacts, serve peak RSS %s MiB, webhooks failed: %s\n' \
    "$stage" "$seconds" "$n" "$(awk -v a="$start" -v b="$sent" 'BEGIN { print b - a }')" "$mib" "$artifacts" \
    "$(awk -v k="$rss_kib" 'BEGIN { printf "%.1f", k / 1024 }')" "$failed_webhooks" >&2
  printf '   verify (%s s): %s\n' "$(awk -v a="$vstart" -v b="$vend" 'BEGIN { printf "%.2f", b - a }')" "$vline" >&2
}

for backend in $backends; do
  run_stage many "$backend" "$cases" "$files" "$file_size"
done
for backend in $big_backends; do
  run_stage big "$backend" 1 1 "$big"
done

model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
fsync=$([[ $durable == 1 ]] && echo on || echo off)
echo
echo "bench/e2e: $(nproc) cores ($model); PostgreSQL fsync $fsync; workers.concurrency $concurrency, database.pool_size $pool, certn.requests_per_minute 100000, report_poll_delay 1 s, reconcile off; certn-sim --report-delay-ms $report_delay_ms"
echo "many: $cases cases, check type $check_type, $files file(s) of $file_size bytes per case (+ report, supplementary information, case snapshots, manifest); big: one case with one supplementary file of $big bytes"
[[ -n $s3_started ]] && echo "S3: s3rver 4.0.4 on the same machine, multipart above ${CERTN_ARCHIVER_STORAGE_S3_MULTIPART_THRESHOLD_BYTES:-67108864} bytes in parts of ${CERTN_ARCHIVER_STORAGE_S3_PART_SIZE_BYTES:-16777216} (4 at once)"
echo "load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "time: first COMPLETE sent -> last artifact recorded / job finished, no job open; verify timed separately"
echo "| stage | backend | cases | artifacts | MiB | seconds | cases/s | MiB/s | serve peak RSS MiB | verify s |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for line in "${results[@]}"; do
  IFS='|' read -r name backend n artifacts mib seconds cps mibps rss vsec vline <<<"$line"
  [[ $name == big ]] && cps="-"
  echo "| $name | $backend | $n | $artifacts | $mib | $seconds | $cps | $mibps | $rss | $vsec |"
done
for line in "${results[@]}"; do
  IFS='|' read -r name backend n artifacts mib seconds cps mibps rss vsec vline <<<"$line"
  echo "verify, $name/$backend: $vline"
  if [[ $name == big ]]; then
    met=$(awk -v r="$rss" -v g="$rss_goal_mib" 'BEGIN { print (r <= g) ? "met" : "NOT met" }')
    echo "big/$backend: serve peak RSS $rss MiB (goal <= $rss_goal_mib MiB: $met)"
  fi
done
