#!/bin/bash
# Two `serve` replicas on one database: certn-sim posts its webhooks to replica A only, both run
# workers. Every job runs to success exactly once (one "done" line across both logs), both
# replicas did some of the work, every case is archived, nothing is dead, and what is on disk is
# exactly what the artifacts table and Certn say.
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
export CERTN_ARCHIVER_WORKERS_POLL_INTERVAL_MS=300
# Two slots each: with many jobs at once neither replica can take them all.
export CERTN_ARCHIVER_WORKERS_CONCURRENCY=2
start_serve a  # on $port: certn-sim's webhooks go there
start_serve b "$(free_port)"
start_sim --report-delay-ms 300 --file-size 100000 --webhook-duplicate-rate 0.3 --seed 11

cases=12
ids=$(create_cases "{\"count\":$cases,\"files_per_check\":2}")
for id in $ids; do
  move_case "$id" COMPLETE
done
# Per case: report + supplementary information + 2 checks x 2 files.
settled() {
  [[ $(archived_count) -eq $((cases * 6)) && $(pending_jobs) -eq 0 ]] &&
    sql_check -eq 0 "SELECT count(*) FROM webhook_events WHERE processed_at IS NULL"
}
wait_until 60 "not archived" settled
pass "$cases cases archived by two replicas: $(q "SELECT count(*) FROM artifacts") artifacts"

expect_no_dead_job
[[ $(q "SELECT count(*) FROM (SELECT case_id FROM artifacts WHERE kind = 'report' GROUP BY case_id HAVING count(*) = 1) x") -eq $cases ]] ||
  fail "expected exactly one report per case"
[[ $(q "SELECT count(*) FROM cases") -eq $cases ]] || fail "expected $cases cases, got $(q "SELECT count(*) FROM cases")"

# Exactly once: every job id appears in at most one "done" line over both logs, and every job the
# table calls succeeded (other than one merged into its successor) in exactly one.
done_ids() { grep -ohE '\bjob [0-9]+ [a-z_]+\([^)]*\) done in' "$@" | awk '{print $2}'; }
# comm wants lexical order.
done_ids "$scratch/a.log" "$scratch/b.log" | sort >"$scratch/done.all"
twice=$(uniq -d "$scratch/done.all")
[[ -z $twice ]] || fail "jobs done more than once: $twice"
q "SELECT id FROM jobs WHERE state = 'succeeded' AND last_error IS NULL" | sort >"$scratch/succeeded"
[[ -s $scratch/succeeded ]] || fail "no succeeded job"
missing=$(comm -23 "$scratch/succeeded" <(sort -u "$scratch/done.all") | tr '\n' ' ')
[[ -z $missing ]] || fail "succeeded jobs without a done line: $missing"
extra=$(comm -13 <(q "SELECT id FROM jobs WHERE state = 'succeeded'" | sort) <(sort -u "$scratch/done.all") | tr '\n' ' ')
[[ -z $extra ]] || fail "done lines for jobs the table does not call succeeded: $extra"
by_a=$(done_ids "$scratch/a.log" | wc -l)
by_b=$(done_ids "$scratch/b.log" | wc -l)
((by_a > 0 && by_b > 0)) || fail "one replica did all the work: A $by_a, B $by_b"
grep -q 'lease lost' "$scratch/a.log" "$scratch/b.log" && fail "a lease was lost: $(grep -h 'lease lost' "$scratch/a.log" "$scratch/b.log")"
pass "every job done exactly once: $(wc -l <"$scratch/done.all") runs, A $by_a, B $by_b; no lease lost"

verify_objects
for id in $ids; do
  verify_case "$id" 4
done
pass "all $((cases * 4)) supplementary files equal fresh downloads from Certn"

stop_serve a b
pass "SIGTERM: both replicas drained, exit 0"
