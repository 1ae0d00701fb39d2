#!/bin/bash
# Lanes (issue 15, item 4): serve's intake, queue and job work have connections of their own.
# With the only work connection waiting on a lock that another session holds for longer than a
# lease, webhooks are still stored at once (one shared pool would make them wait behind it and
# answer 503 after webhook.store_timeout_ms) and the running job's lease is still renewed, so no
# other worker rescues it. Once the lock goes, everything is archived.
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
export CERTN_ARCHIVER_DATABASE_POOL_SIZE=1 CERTN_ARCHIVER_DATABASE_LOCK_TIMEOUT_MS=60000
export CERTN_ARCHIVER_WORKERS_LEASE_SECONDS=5
start_serve
start_sim --report-delay-ms 300 --seed 43
base=http://127.0.0.1:$port

# Another session holds every row of cases (what a sync_case job writes) for 12 s: longer than
# two leases.
hold_seconds=12
psql -w -q "$db_dsn" -c "BEGIN; LOCK TABLE cases IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep($hold_seconds); COMMIT;" \
  >"$scratch/lock.out" 2>&1 &
lock_pid=$!
track "$lock_pid" TERM
lock_started=$SECONDS
wait_until 10 "the lock was not taken" \
  '[[ $(q "SELECT count(*) FROM pg_locks WHERE relation = '"'"'cases'"'"'::regclass AND granted") -ge 1 ]]'

id=$(create_cases '{"count":1,"files_per_check":1}')
move_case "$id" COMPLETE
waiting_on_lock() {
  [[ $(q "SELECT count(*) FROM pg_locks WHERE relation = 'cases'::regclass AND NOT granted") -ge 1 ]]
}
wait_until 15 "no job waited on the lock" waiting_on_lock
job=$(q "SELECT id || ' ' || lease_token FROM jobs WHERE state = 'running' AND kind = 'sync_case' LIMIT 1")
[[ -n $job ]] || fail "no sync_case job running: $(q "SELECT kind, state FROM jobs")"
pass "the only work connection waits on the lock (job ${job% *})"

# Events while the work lane is stuck: each stored and answered at once.
for i in 1 2 3 4 5; do
  event="{\"id\":\"evt-lanes-$i\",\"event_type\":\"CHECK_STATUS_CHANGED\",\"object_id\":\"chk-$i\",\"object_type\":\"CHECK\"}"
  signature=$(printf '%s' "$event" | openssl dgst -sha256 -hmac sim-webhook-secret -hex | sed 's/^.* //')
  started=$(date +%s%3N)
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 -X POST "$base/webhooks/certn" \
    -H 'Content-Type: application/json' -H "X-Signature: $signature" -d "$event")
  took=$(($(date +%s%3N) - started))
  [[ $code == 200 ]] || fail "event $i while the work lane waits: HTTP $code after $took ms"
  ((took < 2000)) || fail "event $i took $took ms while the work lane waits"
done
[[ $(q "SELECT count(*) FROM webhook_events WHERE id LIKE 'evt-lanes-%'") -eq 5 ]] || fail "events not stored"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$base/readyz") == 200 ]] || fail "/readyz while the work lane waits"
pass "5 events stored, each answered 200 within 2 s, /readyz 200, while the work lane waits"

# Past two leases, the job is still running under the same claim: its heartbeats got through.
wait_until 20 "the lock outlived its hold" '((SECONDS - lock_started >= hold_seconds - 1))'
still=$(q "SELECT id || ' ' || lease_token FROM jobs WHERE id = ${job% *} AND state = 'running' AND lease_expires > now()")
[[ $still == "$job" ]] ||
  fail "the job's lease was lost while only its work waited: $(q "SELECT state, lease_token, lease_expires, last_error FROM jobs WHERE id = ${job% *}")"
pass "job ${job% *} kept its lease (token ${job#* }) for $((SECONDS - lock_started)) s, > 2 leases of 5 s"

wait "$lock_pid" || fail "the lock session failed: $(cat "$scratch/lock.out")"
untrack "$lock_pid"
wait_archived $((1 + 1 + 2)) 60
expect_no_dead_job
[[ $(curl -sf "$base/metrics" | awk '/^certn_archiver_jobs_stale_outcomes_total/ {s += $2} END {print s + 0}') == 0 ]] ||
  fail "stale outcomes were recorded"
pass "the lock gone: the case archived, no dead job, no stale outcome"
