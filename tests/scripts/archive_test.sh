#!/bin/bash
# End to end, filesystem backend: certn-sim sends (duplicated, reordered) webhooks to `serve`, the
# workers archive every case that reaches COMPLETE, and what lands on disk is checked byte for
# byte against fresh downloads from the simulator; a dispute and a second closing archive the
# new content beside the old, and restart the case's retention clock. Then SIGTERM drains and
# exits 0.
# certn-sim shapes: assumed observed
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
export CERTN_ARCHIVER_RECORDS_RETENTION="COMPLETE=6y, default=1y"
start_serve
start_sim --report-delay-ms 300 --file-size 150000 --webhook-duplicate-rate 0.3 \
  --webhook-reorder-rate 0.3 --seed 7

ids=$(create_cases '{"count":6,"files_per_check":2}')
for id in $ids; do
  move_case "$id" COMPLETE
done
# 6 cases x (report + supplementary information + 2 checks x 2 files) = 36, plus manifests.
wait_archived 36 90
pass "6 cases archived: $(q "SELECT count(*) FROM artifacts") artifacts"

expect_no_dead_job
[[ $(q "SELECT count(*) FROM (SELECT case_id FROM artifacts WHERE kind = 'report' GROUP BY case_id HAVING count(*) = 1) x") -eq 6 ]] ||
  fail "expected exactly one report per case despite duplicated webhooks"
[[ $(q "SELECT count(*) FROM webhook_events WHERE processed_at IS NULL") -eq 0 ]] ||
  fail "unprocessed events remain"
pass "duplicated and reordered webhooks: one report per case, no dead job, every event processed"

# Retention (issue 16): each closed case kept 6 years from its closing, by the rule that says so
# (a day more at most, for a closing on 29 February); the policy recorded once.
kept_six_years="retention_rule = 'COMPLETE=6y' AND retain_until >= closed_at + interval '6 years'
  AND retain_until < closed_at + interval '6 years 2 days'"
[[ $(q "SELECT count(*) FROM cases WHERE $kept_six_years") -eq 6 ]] ||
  fail "retention: $(q "SELECT id, overall_status, closed_at, retain_until, retention_rule FROM cases")"
[[ $(q "SELECT string_agg(detail, '|') FROM audit_log WHERE action = 'retention_policy'") == "COMPLETE=6y default=1y" ]] ||
  fail "retention policy audit: $(q "SELECT detail FROM audit_log WHERE action = 'retention_policy'")"
pass "retention: 6 closed cases kept until 6 years after closing, policy audited"

verify_objects
# The archived files are the simulator's bytes: compare with fresh downloads.
id=$(echo "$ids" | head -1)
verify_case "$id" 4
pass "case $id: files equal Certn's bytes, report is a PDF, manifest lists every artifact"

# Dispute, then close again: new content archived beside the old.
before=$(q "SELECT count(*) FROM artifacts WHERE case_id = '$id'")
curl -sf -X POST "$sim/_sim/cases/$id/dispute" >/dev/null || fail "dispute"
wait_until 10 "dispute not seen" sql_check = IN_DISPUTE "SELECT overall_status FROM cases WHERE id = '$id'"
[[ $(q "SELECT retain_until IS NULL AND retention_rule IS NULL FROM cases WHERE id = '$id'") == t ]] ||
  fail "a re-opened case keeps its retention date"
first_closed=$(q "SELECT closed_at FROM cases WHERE id = '$id'")
curl -sf -X POST "$sim/_sim/cases/$id/close" >/dev/null || fail "close"
rearchived() {
  sql_check -eq 2 "SELECT count(*) FROM artifacts WHERE case_id = '$id' AND kind = 'report'" &&
    sql_check -eq 6 "SELECT count(*) FROM artifacts WHERE case_id = '$id' AND kind = 'supplementary_file'" &&
    sql_check -eq 0 "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed')"
}
wait_until 60 "re-archive not done" rearchived
[[ $(q "SELECT count(*) FROM artifacts WHERE case_id = '$id' AND kind = 'supplementary_information'") -eq 2 ]] ||
  fail "the second revision of the supplementary information was not archived"
pass "dispute and second closing: $before -> $(q "SELECT count(*) FROM artifacts WHERE case_id = '$id'") artifacts, old ones kept"
[[ -z $first_closed ]] || fail "a re-opened case keeps closed_at: $first_closed"
wait_until 10 "retention after the second closing" \
  sql_check -eq 1 "SELECT count(*) FROM cases WHERE id = '$id' AND $kept_six_years"
pass "retention: the dispute cleared the case's date, its second closing set a new one"

# Every artifact row has its audit row (issue 16): written once per key, rewritten for a key
# recorded again (the manifest after the dispute), by the daemon; the chain is intact.
[[ $(q "SELECT count(*) FROM audit_log WHERE action = 'artifact_written'") == $(q "SELECT count(*) FROM artifacts") ]] ||
  fail "artifact_written rows: $(q "SELECT count(*) FROM audit_log WHERE action = 'artifact_written'"), artifacts: $(q "SELECT count(*) FROM artifacts")"
[[ $(q "SELECT count(*) FROM audit_log WHERE action LIKE 'artifact_%' AND actor NOT LIKE 'daemon:%'") == 0 ]] ||
  fail "an artifact row audited with another actor"
# The latest audit row of each key names what the artifact row holds now.
[[ $(q "SELECT count(*) FROM artifacts r WHERE (SELECT a.detail FROM audit_log a WHERE a.action LIKE 'artifact_%'
          AND split_part(a.detail, ' ', 2) = r.object_key ORDER BY a.seq DESC LIMIT 1)
        = r.kind || ' ' || r.object_key || ' sha256 ' || r.sha256 || ' ' || r.size_bytes || ' bytes'") == $(q "SELECT count(*) FROM artifacts") ]] ||
  fail "the audit rows do not name each artifact's key, sha256 and size"
"$binary" verify --case "$id" >/dev/null || fail "verify --case"
[[ $(q "SELECT detail FROM audit_log WHERE action = 'verify' AND case_id = '$id'") == "verified "* ]] || fail "verify not audited"
"$binary" audit verify >"$scratch/audit.out" || fail "audit verify: $(cat "$scratch/audit.out")"
pass "artifacts and verify audited: $(cat "$scratch/audit.out")"

stop_serve
grep -q "workers: 4 as" "$scratch/serve.log" || fail "workers did not start"
pass "SIGTERM: drained, exit 0"
