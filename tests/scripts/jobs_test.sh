#!/bin/bash
# The operator's commands: `status` (table and JSON), `jobs list|show|retry|cancel|prune` on rows
# inserted with psql, and `backfill` against the certn-sim binary: exit codes (0 ok, 1 failure,
# 2 usage), what each command changes in the database, and a second backfill that adds nothing.
source "$(dirname "$0")/fixture.sh"
command -v jq >/dev/null || fail "jq is not installed"

out_json() { jq -c "$1" "$scratch/out"; }
expect_out() {  # description pattern
  grep -qE -- "$2" "$scratch/out" || fail "$1: stdout lacks /$2/: $(cat "$scratch/out" "$scratch/err")"
}
one_line_on_stderr() {
  [[ $(wc -l <"$scratch/err") -eq 1 ]] || fail "$1: expected one line on stderr: $(cat "$scratch/err")"
}

create_database

# --- the database not there, or not migrated -------------------------------------------------
expect_exit 1 "status before migrate" "$binary" status
expect_err "status before migrate" 'run `certn-archiver migrate`'
unreachable=postgresql://postgres@127.0.0.1:1/x
for command in "status" "jobs list" "jobs retry --all-dead"; do
  # shellcheck disable=SC2086
  expect_exit 1 "$command: database unreachable" env CERTN_ARCHIVER_DATABASE_URL=$unreachable "$binary" $command
  one_line_on_stderr "$command: database unreachable"
  expect_err "$command: database unreachable" '^certn-archiver: database: .*(refused|failed)'
done
"$binary" migrate 2>/dev/null || fail "migrate"

expect_exit 0 "status --json, empty" "$binary" status --json
[[ $(out_json '[.events.total, .jobs.dead, .jobs.oldest_due_seconds, .artifacts.count, .jobs.by_kind]') == '[0,0,null,0,{}]' ]] ||
  fail "empty status: $(cat "$scratch/out")"

# --- fixtures ------------------------------------------------------------------------------
q "INSERT INTO webhook_events (id, event_type, object_id, object_type, body, signature_scheme, processed_at)
     VALUES ('e1', 'CASE_STATUS_CHANGED', 'c1', 'CASE', 'x', 'x_signature_hex', now()),
            ('e2', 'CASE_STATUS_CHANGED', 'c1', 'CASE', 'x', 'x_signature_hex', NULL),
            ('e3', 'CASE_STATUS_CHANGED', 'c2', 'CASE', 'x', 'x_signature_hex', NULL)"
q "INSERT INTO artifacts (case_id, kind, object_key, sha256, size_bytes)
     VALUES ('c1', 'report', 'k1', repeat('a', 64), 1000), ('c1', 'manifest', 'k2', repeat('b', 64), 24)"
job() {  # kind key state attempts last_error finished-days-ago lease-owner -> id
  local error=NULL finished=NULL owner=NULL expires=NULL
  [[ -n $5 ]] && error="'$5'"
  [[ -n $6 ]] && finished="now() - interval '$6 days'"
  [[ -n $7 ]] && owner="'$7'" && expires="now() + interval '1 minute'"
  q "INSERT INTO jobs (kind, key, state, attempts, last_error, finished_at, lease_owner, lease_expires, run_at)
       VALUES ('$1', '$2', '$3', $4, $error, $finished, $owner, $expires, now() - interval '1 hour') RETURNING id"
}
dead=$(job sync_case case-dead dead 10 "HTTP 503 from Certn" 1 "")
blocked=$(job sync_case case-blocked dead 10 "timeout" 10 "")
pending=$(job sync_case case-blocked queued 0 "" "" "")
running=$(job poll_report report-1 running 1 "" "" worker-1)
old_succeeded=$(job sync_case case-old succeeded 1 "" 10 "")
old_cancelled=$(job sync_case case-older cancelled 0 "" 10 "")
ancient_dead=$(job sync_case case-ancient dead 10 "gone" 100 "")
recent_succeeded=$(job sync_case case-recent succeeded 1 "" 1 "")

