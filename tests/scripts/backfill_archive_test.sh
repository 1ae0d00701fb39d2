#!/bin/bash
# End to end, `backfill` after lost webhooks: certn-sim drops every webhook and serve's reconcile
# is off, so nothing happens until `certn-archiver backfill --since <yesterday>` enqueues a sync of
# every listed case; then the closed ones (COMPLETE and CANCELLED) are archived and the open one
# only synced. A second backfill (filtered by status) archives nothing twice.
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env

start_serve
start_sim --webhook-drop-rate 1 --report-delay-ms 300 --file-size 40000 --seed 12

ids=$(create_cases '{"count":5,"files_per_check":2}')
complete=$(echo "$ids" | head -3)
cancelled=$(echo "$ids" | sed -n 4p)
invited=$(echo "$ids" | sed -n 5p)
for id in $complete; do
  move_case "$id" COMPLETE
done
move_case "$cancelled" CANCELLED
[[ $(curl -sf "$sim/_sim/webhooks" | jq '[.webhooks[] | select(.outcome != "dropped")] | length') -eq 0 ]] ||
  fail "certn-sim sent a webhook"
[[ $(q "SELECT count(*) FROM jobs") -eq 0 && $(q "SELECT count(*) FROM cases") -eq 0 ]] ||
  fail "serve heard of a case without webhooks or reconcile: $(q "SELECT kind, key FROM jobs")"
pass "webhooks dropped, reconcile off: serve knows no case"

# Nothing in a period without orders; a malformed date is a usage error.
out=$("$binary" backfill --since 2000-01-01 --until 2000-01-02 2>"$scratch/backfill.err") ||
  fail "backfill of an empty period failed: $(cat "$scratch/backfill.err")"
[[ $out == "backfill: 0 cases seen, 0 sync_case jobs enqueued, 0 already pending" ]] || fail "empty period: $out"
rc=0
"$binary" backfill --since 2026-13-01 >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "backfill with a malformed date exited $rc"

since=$(date -u -d '1 day ago' +%F)
out=$("$binary" backfill --since "$since" 2>"$scratch/backfill.err") ||
  fail "backfill failed: $(cat "$scratch/backfill.err")"
[[ $out == "backfill: 5 cases seen, 5 sync_case jobs enqueued, 0 already pending" ]] || fail "backfill said: $out"
pass "backfill --since $since: $out"

# COMPLETE: report + supplementary information + 2 checks x 2 files each. CANCELLED: the report and
# the supplementary information, and the files of the checks (closed by the cancellation).
wait_archived 24 45
expect_no_dead_job
for id in $ids; do
  [[ $(q "SELECT source FROM case_status_history WHERE case_id = '$id'") == backfill ]] ||
    fail "case $id: status not learnt from backfill: $(q "SELECT status, source FROM case_status_history WHERE case_id = '$id'")"
done
[[ $(q "SELECT overall_status FROM cases WHERE id = '$invited'") == APPLICANT_INVITED ]] || fail "the invited case was not synced"
[[ $(q "SELECT count(*) FROM artifacts WHERE case_id = '$invited' AND kind NOT IN ('case_snapshot', 'manifest')") -eq 0 ]] ||
  fail "the invited case was archived"
[[ $(q "SELECT count(*) FROM webhook_events") -eq 0 ]] || fail "a webhook was received after all"
pass "closed cases archived from the backfill alone; the open case synced, not archived"

verify_objects
for id in $complete $cancelled; do
  verify_case "$id" 4
done
pass "files equal Certn's bytes, one PDF report per case, manifests list every artifact"

# Again, COMPLETE cases only: synced again, nothing archived twice.
artifacts=$(q "SELECT count(*) FROM artifacts WHERE kind <> 'manifest'")
out=$("$binary" backfill --since "$since" --status COMPLETE 2>"$scratch/backfill.err") ||
  fail "second backfill failed: $(cat "$scratch/backfill.err")"
[[ $out == "backfill: 3 cases seen, 3 sync_case jobs enqueued, 0 already pending" ]] || fail "second backfill said: $out"
syncs_done() { sql_check -eq 8 "SELECT count(*) FROM jobs WHERE kind = 'sync_case' AND state = 'succeeded'" && ((!$(pending_jobs))); }
wait_until 20 "second backfill's syncs not done" syncs_done
[[ $(q "SELECT count(*) FROM artifacts WHERE kind <> 'manifest'") -eq $artifacts ]] ||
  fail "a second backfill archived again: $artifacts -> $(q "SELECT count(*) FROM artifacts WHERE kind <> 'manifest'")"
[[ $(q "SELECT count(*) FROM jobs WHERE kind IN ('request_report', 'archive_supplementary')") -eq 8 ]] ||
  fail "archiving jobs enqueued again: $(q "SELECT kind, key FROM jobs WHERE kind IN ('request_report', 'archive_supplementary')")"
expect_no_dead_job
pass "second backfill (--status COMPLETE): 3 cases synced again, nothing archived twice"

stop_serve
pass "SIGTERM: drained, exit 0"
