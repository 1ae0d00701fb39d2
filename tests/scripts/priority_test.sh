#!/bin/bash
# Live work goes before bulk work (issue "Spend Certn's quota wisely", priorities): while a
# backfill of 40 cases drains at the Certn rate limit (5 calls a second here, so about 40 s of
# calls), a webhook about a new case is archived within seconds, long before the backfill ends,
# because its jobs are claimed first and its calls get the limiter's next turns. The backfill
# still finishes, and every call is counted under the class of the work that made it.
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
export CERTN_ARCHIVER_CERTN_REQUESTS_PER_MINUTE=300
start_serve
# Every webhook is dropped: the backfill alone brings the bulk cases, and the live case's one
# event is posted below; reports are found by polling (after 1 s).
start_sim --webhook-drop-rate 1 --report-delay-ms 200 --file-size 2000 --seed 21
bulk=40
for id in $(create_cases "{\"count\":$bulk,\"files_per_check\":0}"); do
  move_case "$id" COMPLETE
done
out=$("$binary" backfill --since "$(date -u -d '1 day ago' +%F)" 2>"$scratch/backfill.err") ||
  fail "backfill failed: $(cat "$scratch/backfill.err")"
[[ $out == "backfill: $bulk cases seen, $bulk sync_case jobs enqueued, 0 already pending" ]] ||
  fail "backfill said: $out"
[[ $(q "SELECT count(*) FROM jobs WHERE kind = 'sync_case' AND priority <> 3") -eq 0 ]] ||
  fail "backfill's jobs are not bulk: $(q "SELECT key, priority FROM jobs WHERE kind = 'sync_case'")"

reports() { q "SELECT count(DISTINCT case_id) FROM artifacts WHERE kind = 'report'"; }
wait_until 30 "the backfill did not start" sql_check -ge 10 "SELECT count(*) FROM jobs WHERE kind = 'sync_case' AND state = 'succeeded'"

live=$(create_cases '{"count":1,"files_per_check":0}')
move_case "$live" COMPLETE
post_case_event "$live"
posted=$SECONDS
wait_until 30 "the live case was not archived" sql_check -eq 1 "SELECT count(*) FROM artifacts WHERE case_id = '$live' AND kind = 'report'"
live_latency=$((SECONDS - posted))
live_done=$SECONDS
bulk_left=$((bulk + 1 - $(reports)))
wait_archived $(((bulk + 1) * 2)) 120
backfill_after=$((SECONDS - live_done))
echo "live case archived $live_latency s after its event, with $bulk_left bulk case(s) still to go; the backfill needed $backfill_after s more"
# Without priorities its jobs and calls would queue behind every bulk job and call before them:
# it would finish with the backfill, not tens of seconds before it.
((live_latency <= 12)) || fail "the live case took $live_latency s"
((backfill_after >= 15)) || fail "the live case finished only $backfill_after s before the backfill"
pass "a live event overtakes a draining backfill"

expect_no_dead_job
verify_case "$live" 0
pass "the backfill finished too: $bulk cases"

calls_of() {
  curl -sf "http://127.0.0.1:$port/metrics" |
    awk -v class="$1" 'index($0, "certn_archiver_certn_api_calls_total{") == 1 && index($0, "class=\"" class "\"") && !index($0, "endpoint=\"download\"") {sum += $2} END {print sum + 0}'
}
live_calls=$(calls_of live) archive_calls=$(calls_of archive) bulk_calls=$(calls_of bulk)
echo "calls by class: live $live_calls, archive $archive_calls, bulk $bulk_calls"
# The live case: GET case, POST generate-report, GET report-file, GET supplementary-information and
# GET supplementary-files. A bulk case: its GET and generate-report as bulk work, then the fetching
# (report file, supplementary information and files) as archive work.
[[ $live_calls -eq 5 ]] || fail "$live_calls live calls for one case"
[[ $bulk_calls -eq $((bulk * 2)) ]] || fail "$bulk_calls bulk calls for $bulk cases"
[[ $archive_calls -eq $((bulk * 3)) ]] || fail "$archive_calls archive calls for $bulk cases"
pass "every Certn call counted under its work's class"
stop_serve
