#!/bin/bash
# End to end, lost webhooks: certn-sim drops every webhook, so serve only learns about cases from
# its periodic reconcile (every 2 s, and once at start). Cases ordered and closed after the start
# are archived all the same; as no CASE_REPORT_READY ever arrives, the reports come from polling
# (the first poll finds the report still IN_PROGRESS). A case still open is synced, not archived,
# until it closes too.
# certn-sim shapes: assumed observed
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env

# Every run lists the whole window (open cases are found there, not in the recent listing).
export CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=2 CERTN_ARCHIVER_WORKERS_RECONCILE_FULL_INTERVAL_SECONDS=0
start_serve
start_sim --webhook-drop-rate 1 --report-delay-ms 4000 --file-size 50000 --seed 11

ids=$(create_cases '{"count":4,"files_per_check":2}')
closed=$(echo "$ids" | head -3)
open=$(echo "$ids" | tail -1)
# Reconcile finds new cases on its own: all four appear, still invited.
wait_until 15 "reconcile did not find the new cases" \
  sql_check -eq 4 "SELECT count(*) FROM cases WHERE overall_status = 'APPLICANT_INVITED'"
pass "reconcile found 4 new cases without any webhook"

move_case "$open" IN_PROGRESS
for id in $closed; do
  move_case "$id" COMPLETE
done
# 3 cases x (report + supplementary information + 2 checks x 2 files).
wait_archived 18 45
expect_no_dead_job
pass "3 closed cases archived: $(q "SELECT count(*) FROM artifacts") artifacts"

[[ $(q "SELECT count(*) FROM webhook_events") -eq 0 ]] || fail "a webhook was received after all"
[[ $(curl -sf "$sim/_sim/webhooks" | jq '[.webhooks[] | select(.outcome != "dropped")] | length') -eq 0 &&
   $(curl -sf "$sim/_sim/webhooks" | jq '.webhooks | length') -ge 7 ]] ||
  fail "certn-sim did not drop every webhook: $(curl -sf "$sim/_sim/webhooks")"
for id in $closed; do
  [[ $(q "SELECT source FROM case_status_history WHERE case_id = '$id' AND status = 'COMPLETE'") == reconcile ]] ||
    fail "case $id: COMPLETE not learnt from reconcile: $(q "SELECT status, source FROM case_status_history WHERE case_id = '$id'")"
done
pass "no webhook delivered: every status change came from reconcile"

[[ $(q "SELECT count(*) FROM report_files WHERE status = 'COMPLETE'") -eq 3 ]] ||
  fail "report files: $(q "SELECT id, status FROM report_files")"
[[ $(q "SELECT count(*) FROM jobs WHERE kind = 'report_ready'") -eq 0 ]] || fail "a report_ready job without an event"
[[ $(q "SELECT max(attempts) FROM jobs WHERE kind = 'fetch_report'") -ge 2 ]] ||
  fail "no report was polled while IN_PROGRESS: $(q "SELECT key, state, attempts, last_error FROM jobs WHERE kind = 'fetch_report'")"
pass "reports fetched by polling (a report still IN_PROGRESS was asked again later)"

[[ $(q "SELECT overall_status FROM cases WHERE id = '$open'") == IN_PROGRESS ]] ||
  fail "the open case is $(q "SELECT overall_status FROM cases WHERE id = '$open'")"
[[ $(q "SELECT count(*) FROM artifacts WHERE case_id = '$open' AND kind NOT IN ('case_snapshot', 'manifest')") -eq 0 ]] ||
  fail "the open case was archived: $(q "SELECT kind, object_key FROM artifacts WHERE case_id = '$open'")"
pass "the case still open is synced (IN_PROGRESS), not archived"

verify_objects
for id in $closed; do
  verify_case "$id" 4
done
pass "closed cases: files equal Certn's bytes, one PDF report each, manifests list every artifact"

# The last case closes later: the next reconcile archives it too.
move_case "$open" COMPLETE
wait_archived 24 30
expect_no_dead_job
verify_case "$open" 4
verify_objects
[[ $(grep -c "reconcile: .* to sync" "$scratch/serve.log") -ge 3 ]] || fail "reconcile did not run periodically"
pass "a case closed later is archived by a later reconcile"

stop_serve
pass "SIGTERM: drained, exit 0"
