#!/bin/bash
# `certn-archiver probe` against certn-sim (assumed and observed shapes, variations): which accepted name matched, unknown keys, exit 1 naming an unusable answer, 401/403 advice, read-only, no database, no key or presigned query in the output.
source "$(dirname "$0")/fixture.sh"  # no database: probe must work without one
[[ -f $source_dir/daemon/service/probe.cpp ]] || fail "not the source directory: $source_dir"
command -v jq >/dev/null || fail "jq is needed"

key=probe-k3y-that-must-not-leak
sim_port=0  # a fresh certn-sim on any free port each time
# start_probe_sim OPTIONS...: a new certn-sim at $sim, the daemon pointed at it.
start_probe_sim() {
  start_sim --no-webhooks --api-key "$key" --report-delay-ms 0 --file-size 100 "$@"
  export CERTN_ARCHIVER_CERTN_BASE_URL=$sim
}

# A config whose database secret cannot be read outside the service: probe must not read it
# (nor connect to the database, which does not exist).
cat >"$scratch/config.toml" <<'EOF'
[database]
url_file = "${CREDENTIALS_DIRECTORY}/database-url"
EOF
unset CREDENTIALS_DIRECTORY CERTN_ARCHIVER_DATABASE_URL CERTN_ARCHIVER_DATABASE_URL_FILE
certn_env  # with 6000 requests a minute: the default 60 spaces probe's calls 1 s apart
export CERTN_ARCHIVER_CONFIG=$scratch/config.toml CERTN_ARCHIVER_CERTN_API_KEY=$key

# closed_case: a case with one file per check, moved to COMPLETE; prints its id.
closed_case() {
  local id
  id=$(create_cases '{"count":1,"files_per_check":1}')
  move_case "$id" COMPLETE
  echo "$id"
}
# report_of CASE: a report file of the case, requested here (probe never does), once COMPLETE.
report_of() {
  local report
  report=$(curl -sf -X POST -H "Authorization: Api-Key $key" "$sim/api/public/cases/$1/generate-report/" -d '{}' |
    jq -r '.case_report_file_id // .report_file_id // .id')
  wait_for bash -c "curl -sf -H 'Authorization: Api-Key $key' '$sim/api/public/cases/report-files/$report/' | grep -q COMPLETE" ||
    fail "report $report never COMPLETE"
  echo "$report"
}
# Requests that would change something at Certn, as certn-sim counted them.
writes() { curl -sf "$sim/_sim/stats" | jq -c '.requests | with_entries(select(.key | test("generate_report|cancel|order")))'; }

# probe EXPECTED-EXIT WHAT ARGS...: runs probe; the output never holds the key or a presigned query.
probe() {
  local expected=$1 what=$2
  shift 2
  local rc=0
  "$binary" probe "$@" >"$scratch/out" 2>"$scratch/err" || rc=$?
  [[ $rc -eq $expected ]] || { cat "$scratch/out" "$scratch/err"; fail "$what: exit $rc, expected $expected"; }
  ! grep -qF "$key" "$scratch/out" "$scratch/err" || fail "$what: the API key was printed"
  ! grep -qE 'X-Amz-|Signature=' "$scratch/out" "$scratch/err" || fail "$what: a presigned query string was printed"
  pass "$what (exit $rc)"
}
check() {  # jq-expression what: tests the JSON output
  jq -e "$1" "$scratch/out" >/dev/null || { cat "$scratch/out"; fail "$2"; }
}
answer() { echo ".responses[] | select(.endpoint | endswith(\"$1\"))"; }

# ---- assumed shapes: everything archivable, read-only --------------------------------------------
start_probe_sim --shapes assumed
create_cases '{"count":1}' >/dev/null  # an open case, listed too
id=$(closed_case)
report=$(report_of "$id")
before=$(writes)
probe 0 "assumed: text" --report-file "$report"
grep -q "^GET /api/public/cases/$id/supplementary-files/$" "$scratch/out" || fail "no files block: $(cat "$scratch/out")"
[[ $(grep -cE "^  verdict +archivable" "$scratch/out") -eq 5 ]] || fail "not 5 archivable answers: $(cat "$scratch/out")"
grep -q "^case $id (COMPLETE" "$scratch/out" || fail "did not prefer the closed case: $(cat "$scratch/out")"
grep -q "^ok: " "$scratch/out" || fail "no ok line"
probe 0 "assumed: --json" --report-file "$report" --json
check '.ok == true and .case == "'"$id"'" and (.responses | length) == 5' "assumed: summary"
check 'all(.responses[]; .archivable and .status == 200 and .bytes > 0 and .error == null)' "assumed: a response"
check "$(answer "/cases/$id/") | .matched[\"case.overall_status\"] == \"overall_status\" and .matched[\"case.checks[].type\"] == \"type\"" "assumed: case matched"
check "$(answer /supplementary-files/) | .files >= 1 and .skipped == [] and .downloads[0].allowed" "assumed: files"
check "$(answer "/report-files/$report/") | .matched[\"report file.url\"] == \"pdf_url\"" "assumed: report url name"
[[ $(writes) == "$before" ]] || fail "probe ordered, cancelled or generated: $before -> $(writes)"
pass "read-only: no generate-report, cancel or order"

