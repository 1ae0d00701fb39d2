#!/bin/bash
# kill -9 of `serve` in the middle of a large download: the job stays leased to the dead process
# until its lease (5 s) runs out, then a new `serve` rescues it and archives everything; what is
# on disk equals the artifacts table and fresh downloads from Certn. A killed process cannot
# remove its staging file: the test reports how many it left and fails on any other.
binary=$1
source_dir=$2
source "$(dirname "$0")/lib.sh"
sim_binary="$(dirname "$binary")/simulator/certn-sim"
[[ -x $sim_binary ]] || fail "certn-sim not built at $sim_binary"

create_database
export CERTN_ARCHIVER_DATABASE_URL=$db_dsn
"$binary" migrate >/dev/null 2>&1 || fail "migrate"

sim_port=$(free_port)
port=$(free_port)
archive="$scratch/archive"
export CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port
export CERTN_ARCHIVER_WEBHOOK_SECRETS=sim-webhook-secret
export CERTN_ARCHIVER_CERTN_BASE_URL=http://127.0.0.1:$sim_port CERTN_ARCHIVER_CERTN_API_KEY=sim-key
export CERTN_ARCHIVER_CERTN_ALLOW_PLAIN_HTTP=true CERTN_ARCHIVER_CERTN_ALLOW_SPECIAL_ADDRESSES=true
export CERTN_ARCHIVER_CERTN_DOWNLOAD_HOSTS=127.0.0.1 CERTN_ARCHIVER_CERTN_REQUESTS_PER_MINUTE=6000
export CERTN_ARCHIVER_STORAGE_PATH=$archive
export CERTN_ARCHIVER_WORKERS_REPORT_POLL_DELAY_SECONDS=1 CERTN_ARCHIVER_WORKERS_BACKOFF_BASE_SECONDS=1
export CERTN_ARCHIVER_WORKERS_BACKOFF_MAX_SECONDS=2
export CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=0 CERTN_ARCHIVER_WORKERS_POLL_INTERVAL_MS=300
export CERTN_ARCHIVER_WORKERS_LEASE_SECONDS=5

