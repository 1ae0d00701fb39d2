#!/bin/bash
# End to end, expired download URLs: certn-sim hands out already-expired presigned URLs (fault
# expire_next_urls), more of them than the first runs of the jobs can use up; serve takes each
# expiry as "list again", never as a failure: everything is archived with no dead job, and every
# expired URL handed out was answered by a fresh listing. Then a report URL alone expires.
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env

start_serve
start_sim --report-delay-ms 300 --file-size 60000 --seed 13

faults=$(set_faults '{"expire_next_urls":34}')
[[ $(jq '.expire_next_urls' <<<"$faults") -eq 34 ]] ||
  fail "certn-sim does not know the fault expire_next_urls: $faults"

ids=$(create_cases '{"count":2,"files_per_check":2}')
for id in $ids; do
  move_case "$id" COMPLETE
done
# 2 cases x (report + supplementary information + 2 checks x 2 files).
wait_archived 12 60
expect_no_dead_job
[[ $(set_faults '{}' | jq '.expire_next_urls') -eq 0 ]] || fail "not every expired URL was handed out"
[[ $(curl -sf "$sim/_sim/stats" | jq '.expired_urls') -eq 34 ]] || fail "stats: $(curl -sf "$sim/_sim/stats")"
grep -q "download URLs expired; listing the files again" "$scratch/serve.log" ||
  fail "serve did not list the files again: $(grep -i expired "$scratch/serve.log")"
# A listing hands out 4 file URLs, or 1 report URL; a run lists the files 3 times at most, the
# report twice, and a case has at most two first runs of fetch_report (polling, and the event
# while that runs): first runs absorb at most 2 x (3 x 4 + 2 x 2 x 1) = 32 expired URLs, so with
# 34 some run ran out of listings and was retried rather than failing for good.
[[ $(q "SELECT count(*) FROM jobs WHERE kind IN ('archive_supplementary', 'fetch_report') AND attempts > 1") -ge 1 ]] ||
  fail "no job needed a second run: $(q "SELECT kind, key, attempts, last_error FROM jobs")"
pass "34 expired URLs: listed again (and retried) until archived, no dead job"

verify_objects
for id in $ids; do
  verify_case "$id" 4
done
pass "files equal Certn's bytes, one PDF report per case, manifests list every artifact"

# A case without files: the only URL handed out is its report's, and it has expired.
id=$(create_cases '{"count":1,"files_per_check":0}')
set_faults '{"expire_next_urls":1}' >/dev/null
move_case "$id" COMPLETE
wait_archived 14 30
expect_no_dead_job
[[ $(curl -sf "$sim/_sim/stats" | jq '.expired_urls') -eq 35 ]] || fail "stats: $(curl -sf "$sim/_sim/stats")"
grep -q "report .*: download URL expired; asking Certn for a fresh one" "$scratch/serve.log" ||
  fail "serve did not ask for a fresh report URL: $(grep -i expired "$scratch/serve.log")"
verify_case "$id" 0
verify_objects
pass "an expired report URL: a fresh one asked for, the report archived"

stop_serve
pass "SIGTERM: drained, exit 0"
