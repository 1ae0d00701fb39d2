#!/bin/bash
# PostgreSQL stopped for ~3 s while cases are being archived and webhooks keep coming: intake
# answers 503 meanwhile and certn-sim's retries deliver the events once it is back; the workers
# resume by themselves; every case ends archived, nothing dead, nothing lost; the objects on disk
# equal the artifacts table and fresh downloads from Certn.
binary=$1
source_dir=$2
source "$(dirname "$0")/lib.sh"
sim_binary="$(dirname "$binary")/simulator/certn-sim"
[[ -x $sim_binary ]] || fail "certn-sim not built at $sim_binary"
[[ -n ${TEST_PG_DIR:-} && -f $TEST_PG_DIR/port ]] ||
  fail "TEST_PG_DIR (the scripts/pg.sh cluster directory of TEST_PG_DSN) is not set: run through scripts/test.sh"
pg() { bash "$source_dir/scripts/pg.sh" "$@"; }

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
export CERTN_ARCHIVER_WORKERS_LEASE_SECONDS=10

"$binary" serve 2>"$scratch/serve.log" &
daemon_pid=$!
sim_pid=""
paused=""
finish() {
  set +e  # a failed kill or wait must not skip the rest
  [[ -n $paused ]] && pg resume "$TEST_PG_DIR"
  [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  cleanup_scratch
}
trap finish EXIT
wait_for curl -sf "http://127.0.0.1:$port/readyz" || fail "serve not ready: $(cat "$scratch/serve.log")"

# Retries after 1.2, 3.6 and 8.4 s: the last falls after the outage.
"$sim_binary" --listen "127.0.0.1:$sim_port" --report-delay-ms 300 --file-size 4000000 \
  --webhook-url "http://127.0.0.1:$port/webhooks/certn" --webhook-retry-base-ms 1200 --seed 9 \
  >"$scratch/sim.out" 2>"$scratch/sim.err" &
sim_pid=$!
wait_for grep -q "listening on" "$scratch/sim.out" || fail "certn-sim did not start: $(cat "$scratch/sim.err")"
sim="http://127.0.0.1:$sim_port"

cases=8
mapfile -t ids < <(curl -sf -X POST "$sim/_sim/cases" -d "{\"count\":$cases,\"files_per_check\":2}" | jq -r ".ids[]") ||
  fail "control API"
[[ ${#ids[@]} -eq $cases ]] || fail "expected $cases case ids"
for id in "${ids[@]:0:4}"; do
  curl -sf -X POST "$sim/_sim/cases/$id/status" -d '{"status":"COMPLETE"}' >/dev/null || fail "move $id"
done

q() { psql -w -qtA "$db_dsn" -c "$1"; }
# The first cases are being archived: some files stored, jobs still to do.
deadline=$((SECONDS + 20))
until [[ $(q "SELECT count(*) FROM artifacts WHERE kind = 'supplementary_file'") -ge 1 ]]; do
  ((SECONDS < deadline)) || { tail -20 "$scratch/serve.log" >&2; fail "archiving did not start"; }
  sleep 0.05
done
pending=$(q "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed')")

paused=1
pg pause "$TEST_PG_DIR"
outage_start=$SECONDS
# The other cases close while the database is away: their webhooks meet a 503 first.
for id in "${ids[@]:4}"; do
  curl -sf -X POST "$sim/_sim/cases/$id/status" -d '{"status":"COMPLETE"}' >/dev/null || fail "move $id"
done
sleep 3
pg resume "$TEST_PG_DIR"
paused=""
pass "PostgreSQL stopped for $((SECONDS - outage_start)) s with $pending job(s) pending and 4 cases closing"

expected=$((cases * 6))  # per case: report, supplementary information, 2 checks x 2 files
settled() {
  [[ $(q "SELECT count(*) FROM artifacts WHERE kind IN ('report', 'supplementary_file', 'supplementary_information')") -eq $expected ]] &&
    [[ $(q "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed')") -eq 0 ]] &&
    [[ $(curl -sf "$sim/_sim/webhooks" | jq '[.webhooks[] | select(.outcome == "pending")] | length') -eq 0 ]]
}
deadline=$((SECONDS + 45))
until settled; do
  ((SECONDS < deadline)) || {
    q "SELECT id, kind, key, state, attempts, last_error FROM jobs ORDER BY id" >&2
    tail -30 "$scratch/serve.log" >&2
    fail "not archived within 45 s of the restart"
  }
  sleep 0.2
done
kill -0 "$daemon_pid" 2>/dev/null || fail "serve died: $(tail -20 "$scratch/serve.log")"
wait_for curl -sf "http://127.0.0.1:$port/readyz" || fail "serve not ready again after the outage"
if grep -q 'job notifications: .*polling until the database is back' "$scratch/serve.log"; then
  grep -q 'job notifications: listening again' "$scratch/serve.log" ||
    fail "job notifications lost in the outage and never listened again"
fi
pass "work resumed by itself: $cases cases archived, $(q "SELECT count(*) FROM artifacts") artifacts"

[[ $(q "SELECT count(*) FROM jobs WHERE state = 'dead'") -eq 0 ]] ||
  fail "dead jobs: $(q "SELECT kind, key, last_error FROM jobs WHERE state = 'dead'")"
[[ $(q "SELECT count(*) FROM webhook_events WHERE processed_at IS NULL") -eq 0 ]] ||
  fail "unprocessed events remain"
curl -sf "$sim/_sim/webhooks" >"$scratch/webhooks.json" || fail "webhook list"
undelivered=$(jq -c '[.webhooks[] | select(.outcome != "delivered")]' "$scratch/webhooks.json")
[[ $undelivered == "[]" ]] || fail "webhooks not delivered: $undelivered"
retried=$(jq '[.webhooks[] | select(.statuses | index(503))] | length' "$scratch/webhooks.json")
((retried > 0)) || fail "no webhook met a 503 during the outage: $(jq -c '[.webhooks[].statuses]' "$scratch/webhooks.json")"
for id in "${ids[@]}"; do
  [[ $(q "SELECT overall_status FROM cases WHERE id = '$id'") == COMPLETE ]] || fail "case $id not COMPLETE here"
done
# What the workers met depends on timing (all slots busy: no claim tried); say what it was.
failed_runs=$(grep -c 'attempt [0-9]*/[0-9]* failed' "$scratch/serve.log" || true)
claim_failures=$(grep -c 'workers: cannot claim jobs' "$scratch/serve.log" || true)
pass "$retried webhook(s) answered 503 during the outage, all $(jq '.webhooks | length' "$scratch/webhooks.json") delivered by retries; every event processed, no dead job; $failed_runs job run(s) failed and were retried, claim failures logged: $claim_failures"

while IFS='|' read -r key sha size; do
  [[ -f $archive/$key ]] || fail "missing $key"
  [[ $(stat -c %s "$archive/$key") -eq $size ]] || fail "size of $key"
  [[ $(sha256sum "$archive/$key" | cut -d' ' -f1) == "$sha" ]] || fail "sha256 of $key"
done < <(q "SELECT object_key, sha256, size_bytes FROM artifacts")
[[ -z $(find "$archive" -name '*.tmp') ]] || fail "temporary files left: $(find "$archive" -name '*.tmp')"
n=0
for id in "${ids[@]}"; do
  curl -sf -H 'Authorization: Api-Key sim-key' "$sim/api/public/cases/$id/supplementary-files/" >"$scratch/files.json" ||
    fail "list files of $id"
  while IFS=$'\t' read -r file url; do
    curl -sf -o "$scratch/fresh" "$url" || fail "download $url"
    key=$(q "SELECT object_key FROM artifacts WHERE source_id = '$file'")
    [[ -n $key ]] || fail "file $file of case $id not archived"
    cmp -s "$scratch/fresh" "$archive/$key" || fail "archived $key differs from Certn's file"
    n=$((n + 1))
  done < <(jq -r '.checks[] | .files[] | [.id, .url] | @tsv' "$scratch/files.json")
done
[[ $n -eq $((cases * 4)) ]] || fail "expected $((cases * 4)) files, compared $n"
pass "every object matches its size and sha256, no temporary file; all $n files equal fresh downloads"

expect_exit_after_sigterm
pass "SIGTERM: drained, exit 0"
