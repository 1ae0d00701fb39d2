#!/bin/bash
# serve started without a Certn API key stores the events and queues their jobs, archiving
# nothing; the key, given later in its file and applied by SIGHUP (`systemctl reload`), starts
# archiving without a restart, and the case whose jobs waited is archived. No value is logged. If
# archiving then cannot start, serve stops with exit status 1, as at start-up.
# ctest-timeout: 240
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
unset CERTN_ARCHIVER_CERTN_API_KEY
printf '[certn]\n' >"$scratch/config.toml"
export CERTN_ARCHIVER_CONFIG=$scratch/config.toml
start_serve
grep -q "certn.api_key is not set: events are stored and queued" "$scratch/serve.log" ||
  fail "no warning about the missing key: $(cat "$scratch/serve.log")"
archiving() { curl -sf "http://127.0.0.1:$port/statusz" | jq -r .archiving; }
[[ $(archiving) == "off: certn.api_key is not set" ]] || fail "/statusz before the key: $(archiving)"

start_sim --file-size 1000
case_id=$(create_cases '{"count":1,"files_per_check":1}')
move_case "$case_id" COMPLETE
wait_until 60 "the case's events stored and their job queued" \
  sql_check -ge 1 "SELECT count(*) FROM jobs WHERE kind = 'sync_case' AND state = 'queued'"
[[ $(archived_count) -eq 0 ]] || fail "archived without a key"
pass "without a key: events stored, jobs queued, nothing archived"

printf 'sim-key\n' >"$scratch/certn-api-key"
printf '[certn]\napi_key_file = "%s"\n' "$scratch/certn-api-key" >"$scratch/config.toml"
kill -HUP "$daemon_pid"
wait_until 60 "archiving started by the reload" grep -q "archiving started" "$scratch/serve.log"
grep -q "SIGHUP: applied certn.api_key" "$scratch/serve.log" ||
  fail "the reload did not say it applied the key: $(grep SIGHUP "$scratch/serve.log")"
[[ $(archiving) == on ]] || fail "/statusz after the key: $(archiving)"
wait_archived 4 120
expect_no_dead_job
! grep -q -- sim-key "$scratch/serve.log" || fail "the log shows the key"
kill -0 "$daemon_pid" || fail "serve is gone"
pass "a key applied by SIGHUP started archiving without a restart; the waiting case is archived"
stop_serve

# Archiving that cannot start (here the jobs table refuses the periodic reconcile that start-up
# books) stops serve, exit status 1.
q "CREATE FUNCTION refuse_reconcile() RETURNS trigger LANGUAGE plpgsql AS
     \$\$ BEGIN RAISE EXCEPTION 'reconcile refused by the test'; END \$\$;
   CREATE TRIGGER refuse_reconcile BEFORE INSERT ON jobs FOR EACH ROW
     WHEN (NEW.kind = 'reconcile') EXECUTE FUNCTION refuse_reconcile();" >/dev/null
printf '[certn]\n' >"$scratch/config.toml"
export CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=900
start_serve
printf '[certn]\napi_key_file = "%s"\n' "$scratch/certn-api-key" >"$scratch/config.toml"
kill -HUP "$daemon_pid"
rc=0
timeout 60 tail --pid="$daemon_pid" -f /dev/null || fail "serve still runs 60 s after archiving failed to start"
wait "$daemon_pid" || rc=$?
untrack "$daemon_pid"
[[ $rc -eq 1 ]] || fail "serve exited $rc, expected 1: $(tail -5 "$scratch/serve.log")"
grep -q "stopping: cannot start archiving: .*reconcile refused by the test" "$scratch/serve.log" ||
  fail "the log does not say why: $(tail -5 "$scratch/serve.log")"
pass "archiving that cannot start after the reload stops serve with exit status 1, saying why"
