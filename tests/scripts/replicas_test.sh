#!/bin/bash
# Two `serve` replicas on one database: certn-sim posts its webhooks to replica A only, both run
# workers. Every job runs to success exactly once (one "done" line across both logs), both
# replicas did some of the work, every case is archived, nothing is dead, and what is on disk is
# exactly what the artifacts table and Certn say.
binary=$1
source_dir=$2
source "$(dirname "$0")/lib.sh"
sim_binary="$(dirname "$binary")/simulator/certn-sim"
[[ -x $sim_binary ]] || fail "certn-sim not built at $sim_binary"

create_database
export CERTN_ARCHIVER_DATABASE_URL=$db_dsn
"$binary" migrate >/dev/null 2>&1 || fail "migrate"

sim_port=$(free_port)
port_a=$(free_port)
port_b=$(free_port)
archive="$scratch/archive"
export CERTN_ARCHIVER_WEBHOOK_SECRETS=sim-webhook-secret
export CERTN_ARCHIVER_CERTN_BASE_URL=http://127.0.0.1:$sim_port CERTN_ARCHIVER_CERTN_API_KEY=sim-key
export CERTN_ARCHIVER_CERTN_ALLOW_PLAIN_HTTP=true CERTN_ARCHIVER_CERTN_ALLOW_SPECIAL_ADDRESSES=true
export CERTN_ARCHIVER_CERTN_DOWNLOAD_HOSTS=127.0.0.1 CERTN_ARCHIVER_CERTN_REQUESTS_PER_MINUTE=6000
export CERTN_ARCHIVER_STORAGE_PATH=$archive
export CERTN_ARCHIVER_WORKERS_REPORT_POLL_DELAY_SECONDS=1 CERTN_ARCHIVER_WORKERS_BACKOFF_BASE_SECONDS=1
export CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=0 CERTN_ARCHIVER_WORKERS_POLL_INTERVAL_MS=300
# Two slots each: with many jobs at once neither replica can take them all.
export CERTN_ARCHIVER_WORKERS_CONCURRENCY=2

CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port_a "$binary" serve 2>"$scratch/a.log" &
daemon_pid=$!
CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port_b "$binary" serve 2>"$scratch/b.log" &
pid_b=$!
sim_pid=""
stop_all() {
  set +e  # a failed kill or wait must not skip the rest
  [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  kill -KILL "$pid_b" 2>/dev/null && wait "$pid_b" 2>/dev/null
  cleanup_scratch
}
trap stop_all EXIT
wait_for curl -sf "http://127.0.0.1:$port_a/readyz" || fail "replica A not ready: $(cat "$scratch/a.log")"
wait_for curl -sf "http://127.0.0.1:$port_b/readyz" || fail "replica B not ready: $(cat "$scratch/b.log")"

"$sim_binary" --listen "127.0.0.1:$sim_port" --report-delay-ms 300 --file-size 100000 \
  --webhook-url "http://127.0.0.1:$port_a/webhooks/certn" --webhook-retry-base-ms 200 \
  --webhook-duplicate-rate 0.3 --seed 11 >"$scratch/sim.out" 2>"$scratch/sim.err" &
sim_pid=$!
wait_for grep -q "listening on" "$scratch/sim.out" || fail "certn-sim did not start: $(cat "$scratch/sim.err")"
sim="http://127.0.0.1:$sim_port"

cases=12
ids=$(curl -sf -X POST "$sim/_sim/cases" -d "{\"count\":$cases,\"files_per_check\":2}" | jq -r '.ids[]') ||
  fail "control API"
for id in $ids; do
  curl -sf -X POST "$sim/_sim/cases/$id/status" -d '{"status":"COMPLETE"}' >/dev/null || fail "move $id"
done

q() { psql -w -qtA "$db_dsn" -c "$1"; }
# Per case: report + supplementary information + 2 checks x 2 files.
expected=$((cases * 6))
settled() {
  [[ $(q "SELECT count(*) FROM artifacts WHERE kind IN ('report', 'supplementary_file', 'supplementary_information')") -eq $expected ]] &&
    [[ $(q "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed')") -eq 0 ]] &&
    [[ $(q "SELECT count(*) FROM webhook_events WHERE processed_at IS NULL") -eq 0 ]]
}
deadline=$((SECONDS + 60))
until settled; do
  ((SECONDS < deadline)) || {
    q "SELECT id, kind, key, state, attempts, lease_owner, last_error FROM jobs ORDER BY id" >&2
    tail -20 "$scratch/a.log" "$scratch/b.log" >&2
    fail "not archived within 60 s"
  }
  sleep 0.2
done
pass "$cases cases archived by two replicas: $(q "SELECT count(*) FROM artifacts") artifacts"

[[ $(q "SELECT count(*) FROM jobs WHERE state = 'dead'") -eq 0 ]] ||
  fail "dead jobs: $(q "SELECT kind, key, last_error FROM jobs WHERE state = 'dead'")"
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

while IFS='|' read -r key sha size; do
  [[ -f $archive/$key ]] || fail "missing $key"
  [[ $(stat -c %s "$archive/$key") -eq $size ]] || fail "size of $key"
  [[ $(sha256sum "$archive/$key" | cut -d' ' -f1) == "$sha" ]] || fail "sha256 of $key"
done < <(q "SELECT object_key, sha256, size_bytes FROM artifacts")
[[ -z $(find "$archive" -name '*.tmp') ]] || fail "temporary files left: $(find "$archive" -name '*.tmp')"
pass "every object on disk matches its recorded size and sha256; no temporary file left"

n=0
for id in $ids; do
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
pass "all $n supplementary files equal fresh downloads from Certn"

kill -TERM "$pid_b"
expect_exit_after_sigterm
wait "$pid_b" || fail "replica B exited $? after SIGTERM"
pass "SIGTERM: both replicas drained, exit 0"
