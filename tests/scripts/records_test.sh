#!/bin/bash
# Records management from the command line (issue 16): legal holds (hold, release, cases list
# --held), the audit trail (audit, audit verify) with a row for each action and for an operator's
# job retry and cancel, appends from many commands at once chained without a gap, UPDATE, DELETE
# and TRUNCATE refused, and `audit verify` failing once a superuser alters or removes a row, or
# cuts rows from the end (found by the digests serve writes to the archive).
source "$(dirname "$0")/fixture.sh"
command -v jq >/dev/null || fail "jq is not installed"
create_database --migrate
export CERTN_ARCHIVER_STORAGE_PATH=$archive
mkdir -p "$archive"

# --- a retention policy that does not parse is a configuration error, for every command -------
expect_exit 2 "records.retention with a bad period" env CERTN_ARCHIVER_RECORDS_RETENTION="COMPLETE=6q" "$binary" status
expect_err "records.retention with a bad period" \
  '^certn-archiver: configuration error: records.retention: "COMPLETE=6q": the period must be like 6y, 18m, 90d, 1y6m or forever'
expect_exit 2 "records.retention given twice" env CERTN_ARCHIVER_RECORDS_RETENTION="COMPLETE=6y,COMPLETE=1y" "$binary" hold --case x --reason y
expect_err "records.retention given twice" 'records.retention: "COMPLETE=1y": COMPLETE is given twice'

# --- holds ---------------------------------------------------------------------------------------
expect_exit 0 "hold" "$binary" hold --case case-a --reason "litigation 2026-17"
expect_exit 1 "hold again" "$binary" hold --case case-a --reason "another"
expect_err "hold again" '^certn-archiver: case case-a is already held \(since .*, by user:[a-z]+: litigation 2026-17\)$'
expect_exit 2 "hold without a reason" "$binary" hold --case case-b --reason " "
expect_exit 2 "hold without a case" "$binary" hold --reason "why"
expect_exit 0 "hold another" "$binary" hold --case case-b --reason "regulator's request"
expect_exit 0 "cases list --held" "$binary" cases list --held
[[ $(jq -c '[.[].case_id]' "$scratch/out") == '["case-a","case-b"]' ]] || fail "held: $(cat "$scratch/out")"
[[ $(jq -r '.[0].reason' "$scratch/out") == "litigation 2026-17" ]] || fail "held reason: $(cat "$scratch/out")"
expect_exit 0 "release" "$binary" release --case case-a --reason "settled"
expect_exit 1 "release again" "$binary" release --case case-a --reason "settled"
expect_err "release again" '^certn-archiver: case case-a is not held$'
expect_exit 0 "cases list --held after release" "$binary" cases list --held
[[ $(jq -c '[.[].case_id]' "$scratch/out") == '["case-b"]' ]] || fail "held after release: $(cat "$scratch/out")"
[[ $(q "SELECT released_by IS NOT NULL AND release_reason = 'settled' FROM legal_holds WHERE case_id = 'case-a'") == t ]] ||
  fail "the released hold's row does not say who released it and why"

