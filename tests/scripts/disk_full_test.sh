#!/bin/bash
# A full disk under the filesystem backend: the archive is a 600 KiB tmpfs and the files are
# larger than that. Jobs fail with "No space left on device" and retry; whenever no job is running
# there is no staging file, and every file at a final key is a complete, recorded object. Once the
# tmpfs grows to 64 MiB everything is archived, equal to fresh downloads from Certn.
# Needs root (mount).
binary=$1
source_dir=$2
source "$(dirname "$0")/lib.sh"
sim_binary="$(dirname "$binary")/simulator/certn-sim"
[[ -x $sim_binary ]] || fail "certn-sim not built at $sim_binary"
[[ $EUID -eq 0 ]] || fail "needs root to mount a small tmpfs as the archive"

create_database
export CERTN_ARCHIVER_DATABASE_URL=$db_dsn
"$binary" migrate >/dev/null 2>&1 || fail "migrate"

archive="$scratch/archive"
mkdir "$archive"
mount -t tmpfs -o size=600k tmpfs "$archive" || fail "cannot mount a tmpfs at $archive"
sim_pid=""
finish() {
  set +e  # a failed kill or wait must not skip the rest
  [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -KILL "$daemon_pid" 2>/dev/null
    wait "$daemon_pid" 2>/dev/null
  fi
  umount "$archive" || umount -l "$archive"
  cleanup_scratch
}
trap finish EXIT

sim_port=$(free_port)
port=$(free_port)
export CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port
export CERTN_ARCHIVER_WEBHOOK_SECRETS=sim-webhook-secret
export CERTN_ARCHIVER_CERTN_BASE_URL=http://127.0.0.1:$sim_port CERTN_ARCHIVER_CERTN_API_KEY=sim-key
export CERTN_ARCHIVER_CERTN_ALLOW_PLAIN_HTTP=true CERTN_ARCHIVER_CERTN_ALLOW_SPECIAL_ADDRESSES=true
export CERTN_ARCHIVER_CERTN_DOWNLOAD_HOSTS=127.0.0.1 CERTN_ARCHIVER_CERTN_REQUESTS_PER_MINUTE=6000
export CERTN_ARCHIVER_STORAGE_PATH=$archive
export CERTN_ARCHIVER_WORKERS_REPORT_POLL_DELAY_SECONDS=1 CERTN_ARCHIVER_WORKERS_BACKOFF_BASE_SECONDS=1
export CERTN_ARCHIVER_WORKERS_BACKOFF_MAX_SECONDS=2 CERTN_ARCHIVER_WORKERS_MAX_ATTEMPTS=30
export CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=0 CERTN_ARCHIVER_WORKERS_POLL_INTERVAL_MS=300

"$binary" serve 2>"$scratch/serve.log" &
daemon_pid=$!
wait_for curl -sf "http://127.0.0.1:$port/readyz" || fail "serve not ready: $(cat "$scratch/serve.log")"

"$sim_binary" --listen "127.0.0.1:$sim_port" --report-delay-ms 300 \
  --webhook-url "http://127.0.0.1:$port/webhooks/certn" --webhook-retry-base-ms 200 --seed 3 \
  >"$scratch/sim.out" 2>"$scratch/sim.err" &
sim_pid=$!
wait_for grep -q "listening on" "$scratch/sim.out" || fail "certn-sim did not start: $(cat "$scratch/sim.err")"
sim="http://127.0.0.1:$sim_port"

# One case whose files are each larger than the whole tmpfs, one whose files fit one at a time.
big=$(curl -sf -X POST "$sim/_sim/cases" -d '{"count":1,"file_size":700000}' | jq -r '.ids[0]') || fail "control API"
small=$(curl -sf -X POST "$sim/_sim/cases" -d '{"count":1,"files_per_check":2,"file_size":200000}' | jq -r '.ids[0]') ||
  fail "control API"
for id in "$big" "$small"; do
  curl -sf -X POST "$sim/_sim/cases/$id/status" -d '{"status":"COMPLETE"}' >/dev/null || fail "move $id"
done

q() { psql -w -qtA "$db_dsn" -c "$1"; }

# Every regular file at a final key (not a staging file) is an artifact of that size and sha256.
check_final_keys() {
  local path key row
  while IFS= read -r path; do
    key=${path#"$archive"/}
    row=$(q "SELECT size_bytes || ' ' || sha256 FROM artifacts WHERE object_key = '$key'")
    [[ -n $row ]] || fail "$1: file at $key that no artifact records (partial?), $(stat -c %s "$path") bytes"
    [[ $row == "$(stat -c %s "$path") $(sha256sum "$path" | cut -d' ' -f1)" ]] ||
      fail "$1: $key is not the recorded object ($row)"
  done < <(find "$archive" -type f ! -name '*.tmp')
}

# Full: the supplementary job fails for lack of space, and keeps retrying.
deadline=$((SECONDS + 30))
until [[ $(q "SELECT count(*) FROM jobs WHERE kind = 'archive_supplementary' AND state IN ('failed', 'running') AND attempts >= 3 AND last_error ILIKE '%no space left%'") -ge 1 ]]; do
  ((SECONDS < deadline)) || {
    q "SELECT id, kind, key, state, attempts, last_error FROM jobs ORDER BY id" >&2
    tail -20 "$scratch/serve.log" >&2
    fail "no job failing for lack of space within 30 s"
  }
  sleep 0.2
done
error=$(q "SELECT last_error FROM jobs WHERE last_error ILIKE '%no space left%' LIMIT 1")
[[ $(q "SELECT count(*) FROM jobs WHERE state = 'dead'") -eq 0 ]] ||
  fail "a full disk made jobs dead: $(q "SELECT kind, key, last_error FROM jobs WHERE state = 'dead'")"
pass "disk full: jobs fail and retry (df: $(df --output=used,size -k "$archive" | tail -1 | xargs) KiB): $error"

# A quiet moment: no job running before and after looking, and no claim in between (attempts
# unchanged). Then no staging file may exist.
quiet=""
deadline=$((SECONDS + 20))
while ((SECONDS < deadline)); do
  before=$(q "SELECT count(*) FILTER (WHERE state = 'running') || ' ' || sum(attempts) FROM jobs")
  if [[ $before == 0\ * ]]; then
    find "$archive" -name '*.tmp' >"$scratch/tmps"
    after=$(q "SELECT count(*) FILTER (WHERE state = 'running') || ' ' || sum(attempts) FROM jobs")
    if [[ $after == "$before" ]]; then
      quiet=1
      break
    fi
  fi
  sleep 0.05
done
[[ -n $quiet ]] || fail "never saw a moment with no job running"
[[ ! -s $scratch/tmps ]] || fail "staging files left behind by failed runs: $(cat "$scratch/tmps")"
check_final_keys "disk full"
pass "between retries: no staging file, every file at a final key complete and recorded"

mount -o remount,size=64m "$archive" || fail "cannot grow the tmpfs"
expected=$(((2 + 2 * 2) + 2 * 2))  # 6 files, and a report and supplementary information per case
settled() {
  [[ $(q "SELECT count(*) FROM artifacts WHERE kind IN ('report', 'supplementary_file', 'supplementary_information')") -eq $expected ]] &&
    [[ $(q "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed')") -eq 0 ]]
}
deadline=$((SECONDS + 30))
until settled; do
  ((SECONDS < deadline)) || {
    q "SELECT id, kind, key, state, attempts, last_error FROM jobs ORDER BY id" >&2
    tail -20 "$scratch/serve.log" >&2
    fail "not archived within 30 s of growing the disk"
  }
  sleep 0.2
done
[[ $(q "SELECT count(*) FROM jobs WHERE state = 'dead'") -eq 0 ]] ||
  fail "dead jobs: $(q "SELECT kind, key, last_error FROM jobs WHERE state = 'dead'")"
pass "space back: everything archived ($(q "SELECT count(*) FROM artifacts") artifacts, $(q "SELECT max(attempts) FROM jobs") attempts at most)"

while IFS='|' read -r key sha size; do
  [[ -f $archive/$key ]] || fail "missing $key"
  [[ $(stat -c %s "$archive/$key") -eq $size ]] || fail "size of $key"
  [[ $(sha256sum "$archive/$key" | cut -d' ' -f1) == "$sha" ]] || fail "sha256 of $key"
done < <(q "SELECT object_key, sha256, size_bytes FROM artifacts")
check_final_keys "at the end"
[[ -z $(find "$archive" -name '*.tmp') ]] || fail "temporary files left: $(find "$archive" -name '*.tmp')"
n=0
for id in "$big" "$small"; do
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
[[ $n -eq 6 ]] || fail "expected 6 files, compared $n"
pass "every object matches its size and sha256, no temporary file; all $n files equal fresh downloads"

expect_exit_after_sigterm
pass "SIGTERM: drained, exit 0"