# --- status ------------------------------------------------------------------------------------
expect_exit 0 "status" "$binary" status
expect_out "status" '^events +3 received, 2 not processed$'
expect_out "status" '^artifacts +2 \(1\.0 KiB\)$'
expect_out "status" '^dead jobs +3$'
expect_out "status" '^sync_case +1 +0 +2 +0 +3 +1$'
expect_exit 0 "status --json" "$binary" status --json
[[ $(out_json '[.events.total, .events.unprocessed, .jobs.dead, .jobs.by_state.running, .jobs.by_kind.sync_case.succeeded, .artifacts.count, .artifacts.total_bytes]') == '[3,2,3,1,2,2,1024]' ]] ||
  fail "status --json: $(cat "$scratch/out")"
[[ $(out_json '.jobs.oldest_due_seconds >= 3599 and .jobs.oldest_due_seconds < 3700') == true ]] ||
  fail "oldest due: $(cat "$scratch/out")"

# --- the operator commands' own limits (database.admin_statement_timeout_ms) --------------------
# A session holds the jobs table: a command ends on lock_timeout_ms, then on the admin statement
# limit, with one line that says which; nothing waits for the holder.
psql -w -qtA "$db_dsn" -c "BEGIN; LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60)" \
  >/dev/null 2>&1 &
lock_holder=$!
track "$lock_holder" TERM
wait_until 10 "the lock holder holds the jobs table" \
  '[[ $(q "SELECT count(*) FROM pg_locks WHERE relation = '"'"'jobs'"'"'::regclass AND granted AND mode = '"'"'AccessExclusiveLock'"'"'") == 1 ]]'
started=$SECONDS
expect_exit 1 "jobs list behind a lock" env CERTN_ARCHIVER_DATABASE_LOCK_TIMEOUT_MS=300 "$binary" jobs list
expect_err "jobs list behind a lock" '^certn-archiver: database: .*lock timeout'
expect_exit 1 "jobs list behind a lock, no lock limit" env CERTN_ARCHIVER_DATABASE_LOCK_TIMEOUT_MS=0 \
  CERTN_ARCHIVER_DATABASE_ADMIN_STATEMENT_TIMEOUT_MS=300 "$binary" jobs list
expect_err "jobs list behind a lock, no lock limit" '^certn-archiver: database: .*statement timeout'
((SECONDS - started < 10)) || fail "the commands waited $((SECONDS - started)) s for the lock"
q "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE relation = 'jobs'::regclass AND granted
     AND mode = 'AccessExclusiveLock'" >/dev/null
wait "$lock_holder" 2>/dev/null || true
untrack "$lock_holder"

# --- jobs list / show ---------------------------------------------------------------------------
expect_exit 0 "jobs list --json" "$binary" jobs list --json
[[ $(out_json 'length') == 8 && $(out_json '.[0].id') == "$recent_succeeded" ]] || fail "list: $(cat "$scratch/out")"
expect_exit 0 "jobs list --state dead --json" "$binary" jobs list --state dead --json
[[ $(out_json '[.[].id]') == "[$ancient_dead,$blocked,$dead]" ]] || fail "list --state dead: $(cat "$scratch/out")"
expect_exit 0 "jobs list --kind --json" "$binary" jobs list --kind poll_report --json
[[ $(out_json '[.[].id]') == "[$running]" && $(out_json '.[0].lease_owner') == '"worker-1"' ]] || fail "list --kind"
expect_exit 0 "jobs list --limit 2 --json" "$binary" jobs list --limit 2 --json
[[ $(out_json 'length') == 2 ]] || fail "list --limit 2"
expect_exit 0 "jobs list (table)" "$binary" jobs list --state dead
expect_out "jobs list (table)" '^ID +STATE +KIND +KEY +ATTEMPTS'
expect_out "jobs list (table)" "^$dead +dead +sync_case +case-dead +10/10 .*HTTP 503 from Certn$"
expect_exit 2 "jobs list --state bogus" "$binary" jobs list --state bogus

