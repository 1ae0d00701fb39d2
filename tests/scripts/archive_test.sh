#!/bin/bash
# End to end, filesystem backend: certn-sim sends (duplicated, reordered) webhooks to `serve`, the
# workers archive every case that reaches COMPLETE, and what lands on disk is checked byte for
# byte against fresh downloads from the simulator; a dispute and a second closing archive the
# new content beside the old. Then SIGTERM drains and exits 0.
# certn-sim shapes: assumed observed
binary=$1
source_dir=$2
source "$(dirname "$0")/lib.sh"
sim_binary="$(dirname "$binary")/simulator/certn-sim"
[[ -x $sim_binary ]] || fail "certn-sim not built at $sim_binary"

create_database
export CERTN_ARCHIVER_DATABASE_URL=$db_dsn
"$binary" migrate >/dev/null

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
export CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=0 CERTN_ARCHIVER_WORKERS_POLL_INTERVAL_MS=500

"$binary" serve 2>"$scratch/serve.log" &
daemon_pid=$!
wait_for curl -sf "http://127.0.0.1:$port/readyz" || fail "serve not ready: $(cat "$scratch/serve.log")"

"$sim_binary" --listen "127.0.0.1:$sim_port" --report-delay-ms 300 --file-size 150000 \
  --webhook-url "http://127.0.0.1:$port/webhooks/certn" --webhook-retry-base-ms 200 \
  --webhook-duplicate-rate 0.3 --webhook-reorder-rate 0.3 --seed 7 \
  >"$scratch/sim.out" 2>"$scratch/sim.err" &
sim_pid=$!
trap 'kill $sim_pid 2>/dev/null && wait $sim_pid 2>/dev/null; cleanup_scratch' EXIT
wait_for grep -q "listening on" "$scratch/sim.out" || fail "certn-sim did not start: $(cat "$scratch/sim.err")"
sim="http://127.0.0.1:$sim_port"

ids=$(curl -sf -X POST "$sim/_sim/cases" -d '{"count":6,"files_per_check":2}' | jq -r '.ids[]') ||
  fail "control API"
for id in $ids; do
  curl -sf -X POST "$sim/_sim/cases/$id/status" -d '{"status":"COMPLETE"}' >/dev/null || fail "move $id"
done

q() { psql -w -qtA "$db_dsn" -c "$1"; }
# 6 cases x (report + supplementary information + 2 checks x 2 files) = 36, plus manifests.
settled() {
  [[ $(q "SELECT count(*) FROM artifacts WHERE kind IN ('report', 'supplementary_file', 'supplementary_information')") -eq 36 ]] &&
    [[ $(q "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed')") -eq 0 ]]
}
deadline=$((SECONDS + 90))
until settled; do
  ((SECONDS < deadline)) || {
    q "SELECT id, kind, key, state, attempts, last_error FROM jobs ORDER BY id" >&2
    tail -30 "$scratch/serve.log" >&2
    fail "not archived within 90 s"
  }
  sleep 0.2
done
pass "6 cases archived: $(q "SELECT count(*) FROM artifacts") artifacts"

[[ $(q "SELECT count(*) FROM jobs WHERE state = 'dead'") -eq 0 ]] ||
  fail "dead jobs: $(q "SELECT kind, key, last_error FROM jobs WHERE state = 'dead'")"
[[ $(q "SELECT count(*) FROM (SELECT case_id FROM artifacts WHERE kind = 'report' GROUP BY case_id HAVING count(*) = 1) x") -eq 6 ]] ||
  fail "expected exactly one report per case despite duplicated webhooks"
[[ $(q "SELECT count(*) FROM webhook_events WHERE processed_at IS NULL") -eq 0 ]] ||
  fail "unprocessed events remain"
pass "duplicated and reordered webhooks: one report per case, no dead job, every event processed"

# Every artifact on disk with the recorded size and sha256.
while IFS='|' read -r key sha size; do
  [[ -f $archive/$key ]] || fail "missing $key"
  [[ $(stat -c %s "$archive/$key") -eq $size ]] || fail "size of $key"
  [[ $(sha256sum "$archive/$key" | cut -d' ' -f1) == "$sha" ]] || fail "sha256 of $key"
done < <(q "SELECT object_key, sha256, size_bytes FROM artifacts")
[[ -z $(find "$archive" -name '*.tmp') ]] || fail "temporary files left: $(find "$archive" -name '*.tmp')"
pass "every object on disk matches its recorded size and sha256; no temporary file left"

# The archived files are the simulator's bytes: compare with fresh downloads.
id=$(echo "$ids" | head -1)
curl -sf -H 'Authorization: Api-Key sim-key' "$sim/api/public/cases/$id/supplementary-files/" >"$scratch/files.json"
n=0
while IFS=$'\t' read -r check file name url; do
  curl -sf -o "$scratch/fresh" "$url" || fail "download $url"
  key=$(q "SELECT object_key FROM artifacts WHERE source_id = '$file'")
  cmp -s "$scratch/fresh" "$archive/$key" || fail "archived $key differs from Certn's file"
  n=$((n + 1))
done < <(jq -r '.checks[] | .id as $c | .files[] | [$c, .id, .name, .url] | @tsv' "$scratch/files.json")
[[ $n -eq 4 ]] || fail "expected 4 files for case $id, compared $n"
report=$(q "SELECT object_key FROM artifacts WHERE case_id = '$id' AND kind = 'report'")
head -c 5 "$archive/$report" | grep -q '%PDF-' || fail "report is not a PDF"
manifest="$archive/cases/$id/manifest.json"
[[ $(jq '.artifacts | length' "$manifest") -eq $(q "SELECT count(*) FROM artifacts WHERE case_id = '$id' AND kind <> 'manifest'") ]] ||
  fail "manifest does not list every artifact: $(cat "$manifest")"
pass "case $id: files equal Certn's bytes, report is a PDF, manifest lists every artifact"

# Dispute, then close again: new content archived beside the old.
before=$(q "SELECT count(*) FROM artifacts WHERE case_id = '$id'")
curl -sf -X POST "$sim/_sim/cases/$id/dispute" >/dev/null || fail "dispute"
wait_for bash -c "[[ \$(psql -w -qtA '$db_dsn' -c \"SELECT overall_status FROM cases WHERE id = '$id'\") == IN_DISPUTE ]]" ||
  fail "dispute not seen"
curl -sf -X POST "$sim/_sim/cases/$id/close" >/dev/null || fail "close"
deadline=$((SECONDS + 60))
until [[ $(q "SELECT count(*) FROM artifacts WHERE case_id = '$id' AND kind = 'report'") -eq 2 &&
         $(q "SELECT count(*) FROM artifacts WHERE case_id = '$id' AND kind = 'supplementary_file'") -eq 6 &&
         $(q "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed')") -eq 0 ]]; do
  ((SECONDS < deadline)) || { q "SELECT kind, key, state, last_error FROM jobs WHERE key = '$id'" >&2; fail "re-archive not done"; }
  sleep 0.2
done
[[ $(q "SELECT count(*) FROM artifacts WHERE case_id = '$id' AND kind = 'supplementary_information'") -eq 2 ]] ||
  fail "the second revision of the supplementary information was not archived"
pass "dispute and second closing: $before -> $(q "SELECT count(*) FROM artifacts WHERE case_id = '$id'") artifacts, old ones kept"

expect_exit_after_sigterm
grep -q "workers: 4 as" "$scratch/serve.log" || fail "workers did not start"
pass "SIGTERM: drained, exit 0"
