#!/bin/bash
# End to end, S3 backend (s3rver, which checks SigV4): cases archived through `serve` into a
# bucket, one file large enough for a multipart upload; the S3 server is stopped and restarted
# mid-run and the work resumes by itself; awscli reads every object back and its sha256 and size
# must match the database; `verify` agrees, and names an object corrupted behind our back.
# certn-sim shapes: assumed observed
binary=$1
source_dir=$2
source "$(dirname "$0")/lib.sh"
sim_binary="$(dirname "$binary")/simulator/certn-sim"
[[ -x $sim_binary ]] || fail "certn-sim not built at $sim_binary"
command -v /usr/bin/aws >/dev/null || fail "awscli is not installed (scripts/install-deps.sh)"

create_database
export CERTN_ARCHIVER_DATABASE_URL=$db_dsn
"$binary" migrate >/dev/null 2>&1 || fail "migrate"

s3_port=$(free_port)
s3_dir="$scratch/s3"
endpoint=$(bash "$source_dir/scripts/s3.sh" start "$s3_dir" "$s3_port") || fail "s3rver did not start"
sim_port=$(free_port)
port=$(free_port)
export CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port
export CERTN_ARCHIVER_WEBHOOK_SECRETS=sim-webhook-secret
export CERTN_ARCHIVER_CERTN_BASE_URL=http://127.0.0.1:$sim_port CERTN_ARCHIVER_CERTN_API_KEY=sim-key
export CERTN_ARCHIVER_CERTN_ALLOW_PLAIN_HTTP=true CERTN_ARCHIVER_CERTN_ALLOW_SPECIAL_ADDRESSES=true
export CERTN_ARCHIVER_CERTN_DOWNLOAD_HOSTS=127.0.0.1 CERTN_ARCHIVER_CERTN_REQUESTS_PER_MINUTE=6000
export CERTN_ARCHIVER_STORAGE_BACKEND=s3 CERTN_ARCHIVER_STORAGE_PATH=$scratch/state
export CERTN_ARCHIVER_STORAGE_PREFIX=archive/
export CERTN_ARCHIVER_STORAGE_S3_ENDPOINT=$endpoint CERTN_ARCHIVER_STORAGE_S3_BUCKET=testbucket
export CERTN_ARCHIVER_STORAGE_S3_PATH_STYLE=true CERTN_ARCHIVER_STORAGE_S3_REGION=us-east-1
export CERTN_ARCHIVER_STORAGE_S3_ACCESS_KEY_ID=S3RVER CERTN_ARCHIVER_STORAGE_S3_SECRET_ACCESS_KEY=S3RVER
export CERTN_ARCHIVER_STORAGE_S3_MULTIPART_THRESHOLD_BYTES=5242880 CERTN_ARCHIVER_STORAGE_S3_PART_SIZE_BYTES=5242880
export CERTN_ARCHIVER_WORKERS_REPORT_POLL_DELAY_SECONDS=1 CERTN_ARCHIVER_WORKERS_BACKOFF_BASE_SECONDS=1
export CERTN_ARCHIVER_WORKERS_BACKOFF_MAX_SECONDS=2
export CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=0 CERTN_ARCHIVER_WORKERS_POLL_INTERVAL_MS=500
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
aws() { /usr/bin/aws --endpoint-url "$endpoint" "$@"; }

"$binary" serve 2>"$scratch/serve.log" &
daemon_pid=$!
wait_for curl -sf "http://127.0.0.1:$port/readyz" || fail "serve not ready: $(cat "$scratch/serve.log")"
"$sim_binary" --listen "127.0.0.1:$sim_port" --report-delay-ms 300 --file-size 100000 \
  --webhook-url "http://127.0.0.1:$port/webhooks/certn" --webhook-retry-base-ms 200 --seed 11 \
  >"$scratch/sim.out" 2>"$scratch/sim.err" &
sim_pid=$!
trap 'kill $sim_pid 2>/dev/null && wait $sim_pid 2>/dev/null; bash "$source_dir/scripts/s3.sh" stop "$s3_dir"; cleanup_scratch' EXIT
wait_for grep -q "listening on" "$scratch/sim.out" || fail "certn-sim did not start: $(cat "$scratch/sim.err")"
sim="http://127.0.0.1:$sim_port"

