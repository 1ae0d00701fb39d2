#!/bin/bash
# serve exits 1, never READY and never listening, when archiving cannot start after the
# database check passed (here: the jobs table refuses the start-up reconcile job).
source "$(dirname "$0")/fixture.sh"
create_database --migrate
psql -w -q "$db_dsn" >/dev/null <<'SQL' || fail "cannot install the refusing trigger"
CREATE FUNCTION refuse_jobs() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'jobs refused by the test'; END $$;
CREATE TRIGGER refuse_jobs BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION refuse_jobs();
SQL

socket="$scratch/notify.sock"
start_notify_listener "$socket" "$scratch/notify.log"
rc=0
# Not spawn_serve: serve runs in the foreground here, as it must end by itself.
NOTIFY_SOCKET=$socket CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port \
CERTN_ARCHIVER_WEBHOOK_SECRETS=secret CERTN_ARCHIVER_CERTN_API_KEY=some-key \
CERTN_ARCHIVER_CERTN_BASE_URL=http://127.0.0.1:9 CERTN_ARCHIVER_CERTN_ALLOW_PLAIN_HTTP=true \
CERTN_ARCHIVER_CERTN_ALLOW_SPECIAL_ADDRESSES=true CERTN_ARCHIVER_STORAGE_PATH=$archive \
  timeout 20 "$binary" serve 2>"$scratch/serve.log" || rc=$?
[[ $rc -eq 1 ]] || fail "serve exited $rc, expected 1: $(cat "$scratch/serve.log")"
grep -q "cannot start archiving: .*jobs refused by the test" "$scratch/serve.log" ||
  fail "the log does not say why: $(cat "$scratch/serve.log")"
grep -q "serving webhooks" "$scratch/serve.log" && fail "it said it was serving"
grep -q "READY=1" "$scratch/notify.log" && fail "it told the service manager READY=1"
pass "serve exits 1 without listening when archiving cannot start"