"$binary" serve 2>"$scratch/first.log" &
daemon_pid=$!
first_pid=$daemon_pid
sim_pid=""
finish() {
  set +e  # a failed kill or wait must not skip the rest
  [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  cleanup_scratch
}
trap finish EXIT
wait_for curl -sf "http://127.0.0.1:$port/readyz" || fail "serve not ready: $(cat "$scratch/first.log")"

# Webhooks go to the port, whichever process listens there; the sender's retries cover the gap.
"$sim_binary" --listen "127.0.0.1:$sim_port" --report-delay-ms 300 \
  --webhook-url "http://127.0.0.1:$port/webhooks/certn" --webhook-retry-base-ms 200 --seed 5 \
  >"$scratch/sim.out" 2>"$scratch/sim.err" &
sim_pid=$!
wait_for grep -q "listening on" "$scratch/sim.out" || fail "certn-sim did not start: $(cat "$scratch/sim.err")"
sim="http://127.0.0.1:$sim_port"

# Two checks x one file of 256 MiB: a download takes long enough to be caught in flight.
file_size=$((256 * 1024 * 1024))
id=$(curl -sf -X POST "$sim/_sim/cases" -d "{\"count\":1,\"files_per_check\":1,\"file_size\":$file_size}" |
  jq -r '.ids[0]') || fail "control API"
curl -sf -X POST "$sim/_sim/cases/$id/status" -d '{"status":"COMPLETE"}' >/dev/null || fail "move $id"

q() { psql -w -qtA "$db_dsn" -c "$1"; }
# A staging file of a supplementary file that has data in it: a download is in flight.
in_flight() { [[ -n $(find "$archive" -name '*.tmp' -size +1M 2>/dev/null) ]]; }
deadline=$((SECONDS + 20))
until in_flight; do
  ((SECONDS < deadline)) || {
    tail -20 "$scratch/first.log" >&2
    fail "no download seen in flight within 20 s"
  }
  sleep 0.01
done
kill -KILL "$first_pid"
wait "$first_pid" 2>/dev/null || true
killed_at=$SECONDS
find "$archive" -name '*.tmp' | sort >"$scratch/stale"
stale_bytes=$(find "$archive" -name '*.tmp' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
state=$(q "SELECT state || ' ' || COALESCE(lease_owner, '-') FROM jobs WHERE kind = 'archive_supplementary' AND key = '$id'")
lease_expires=$(q "SELECT EXTRACT(EPOCH FROM lease_expires) FROM jobs WHERE kind = 'archive_supplementary' AND key = '$id'")
[[ $state == running\ *:$first_pid:* ]] ||
  fail "archive_supplementary was not running under the killed process ($state): the download was too fast to catch, raise file_size"
pass "kill -9 of serve (pid $first_pid) while downloading: $(wc -l <"$scratch/stale") staging file(s) of $stale_bytes bytes, job still leased to it"

"$binary" serve 2>"$scratch/second.log" &
daemon_pid=$!
wait_for curl -sf "http://127.0.0.1:$port/readyz" || fail "second serve not ready: $(cat "$scratch/second.log")"

expected=$((1 + 1 + 2))  # report, supplementary information, 2 files
settled() {
  [[ $(q "SELECT count(*) FROM artifacts WHERE kind IN ('report', 'supplementary_file', 'supplementary_information')") -eq $expected ]] &&
    [[ $(q "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed')") -eq 0 ]]
}
deadline=$((SECONDS + 45))
until settled; do
  ((SECONDS < deadline)) || {
    q "SELECT id, kind, key, state, attempts, lease_owner, last_error FROM jobs ORDER BY id" >&2
    tail -20 "$scratch/second.log" >&2
    fail "not archived within 45 s of the restart"
  }
  sleep 0.2
done
resumed_after=$((SECONDS - killed_at))
[[ $(q "SELECT count(*) FROM jobs WHERE state = 'dead'") -eq 0 ]] ||
  fail "dead jobs: $(q "SELECT kind, key, last_error FROM jobs WHERE state = 'dead'")"
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
pass "rescued $(awk -v r="$rescued_at" -v e="$lease_expires" 'BEGIN { printf "%.1f", r - e }') s after the lease expired, archived within $resumed_after s of the kill (attempt $attempts; ${line##* done in })"

while IFS='|' read -r key sha size; do
  [[ -f $archive/$key ]] || fail "missing $key"
  [[ $(stat -c %s "$archive/$key") -eq $size ]] || fail "size of $key"
  [[ $(sha256sum "$archive/$key" | cut -d' ' -f1) == "$sha" ]] || fail "sha256 of $key"
done < <(q "SELECT object_key, sha256, size_bytes FROM artifacts")
[[ $(q "SELECT count(*) FROM artifacts WHERE kind = 'supplementary_file' AND size_bytes = $file_size") -eq 2 ]] ||
  fail "expected two files of $file_size bytes: $(q "SELECT object_key, size_bytes FROM artifacts")"
curl -sf -H 'Authorization: Api-Key sim-key' "$sim/api/public/cases/$id/supplementary-files/" >"$scratch/files.json" ||
  fail "list files"
n=0
while IFS=$'\t' read -r file url; do
  curl -sf -o "$scratch/fresh" "$url" || fail "download $url"
  key=$(q "SELECT object_key FROM artifacts WHERE source_id = '$file'")
  cmp -s "$scratch/fresh" "$archive/$key" || fail "archived $key differs from Certn's file"
  n=$((n + 1))
done < <(jq -r '.checks[] | .files[] | [.id, .url] | @tsv' "$scratch/files.json")
rm -f "$scratch/fresh"
[[ $n -eq 2 ]] || fail "expected 2 files, compared $n"
pass "every object matches its size and sha256; both 256 MiB files equal fresh downloads"

find "$archive" -name '*.tmp' | sort >"$scratch/left"
others=$(comm -13 "$scratch/stale" "$scratch/left")
[[ -z $others ]] || fail "temporary files left besides the killed process's: $others"
pass "temporary files left: $(wc -l <"$scratch/left") (all the killed process's own, as expected after kill -9)"

expect_exit_after_sigterm
pass "SIGTERM: drained, exit 0"
