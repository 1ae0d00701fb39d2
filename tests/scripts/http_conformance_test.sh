#!/bin/bash
# HTTP/1.1 framing conformance of the real listener: llhttp's strict request cases and our
# request-smuggling payloads, replayed as raw bytes by tests/conformance/http_replay.py against
# `serve`. Refusals must be a 400-class answer and a close (or a bare close); accepted requests
# must get exactly one answer each, as llhttp frames them.
binary=$1
source_dir=${2:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$(dirname "$0")/lib.sh"
create_database
export CERTN_ARCHIVER_DATABASE_URL=$db_dsn
"$binary" migrate >"$scratch/migrate.log" 2>&1 || fail "migrate: $(cat "$scratch/migrate.log")"

port=$(free_port)
# Short deadlines: a case the listener wrongly waits on then ends in seconds, not minutes.
CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port CERTN_ARCHIVER_WEBHOOK_SECRETS=conformance-secret \
CERTN_ARCHIVER_STORAGE_PATH=$scratch/archive CERTN_ARCHIVER_SERVER_HEADER_TIMEOUT_MS=5000 \
CERTN_ARCHIVER_SERVER_BODY_TIMEOUT_MS=5000 CERTN_ARCHIVER_SERVER_IDLE_TIMEOUT_MS=5000 \
  "$binary" serve 2>"$scratch/serve.log" &
daemon_pid=$!
wait_for curl -sf "http://127.0.0.1:$port/healthz" || { cat "$scratch/serve.log"; fail "serve did not start"; }

python3 "$source_dir/tests/conformance/http_replay.py" --port "$port" >"$scratch/replay.out" 2>&1 ||
  { cat "$scratch/replay.out"; fail "the listener disagrees with the strict parser (table above)"; }
cat "$scratch/replay.out"
pass "listener framing agrees with llhttp's strict request mode and refuses the smuggling payloads"

curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || fail "serve stopped answering after the replay"
expect_exit_after_sigterm
pass "serve still healthy after the replay, exits 0 on SIGTERM"
