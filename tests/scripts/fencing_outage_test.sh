#!/bin/bash
# Fencing under a real outage (issue 15, item 1): replica A reaches PostgreSQL through a TCP proxy
# that stops forwarding in the middle of A's job (a download), so A's heartbeats hang. The lease
# (5 s) runs out, replica B rescues the job and completes it. When the proxy forwards again, A's
# late outcome is refused and counted; the job's final state is B's run, and what is stored is
# intact (A's late writes of the same verified bytes change nothing).
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
export CERTN_ARCHIVER_WORKERS_LEASE_SECONDS=5 CERTN_ARCHIVER_WORKERS_POLL_INTERVAL_MS=300
start_db_proxy
CERTN_ARCHIVER_DATABASE_URL=$proxied_dsn start_serve a
a_pid=${serve_pid[a]}
a_port=${serve_port[a]}
start_sim --report-delay-ms 300 --seed 47

# Two checks x one file of 256 MiB: a download takes long enough to be caught in flight.
file_size=$((256 * 1024 * 1024))
id=$(create_cases "{\"count\":1,\"files_per_check\":1,\"file_size\":$file_size}")
move_case "$id" COMPLETE
in_flight() { [[ -n $(find "$archive" -name '*.tmp' -size +1M 2>/dev/null) ]]; }
wait_until -i 0.01 30 "no download seen in flight" in_flight
kill -USR1 "$proxy_pid"
job_row() { q "SELECT state || ' ' || COALESCE(lease_owner, '-') || ' ' || COALESCE(lease_token, 0) FROM jobs WHERE kind = 'archive_supplementary' AND key = '$id'"; }
before=$(job_row)
[[ $before == running\ *:$a_pid:*\ * ]] ||
  fail "archive_supplementary was not running under A when its database stopped answering ($before): raise file_size"
a_token=${before##* }
pass "A's database stops answering in the middle of its job (token $a_token)"

# B, straight to the database, rescues the job once A's lease has run out, and completes it.
CERTN_ARCHIVER_DATABASE_URL=$db_dsn start_serve b "$(free_port)"
job_token() { q "SELECT lease_token FROM jobs WHERE kind = 'archive_supplementary' AND key = '$id'"; }
completed_by_another_run() { [[ $(job_row) == succeeded\ * && $(job_token) != "$a_token" ]]; }
wait_until 60 "B did not complete the job: $(job_row)" completed_by_another_run
b_token=$(job_token)
grep -q "rescued [0-9]* job(s) whose lease had expired" "$scratch/b.log" ||
  fail "B did not say it rescued the job: $(tail -5 "$scratch/b.log")"
pass "B rescued the job and completed it (token $b_token)"

# A's database answers again: its late outcome is refused. (A may hold other jobs of the case
# that lost their leases too, whose refusals can come first: wait for this job's own.)
kill -USR2 "$proxy_pid"
refused_logged() { grep -q "archive_supplementary($id): lease lost" "$scratch/a.log"; }
wait_until 90 "A did not log the refused outcome: $(grep -i lease "$scratch/a.log" | tail -5)" refused_logged
stale() {
  curl -sf "http://127.0.0.1:$a_port/metrics" |
    awk '/^certn_archiver_jobs_stale_outcomes_total\{kind="archive_supplementary"\}/ {s += $2} END {print s + 0}'
}
[[ $(stale) -ge 1 ]] || fail "A's refused outcome was not counted: $(curl -sf "http://127.0.0.1:$a_port/metrics" | grep stale_outcomes)"
after=$(q "SELECT state || ' ' || lease_token FROM jobs WHERE kind = 'archive_supplementary' AND key = '$id'")
[[ $after == "succeeded $b_token" ]] || fail "the job's final state is not B's run: $after"
pass "A's late outcome refused and counted; the job stays B's (succeeded, token $b_token)"

wait_archived $((1 + 1 + 2)) 90
expect_no_dead_job
[[ $(q "SELECT count(*) FROM artifacts WHERE case_id = '$id' AND kind = 'supplementary_file'") -eq 2 ]] ||
  fail "supplementary file rows: $(q "SELECT object_key, sha256 FROM artifacts WHERE case_id = '$id'")"
verify_objects
stop_serve a b
pass "case archived once: 2 files, each object intact at its final key"
