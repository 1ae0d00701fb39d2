#!/bin/bash
# The certn-archiver demo on a fresh Debian 12 machine, as root: installs what it needs, builds,
# starts a throwaway PostgreSQL, migrates, serves with the example configuration, answers Certn's
# challenge, receives signed events (one duplicate, one with a bad signature), shows what was
# stored and the metrics, then stops everything it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

source "$root/scripts/common.sh"

step "installing packages and building"
build_release
make_workdir demo

step "starting a throwaway PostgreSQL"
dsn=$(bash "$root/scripts/pg.sh" start "$work/pg" "$(free_port)")
echo "$dsn"

# The example configuration, with the database, port and secret given as the environment
# overrides an operator would use (the secret could equally come from a file: secrets_file).
port=$(free_port)
secret="demo-webhook-secret"
export CERTN_ARCHIVER_DATABASE_URL=$dsn
export CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port
export CERTN_ARCHIVER_WEBHOOK_SECRETS=$secret
export CERTN_ARCHIVER_STORAGE_PATH=$work/archive
config="$root/config/certn-archiver.example.toml"
url="http://127.0.0.1:$port/webhooks/certn"

step "certn-archiver migrate"
"$binary" --config "$config" migrate

step "certn-archiver serve (in the background)"
"$binary" --config "$config" serve 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/readyz"

step "Certn's challenge: GET $url?challenge=demo-challenge-42"
curl -s -i "$url?challenge=demo-challenge-42"
echo

post() {  # label body signature
  local code
  code=$(curl -s -o "$work/answer" -w '%{http_code}' -X POST "$url" \
    -H 'Content-Type: application/json' -H "X-Signature: $3" --data-binary "$2")
  printf '%-34s -> HTTP %s %s\n' "$1" "$code" "$(tr -d '\n' <"$work/answer")"
}
sign() { printf '%s' "$1" | openssl dgst -sha256 -hmac "$secret" -hex | sed 's/^.* //'; }

step "posting signed events with curl"
event1='{"id":"3f1c2a9e-0001-4c1e-9d7a-demo00000001","event_type":"CASE_STATUS_CHANGED","object_id":"8d5b6b0e-case-4d3e-a1f1-000000000001","object_type":"CASE"}'
event2='{"id":"3f1c2a9e-0002-4c1e-9d7a-demo00000002","event_type":"CASE_REPORT_READY","object_id":"8d5b6b0e-case-4d3e-a1f1-000000000001","object_type":"CASE"}'
event3='{"event_id":"3f1c2a9e-0003-4c1e-9d7a-demo00000003","event_type":"CHECK_STATUS_CHANGED","object_id":"8d5b6b0e-case-4d3e-a1f1-000000000002","object_type":"CASE","created":"2026-11-28T12:00:00Z"}'
post "CASE_STATUS_CHANGED" "$event1" "$(sign "$event1")"
post "CASE_REPORT_READY" "$event2" "$(sign "$event2")"
post "CHECK_STATUS_CHANGED (event_id)" "$event3" "$(sign "$event3")"
post "the first event again (duplicate)" "$event1" "$(sign "$event1")"
post "a forged event (bad signature)" "$event1" "$(printf '%s' "$event1" | openssl dgst -sha256 -hmac wrong -hex | sed 's/^.* //')"
post "a signed body that is not an event" '{"hello":1}' "$(sign '{"hello":1}')"

step "what PostgreSQL holds"
psql -w "$dsn" -c "SELECT id, event_type, object_id, signature_scheme, received_at FROM webhook_events ORDER BY received_at"
psql -w "$dsn" -c "SELECT id, kind, key, state, attempts, run_at FROM jobs ORDER BY id"

step "metrics (GET /metrics, webhook and HTTP series)"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^certn_archiver_(webhook_events_total|http_requests_total|webhook_intake_seconds_count|db_)'

step "stopping (SIGTERM drains and exits 0)"
kill -TERM "$serve_pid"
wait "$serve_pid" && echo "serve exited 0"
serve_pid=""
echo "--- serve's log ---"
cat "$work/serve.log"
