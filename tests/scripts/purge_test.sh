#!/bin/bash
# The purge (issue 16): a dry run deletes nothing; --execute deletes the objects of the cases
# whose retention has passed and leaves tombstones, drops the case snapshot, audits each case;
# held, open, not-yet-due, kept-forever cases and cases with jobs in flight are kept; an erasure
# request purges one case ahead of its date and needs a reason (and, under two-person approval, a
# second operator's approval); two purges at once purge each
# case once; verify skips tombstones; the S3 backend deletes through s3rver; serve's periodic
# purge does the same on its own and counts it in /metrics.
source "$(dirname "$0")/fixture.sh"
command -v jq >/dev/null || fail "jq is not installed"
create_database --migrate
export CERTN_ARCHIVER_STORAGE_PATH=$archive

put_object=put_file
# closed_case ID RETAIN_UNTIL [OBJECTS]: a closed case (snapshot kept) with OBJECTS (2) artifacts.
closed_case() {
  local id=$1 until=$2 count=${3:-2} i key content
  q "INSERT INTO cases (id, overall_status, snapshot, closed_at, retain_until, retention_rule)
       VALUES ('$id', 'COMPLETE', '{\"name\":\"Jane Applicant\"}', now() - interval '2 days', $until, 'COMPLETE=1d')"
  for i in $(seq 1 "$count"); do
    key="cases/$id/supplementary-files/chk/f$i-doc.txt"
    content="object $i of $id"
    "$put_object" "$key" "$content"
    q "INSERT INTO artifacts (case_id, kind, source_id, object_key, sha256, size_bytes)
         VALUES ('$id', 'supplementary_file', 'f$i', '$key', '$(printf '%s' "$content" | sha256sum | cut -d' ' -f1)',
                 ${#content})"
  done
}
past="now() - interval '1 day'"
closed_case c-due "$past"
closed_case c-held "$past"
closed_case c-future "now() + interval '5 years'"
closed_case c-forever "'infinity'"
closed_case c-jobs "$past"
q "INSERT INTO cases (id, overall_status, closed_at) VALUES ('c-open', 'IN_PROGRESS', NULL)"
q "INSERT INTO jobs (kind, key, payload) VALUES ('sync_case', 'c-jobs', '{\"case_id\":\"c-jobs\"}')"
"$binary" hold --case c-held --reason "litigation" >/dev/null || fail "hold"
files_of() { find "$archive/cases/$1" -type f 2>/dev/null | wc -l; }

# --- a dry run by default -------------------------------------------------------------------------
expect_exit 0 "purge (dry run)" "$binary" purge
grep -q "^dry run: 1 case(s), 2 object(s), 34 bytes would be purged; nothing was deleted" "$scratch/out" ||
  fail "dry run: $(cat "$scratch/out")"
[[ $(files_of c-due) -eq 2 && $(q "SELECT count(*) FROM artifacts WHERE purged_at IS NOT NULL") -eq 0 ]] ||
  fail "the dry run deleted something"

# --- --execute: the due case only -----------------------------------------------------------------
expect_exit 0 "purge --execute" "$binary" purge --execute
grep -q "^1 case(s), 2 object(s), 34 bytes purged$" "$scratch/out" || fail "purge: $(cat "$scratch/out")"
[[ $(files_of c-due) -eq 0 ]] || fail "c-due's objects remain"
for kept in c-held c-future c-forever c-jobs; do
  [[ $(files_of $kept) -eq 2 ]] || fail "$kept lost objects"
done
[[ $(q "SELECT count(*) FROM artifacts WHERE case_id = 'c-due' AND purged_at IS NOT NULL AND purge_rule = 'COMPLETE=1d'
          AND sha256 ~ '^[0-9a-f]{64}$' AND size_bytes > 0") -eq 2 ]] || fail "no tombstones: $(q "SELECT * FROM artifacts WHERE case_id = 'c-due'")"
[[ $(q "SELECT purged_at IS NOT NULL AND snapshot IS NULL FROM cases WHERE id = 'c-due'") == t ]] ||
  fail "the purged case keeps its snapshot"
[[ $(q "SELECT count(*) FROM artifacts WHERE case_id <> 'c-due' AND purged_at IS NOT NULL") -eq 0 ]] ||
  fail "other cases' rows were marked purged"
[[ $(q "SELECT detail FROM audit_log WHERE action = 'purge' AND case_id = 'c-due'") == "2 object(s), 34 bytes, by COMPLETE=1d" ]] ||
  fail "purge audit: $(q "SELECT actor, detail FROM audit_log WHERE action = 'purge'")"
expect_exit 0 "purge --execute again" "$binary" purge --execute
grep -q "^0 case(s), 0 object(s), 0 bytes purged$" "$scratch/out" || fail "second purge: $(cat "$scratch/out")"
expect_exit 0 "verify after the purge" "$binary" verify

# --- one case: an erasure request ----------------------------------------------------------------
expect_exit 2 "purge --case without --reason" "$binary" purge --case c-future --execute
expect_err "purge --case without --reason" "needs --reason"
expect_exit 1 "erasure of a held case" "$binary" purge --case c-held --reason "asked" --execute
expect_err "erasure of a held case" "not purged: held: a legal hold is in force"
expect_exit 1 "erasure of an open case" "$binary" purge --case c-open --reason "asked" --execute
expect_err "erasure of an open case" "not purged: open"
expect_exit 1 "erasure of a case with jobs in flight" "$binary" purge --case c-jobs --reason "asked" --execute
expect_err "erasure of a case with jobs in flight" "not purged: busy: jobs"
closed_case c-protect "now() + interval '5 years'"
q "INSERT INTO jobs (kind, key, payload) VALUES ('protect_case', 'c-protect', '{}')" >/dev/null
expect_exit 1 "erasure of a case whose lock is being updated" "$binary" purge --case c-protect --reason "asked" --execute
expect_err "erasure of a case whose lock is being updated" "not purged: busy: jobs"
q "UPDATE jobs SET state = 'succeeded' WHERE kind = 'protect_case'" >/dev/null
expect_exit 0 "erasure (dry run)" "$binary" purge --case c-future --reason "applicant's request 77"
[[ $(files_of c-future) -eq 2 ]] || fail "the erasure dry run deleted"
expect_exit 0 "erasure" "$binary" purge --case c-future --reason "applicant's request 77" --execute
[[ $(files_of c-future) -eq 0 ]] || fail "the erasure left objects"
[[ $(q "SELECT detail FROM audit_log WHERE action = 'purge' AND case_id = 'c-future'") == \
   "2 object(s), 40 bytes, by erasure request: applicant's request 77" ]] || fail "erasure audit"
expect_exit 0 "release the hold" "$binary" release --case c-held --reason "settled"
expect_exit 0 "purge after the release" "$binary" purge --execute
grep -q "^1 case(s)" "$scratch/out" || fail "the released case was not purged: $(cat "$scratch/out")"

# --- two-person approval of an erasure ------------------------------------------------------------
# Operators are told apart by their OS user, or the sudo user behind it (SUDO_USER here).
expect_exit 2 "--approve under single approval" "$binary" purge --case c-forever --approve --execute
expect_err "--approve under single approval" 'neither this configuration nor serve.s says so'
export CERTN_ARCHIVER_RECORDS_PURGE_APPROVAL=two-person
expect_exit 2 "--approve without --case" "$binary" purge --approve
expect_err "--approve without --case" "needs --case"
expect_exit 0 "two-person: the request's dry run" env SUDO_USER=alice "$binary" purge --case c-forever --reason "applicant 88"
grep -q "another operator approves it" "$scratch/out" || fail "no word of the approval: $(cat "$scratch/out")"
expect_exit 0 "two-person: the request" env SUDO_USER=alice "$binary" purge --case c-forever --reason "applicant 88" --execute
grep -q "^erasure of case c-forever requested by user:alice (via sudo as root); nothing is deleted" "$scratch/out" ||
  fail "request: $(cat "$scratch/out")"
[[ $(files_of c-forever) -eq 2 ]] || fail "the request alone deleted objects"
"$binary" hold --case c-jobs --reason "status check" >/dev/null || fail "hold c-jobs"
purged=$(q "SELECT count(*) FROM cases WHERE purged_at IS NOT NULL")
"$binary" status >"$scratch/status.out" || fail "status"
grep -qE "^records     1 case\(s\) held, [0-9]+ object\(s\) \(.*\) under retention, [0-9]+ case\(s\) due for purge, $purged purged, 1 erasure\(s\) awaiting approval$" \
  "$scratch/status.out" || fail "status records: $(cat "$scratch/status.out")"
grep -qE "^            last purge [0-9T:-]+Z; serve purges every 60 min$" "$scratch/status.out" ||
  fail "status last purge: $(cat "$scratch/status.out")"
"$binary" status --json | jq -e --argjson purged "$purged" '.records.erasures_pending == 1 and .records.held_cases == 1
  and .records.cases_purged == $purged and .records.purge_interval_seconds == 3600 and (.records.last_purge_at | test("Z$"))' >/dev/null ||
  fail "status --json records: $("$binary" status --json | jq -c .records)"
"$binary" release --case c-jobs --reason "status checked" >/dev/null || fail "release c-jobs"
expect_exit 1 "two-person: a second request" env SUDO_USER=carol "$binary" purge --case c-forever --reason "again" --execute
expect_err "two-person: a second request" "already requested, by user:alice"
expect_exit 1 "two-person: nothing to approve" env SUDO_USER=bob "$binary" purge --case c-jobs --approve --execute
expect_err "two-person: nothing to approve" "no erasure of case c-jobs is requested"
expect_exit 1 "two-person: approving one's own request" env SUDO_USER=alice "$binary" purge --case c-forever --approve --execute
expect_err "two-person: approving one's own request" "another operator must approve it"
expect_exit 0 "two-person: the approval's dry run" env SUDO_USER=bob "$binary" purge --case c-forever --approve
[[ $(files_of c-forever) -eq 2 && $(q "SELECT count(*) FROM erasure_requests WHERE approved_by IS NOT NULL") -eq 0 ]] ||
  fail "the approval's dry run approved or deleted"
expect_exit 0 "two-person: the approval" env SUDO_USER=bob "$binary" purge --case c-forever --approve --execute
[[ $(files_of c-forever) -eq 0 ]] || fail "the approved erasure left objects"
[[ $(q "SELECT actor || ' ' || detail FROM audit_log WHERE action = 'erasure_request' AND case_id = 'c-forever'") == \
   "user:alice (via sudo as root) applicant 88" ]] || fail "request audit: $(q "SELECT * FROM audit_log WHERE case_id = 'c-forever'")"
[[ $(q "SELECT actor FROM audit_log WHERE action = 'erasure_approval' AND case_id = 'c-forever'") == \
   "user:bob (via sudo as root)" ]] || fail "approval audit"
[[ $(q "SELECT detail FROM audit_log WHERE action = 'purge' AND case_id = 'c-forever'") == \
   "2 object(s), 42 bytes, by erasure request: applicant 88 (requested by user:alice (via sudo as root), approved by user:bob (via sudo as root))" ]] ||
  fail "purge audit: $(q "SELECT detail FROM audit_log WHERE action = 'purge' AND case_id = 'c-forever'")"
[[ $(q "SELECT count(*) FROM erasure_requests WHERE case_id = 'c-forever' AND completed_at IS NOT NULL") -eq 1 ]] ||
  fail "the request is not completed"
unset CERTN_ARCHIVER_RECORDS_PURGE_APPROVAL
pass "two-person approval: requested by one operator, refused to the same, approved and purged by another"

# --- two purges at once: each case once ----------------------------------------------------------
for i in $(seq 1 8); do closed_case "c-many-$i" "$past" 3; done
"$binary" purge --execute >"$scratch/a.out" 2>"$scratch/a.err" & a=$!
"$binary" purge --execute >"$scratch/b.out" 2>"$scratch/b.err" & b=$!
wait $a || fail "purge a: $(cat "$scratch/a.err")"
wait $b || fail "purge b: $(cat "$scratch/b.err")"
total=$(cat "$scratch/a.out" "$scratch/b.out" | awk '{ s += $1 } END { print s }')
[[ $total -eq 8 ]] || fail "the two purges report $total cases: $(cat "$scratch/a.out" "$scratch/b.out")"
[[ $(q "SELECT count(*) FROM audit_log WHERE action = 'purge' AND case_id LIKE 'c-many-%'") -eq 8 ]] ||
  fail "purge audit rows: $(q "SELECT case_id, count(*) FROM audit_log WHERE action = 'purge' GROUP BY 1")"
[[ -z $(find "$archive/cases" -path '*c-many-*' -type f) ]] || fail "objects of c-many-* remain"
pass "two purges at once: 8 cases, each purged once"

# --- S3 -----------------------------------------------------------------------------------------
s3_env
put_object=put_s3
s3_case=c-s3-$RANDOM$RANDOM
closed_case "$s3_case" "$past"
aws s3api head-object --bucket testbucket --key "cases/$s3_case/supplementary-files/chk/f1-doc.txt" >/dev/null ||
  fail "the S3 object is not there"
expect_exit 0 "purge on S3" "$binary" purge --execute
if aws s3api head-object --bucket testbucket --key "cases/$s3_case/supplementary-files/chk/f1-doc.txt" >/dev/null 2>&1; then
  fail "the S3 object survived the purge"
fi
[[ $(q "SELECT purged_at IS NOT NULL FROM cases WHERE id = '$s3_case'") == t ]] || fail "the S3 case is not marked"
pass "S3: objects deleted, case marked"
unset CERTN_ARCHIVER_STORAGE_BACKEND CERTN_ARCHIVER_STORAGE_PREFIX
export CERTN_ARCHIVER_STORAGE_PATH=$archive
put_object=put_file

# --- serve's periodic purge ---------------------------------------------------------------------
# c-undated closed before there was a policy: serve dates it first (closed 2 days ago, kept 1 day).
closed_case c-by-daemon "$past"
closed_case c-undated NULL 1
q "UPDATE cases SET retention_rule = NULL WHERE id = 'c-undated'"
export CERTN_ARCHIVER_RECORDS_RETENTION="COMPLETE=1d"
export CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port CERTN_ARCHIVER_WEBHOOK_SECRETS=purge-test
export CERTN_ARCHIVER_CERTN_API_KEY=unused CERTN_ARCHIVER_CERTN_BASE_URL=http://127.0.0.1:9
export CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=0 CERTN_ARCHIVER_RECORDS_PURGE_INTERVAL_SECONDS=1
start_serve
wait_until 20 "serve purged c-by-daemon" sql_check = t "SELECT purged_at IS NOT NULL FROM cases WHERE id = 'c-by-daemon'"
[[ $(files_of c-by-daemon) -eq 0 ]] || fail "serve left c-by-daemon's objects"
wait_until 20 "serve dated and purged c-undated" \
  sql_check = t "SELECT purged_at IS NOT NULL AND retention_rule = 'COMPLETE=1d' FROM cases WHERE id = 'c-undated'"
[[ $(q "SELECT actor FROM audit_log WHERE action = 'purge' AND case_id = 'c-by-daemon'") == daemon:* ]] || fail "daemon purge actor"
metrics=$(curl -sf "http://127.0.0.1:$port/metrics") || fail "metrics"
grep -qE '^certn_archiver_records_purged_total\{what="cases"\} [1-9]' <<<"$metrics" || fail "purged metric: $(grep records <<<"$metrics")"
grep -qE '^certn_archiver_records\{what="next_purge_unixtime"\} [1-9]' <<<"$metrics" || fail "next purge metric: $(grep records <<<"$metrics")"
stop_serve
pass "serve's periodic purge"

# --- the approval rule serve runs with binds the CLI too -------------------------------------------
CERTN_ARCHIVER_RECORDS_PURGE_APPROVAL=two-person start_serve
stop_serve
closed_case c-rule "now() + interval '5 years'"
expect_exit 0 "erasure under serve's two-person rule" env CERTN_ARCHIVER_RECORDS_PURGE_APPROVAL=single \
  "$binary" purge --case c-rule --reason "asked" --execute
grep -q "^erasure of case c-rule requested by" "$scratch/out" || fail "the local single rule won: $(cat "$scratch/out")"
[[ $(files_of c-rule) -eq 2 ]] || fail "the request alone deleted objects"
[[ $(q "SELECT detail FROM audit_log WHERE action = 'purge_approval' ORDER BY seq DESC LIMIT 1") == two-person ]] ||
  fail "serve did not record its approval rule"
pass "serve's two-person rule holds for a command configured with single"
