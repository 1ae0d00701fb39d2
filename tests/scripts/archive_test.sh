#!/bin/bash
# End to end, filesystem backend: certn-sim sends (duplicated, reordered) webhooks to `serve`, the
# workers archive every case that reaches COMPLETE, and what lands on disk is checked byte for
# byte against fresh downloads from the simulator; a dispute and a second closing archive the
# new content beside the old. Then SIGTERM drains and exits 0.
# certn-sim shapes: assumed observed
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
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

verify_objects
# The archived files are the simulator's bytes: compare with fresh downloads.
id=$(echo "$ids" | head -1)
verify_case "$id" 4
pass "case $id: files equal Certn's bytes, report is a PDF, manifest lists every artifact"

# Dispute, then close again: new content archived beside the old.
before=$(q "SELECT count(*) FROM artifacts WHERE case_id = '$id'")
curl -sf -X POST "$sim/_sim/cases/$id/dispute" >/dev/null || fail "dispute"
wait_until 10 "dispute not seen" sql_check = IN_DISPUTE "SELECT overall_status FROM cases WHERE id = '$id'"
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