expect_exit 0 "jobs show" "$binary" jobs show "$dead"
expect_out "jobs show" '^last_error: +HTTP 503 from Certn$'
expect_out "jobs show" '^finished_at: +[0-9]{4}-[0-9]{2}-[0-9]{2}T'
expect_exit 0 "jobs show --json" "$binary" jobs show "$running" --json
[[ $(out_json '[.state, .attempts, .lease_owner, .finished_at]') == '["running",1,"worker-1",null]' ]] || fail "show --json"
expect_exit 1 "jobs show an unknown id" "$binary" jobs show 999999
expect_err "jobs show an unknown id" 'no job 999999'
expect_exit 2 "jobs show without an id" "$binary" jobs show

# --- jobs retry ------------------------------------------------------------------------------------
expect_exit 0 "jobs retry a dead job" "$binary" jobs retry "$dead"
[[ $(q "SELECT state || ' ' || attempts || ' ' || (run_at > now() - interval '1 minute') FROM jobs WHERE id = $dead") == "queued 0 true" ]] ||
  fail "retried job: $(q "SELECT * FROM jobs WHERE id = $dead")"
[[ $(q "SELECT last_error FROM jobs WHERE id = $dead") == "retried by operator after 10 attempts as dead: HTTP 503 from Certn" ]] ||
  fail "history lost: $(q "SELECT last_error FROM jobs WHERE id = $dead")"
expect_exit 0 "jobs retry a job whose key is pending" "$binary" jobs retry "$blocked"
expect_out "jobs retry a job whose key is pending" "already pending as job $pending"
[[ $(q "SELECT state FROM jobs WHERE id = $blocked") == dead ]] || fail "the blocked job changed"
expect_exit 1 "jobs retry a queued job" "$binary" jobs retry "$pending"
expect_err "jobs retry a queued job" "is queued"
expect_exit 1 "jobs retry an unknown id" "$binary" jobs retry 999999
expect_exit 2 "jobs retry without an id" "$binary" jobs retry
expect_exit 2 "jobs retry ID --all-dead" "$binary" jobs retry "$blocked" --all-dead
expect_exit 0 "jobs retry --all-dead" "$binary" jobs retry --all-dead
expect_out "jobs retry --all-dead" '^queued 1 dead jobs again; 1 left'
[[ $(q "SELECT state FROM jobs WHERE id = $ancient_dead") == queued ]] || fail "--all-dead left the ancient job"
[[ $(q "SELECT state FROM jobs WHERE id = $blocked") == dead ]] || fail "--all-dead broke the unique index rule"

# --- jobs cancel ------------------------------------------------------------------------------------
expect_exit 0 "jobs cancel a queued job" "$binary" jobs cancel "$pending"
[[ $(q "SELECT state || ' ' || (finished_at IS NOT NULL) FROM jobs WHERE id = $pending") == "cancelled true" ]] || fail "cancel queued"
expect_exit 0 "jobs cancel a running job" "$binary" jobs cancel "$running"
expect_out "jobs cancel a running job" 'next heartbeat'
[[ $(q "SELECT state || ' ' || (lease_owner IS NULL AND lease_expires IS NULL) FROM jobs WHERE id = $running") == "cancelled true" ]] ||
  fail "cancel running"
expect_exit 1 "jobs cancel a finished job" "$binary" jobs cancel "$old_succeeded"
expect_err "jobs cancel a finished job" 'already finished \(succeeded\)'
expect_exit 1 "jobs cancel an unknown id" "$binary" jobs cancel 999999

# --- jobs prune -----------------------------------------------------------------------------------------
expect_exit 2 "jobs prune without --older-than-days" "$binary" jobs prune
expect_exit 0 "jobs prune --older-than-days 7" "$binary" jobs prune --older-than-days 7
expect_out "jobs prune" '^pruned 2 '
[[ $(q "SELECT string_agg(id::text, ' ' ORDER BY id) FROM jobs WHERE id IN ($old_succeeded, $old_cancelled, $blocked, $recent_succeeded, $pending)") == "$blocked $pending $recent_succeeded" ]] ||
  fail "prune removed the wrong jobs: $(q "SELECT id, state FROM jobs")"

