#!/bin/bash
# bench/api-budget: how certn-archiver spends Certn's quota (issue "Spend Certn's quota wisely"),
# against certn-sim with its rate limit set to RATE a minute (the daemon's too), so that a run
# takes minutes; the ratios are what matter. Prints, does not assert:
#   1. Certn calls per archived case in the webhook flow, CASES cases (goal: 5.0);
#   2. calls of one reconcile run over HELD open cases of which CHANGED changed (goal: the
#      listing's pages + CHANGED case GETs);
#   3. live latency, CASE_STATUS_CHANGED received to PDF archived, p50/p99 over LIVE events,
#      alone and while a BACKFILL-case backfill drains at the limit (goal: loaded p99 at most
#      twice the unloaded p99);
#   4. calls a day for HELD open, unchanged cases under the default schedule (a reconcile every
#      900 s, the whole window every 6 h, the recent cases in an archive status otherwise; goal:
#      under 5 % of a 7,000-call day), from the measured calls of one run of each kind.
# It drives serve and certn-sim through the shell tests' fixture (tests/scripts/fixture.sh), on a
# PostgreSQL of its own; every stage gets a fresh database and a fresh serve.
# Usage: bash bench/api-budget/run.sh   (env: RATE=600 CASES=200 HELD=1000 CHANGED=10
# BACKFILL=5000 LIVE=20; BUILD=DIR uses certn-archiver and simulator/certn-sim built there)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rate=${RATE:-600}
cases=${CASES:-200}
held=${HELD:-1000}
changed=${CHANGED:-10}
backfill_cases=${BACKFILL:-5000}
live=${LIVE:-20}

source "$root/scripts/common.sh"
build=${BUILD:-}
if [[ -z $build ]]; then
  build_release --target certn-sim >/dev/null
  build="$root/build/release"
fi
pg_dir=$(mktemp -d /tmp/api-budget-pg.XXXXXX)
chmod 755 "$pg_dir"  # the postgres user runs the server in it
TEST_PG_DSN=$(bash "$root/scripts/pg.sh" start "$pg_dir/pg" "$(free_port)")
export TEST_PG_DSN
set -- "$build/certn-archiver" "$root"
source "$root/tests/scripts/fixture.sh"
on_exit "bash $root/scripts/pg.sh stop $pg_dir/pg >/dev/null 2>&1; rm -rf $pg_dir"

sim_calls() { curl -sf "$sim/_sim/stats" | jq "$1"; }
list_and_get() { sim_calls '[.requests["cases.list"], .requests["cases.detail"] | (. // {}) | to_entries[] | .value] | add // 0'; }
fresh_stage() {
  [[ -z $last_serve ]] || stop_serve
  stop_sim
  stage=$((${stage:-0} + 1))
  db_name="api_budget_$stage" db_dsn="${TEST_PG_DSN%/*}/api_budget_$stage"  # the server goes at exit
  create_database --migrate
  archive_env
  export CERTN_ARCHIVER_CERTN_REQUESTS_PER_MINUTE=$rate CERTN_ARCHIVER_CERTN_REQUESTS_PER_DAY=0
}
move_all() { xargs -P 8 -I{} curl -sf -X POST "$sim/_sim/cases/{}/status" -d "{\"status\":\"$1\"}" -o /dev/null; }
echo "bench/api-budget: RATE=$rate/min CASES=$cases HELD=$held CHANGED=$changed BACKFILL=$backfill_cases LIVE=$live"

# ---- 1. the webhook flow ---------------------------------------------------------------------
fresh_stage
start_serve
start_sim --rate-limit-per-minute "$rate" --report-delay-ms 200 --file-size 2000 --seed 51
ids=$(create_cases "{\"count\":$cases,\"files_per_check\":1}")
move_all COMPLETE <<<"$ids"
wait_until $((cases * 5 * 60 / rate + 120)) "webhook flow not archived" \
  sql_check -eq "$cases" "SELECT count(*) FROM artifacts WHERE kind = 'report'"
wait_until 120 "jobs still open" sql_check -eq 0 "SELECT count(*) FROM jobs WHERE state IN ('queued','failed','running')"
total=$(sim_calls .total_requests)
echo "1. webhook flow: $total Certn calls for $cases archived cases: $(echo "scale=2; $total / $cases" | bc) calls per case (goal 5.0)"