# ---- observed shapes: other names and unknown keys, still archivable --------------------------------
start_probe_sim --shapes observed
id=$(closed_case)
report=$(report_of "$id")
probe 0 "observed: text" --report-file "$report"
grep -q "case.checks\[\]: id, type=check_type" "$scratch/out" || fail "text lacks type=check_type: $(cat "$scratch/out")"
grep -qE "^ +case: .*tags.*\(ignored\)" "$scratch/out" || fail "text lacks the unknown case.tags"
probe 0 "observed: --json" --report-file "$report" --json
check '.ok == true and all(.responses[]; .archivable)' "observed: not all archivable"
check "$(answer "/cases/$id/") | .matched[\"case.checks[].type\"] == \"check_type\" and (.unknown | index(\"case.tags\"))" "observed: check_type / case.tags"
check "$(answer "/report-files/$report/") | any(.missing[]; .field == \"report file.id\" and .consequence != \"\" and (.consequence | test(\"dead|unusable\") | not))" "observed: report file without id"
check "$(answer /cases/?page=1\&page_size=5) | .matched[\"case list.pagination\"] == \"pagination\"" "observed: pagination"

# ---- variations ---------------------------------------------------------------------------------
start_probe_sim --vary case.status_name=status
id=$(closed_case)
probe 0 "case.status_name=status" --case "$id" --json
check "$(answer "/cases/$id/") | .matched[\"case.overall_status\"] == \"status\"" "status name"

start_probe_sim --vary supplementary_information.body=invalid
id=$(closed_case)
probe 1 "supplementary_information.body=invalid: text"
grep -q "NOT ok: 1 of 4 answers cannot be archived: GET /api/public/cases/$id/supplementary-information/" "$scratch/out" ||
  fail "the endpoint is not named: $(cat "$scratch/out")"
grep -A2 "supplementary-information/$" "$scratch/out" | grep -q "NOT archivable: body: not valid JSON" || fail "no verdict"
probe 1 "supplementary_information.body=invalid: --json" --json
check ".ok == false and ([.responses[] | select(.archivable | not) | .endpoint] == [\"GET /api/public/cases/$id/supplementary-information/\"])" "json verdict"

start_probe_sim --vary forbidden=supplementary_files
closed_case >/dev/null
probe 1 "403 on supplementary-files" --json
check "$(answer /supplementary-files/) | .status == 403 and (.hint | test(\"lacks permission\"))" "403 advice"

start_probe_sim --shapes observed
closed_case >/dev/null
CERTN_ARCHIVER_CERTN_DOWNLOAD_HOSTS=files.example.com probe 1 "download host not allowed" --json
check "$(answer /supplementary-files/) | (.archivable | not) and (.error | test(\"certn.download_hosts\"))" "refused host"
CERTN_ARCHIVER_CERTN_API_KEY=wrong-key-also-secret probe 1 "wrong key"
if ! grep -q "HTTP 401" "$scratch/out" || ! grep -q "check certn.api_key" "$scratch/out"; then
  fail "401 advice: $(cat "$scratch/out")"
fi
! grep -q "wrong-key-also-secret" "$scratch/out" "$scratch/err" || fail "the wrong key was printed"

# ---- no database, usage ---------------------------------------------------------------------------
env -u CERTN_ARCHIVER_CONFIG CERTN_ARCHIVER_DATABASE_URL=postgresql://127.0.0.1:1/none \
  "$binary" probe >"$scratch/out" 2>&1 || fail "probe with an unreachable database: $(cat "$scratch/out")"
pass "no database reachable (exit 0)"
rc=0; "$binary" cases list >"$scratch/out" 2>&1 || rc=$?
if [[ $rc -ne 2 ]] || ! grep -q "database.url_file" "$scratch/out"; then
  fail "the config should stop other commands: exit $rc, $(cat "$scratch/out")"
fi
pass "the same config stops \`cases\` but not probe"
probe 2 "page size 0" --page-size 0
probe 2 "malformed --case" --case ../etc
CERTN_ARCHIVER_CERTN_API_KEY='' probe 2 "no API key"
grep -q "certn.api_key" "$scratch/err" || fail "no API key: $(cat "$scratch/err")"
