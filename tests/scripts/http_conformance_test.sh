#!/bin/bash
# HTTP/1.1 framing conformance of the real listener: llhttp's strict request cases and our
# request-smuggling payloads, replayed as raw bytes by tests/conformance/http_replay.py against
# `serve`. Refusals must be a 400-class answer and a close (or a bare close); accepted requests
# must get exactly one answer each, as llhttp frames them.
source "$(dirname "$0")/fixture.sh"
create_database --migrate

# Short deadlines: a case the listener wrongly waits on then ends in seconds, not minutes.
CERTN_ARCHIVER_WEBHOOK_SECRETS=conformance-secret CERTN_ARCHIVER_STORAGE_PATH=$archive \
CERTN_ARCHIVER_SERVER_HEADER_TIMEOUT_MS=5000 CERTN_ARCHIVER_SERVER_BODY_TIMEOUT_MS=5000 \
CERTN_ARCHIVER_SERVER_IDLE_TIMEOUT_MS=5000 start_serve

python3 "$source_dir/tests/conformance/http_replay.py" --port "$port" >"$scratch/replay.out" 2>&1 ||
  { cat "$scratch/replay.out"; fail "the listener disagrees with the strict parser (table above)"; }
cat "$scratch/replay.out"
pass "listener framing agrees with llhttp's strict request mode and refuses the smuggling payloads"

curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || fail "serve stopped answering after the replay"
stop_serve
pass "serve still healthy after the replay, exits 0 on SIGTERM"
