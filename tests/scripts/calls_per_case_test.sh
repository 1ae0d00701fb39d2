#!/bin/bash
# The steady webhook flow spends exactly the Certn calls a case needs (issue "Spend Certn's quota
# wisely"): GET case, POST generate-report, GET report-file, GET supplementary-information and GET
# supplementary-files, once each per archived case, whatever the webhooks repeat; and each case's
# manifest is written once, after its artifacts landed.
# certn-sim shapes: assumed observed
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
# The polling fallback is far away: CASE_REPORT_READY alone brings the report download forward.
export CERTN_ARCHIVER_WORKERS_REPORT_POLL_DELAY_SECONDS=600
start_serve
start_sim --report-delay-ms 300 --file-size 20000 --webhook-duplicate-rate 0.5 --seed 11
cases=4
ids=$(create_cases "{\"count\":$cases,\"files_per_check\":2}")
for id in $ids; do
  move_case "$id" COMPLETE
done
wait_archived $((cases * 6)) 60
expect_no_dead_job
# Deliveries still in flight (duplicates) must not cost calls either: wait until the simulator has
# delivered everything, then until every job they caused has run.
wait_for bash -c "curl -sf $sim/_sim/webhooks | jq -e '[.webhooks[] | select(.outcome == \"pending\")] | length == 0'" ||
  fail "certn-sim still delivering: $(curl -sf "$sim/_sim/webhooks")"
wait_archived $((cases * 6)) 30

curl -sf "$sim/_sim/stats" >"$scratch/stats.json" || fail "stats"
calls() { jq -r --arg e "$1" '[.requests[$e] // {} | to_entries[] | .value] | add // 0' "$scratch/stats.json"; }
echo "Certn calls: $(jq -c .requests "$scratch/stats.json")"
for endpoint in cases.detail cases.generate_report cases.report_file cases.supplementary_information \
  cases.supplementary_files; do
  [[ $(calls "$endpoint") -eq $cases ]] || fail "$endpoint: $(calls "$endpoint") calls for $cases cases"
done
total=$(jq '.total_requests' "$scratch/stats.json")
[[ $total -eq $((cases * 5)) ]] || fail "$total Certn calls for $cases cases, expected $((cases * 5))"
gauge=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^certn_archiver_certn_calls_per_archived_case / {print $2}')
[[ $gauge == 5 ]] || fail "certn_archiver_certn_calls_per_archived_case is ${gauge:-missing}, expected 5"
pass "$cases cases archived with exactly 5 Certn calls each (and the last hour's gauge says 5)"

# Written means put into the store (the counter counts puts); a job that found nothing new to
# write, or waited for the case's other jobs, does not count.
manifest_writes=$(curl -sf "http://127.0.0.1:$port/metrics" |
  awk '/^certn_archiver_artifacts_total\{kind="manifest"\}/ {print $2}')
[[ $manifest_writes -eq $cases ]] || fail "manifest written ${manifest_writes:-0} times for $cases cases"
for id in $ids; do
  verify_case "$id" 4
done
pass "one manifest write per case, listing every artifact"
stop_serve
