# Shared set-up and checks of the end-to-end archiving tests (sourced after lib.sh, not run):
# a database, `serve` against certn-sim on the filesystem backend, and the checks that what was
# archived is exactly Certn's bytes. Environment overrides for serve are exported by the caller
# before start_serve; certn-sim's extra flags are the arguments of start_sim.
sim_binary="$(dirname "$binary")/simulator/certn-sim"
[[ -x $sim_binary ]] || fail "certn-sim not built at $sim_binary"

create_database
export CERTN_ARCHIVER_DATABASE_URL=$db_dsn
"$binary" migrate >"$scratch/migrate.log" 2>&1 || fail "migrate: $(cat "$scratch/migrate.log")"

sim_port=$(free_port)
port=$(free_port)
archive="$scratch/archive"
sim="http://127.0.0.1:$sim_port"
sim_pid=""
export CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port
export CERTN_ARCHIVER_WEBHOOK_SECRETS=sim-webhook-secret
export CERTN_ARCHIVER_CERTN_BASE_URL=$sim CERTN_ARCHIVER_CERTN_API_KEY=sim-key
export CERTN_ARCHIVER_CERTN_ALLOW_PLAIN_HTTP=true CERTN_ARCHIVER_CERTN_ALLOW_SPECIAL_ADDRESSES=true
export CERTN_ARCHIVER_CERTN_DOWNLOAD_HOSTS=127.0.0.1 CERTN_ARCHIVER_CERTN_REQUESTS_PER_MINUTE=6000
export CERTN_ARCHIVER_STORAGE_PATH=$archive
export CERTN_ARCHIVER_WORKERS_REPORT_POLL_DELAY_SECONDS=1 CERTN_ARCHIVER_WORKERS_BACKOFF_BASE_SECONDS=1
export CERTN_ARCHIVER_WORKERS_BACKOFF_MAX_SECONDS=4 CERTN_ARCHIVER_WORKERS_POLL_INTERVAL_MS=500
export CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=0

trap 'if [[ -n $sim_pid ]]; then kill $sim_pid 2>/dev/null && wait $sim_pid 2>/dev/null; fi; cleanup_scratch' EXIT

q() { psql -w -qtA "$db_dsn" -c "$1"; }

start_serve() {
  "$binary" serve 2>"$scratch/serve.log" &
  daemon_pid=$!
  wait_for curl -sf "http://127.0.0.1:$port/readyz" || fail "serve not ready: $(cat "$scratch/serve.log")"
}

# start_sim FLAGS...: certn-sim sending webhooks to serve (which must be up for the challenge).
start_sim() {
  "$sim_binary" --listen "127.0.0.1:$sim_port" --webhook-url "http://127.0.0.1:$port/webhooks/certn" \
    --webhook-retry-base-ms 200 "$@" >"$scratch/sim.out" 2>"$scratch/sim.err" &
  sim_pid=$!
  wait_for grep -q "listening on" "$scratch/sim.out" || fail "certn-sim did not start: $(cat "$scratch/sim.err")"
}

# create_cases JSON: prints the new case ids, one a line.
create_cases() {
  curl -sf -X POST "$sim/_sim/cases" -d "$1" | jq -r '.ids[]' || fail "control API: create $1"
}

move_case() {
  curl -sf -X POST "$sim/_sim/cases/$1/status" -d "{\"status\":\"$2\"}" >/dev/null || fail "move $1 to $2"
}

set_faults() {
  curl -sf -X POST "$sim/_sim/faults" -d "$1" || fail "control API: faults $1"
}

pending_jobs() {
  q "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed') AND kind <> 'reconcile'"
}

# wait_archived N SECONDS: until N reports, supplementary information and files exist and no job
# (but the periodic reconcile) is pending; on time-out prints the jobs and the log's tail.
wait_archived() {
  local expected=$1 deadline=$((SECONDS + $2))
  until [[ $(q "SELECT count(*) FROM artifacts WHERE kind IN ('report', 'supplementary_file', 'supplementary_information')") -eq $expected &&
           $(pending_jobs) -eq 0 ]]; do
    ((SECONDS < deadline)) || {
      q "SELECT id, kind, key, state, attempts, last_error FROM jobs ORDER BY id" >&2
      tail -30 "$scratch/serve.log" >&2
      fail "$expected artifacts not archived within $2 s (have $(q "SELECT count(*) FROM artifacts WHERE kind IN ('report', 'supplementary_file', 'supplementary_information')"))"
    }
    sleep 0.2
  done
}

expect_no_dead_job() {
  [[ $(q "SELECT count(*) FROM jobs WHERE state = 'dead'") -eq 0 ]] ||
    fail "dead jobs: $(q "SELECT kind, key, attempts, last_error FROM jobs WHERE state = 'dead'")"
}

# Every artifact on disk with its recorded size and sha256; no temporary file left.
verify_objects() {
  local key sha size n=0
  while IFS='|' read -r key sha size; do
    [[ -f $archive/$key ]] || fail "missing $key"
    [[ $(stat -c %s "$archive/$key") -eq $size ]] || fail "size of $key: $(stat -c %s "$archive/$key") on disk, $size recorded"
    [[ $(sha256sum "$archive/$key" | cut -d' ' -f1) == "$sha" ]] || fail "sha256 of $key"
    n=$((n + 1))
  done < <(q "SELECT object_key, sha256, size_bytes FROM artifacts")
  ((n > 0)) || fail "no artifact at all"
  [[ -z $(find "$archive" -name '*.tmp') ]] || fail "temporary files left: $(find "$archive" -name '*.tmp')"
  pass "$n objects on disk match their recorded size and sha256; no temporary file left"
}

# verify_case ID FILES: the case's supplementary files equal fresh downloads from certn-sim (FILES
# of them), exactly one report and it is a PDF, and the manifest lists every artifact. Faults that
# touch the API must be off.
verify_case() {
  local id=$1 files=$2 n=0 check file name url key
  curl -sf -H 'Authorization: Api-Key sim-key' "$sim/api/public/cases/$id/supplementary-files/" \
    >"$scratch/files.json" || fail "list files of $id"
  while IFS=$'\t' read -r check file name url; do
    curl -sf -o "$scratch/fresh" "$url" || fail "download $url"
    key=$(q "SELECT object_key FROM artifacts WHERE source_id = '$file'")
    [[ -n $key ]] || fail "file $file of case $id not archived"
    cmp -s "$scratch/fresh" "$archive/$key" || fail "archived $key differs from Certn's file"
    n=$((n + 1))
  done < <(jq -r '.checks[] | .id as $c | .files[] | [$c, .id, .name, .url] | @tsv' "$scratch/files.json")
  [[ $n -eq $files ]] || fail "expected $files files for case $id, compared $n"
  [[ $(q "SELECT count(*) FROM artifacts WHERE case_id = '$id' AND kind = 'report'") -eq 1 ]] ||
    fail "case $id: expected exactly one report"
  key=$(q "SELECT object_key FROM artifacts WHERE case_id = '$id' AND kind = 'report'")
  head -c 5 "$archive/$key" | grep -q '%PDF-' || fail "report of $id is not a PDF"
  local manifest="$archive/cases/$id/manifest.json"
  [[ -f $manifest ]] || fail "no manifest for $id"
  [[ $(jq '.artifacts | length' "$manifest") -eq $(q "SELECT count(*) FROM artifacts WHERE case_id = '$id' AND kind <> 'manifest'") ]] ||
    fail "manifest of $id does not list every artifact: $(cat "$manifest")"
}
