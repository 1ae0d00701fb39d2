#!/bin/bash
# `certn-archiver doctor` against a healthy set-up (every check ok, exit 0, text and JSON), then
# against each broken part: a wrong database URL, a schema behind, a role without privileges, a
# missing bucket, a wrong Certn key, a webhook secret the running daemon does not share, and a
# configuration that does not load. Each names the check that failed and what to do, and exits 1.
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
export CERTN_ARCHIVER_CERTN_API_KEY_CREATED=$(date -u -d '-10 days' +%F)
start_serve
start_sim
public_url="http://127.0.0.1:$port/webhooks/certn"

# doctor ARGS...: runs it, stdout to $scratch/doctor.out; sets $rc.
doctor() {
  rc=0
  "$binary" doctor "$@" >"$scratch/doctor.out" 2>"$scratch/doctor.err" || rc=$?
}
# The check's column is padded with at least two spaces: "database" is not "database schema".
line_of() { grep -E "^[a-z]+ +$1  " "$scratch/doctor.out" || true; }
expect_line() {  # STATUS CHECK TEXT
  local found
  found=$(line_of "$2")
  [[ $found == "$1 "* && $found == *"$3"* ]] ||
    fail "expected '$1 $2 ...$3...', got: $(cat "$scratch/doctor.out" "$scratch/doctor.err")"
}

doctor --public-url "$public_url"
[[ $rc -eq 0 ]] || fail "healthy set-up: doctor exited $rc: $(cat "$scratch/doctor.out" "$scratch/doctor.err")"
for check in config database "database schema" "database privileges" storage certn "certn key expiry" \
  "webhook challenge" "webhook signature"; do
  expect_line ok "$check" ""
done
expect_line ok "certn key expiry" "expires on $(date -u -d '+355 days' +%F)"
[[ -z $(ls -A "$archive/doctor" 2>/dev/null) ]] || fail "probe object left: $(ls "$archive/doctor")"
doctor --json
[[ $rc -eq 0 ]] || fail "doctor --json exited $rc"
jq -e '.ok == true and ([.checks[] | select(.status == "fail")] | length == 0)
       and ([.checks[] | select(.check == "webhook" and .status == "skip")] | length == 1)' \
  "$scratch/doctor.out" >/dev/null || fail "JSON: $(cat "$scratch/doctor.out")"
pass "healthy: every check ok (text), JSON says ok, the webhook skipped without --public-url"

# During a rotation both secrets must work through the public URL: the daemon has only one.
CERTN_ARCHIVER_WEBHOOK_SECRETS="sim-webhook-secret,a-secret-nobody-else-has" doctor --public-url "$public_url"
[[ $rc -eq 1 ]] || fail "a secret the daemon lacks: exit $rc"
grep -q "^ok    webhook signature .*secret 1 of 2" "$scratch/doctor.out" || fail "secret 1: $(cat "$scratch/doctor.out")"
grep -q "^fail  webhook signature .*secret 2 of 2 (401) -> make webhook.secrets the same" "$scratch/doctor.out" ||
  fail "secret 2: $(cat "$scratch/doctor.out")"
pass "a webhook secret the running daemon does not have: fail, naming which one"

CERTN_ARCHIVER_CERTN_API_KEY=not-the-key doctor
[[ $rc -eq 1 ]] || fail "wrong Certn key: exit $rc"
expect_line fail certn "refuses the API key"
expect_line fail certn "certn.base_url is the key's region"
pass "a wrong Certn key: fail, pointing at the key and the region's base URL"

CERTN_ARCHIVER_DATABASE_URL="postgresql://postgres@127.0.0.1:$(free_port)/nothing?connect_timeout=2" doctor
[[ $rc -eq 1 ]] || fail "wrong database URL: exit $rc"
expect_line fail database "unusable"
expect_line fail database "check database.url"
expect_line ok storage "probe object"
pass "a wrong database URL: fail, the other checks still run"

behind_db="${db_name}_empty"
psql -w -q "$TEST_PG_DSN" -c "CREATE DATABASE $behind_db" >/dev/null
on_exit "psql -w -q '$TEST_PG_DSN' -c 'DROP DATABASE IF EXISTS $behind_db' >/dev/null"
CERTN_ARCHIVER_DATABASE_URL="${db_dsn%/*}/$behind_db" doctor
[[ $rc -eq 1 ]] || fail "no schema: exit $rc"
expect_line fail "database schema" "run \`certn-archiver migrate\`"
pass "a database without the schema: fail, run migrate"

role="doctor_ro_${db_name}"
q "CREATE ROLE $role LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO $role"
# The role's grants live in the test's database: dropped there, then the role (before the
# database itself goes).
on_exit "psql -w -q '$db_dsn' -c 'DROP OWNED BY $role' -c 'DROP ROLE $role' >/dev/null"
readonly_url=$(sed -E "s#//[^@/]*@#//$role@#" <<<"$db_dsn")
CERTN_ARCHIVER_DATABASE_URL=$readonly_url doctor
[[ $rc -eq 1 ]] || fail "read-only role: exit $rc"
expect_line fail "database privileges" "role $role lacks "
expect_line fail "database privileges" "INSERT, UPDATE, DELETE on jobs; "
grep -q "GRANT INSERT, UPDATE, DELETE ON jobs TO $role" "$scratch/doctor.out" || fail "no GRANT hint: $(cat "$scratch/doctor.out")"
found=$(line_of 'database privileges' | sed 's/ -> .*//')
[[ $found == *"; INSERT on audit_log; "* && $found != *schema_migrations* ]] ||
  fail "not what serve needs on audit_log (INSERT) and schema_migrations (SELECT): $found"
pass "a role with SELECT only: fail, with the GRANT to run"

if [[ -n ${TEST_S3_ENDPOINT:-} ]]; then
  (
    s3_env
    export CERTN_ARCHIVER_STORAGE_S3_BUCKET=no-such-bucket-$RANDOM
    doctor
    [[ $rc -eq 1 ]] || fail "missing bucket: exit $rc"
    expect_line fail storage "NoSuchBucket"
    expect_line fail storage "check storage.s3.bucket exists"
    export CERTN_ARCHIVER_STORAGE_S3_BUCKET=testbucket
    doctor
    expect_line ok storage "wrote, read back (sha256 matches) and deleted"
  ) || exit 1
  pass "S3: a missing bucket fails naming it; the real bucket passes"
else
  fail "TEST_S3_ENDPOINT is not set: run through scripts/test.sh"
fi

CERTN_ARCHIVER_SERVER_MAX_BODY_BYTES=0 doctor --json
[[ $rc -eq 1 ]] || fail "bad config: exit $rc"
jq -e '.ok == false and .checks[0].check == "config" and .checks[0].status == "fail"
       and (.checks[0].detail | contains("server.max_body_bytes"))' "$scratch/doctor.out" >/dev/null ||
  fail "bad config JSON: $(cat "$scratch/doctor.out")"
pass "a configuration that does not load: one failing config line naming the key"
stop_serve