q() { psql -w -qtA "$db_dsn" -c "$1"; }
ids=$(curl -sf -X POST "$sim/_sim/cases" -d '{"count":4,"files_per_check":1}' | jq -r '.ids[]')
big=$(curl -sf -X POST "$sim/_sim/cases" -d '{"count":1,"files_per_check":1,"file_size":12582912}' | jq -r '.ids[]')
for id in $ids $big; do
  curl -sf -X POST "$sim/_sim/cases/$id/status" -d '{"status":"COMPLETE"}' >/dev/null || fail "move $id"
done

# Stop the S3 server as soon as the first object landed, for about 3 s.
wait_for bash -c "[[ \$(psql -w -qtA '$db_dsn' -c 'SELECT count(*) FROM artifacts') -gt 0 ]]" ||
  fail "nothing archived: $(tail -20 "$scratch/serve.log")"
bash "$source_dir/scripts/s3.sh" stop "$s3_dir"
sleep 3
endpoint=$(bash "$source_dir/scripts/s3.sh" start "$s3_dir" "$s3_port") || fail "s3rver did not restart"
pass "s3rver stopped for 3 s mid-run and restarted"

# 5 cases x (report + supplementary information + 2 files) = 20.
deadline=$((SECONDS + 90))
until [[ $(q "SELECT count(*) FROM artifacts WHERE kind IN ('report', 'supplementary_file', 'supplementary_information')") -eq 20 &&
         $(q "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed')") -eq 0 ]]; do
  ((SECONDS < deadline)) || {
    q "SELECT id, kind, key, state, attempts, last_error FROM jobs ORDER BY id" >&2
    tail -30 "$scratch/serve.log" >&2
    fail "not archived within 90 s"
  }
  sleep 0.2
done
[[ $(q "SELECT count(*) FROM jobs WHERE state = 'dead'") -eq 0 ]] ||
  fail "dead jobs: $(q "SELECT kind, key, last_error FROM jobs WHERE state = 'dead'")"
retried=$(q "SELECT count(*) FROM jobs WHERE attempts > 1")
pass "5 cases archived to S3 ($retried job(s) needed more than one attempt)"

n=0
while IFS='|' read -r key sha size; do
  aws s3 cp --only-show-errors "s3://testbucket/$key" "$scratch/object" || fail "awscli cannot read $key"
  [[ $(stat -c %s "$scratch/object") -eq $size ]] || fail "size of $key"
  [[ $(sha256sum "$scratch/object" | cut -d' ' -f1) == "$sha" ]] || fail "sha256 of $key"
  n=$((n + 1))
done < <(q "SELECT object_key, sha256, size_bytes FROM artifacts")
[[ $(q "SELECT max(size_bytes) FROM artifacts") -eq 12582912 ]] || fail "the 12 MiB file is missing"
[[ $(q "SELECT count(*) FROM artifacts WHERE object_key NOT LIKE 'archive/cases/%'") -eq 0 ]] ||
  fail "keys must start with the prefix archive/"
pass "awscli read back all $n objects: sizes and sha256 as recorded (one 12 MiB multipart upload)"

# The archived file is Certn's: compare with a fresh download.
curl -sf -H 'Authorization: Api-Key sim-key' "$sim/api/public/cases/$big/supplementary-files/" >"$scratch/files.json"
jq -r '.checks[0].files[0] | [.id, .url] | @tsv' "$scratch/files.json" | {
  IFS=$'\t' read -r file url
  curl -sf -o "$scratch/fresh" "$url" || fail "download"
  key=$(q "SELECT object_key FROM artifacts WHERE source_id = '$file'")
  aws s3 cp --only-show-errors "s3://testbucket/$key" "$scratch/object"
  cmp -s "$scratch/fresh" "$scratch/object" || fail "archived $key differs from Certn's file"
}
pass "the large file in the bucket equals Certn's bytes"

out=$("$binary" verify 2>&1) || fail "verify failed: $out"
grep -q "0 mismatched, 0 missing" <<<"$out" || fail "verify: $out"
victim=$(q "SELECT object_key FROM artifacts WHERE kind = 'supplementary_file' LIMIT 1")
echo "tampered" >"$scratch/tampered"
aws s3 cp --only-show-errors "$scratch/tampered" "s3://testbucket/$victim"
rc=0
out=$("$binary" verify 2>&1) || rc=$?
[[ $rc -eq 1 ]] && grep -q "MISMATCH  $victim" <<<"$out" || fail "verify did not catch $victim (exit $rc): $out"
pass "verify: all objects match; a tampered object is named and exits 1"

expect_exit_after_sigterm
pass "SIGTERM: drained, exit 0"