# ---- 2 and 4. reconcile ------------------------------------------------------------------------
fresh_stage
export CERTN_ARCHIVER_CERTN_REQUESTS_PER_MINUTE=100000  # loading the held cases is not measured
start_serve
start_sim --webhook-drop-rate 1 --seed 52
create_cases "{\"count\":$held,\"files_per_check\":0}" >"$scratch/held.ids"
"$binary" backfill --since "$(date -u -d '1 day ago' +%F)" >/dev/null 2>&1
wait_until 300 "held cases not synced" sql_check -eq "$held" "SELECT count(*) FROM cases"
wait_until 120 "jobs still open" sql_check -eq 0 "SELECT count(*) FROM jobs WHERE state IN ('queued','failed','running')"
stop_serve
# Every run lists the whole window here (stage 2 measures the full listing).
export CERTN_ARCHIVER_CERTN_REQUESTS_PER_MINUTE=$rate CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=15
export CERTN_ARCHIVER_WORKERS_RECONCILE_FULL_INTERVAL_SECONDS=0
start_serve
before=$(list_and_get)
reconciled() { sql_check -ge "$1" "SELECT count(*) FROM jobs WHERE kind = 'reconcile' AND state = 'succeeded'" &&
  sql_check -eq 0 "SELECT count(*) FROM jobs WHERE kind <> 'reconcile' AND state IN ('queued','failed','running')"; }
wait_until 120 "no reconcile run" reconciled 1
unchanged=$(($(list_and_get) - before))
head -"$changed" "$scratch/held.ids" | move_all APPLICANT_SUBMITTED
before=$(list_and_get)
wait_until 120 "no second reconcile run" reconciled 2
with_changes=$(($(list_and_get) - before))
pages=$(((held + 99) / 100))
echo "2. reconcile over $held held cases, $changed changed: $with_changes list and GET calls (goal: $pages pages + $changed GETs = $((pages + changed)))"
# The default schedule: the window was listed just now, so the next runs list the recent cases in
# an archive status. The held cases were all ordered today (every one in the window: the most
# costly case for the full listing); no case is older, so the open scopes cost nothing here.
stop_serve
unset CERTN_ARCHIVER_WORKERS_RECONCILE_FULL_INTERVAL_SECONDS
start_serve
before=$(list_and_get)
wait_until 120 "no third reconcile run" reconciled 3
recent=$(($(list_and_get) - before))
runs_a_day=$((86400 / 900))
full_runs_a_day=$((86400 / 21600))
per_day=$(((runs_a_day - full_runs_a_day) * recent + full_runs_a_day * unchanged))
echo "4. $held open unchanged cases: $unchanged calls a full run, $recent a recent run; $per_day a day ($full_runs_a_day full + $((runs_a_day - full_runs_a_day)) recent runs): $(awk -v n="$per_day" 'BEGIN { printf "%.1f", 100 * n / 7000 }') % of a 7,000-call day (goal < 5 %)"
unset CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS

# ---- 3. live latency, alone and under a backfill -----------------------------------------------
latencies() {  # LABEL: p50 and p99 of event received -> report archived, for the live cases
  q "SELECT '$1: p50 ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY s)::numeric, 2) || ' s, p99 ' ||
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY s)::numeric, 2) || ' s over ' || count(*) || ' events'
     FROM (SELECT extract(epoch FROM a.archived_at - e.received_at) AS s FROM webhook_events e
           JOIN artifacts a ON a.case_id = e.object_id AND a.kind = 'report') x"
}
live_events() {
  local id
  for id in $(create_cases "{\"count\":$live,\"files_per_check\":0}"); do
    move_case "$id" COMPLETE
    post_case_event "$id"
    sleep 2  # a steady trickle of live events, one every 2 s
  done
  wait_until 300 "live cases not archived" sql_check -eq "$live" \
    "SELECT count(DISTINCT a.case_id) FROM artifacts a JOIN webhook_events e ON e.object_id = a.case_id WHERE a.kind = 'report'"
}
fresh_stage
start_serve
start_sim --webhook-drop-rate 1 --rate-limit-per-minute "$rate" --report-delay-ms 200 --file-size 2000 --seed 53
live_events
echo "3. live latency alone        $(latencies unloaded)"
fresh_stage
start_serve
start_sim --webhook-drop-rate 1 --rate-limit-per-minute "$rate" --report-delay-ms 200 --file-size 2000 --seed 54
create_cases "{\"count\":$backfill_cases,\"files_per_check\":0}" | move_all COMPLETE
"$binary" backfill --since "$(date -u -d '1 day ago' +%F)" >/dev/null 2>&1
wait_until 60 "backfill not started" sql_check -ge 10 "SELECT count(*) FROM jobs WHERE kind = 'sync_case' AND state = 'succeeded'"
live_events
left=$(q "SELECT count(*) FROM jobs WHERE priority = 3 AND state IN ('queued','failed','running')")
echo "3. live latency under backfill $(latencies loaded) ($left bulk jobs still open at the end)"
echo "load average at the end: $(cut -d" " -f1-3 /proc/loadavg) ($(nproc) cores)"