# --- backfill --------------------------------------------------------------------------------------------
start_sim --no-webhooks
create_cases '{"count":130}' | sort >"$scratch/case_ids"
for id in $(head -n 3 "$scratch/case_ids"); do
  move_case "$id" COMPLETE
done
certn_env
export CERTN_ARCHIVER_WORKERS_MAX_ATTEMPTS=7
backfilled() { q "SELECT count(*) FROM jobs WHERE kind = 'sync_case' AND payload->>'source' = 'backfill' AND state = 'queued' AND max_attempts = 7"; }

expect_exit 2 "backfill without --since" "$binary" backfill
expect_exit 2 "backfill --since not a date" "$binary" backfill --since 2026-02-30
expect_err "backfill --since not a date" '^certn-archiver: --since: .*"2026-02-30"'
expect_exit 2 "backfill --until not a date" "$binary" backfill --since 2026-01-01 --until 2026-01-01T25:00:00Z
expect_err "backfill --until not a date" '^certn-archiver: --until: '
rc=0; env -u CERTN_ARCHIVER_CERTN_API_KEY "$binary" backfill --since 2000-01-01 >"$scratch/out" 2>"$scratch/err" || rc=$?
[[ $rc -eq 2 ]] && grep -q "certn.api_key" "$scratch/err" || fail "no API key: exit $rc, $(cat "$scratch/err")"
pass "backfill without an API key (exit 2)"
expect_exit 1 "backfill with a wrong API key" env CERTN_ARCHIVER_CERTN_API_KEY=wrong "$binary" backfill --since 2000-01-01
expect_err "backfill with a wrong API key" 'authentication'
expect_exit 1 "backfill, database unreachable" env CERTN_ARCHIVER_DATABASE_URL=$unreachable "$binary" backfill --since 2000-01-01
expect_err "backfill, database unreachable" '^certn-archiver: database: '
[[ $(backfilled) == 0 ]] || fail "failed backfills enqueued jobs"

expect_exit 0 "backfill --status COMPLETE" "$binary" backfill --since 2000-01-01 --status COMPLETE
expect_out "backfill --status COMPLETE" '^backfill: 3 cases seen, 3 sync_case jobs enqueued, 0 already pending$'
[[ $(q "SELECT string_agg(key, ' ' ORDER BY key) FROM jobs WHERE payload->>'source' = 'backfill'") == "$(head -n 3 "$scratch/case_ids" | paste -sd ' ')" ]] ||
  fail "--status COMPLETE enqueued other cases"
expect_exit 0 "backfill --until before every case" "$binary" backfill --since 2000-01-01 --until 2000-01-02
expect_out "backfill --until before every case" '^backfill: 0 cases seen'
expect_exit 0 "backfill (two pages of 100)" "$binary" backfill --since 2000-01-01T00:00:00Z --until 2999-12-31
expect_out "backfill" '^backfill: 130 cases seen, 127 sync_case jobs enqueued, 3 already pending$'
[[ $(backfilled) == 130 ]] || fail "backfill: $(backfilled) jobs"
diff <(q "SELECT key FROM jobs WHERE payload->>'source' = 'backfill' ORDER BY key") "$scratch/case_ids" >/dev/null ||
  fail "the jobs' keys are not the cases' ids"
[[ $(q "SELECT count(*) FROM jobs WHERE payload->>'source' = 'backfill' AND payload->>'case_id' = key") == 130 ]] ||
  fail "backfill jobs without their case id in the payload: $(q "SELECT payload FROM jobs WHERE payload->>'source' = 'backfill' LIMIT 1")"
expect_exit 0 "backfill again" "$binary" backfill --since 2000-01-01
expect_out "backfill again" '^backfill: 130 cases seen, 0 sync_case jobs enqueued, 130 already pending$'
[[ $(backfilled) == 130 ]] || fail "the second backfill enqueued jobs"
expect_exit 0 "status --json after backfill" "$binary" status --json
[[ $(out_json '.jobs.by_kind.sync_case.queued') == 132 ]] || fail "status after backfill: $(cat "$scratch/out")"
stop_sim  # it must exit 0