# --- operator job actions are audited ------------------------------------------------------------
dead=$(q "INSERT INTO jobs (kind, key, payload, state, attempts, last_error, finished_at)
            VALUES ('sync_case', 'case-c', '{\"case_id\":\"case-c\"}', 'dead', 10, 'gave up', now())
          RETURNING id")
expect_exit 0 "jobs retry" "$binary" jobs retry "$dead"
expect_exit 0 "jobs cancel" "$binary" jobs cancel "$dead"

expect_exit 0 "audit --json" "$binary" audit --json
[[ $(jq -c '[.[] | [.seq, .action, .case_id]]' "$scratch/out") == \
   '[[1,"hold","case-a"],[2,"hold","case-b"],[3,"release","case-a"],[4,"job_retry","case-c"],[5,"job_cancel","case-c"]]' ]] ||
  fail "audit rows: $(cat "$scratch/out")"
[[ $(jq -r '.[0].actor' "$scratch/out") == user:* ]] || fail "actor: $(cat "$scratch/out")"
[[ $(jq -r '.[2].detail' "$scratch/out") == settled ]] || fail "release detail: $(cat "$scratch/out")"
expect_exit 0 "audit --case case-c" "$binary" audit --case case-c
[[ $(wc -l <"$scratch/out") -eq 2 ]] || fail "audit --case: $(cat "$scratch/out")"
expect_exit 0 "audit --since tomorrow" "$binary" audit --since "$(date -u -d tomorrow +%F)" --json
[[ $(cat "$scratch/out") == "[]" ]] || fail "audit --since tomorrow: $(cat "$scratch/out")"

# --- many appenders at once: one chain, no gap ---------------------------------------------------
pids=()
for i in $(seq 1 20); do
  "$binary" hold --case "case-many-$i" --reason "batch $i" >/dev/null 2>"$scratch/many-$i.err" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || fail "a concurrent hold failed: $(cat "$scratch"/many-*.err)"; done
[[ $(q "SELECT count(*) = max(seq) AND min(seq) = 1 FROM audit_log") == t ]] || fail "audit seq has gaps"
expect_exit 0 "audit verify" "$binary" audit verify
grep -qE '^audit trail intact: 25 rows, head [0-9a-f]{64}; 0 digest\(s\) in the archive match \(none written yet\)$' "$scratch/out" ||
  fail "verify: $(cat "$scratch/out")"
expect_exit 1 "audit verify against a storage path that does not exist" \
  env CERTN_ARCHIVER_STORAGE_PATH="$scratch/no-such-archive" "$binary" audit verify
expect_err "audit verify against a storage path that does not exist" "storage.path .*/no-such-archive is not a directory: no digest can be read"
[[ ! -e $scratch/no-such-archive ]] || fail "audit verify created the storage path"

# --- append-only ---------------------------------------------------------------------------------
for statement in "UPDATE audit_log SET detail = 'x' WHERE seq = 2" "DELETE FROM audit_log WHERE seq = 25" \
                 "TRUNCATE audit_log"; do
  if psql -w -qtA -v ON_ERROR_STOP=1 "$db_dsn" -c "$statement" >/dev/null 2>"$scratch/psql.err"; then
    fail "$statement was allowed"
  fi
  grep -q "audit_log is append-only" "$scratch/psql.err" || fail "$statement: $(cat "$scratch/psql.err")"
done
pass "UPDATE, DELETE and TRUNCATE refused"

# --- a superuser alters, then removes, a row behind the trigger's back ----------------------------
behind_the_trigger() {
  q "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_or_delete; $1;
     ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_or_delete" >/dev/null
}
behind_the_trigger "UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 3"
expect_exit 1 "audit verify after an UPDATE" "$binary" audit verify
expect_err "audit verify after an UPDATE" '^certn-archiver: audit trail broken at seq 3: hash does not match'
behind_the_trigger "UPDATE audit_log SET detail = 'settled' WHERE seq = 3"
expect_exit 0 "audit verify with the row restored" "$binary" audit verify

# --- digests of the chain's head in the archive ---------------------------------------------------
export CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port CERTN_ARCHIVER_WEBHOOK_SECRETS=records-test
export CERTN_ARCHIVER_CERTN_API_KEY=unused CERTN_ARCHIVER_CERTN_BASE_URL=http://127.0.0.1:9
export CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=0 CERTN_ARCHIVER_RECORDS_PURGE_INTERVAL_SECONDS=0
export CERTN_ARCHIVER_RECORDS_AUDIT_DIGEST_INTERVAL_SECONDS=1
start_serve
digest_of_head() { printf '%s/audit/digests/%020d.json' "$archive" "$(q "SELECT max(seq) FROM audit_log")"; }
wait_until 20 "serve wrote a digest of the trail's head" '[[ -f $(digest_of_head) ]]'
expect_exit 0 "hold while serve runs" "$binary" hold --case case-late --reason "after the first digest"
wait_until 20 "serve wrote a digest of the new head" '[[ -f $(digest_of_head) ]]'
stop_serve
head_seq=$(q "SELECT max(seq) FROM audit_log")
[[ $(jq -r '"\(.seq) \(.hash)"' "$(digest_of_head)") == "$head_seq $(q "SELECT hash FROM audit_log WHERE seq = $head_seq")" ]] ||
  fail "the digest is not the head: $(cat "$(digest_of_head)")"
digests=$(find "$archive/audit/digests" -name '*.json' | wc -l)
expect_exit 0 "audit verify against the digests" "$binary" audit verify
grep -qE "^audit trail intact: $head_seq rows, head [0-9a-f]{64}; $digests digest\(s\) in the archive match \(latest: seq $head_seq\)$" "$scratch/out" ||
  fail "verify: $(cat "$scratch/out")"
# Rows cut from the end leave a chain that is intact on its own: only the digests tell.
behind_the_trigger "DELETE FROM audit_log WHERE seq > 20"
expect_exit 1 "audit verify after the trail was cut short" "$binary" audit verify
expect_err "audit verify after the trail was cut short" \
  "^certn-archiver: audit trail does not match the archive: the digest of seq $head_seq \(.*\) names a row the trail no longer has \(it ends at seq 20: cut short\)$"
pass "serve writes digests of the trail's head; audit verify finds a trail cut short"

behind_the_trigger "DELETE FROM audit_log WHERE seq = 4"
expect_exit 1 "audit verify after a DELETE" "$binary" audit verify
expect_err "audit verify after a DELETE" '^certn-archiver: audit trail broken at seq 5: expected seq 4'

# --- the least-privilege role of README "Records management" --------------------------------------
# Its SQL is taken from the README, so that what the README says is what is tested.
role="${db_name}_app"
awk '/^- \*\*Least privilege\*\*/ { on = 1 } on && /```sql/ { grab = 1; next } grab && /```/ { exit } grab' \
  "$(dirname "$0")/../../README.md" | sed "s/certn_archiver/$role/g" >"$scratch/role.sql"
grep -q "CREATE ROLE $role LOGIN" "$scratch/role.sql" || fail "no role SQL in the README: $(cat "$scratch/role.sql")"
psql -w -q -v ON_ERROR_STOP=1 "$db_dsn" -f "$scratch/role.sql" >/dev/null || fail "the README's role SQL fails"
on_exit "psql -w -q '$db_dsn' -c 'DROP OWNED BY $role CASCADE' >/dev/null 2>&1; psql -w -q '$TEST_PG_DSN' -c 'DROP ROLE IF EXISTS $role' >/dev/null 2>&1"
role_dsn=$(sed -E "s#^postgresql://[^@]+@#postgresql://$role@#" <<<"$db_dsn")
as_role() { CERTN_ARCHIVER_DATABASE_URL=$role_dsn "$@"; }
expect_exit 0 "hold as the least-privilege role" as_role "$binary" hold --case case-role --reason "as the app role"
expect_exit 0 "release as the least-privilege role" as_role "$binary" release --case case-role --reason "done"
expect_exit 0 "audit as the least-privilege role" as_role "$binary" audit --case case-role --json
[[ $(jq -c '[.[].action]' "$scratch/out") == '["hold","release"]' ]] || fail "role's audit rows: $(cat "$scratch/out")"
for statement in "UPDATE audit_log SET detail = 'x' WHERE seq = 1" "DELETE FROM audit_log" "DELETE FROM legal_holds"; do
  if psql -w -qtA -v ON_ERROR_STOP=1 "$role_dsn" -c "$statement" >/dev/null 2>"$scratch/psql.err"; then
    fail "the app role could run: $statement"
  fi
  grep -q "permission denied" "$scratch/psql.err" || fail "$statement: $(cat "$scratch/psql.err")"
done
pass "the README's least-privilege role holds, releases and audits, and cannot change the trail"
