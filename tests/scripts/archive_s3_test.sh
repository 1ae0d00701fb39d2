#!/bin/bash
# End to end, S3 backend (s3rver, which checks SigV4): cases archived through `serve` into a
# bucket, one file large enough for a multipart upload; the S3 server is stopped and restarted
# mid-run and the work resumes by itself; awscli reads every object back and its sha256 and size
# must match the database; `verify` agrees, and names an object corrupted behind our back.
# certn-sim shapes: assumed observed
# ctest-timeout: 300
source "$(dirname "$0")/fixture.sh"
create_database --migrate
start_s3  # its own: it is stopped and restarted mid-run
archive_env
s3_env
export CERTN_ARCHIVER_WORKERS_BACKOFF_MAX_SECONDS=2
start_serve
start_sim --report-delay-ms 300 --file-size 100000 --seed 11

ids=$(create_cases '{"count":4,"files_per_check":1}')
big=$(create_cases '{"count":1,"files_per_check":1,"file_size":12582912}')
for id in $ids $big; do
  move_case "$id" COMPLETE
done

# Stop the S3 server as soon as the first object landed, for about 3 s.
wait_until 10 "nothing archived" sql_check -gt 0 "SELECT count(*) FROM artifacts"
stop_s3
sleep 3
start_s3
pass "s3rver stopped for 3 s mid-run and restarted"

# 5 cases x (report + supplementary information + 2 files) = 20.
wait_archived 20 90
expect_no_dead_job
retried=$(q "SELECT count(*) FROM jobs WHERE attempts > 1")
pass "5 cases archived to S3 ($retried job(s) needed more than one attempt)"

verify_objects  # read back with awscli on the S3 backend
[[ $(q "SELECT max(size_bytes) FROM artifacts") -eq 12582912 ]] || fail "the 12 MiB file is missing"
[[ $(q "SELECT count(*) FROM artifacts WHERE object_key NOT LIKE 'archive/cases/%'") -eq 0 ]] ||
  fail "keys must start with the prefix archive/"
pass "awscli read back every object: sizes and sha256 as recorded (one 12 MiB multipart upload)"

# The archived files are Certn's: compare with fresh downloads.
verify_case "$big" 2
pass "the large files in the bucket equal Certn's bytes"

out=$("$binary" verify 2>&1) || fail "verify failed: $out"
grep -q "0 mismatched, 0 missing" <<<"$out" || fail "verify: $out"
victim=$(q "SELECT object_key FROM artifacts WHERE kind = 'supplementary_file' LIMIT 1")
echo "tampered" >"$scratch/tampered"
aws s3 cp --only-show-errors "$scratch/tampered" "s3://testbucket/$victim"
rc=0
out=$("$binary" verify 2>&1) || rc=$?
[[ $rc -eq 1 ]] && grep -q "MISMATCH  $victim" <<<"$out" || fail "verify did not catch $victim (exit $rc): $out"
rc=0
out=$("$binary" verify --json 2>/dev/null) || rc=$?
[[ $rc -eq 1 ]] && jq -e --arg key "$victim" '.problems == [.problems[0]] and .problems[0].key == $key
    and .problems[0].problem == "MISMATCH" and .ok == .objects - 1' <<<"$out" >/dev/null ||
  fail "verify --json (exit $rc): $out"
pass "verify: all objects match; a tampered object is named and exits 1, in text and JSON"

stop_serve
pass "SIGTERM: drained, exit 0"
