#!/bin/bash
# End to end, a storm of 429s: certn-sim answers half of all API requests 429 with Retry-After: 1.
# serve backs off as told and keeps going: every case is archived, no job is dead, and certn-sim
# counts many 429s answered. Then Certn throttles every request for longer than a job has attempts
# (workers.max_attempts = 3): a 429 is Certn asking us to slow down, not a failure of the job, so
# no job may die of it; once the throttling ends the cases are archived.
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env

start_serve
start_sim --fault-429-rate 0.5 --fault-retry-after-rate 1 --report-delay-ms 300 --file-size 30000 \
  --seed 14

ids=$(create_cases '{"count":4,"files_per_check":1}')
for id in $ids; do
  move_case "$id" COMPLETE
done
# 4 cases x (report + supplementary information + 2 checks x 1 file).
wait_archived 16 70
expect_no_dead_job
stats=$(curl -sf "$sim/_sim/stats")
[[ $(jq '.injected_429' <<<"$stats") -ge 10 && $(jq '.responses_429' <<<"$stats") -ge 10 ]] ||
  fail "too few 429s to call it a storm: $stats"
pass "4 cases archived through $(jq '.responses_429' <<<"$stats") 429s out of $(jq '.total_requests' <<<"$stats") API requests; no dead job (most runs of one job: $(q "SELECT max(attempts) FROM jobs") of 10)"

set_faults '{"rate_429":0}' >/dev/null
verify_objects
for id in $ids; do
  verify_case "$id" 2
done
pass "files equal Certn's bytes, one PDF report per case, manifests list every artifact"

stop_serve
pass "SIGTERM: drained, exit 0"

export CERTN_ARCHIVER_WORKERS_MAX_ATTEMPTS=3
start_serve
set_faults '{"rate_429":1}' >/dev/null
before=$(curl -sf "$sim/_sim/stats" | jq '.requests["cases.detail"]["429"] // 0')
late=$(create_cases '{"count":2,"files_per_check":1}')
for id in $late; do
  move_case "$id" COMPLETE
done
# Throttled until the case syncs have been refused 4 times each (more than their 3 attempts), or
# until a job died.
deadline=$((SECONDS + 30))
until (($(curl -sf "$sim/_sim/stats" | jq '.requests["cases.detail"]["429"] // 0') - before >= 8)) ||
      [[ $(q "SELECT count(*) FROM jobs WHERE state = 'dead'") -gt 0 ]]; do
  ((SECONDS < deadline)) || fail "syncs not retried under throttling: $(q "SELECT kind, key, state, attempts, last_error FROM jobs WHERE state <> 'succeeded'")"
  sleep 0.2
done
set_faults '{"rate_429":0}' >/dev/null
[[ $(q "SELECT count(*) FROM jobs WHERE state = 'dead'") -eq 0 ]] ||
  fail "jobs died of 429s alone (each 429 used up one of max_attempts): $(q "SELECT kind, key, attempts, last_error FROM jobs WHERE state = 'dead'")"
wait_archived 24 30
expect_no_dead_job
for id in $late; do
  verify_case "$id" 2
done
verify_objects
pass "throttled for longer than max_attempts runs: no job died, archived once the throttling ended"

stop_serve
pass "SIGTERM: drained, exit 0"
