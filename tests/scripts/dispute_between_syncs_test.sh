#!/bin/bash
# A dispute opened and closed again before the daemon syncs the case (found by the soak): the
# daemon sees COMPLETE -> COMPLETE with other content, and must archive the new content too.
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
start_serve
start_sim --report-delay-ms 300 --file-size 1000 --seed 3
id=$(create_cases '{"count":1,"files_per_check":1}')
move_case "$id" COMPLETE
wait_archived 4 30
# Both calls before any webhook is handled: the sync that follows sees only the closed case.
curl -sf -X POST "$sim/_sim/cases/$id/dispute" >/dev/null || fail "dispute"
curl -sf -X POST "$sim/_sim/cases/$id/close" >/dev/null || fail "close"

files_at_certn() {
  curl -sf -H 'Authorization: Api-Key sim-key' "$sim/api/public/cases/$id/supplementary-files/" |
    jq -r '.checks[].files[].id' | sort
}
expected=$(files_at_certn)
[[ $(wc -l <<<"$expected") -eq 4 ]] || fail "certn-sim should list 4 files after the re-close: $expected"
archived_all() {
  [[ $(q "SELECT source_id FROM artifacts WHERE case_id = '$id' AND kind = 'supplementary_file' ORDER BY 1") == "$expected" ]] &&
    [[ $(q "SELECT count(*) FROM artifacts WHERE case_id = '$id' AND kind = 'report'") -eq 2 ]] &&
    [[ $(pending_jobs) -eq 0 ]]
}
wait_until 30 "the content of the second closing was not archived" archived_all
grep -q "case $id is COMPLETE: archiving" "$scratch/serve.log" || fail "no archiving line in the log"
expect_no_dead_job
verify_objects
pass "a case disputed and closed again between two syncs is archived again, old content kept"
