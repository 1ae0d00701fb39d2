#!/bin/bash
# PostgreSQL stopped for ~3 s while cases are being archived and webhooks keep coming: intake
# answers 503 meanwhile and certn-sim's retries deliver the events once it is back; the workers
# resume by themselves; every case ends archived, nothing dead, nothing lost; the objects on disk
# equal the artifacts table and fresh downloads from Certn.
# ctest-timeout: 300
source "$(dirname "$0")/fixture.sh"
# The server it stops is its own, so that the tests beside it keep theirs.
start_own_postgres
pg() { bash "$source_dir/scripts/pg.sh" "$@"; }

create_database --migrate
archive_env
export CERTN_ARCHIVER_WORKERS_BACKOFF_MAX_SECONDS=2 CERTN_ARCHIVER_WORKERS_POLL_INTERVAL_MS=300
export CERTN_ARCHIVER_WORKERS_LEASE_SECONDS=10
start_serve
# Retries 2, 6 and 14 s after the first delivery: the last falls after the outage (about 3 s,
# plus stopping and starting PostgreSQL, which a busy machine slows).
start_sim --report-delay-ms 300 --file-size 4000000 --webhook-retry-base-ms 2000 --seed 9

cases=8
mapfile -t ids < <(create_cases "{\"count\":$cases,\"files_per_check\":2}")
[[ ${#ids[@]} -eq $cases ]] || fail "expected $cases case ids"
for id in "${ids[@]:0:4}"; do
  move_case "$id" COMPLETE
done

# The first cases are being archived: some files stored, jobs still to do.
wait_until -i 0.05 60 "archiving did not start" sql_check -ge 1 "SELECT count(*) FROM artifacts WHERE kind = 'supplementary_file'"
pending=$(q "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed')")

pg pause "$TEST_PG_DIR"
outage_start=$SECONDS
# The other cases close while the database is away: their webhooks meet a 503 first.
for id in "${ids[@]:4}"; do
  move_case "$id" COMPLETE
done
sleep 3
pg resume "$TEST_PG_DIR"
pass "PostgreSQL stopped for $((SECONDS - outage_start)) s with $pending job(s) pending and 4 cases closing"

settled() {  # per case: report, supplementary information, 2 checks x 2 files
  [[ $(archived_count) -eq $((cases * 6)) && $(pending_jobs) -eq 0 ]] &&
    [[ $(curl -sf "$sim/_sim/webhooks" | jq '[.webhooks[] | select(.outcome == "pending")] | length') -eq 0 ]]
}
wait_until 120 "not archived after the restart" settled
kill -0 "$daemon_pid" 2>/dev/null || fail "serve died: $(tail -20 "$scratch/serve.log")"
wait_for curl -sf "http://127.0.0.1:$port/readyz" || fail "serve not ready again after the outage"
if grep -q 'job notifications: .*polling until the database is back' "$scratch/serve.log"; then
  grep -q 'job notifications: listening again' "$scratch/serve.log" ||
    fail "job notifications lost in the outage and never listened again"
fi
pass "work resumed by itself: $cases cases archived, $(q "SELECT count(*) FROM artifacts") artifacts"

expect_no_dead_job
[[ $(q "SELECT count(*) FROM webhook_events WHERE processed_at IS NULL") -eq 0 ]] ||
  fail "unprocessed events remain"
curl -sf "$sim/_sim/webhooks" >"$scratch/webhooks.json" || fail "webhook list"
undelivered=$(jq -c '[.webhooks[] | select(.outcome != "delivered")]' "$scratch/webhooks.json")
[[ $undelivered == "[]" ]] || fail "webhooks not delivered: $undelivered"
retried=$(jq '[.webhooks[] | select(.statuses | index(503))] | length' "$scratch/webhooks.json")
((retried > 0)) || fail "no webhook met a 503 during the outage: $(jq -c '[.webhooks[].statuses]' "$scratch/webhooks.json")"
for id in "${ids[@]}"; do
  [[ $(q "SELECT overall_status FROM cases WHERE id = '$id'") == COMPLETE ]] || fail "case $id not COMPLETE here"
done
# What the workers met depends on timing (all slots busy: no claim tried); say what it was.
failed_runs=$(grep -c 'attempt [0-9]*/[0-9]* failed' "$scratch/serve.log" || true)
claim_failures=$(grep -c 'workers: cannot claim jobs' "$scratch/serve.log" || true)
pass "$retried webhook(s) answered 503 during the outage, all $(jq '.webhooks | length' "$scratch/webhooks.json") delivered by retries; every event processed, no dead job; $failed_runs job run(s) failed and were retried, claim failures logged: $claim_failures"

verify_objects
for id in "${ids[@]}"; do
  verify_case "$id" 4
done
pass "every object matches its size and sha256, no temporary file; all $((cases * 4)) files equal fresh downloads"

stop_serve
pass "SIGTERM: drained, exit 0"
