#!/bin/bash
# serve under a fake service manager: READY=1 arrives on NOTIFY_SOCKET once the listener is bound
# and the database checked; SIGTERM drains and exits 0 with STOPPING=1.
binary=$1
source "$(dirname "$0")/lib.sh"
create_database
export CERTN_ARCHIVER_DATABASE_URL=$db_dsn
"$binary" migrate 2>"$scratch/migrate.log" || { cat "$scratch/migrate.log"; fail "migrate"; }

socket="$scratch/notify.sock"
start_notify_listener "$socket" "$scratch/notify.log"

port=$(free_port)
NOTIFY_SOCKET=$socket CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port \
  CERTN_ARCHIVER_WEBHOOK_SECRETS=notify-test-secret "$binary" serve 2>"$scratch/serve.log" &
daemon_pid=$!

wait_for grep -q '^READY=1$' "$scratch/notify.log" || { cat "$scratch/serve.log"; fail "no READY=1"; }
pass "READY=1 received"
grep -q '^STATUS=serving on ' "$scratch/notify.log" || fail "no STATUS=serving line"
body=$(curl -sf "http://127.0.0.1:$port/webhooks/certn?challenge=ready-check") || fail "challenge after READY"
[[ $body == ready-check ]] || fail "challenge answered '$body'"
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || fail "/readyz not 200 while serving"
pass "listener answers after READY=1"

expect_exit_after_sigterm
wait "$notify_listener_pid" || true
grep -q '^STOPPING=1$' "$scratch/notify.log" || fail "no STOPPING=1"
pass "SIGTERM: STOPPING=1 and exit 0"
