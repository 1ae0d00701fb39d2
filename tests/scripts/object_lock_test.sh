#!/bin/bash
# S3 Object Lock against s3rver, which accepts the lock headers and enforces nothing: the
# conformance probe (`lock-probe`) must report it as not enforcing, and serve configured with
# storage.s3.object_lock_mode must refuse to start, saying why, before it listens.
source "$(dirname "$0")/fixture.sh"
create_database --migrate
s3_env
export CERTN_ARCHIVER_STORAGE_PREFIX=lock-test-$$/

rc=0
"$binary" lock-probe >"$scratch/probe.out" 2>&1 || rc=$?
[[ $rc -eq 1 ]] || fail "lock-probe exited $rc, expected 1: $(cat "$scratch/probe.out")"
grep -q "no Object Lock configuration (HTTP 501 NotImplemented" "$scratch/probe.out" ||
  fail "the probe does not report the bucket's missing configuration: $(cat "$scratch/probe.out")"
grep -q "the store does not enforce Object Lock" "$scratch/probe.out" ||
  fail "the probe does not report the deleted locked object: $(cat "$scratch/probe.out")"
tail -n 1 "$scratch/probe.out" | grep -qx "Object Lock: NOT enforced by this store and bucket" ||
  fail "no verdict line: $(cat "$scratch/probe.out")"
rc=0
"$binary" lock-probe --json >"$scratch/probe.json" || rc=$?
[[ $rc -eq 1 ]] || fail "lock-probe --json exited $rc, expected 1"
python3 - "$scratch/probe.json" <<'PY' || fail "lock-probe --json: $(cat "$scratch/probe.json")"
import json, sys
probe = json.load(open(sys.argv[1]))
assert probe["enforced"] is False and probe["bucket_enabled"] is False, probe
assert len(probe["findings"]) == 3, probe
PY
listed=$(aws s3api list-objects-v2 --bucket testbucket --prefix "lock-test-$$/" \
  --query 'Contents[].Key' --output text) || fail "awscli cannot list the bucket"
[[ $listed == None ]] || fail "the probe left objects behind: $listed"
pass "lock-probe reports s3rver as not enforcing Object Lock, and leaves nothing behind"

rc=0
CERTN_ARCHIVER_STORAGE_S3_OBJECT_LOCK_MODE=COMPLIANCE CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port \
CERTN_ARCHIVER_WEBHOOK_SECRETS=secret CERTN_ARCHIVER_CERTN_API_KEY=some-key \
CERTN_ARCHIVER_CERTN_BASE_URL=http://127.0.0.1:9 CERTN_ARCHIVER_CERTN_ALLOW_PLAIN_HTTP=true \
CERTN_ARCHIVER_CERTN_ALLOW_SPECIAL_ADDRESSES=true \
  timeout 20 "$binary" serve 2>"$scratch/serve.log" || rc=$?
[[ $rc -eq 1 ]] || fail "serve exited $rc, expected 1: $(cat "$scratch/serve.log")"
grep -q "cannot start archiving: .*storage.s3.object_lock_mode is COMPLIANCE but bucket testbucket does not have Object Lock enabled" \
  "$scratch/serve.log" || fail "the log does not say why: $(cat "$scratch/serve.log")"
grep -q "serving webhooks" "$scratch/serve.log" && fail "it said it was serving"
pass "serve refuses to start with Object Lock configured against a bucket without it"

# A hold placed or released under Object Lock leaves serve a job that sets or clears the legal
# hold on the case's objects already written; without Object Lock there is nothing to do.
expect_exit 0 "hold without Object Lock" "$binary" hold --case case-plain --reason "no lock"
[[ $(q "SELECT count(*) FROM jobs WHERE kind = 'protect_case'") -eq 0 ]] || fail "a protect job without Object Lock"
expect_exit 0 "hold under Object Lock" env CERTN_ARCHIVER_STORAGE_S3_OBJECT_LOCK_MODE=GOVERNANCE \
  "$binary" hold --case case-locked --reason "litigation"
[[ $(q "SELECT string_agg(key || ':' || state, ',') FROM jobs WHERE kind = 'protect_case'") == "case-locked:queued" ]] ||
  fail "protect jobs after hold: $(q "SELECT key, state, payload FROM jobs WHERE kind = 'protect_case'")"
q "UPDATE jobs SET state = 'succeeded' WHERE kind = 'protect_case'" >/dev/null
expect_exit 0 "release under Object Lock" env CERTN_ARCHIVER_STORAGE_S3_OBJECT_LOCK_MODE=GOVERNANCE \
  "$binary" release --case case-locked --reason "settled"
[[ $(q "SELECT string_agg(key || ':' || state, ',' ORDER BY id) FROM jobs WHERE kind = 'protect_case'") == "case-locked:succeeded,case-locked:queued" ]] ||
  fail "protect jobs after release: $(q "SELECT key, state, payload FROM jobs WHERE kind = 'protect_case'")"
pass "hold and release under Object Lock each queue a job to update the objects' legal hold"
