#!/bin/bash
# Readiness means "can accept webhooks" (issue 15, item 3): Certn refusing the API key does not
# turn /readyz (intake needs no Certn); it shows in /statusz and a metric, and webhooks are still
# stored. With the database gone, /readyz answers 503: on the main, public listener with a fixed
# reason, on the admin listener and in the log with libpq's detail; /healthz stays 200.
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
export CERTN_ARCHIVER_CERTN_API_KEY=not-the-key

# Two replicas: "public" serves health on its main listener, "private" on an admin listener.
start_serve public
admin_port=$(free_port)
CERTN_ARCHIVER_SERVER_ADMIN_LISTEN=127.0.0.1:$admin_port spawn_serve private "$(free_port)"
wait_for curl -sf "http://127.0.0.1:$admin_port/readyz" || fail "private not ready: $(cat "$scratch/private.log")"
start_sim --report-delay-ms 300 --seed 31
public=http://127.0.0.1:$port
private=http://127.0.0.1:$admin_port

ids=$(create_cases '{"count":2}')
for id in $ids; do
  move_case "$id" COMPLETE
done
refused() {
  curl -sf "$1/metrics" | grep -qx 'certn_archiver_certn_auth_refused 1'
}
wait_until 20 "no replica saw Certn refuse the key" 'refused "$public" || refused "$private"'
[[ $(q "SELECT count(*) FROM webhook_events") -ge 4 ]] ||
  fail "webhooks not stored while Certn refuses the key: $(q "SELECT count(*) FROM webhook_events")"
for base in "$public" "$private"; do
  [[ $(curl -s -o /dev/null -w '%{http_code}' "$base/readyz") == 200 ]] ||
    fail "$base/readyz: $(curl -s "$base/readyz")"
done
statusz_refused() { [[ $(curl -sf "$1/statusz" | jq -r .certn_api_key) == "refused" ]]; }
wait_until 20 "no /statusz says the key is refused: $(curl -s "$public/statusz") $(curl -s "$private/statusz")" \
  'statusz_refused "$public" || statusz_refused "$private"'
[[ $(curl -sf "$public/statusz" | jq -r .database) == ok ]] || fail "/statusz: $(curl -s "$public/statusz")"
pass "Certn refuses the key: events still stored, /readyz 200, /statusz and the metric say refused"

# The database goes away (dropped, its connections closed).
psql -w -q "$TEST_PG_DSN" -c "DROP DATABASE $db_name WITH (FORCE)" >/dev/null || fail "cannot drop $db_name"
wait_until 10 "public /readyz did not turn 503" \
  '[[ $(curl -s -o /dev/null -w "%{http_code}" "$public/readyz") == 503 ]]'
[[ $(curl -s "$public/readyz") == "database unreachable" ]] ||
  fail "the public listener shows more than a fixed reason: $(curl -s "$public/readyz")"
[[ $(curl -s "$public/statusz" | jq -r .database) == "database unreachable" ]] ||
  fail "public /statusz: $(curl -s "$public/statusz")"
pass "public listener: /readyz 503 \"database unreachable\", no library text"

private_reason=$(curl -s "$private/readyz")
[[ $(curl -s -o /dev/null -w '%{http_code}' "$private/readyz") == 503 &&
   $private_reason == "database unreachable: "?* ]] ||
  fail "the admin listener's reason: $private_reason"
grep -q "not ready: database unreachable: ." "$scratch/public.log" ||
  fail "the detail is not in the log: $(tail -5 "$scratch/public.log")"
[[ $(grep -c "not ready: database unreachable" "$scratch/public.log") -eq 1 ]] ||
  fail "a lasting outage logged at every probe: $(grep -c "not ready" "$scratch/public.log") lines"
for base in "$public" "$private"; do
  [[ $(curl -s "$base/healthz") == ok ]] || fail "$base/healthz while the database is gone"
done
pass "admin listener and log name libpq's detail (logged once); /healthz stays 200"

stop_serve public private
pass "SIGTERM without a database: both drained, exit 0"
