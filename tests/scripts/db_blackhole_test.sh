#!/bin/bash
# A database that stops answering without closing anything (issue 15, item 2): a TCP proxy
# between serve and PostgreSQL stops forwarding, so the kernel keeps acknowledging and no answer
# comes. Intake answers 503 within webhook.store_timeout_ms (5 s), /readyz turns 503 within
# 10 s, /healthz and the challenge keep answering; when the proxy forwards again everything
# resumes without a restart and nothing acknowledged is lost. Blackholed once more, SIGTERM still
# ends serve within its drain deadlines.
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
export CERTN_ARCHIVER_SERVER_SHUTDOWN_TIMEOUT_MS=2000 CERTN_ARCHIVER_WORKERS_DRAIN_TIMEOUT_SECONDS=2

start_db_proxy
export CERTN_ARCHIVER_DATABASE_URL=$proxied_dsn

start_serve
start_sim --report-delay-ms 300 --seed 41
base=http://127.0.0.1:$port
per_case=$((1 + 1 + 2))  # report, supplementary information, 2 files

before=$(create_cases '{"count":2,"files_per_check":1}')
for id in $before; do
  move_case "$id" COMPLETE
done
wait_archived $((2 * per_case)) 60
acknowledged=$(q "SELECT count(*) FROM webhook_events")
acknowledged_ids=$(q "SELECT string_agg(quote_literal(id), ',') FROM webhook_events")
pass "through the proxy: 2 cases archived, $acknowledged events acknowledged"

# status_of METHOD PATH [CURL ARGS...]: the HTTP status of one request (000: no answer in 20 s).
status_of() {
  local method=$1 path=$2
  shift 2
  curl -s -o /dev/null -w '%{http_code}' --max-time 20 -X "$method" "$@" "$base$path" || true
}
signed_event() {
  local event="{\"id\":\"$1\",\"event_type\":\"CASE_STATUS_CHANGED\",\"object_id\":\"$2\",\"object_type\":\"CASE\"}"
  local signature
  signature=$(printf '%s' "$event" | openssl dgst -sha256 -hmac sim-webhook-secret -hex | sed 's/^.* //')
  status_of POST /webhooks/certn -H 'Content-Type: application/json' -H "X-Signature: $signature" -d "$event"
}

# ---- the database stops answering -----------------------------------------------------------------
kill -USR1 "$proxy_pid"
late=$(create_cases '{"count":1,"files_per_check":1}')
started=$(date +%s%3N)
code=$(signed_event "evt-blackholed-$late" "$late")
took=$(($(date +%s%3N) - started))
[[ $code == 503 ]] || fail "an event while the database does not answer: HTTP $code after $took ms"
((took < 6500)) || fail "the 503 took $took ms (webhook.store_timeout_ms is 5000)"
pass "intake: 503 after $took ms while the database does not answer"

wait_until 10 "/readyz did not turn 503" '[[ $(status_of GET /readyz) == 503 ]]'
[[ $(curl -s --max-time 20 "$base/readyz") == "database unreachable" ]] ||
  fail "/readyz reason: $(curl -s --max-time 20 "$base/readyz")"
[[ $(status_of GET /healthz) == 200 ]] || fail "/healthz while the database does not answer"
[[ $(curl -s --max-time 5 "$base/webhooks/certn?challenge=still-here") == still-here ]] ||
  fail "the challenge is not echoed while the database does not answer"
[[ $(status_of GET /metrics) == 200 ]] || fail "/metrics while the database does not answer"
pass "/readyz 503 \"database unreachable\"; /healthz, /metrics and the challenge still answer"

# ---- it answers again -------------------------------------------------------------------------------
kill -USR2 "$proxy_pid"
wait_until 90 "/readyz did not turn 200 after the proxy resumed" '[[ $(status_of GET /readyz) == 200 ]]'
code=$(signed_event "evt-blackholed-$late" "$late")  # Certn's retry of the refused delivery
[[ $code == 200 ]] || fail "the retried event: HTTP $code"
move_case "$late" COMPLETE
wait_archived $((3 * per_case)) 120
expect_no_dead_job
verify_objects
[[ $(q "SELECT count(*) FROM webhook_events WHERE id IN ($acknowledged_ids)") -eq $acknowledged ]] ||
  fail "acknowledged events lost: $(q "SELECT count(*) FROM webhook_events WHERE id IN ($acknowledged_ids)") of $acknowledged"
[[ $(q "SELECT count(*) FROM webhook_events WHERE id = 'evt-blackholed-$late'") -eq 1 ]] ||
  fail "the retried event is not stored"
for id in $before $late; do
  [[ $(q "SELECT count(*) FROM artifacts WHERE case_id = '$id' AND kind = 'report'") -eq 1 ]] ||
    fail "case $id has no report"
done
pass "resumed without a restart: the refused event retried, all 3 cases archived and verified"

# ---- SIGTERM while the database does not answer ------------------------------------------------------
kill -USR1 "$proxy_pid"
wait_until 15 "/readyz did not turn 503 the second time" '[[ $(status_of GET /readyz) == 503 ]]'
started=$SECONDS
kill -TERM "${serve_pid[serve]}"
wait_serve_exit_0 serve
# Drains: listeners 2 s, workers 2 s, their release 5 s; then the pool breaks what is left.
((SECONDS - started <= 11)) || fail "SIGTERM took $((SECONDS - started)) s"
grep -q "stopped" "$scratch/serve.log" || fail "no clean stop: $(tail -5 "$scratch/serve.log")"
pass "SIGTERM while the database does not answer: exit 0 after $((SECONDS - started)) s"
