#!/bin/bash
# `backfill` prints its estimate, runs at bulk priority and can be paused and resumed (issue
# "Spend Certn's quota wisely", backfill): while paused, no bulk job is claimed by any replica,
# across a restart, while live work goes on; `status` shows the pause and what is left; after
# `--resume` every case is archived.
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
# A budget for the estimate, large enough that pacing bulk work to it costs no time here.
export CERTN_ARCHIVER_CERTN_REQUESTS_PER_DAY=1000000
start_serve
start_sim --webhook-drop-rate 1 --report-delay-ms 200 --file-size 2000 --seed 41
ids=$(create_cases '{"count":4,"files_per_check":0}')
for id in $ids; do
  move_case "$id" COMPLETE
done

out=$("$binary" backfill --pause) || fail "backfill --pause failed"
[[ $out == "backfill: bulk work paused; 0 job(s) wait for \`backfill --resume\`" ]] || fail "--pause said: $out"
out=$("$binary" backfill --pause) || fail "a second --pause failed"
[[ $out == "backfill: bulk work was paused already; 0 job(s) wait for \`backfill --resume\`" ]] || fail "second --pause said: $out"
expect_exit 2 "backfill without --since" "$binary" backfill
out=$("$binary" backfill --since "$(date -u -d '1 day ago' +%F)" 2>"$scratch/backfill.err") ||
  fail "backfill failed: $(cat "$scratch/backfill.err")"
[[ $out == "backfill: 4 cases seen, 4 sync_case jobs enqueued, 0 already pending" ]] || fail "backfill said: $out"
grep -q "^backfill: 4 case(s): at most 20 Certn calls (5 a closed case, 1 an open one), about 0.0 day(s) at certn.requests_per_day = 1000000 less the 20 % live reserve" "$scratch/backfill.err" ||
  fail "no estimate: $(cat "$scratch/backfill.err")"
! grep -q $'\r' "$scratch/backfill.err" || fail "progress drawn into a file: $(cat -A "$scratch/backfill.err")"
# On a terminal (script(1) gives it one), the progress line is drawn and cleared.
q "DELETE FROM jobs WHERE kind = 'sync_case'" >/dev/null
script -qec "$binary backfill --since $(date -u -d '1 day ago' +%F) 2>&1" /dev/null >"$scratch/tty.out" ||
  fail "backfill on a terminal: $(cat "$scratch/tty.out")"
grep -qF $'\r\e[Kbackfill: cases listed and enqueued 4/4 (100%)\r\e[K' "$scratch/tty.out" ||
  fail "no progress on a terminal: $(cat -A "$scratch/tty.out")"
pass "backfill prints its estimate, progress on a terminal only; bulk work paused"

# Live work goes on; once it is done, the paused bulk jobs have still never been claimed.
bulk_untouched() {
  sql_check -eq 4 "SELECT count(*) FROM jobs WHERE kind = 'sync_case' AND priority = 3 AND state = 'queued' AND attempts = 0"
}
live_case_archived() {
  local live
  live=$(create_cases '{"count":1,"files_per_check":0}')
  move_case "$live" COMPLETE
  post_case_event "$live"
  wait_until 30 "live case $live not archived while bulk work is paused" \
    sql_check -eq 1 "SELECT count(*) FROM artifacts WHERE case_id = '$live' AND kind = 'report'"
}
live_case_archived
bulk_untouched || fail "paused bulk jobs were claimed: $(q "SELECT key, state, attempts FROM jobs WHERE kind = 'sync_case'")"
"$binary" status >"$scratch/status.out" || fail "status failed"
grep -q "^bulk work   4 open job(s) (backfill), paused since .* by backfill --pause (\`backfill --resume\`)$" "$scratch/status.out" ||
  fail "status: $(cat "$scratch/status.out")"
"$binary" status --json | jq -e '.bulk.open_jobs == 4 and .bulk.paused_at != null' >/dev/null ||
  fail "status --json: $("$binary" status --json | jq -c .bulk)"
pass "while paused, live work is archived and no bulk job is claimed; status shows it"

stop_serve
start_serve
live_case_archived
bulk_untouched || fail "paused bulk jobs were claimed after a restart"
pass "the pause outlives a restart"

out=$("$binary" backfill --resume) || fail "backfill --resume failed"
[[ $out == "backfill: bulk work resumed; 4 job(s) to run" ]] || fail "--resume said: $out"
wait_archived 12 60
expect_no_dead_job
for id in $ids; do
  verify_case "$id" 0
done
"$binary" status | grep -q "^bulk work   0 open job(s) (backfill)$" || fail "status after resume: $("$binary" status)"
pass "resumed: the backfill's cases archived"
stop_serve
