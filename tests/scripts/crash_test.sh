#!/bin/bash
# kill -9 of `serve` in the middle of a large download: the job stays leased to the dead process
# until its lease (the default, 20 s) runs out, then a new `serve` rescues it, within 30 s of the
# kill (issue 15 item 6), and archives everything; what is
# on disk equals the artifacts table and fresh downloads from Certn. A killed process cannot
# remove its staging file: the test reports how many it left and fails on any other.
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
export CERTN_ARCHIVER_WORKERS_BACKOFF_MAX_SECONDS=2 CERTN_ARCHIVER_WORKERS_POLL_INTERVAL_MS=300
start_serve first
first_pid=${serve_pid[first]}
# Webhooks go to the port, whichever process listens there; the sender's retries cover the gap.
start_sim --report-delay-ms 300 --seed 5

# Two checks x one file of 256 MiB: a download takes long enough to be caught in flight.
file_size=$((256 * 1024 * 1024))
id=$(create_cases "{\"count\":1,\"files_per_check\":1,\"file_size\":$file_size}")
move_case "$id" COMPLETE

# A staging file of a supplementary file that has data in it: a download is in flight.
in_flight() { [[ -n $(find "$archive" -name '*.tmp' -size +1M 2>/dev/null) ]]; }
wait_until -i 0.01 20 "no download seen in flight" in_flight
kill_serve first
killed_at=$SECONDS
killed_epoch=$(date +%s.%N)
find "$archive" -name '*.tmp' | sort >"$scratch/stale"
stale_bytes=$(find "$archive" -name '*.tmp' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
state=$(q "SELECT state || ' ' || COALESCE(lease_owner, '-') FROM jobs WHERE kind = 'archive_supplementary' AND key = '$id'")
lease_expires=$(q "SELECT EXTRACT(EPOCH FROM lease_expires) FROM jobs WHERE kind = 'archive_supplementary' AND key = '$id'")
[[ $state == running\ *:$first_pid:* ]] ||
  fail "archive_supplementary was not running under the killed process ($state): the download was too fast to catch, raise file_size"
pass "kill -9 of serve (pid $first_pid) while downloading: $(wc -l <"$scratch/stale") staging file(s) of $stale_bytes bytes, job still leased to it"

start_serve second

wait_archived $((1 + 1 + 2)) 75  # report, supplementary information, 2 files
resumed_after=$((SECONDS - killed_at))
expect_no_dead_job
rescued=$(grep -m1 'rescued [0-9]* job(s) whose lease had expired' "$scratch/second.log") ||
  fail "the second serve did not rescue the killed one's job"
# Not before the dead process's lease ran out (same clock: PostgreSQL runs here).
rescued_at=$(date -d "${rescued%% *}" +%s.%N)
awk -v r="$rescued_at" -v e="$lease_expires" 'BEGIN { exit !(r >= e) }' ||
  fail "rescued at $rescued_at, before the lease expired at $lease_expires"
line=$(grep -E "job [0-9]+ archive_supplementary\($id\) done in" "$scratch/second.log") ||
  fail "the second serve did not finish archive_supplementary"
attempts=$(q "SELECT attempts FROM jobs WHERE kind = 'archive_supplementary' AND key = '$id' AND state = 'succeeded'")
[[ $attempts -ge 2 ]] || fail "archive_supplementary succeeded in $attempts attempt(s): the killed run was not counted"
awk -v r="$rescued_at" -v k="$killed_epoch" 'BEGIN { exit !(r - k <= 30) }' ||
  fail "rescued $(awk -v r="$rescued_at" -v k="$killed_epoch" 'BEGIN { printf "%.1f", r - k }') s after the kill, not within 30 s"
pass "rescued $(awk -v r="$rescued_at" -v e="$lease_expires" 'BEGIN { printf "%.1f", r - e }') s after the lease expired, $(awk -v r="$rescued_at" -v k="$killed_epoch" 'BEGIN { printf "%.1f", r - k }') s after the kill, archived within $resumed_after s of it (attempt $attempts; ${line##* done in })"

verify_objects --tmp-allowed  # the killed process's staging files: checked below
[[ $(q "SELECT count(*) FROM artifacts WHERE kind = 'supplementary_file' AND size_bytes = $file_size") -eq 2 ]] ||
  fail "expected two files of $file_size bytes: $(q "SELECT object_key, size_bytes FROM artifacts")"
verify_case "$id" 2
pass "every object matches its size and sha256; both 256 MiB files equal fresh downloads"

find "$archive" -name '*.tmp' | sort >"$scratch/left"
others=$(comm -13 "$scratch/stale" "$scratch/left")
[[ -z $others ]] || fail "temporary files left besides the killed process's: $others"
pass "temporary files left: $(wc -l <"$scratch/left") (all the killed process's own, as expected after kill -9)"

stop_serve
pass "SIGTERM: drained, exit 0"
