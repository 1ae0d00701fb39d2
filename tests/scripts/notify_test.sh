#!/bin/bash
# serve under a fake service manager: READY=1 arrives on NOTIFY_SOCKET once the listener is bound
# and the database checked; SIGTERM drains and exits 0 with STOPPING=1.
source "$(dirname "$0")/fixture.sh"
create_database --migrate

socket="$scratch/notify.sock"
start_notify_listener "$socket" "$scratch/notify.log"

NOTIFY_SOCKET=$socket CERTN_ARCHIVER_WEBHOOK_SECRETS=notify-test-secret spawn_serve

wait_for grep -q '^READY=1$' "$scratch/notify.log" || { cat "$scratch/serve.log"; fail "no READY=1"; }
pass "READY=1 received"
grep -q '^STATUS=serving on ' "$scratch/notify.log" || fail "no STATUS=serving line"
body=$(curl -sf "http://127.0.0.1:$port/webhooks/certn?challenge=ready-check") || fail "challenge after READY"
[[ $body == ready-check ]] || fail "challenge answered '$body'"
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || fail "/readyz not 200 while serving"
pass "listener answers after READY=1"

stop_serve
wait "$notify_listener_pid" || true
untrack "$notify_listener_pid"
grep -q '^STOPPING=1$' "$scratch/notify.log" || fail "no STOPPING=1"
pass "SIGTERM: STOPPING=1 and exit 0"
