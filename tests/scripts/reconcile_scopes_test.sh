#!/bin/bash
# Reconcile costs list pages, not a GET per case (issue 14): no webhook reaches serve, and it holds
# open cases of every age. A run lists the recent cases in an archive status (one page) and asks
# for no case while nothing changed; a recent case that completes is found by that listing. Open
# cases ordered before the window are listed by the statuses held for them, daily (30-90 days) or
# weekly (older): one that left its status is synced, the others cost nothing. A case Certn gives
# no order date is asked for by GET, daily. "A day passes" by ageing what the database remembers
# (reconcile_runs, last_synced): reconcile reads its time from there.
# certn-sim shapes: assumed observed
# ctest-timeout: 180
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
export CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=1

# No webhooks at all: everything serve learns comes from reconcile or from the events posted here.
start_sim --no-webhooks --report-delay-ms 300 --file-size 20000 --seed 23
recent=$(create_cases '{"count":2,"files_per_check":1}')
mid=$(create_cases '{"count":2,"files_per_check":1,"ordered_days_ago":40}')
old=$(create_cases '{"count":1,"files_per_check":1,"ordered_days_ago":120}')
recent1=$(echo "$recent" | head -1)
mid1=$(echo "$mid" | head -1)
start_serve

runs() { grep -c "reconcile: .* listing(s)" "$scratch/serve.log"; }
# wait_runs N: until N more reconcile runs have ended.
wait_runs() {
  local target=$(($(runs) + $1))
  wait_until 30 "reconcile did not run $1 more times" "((\$(runs) >= $target))"
}
calls() { curl -sf "$sim/_sim/stats" | jq -r --arg e "$1" '[.requests[$e] // {} | to_entries[] | .value] | add // 0'; }
status_of() { q "SELECT overall_status FROM cases WHERE id = '$1'"; }
# age_scope SCOPE INTERVAL: the scope's last listing happened INTERVAL earlier.
age_scope() { q "UPDATE reconcile_runs SET finished_at = finished_at - interval '$2' WHERE scope = '$1'" >/dev/null; }

# The first run lists the whole window (it never ran): the recent cases are found. The old ones
# are outside it; an event about each brings them in, dated by Certn's "created".
wait_until 20 "the window listing did not find the recent cases" \
  sql_check -eq 2 "SELECT count(*) FROM cases WHERE ordered_on = (now() AT TIME ZONE 'UTC')::date"
for id in $mid $old; do
  post_case_event "$id"
done
wait_until 20 "the old cases were not synced" \
  sql_check -eq 3 "SELECT count(*) FROM cases WHERE ordered_on < (now() AT TIME ZONE 'UTC')::date - 30"
[[ $(q "SELECT count(*) FROM cases WHERE ordered_on = (now() AT TIME ZONE 'UTC')::date - 120") -eq 1 ]] ||
  fail "order dates: $(q "SELECT id, ordered_on FROM cases")"
# The open scopes list once now that cases wait there, then not for a day (a week).
wait_until 20 "every scope did not run" sql_check -eq 4 "SELECT count(*) FROM reconcile_runs"
wait_until 20 "syncs still pending" '(($(pending_jobs) == 0))'
pass "5 open cases held (2 recent, 2 ordered 40 days ago, 1 120 days ago), every scope listed once"

details=$(calls cases.detail)
lists=$(calls cases.list)
before=$(runs)
wait_runs 4
after=$(runs)
[[ $(calls cases.detail) -eq $details ]] ||
  fail "GETs of unchanged cases: $((($(calls cases.detail)) - details))"
new_lists=$(($(calls cases.list) - lists))
# A run may have listed before $before was read, or be listing as $after is read: one either side.
((new_lists >= after - before - 1 && new_lists <= after - before + 1)) ||
  fail "$new_lists list calls over $((after - before)) runs"
[[ $(grep -c "reconcile: window listing" "$scratch/serve.log") -eq 1 ]] ||
  fail "the window was listed again within full_interval: $(grep "reconcile: " "$scratch/serve.log" | tail -5)"
pass "$((after - before)) runs with nothing changed: $new_lists list calls, no GET of a case"

# A recent case completes and its event is lost: the recent listing (archive statuses) finds it.
move_case "$recent1" COMPLETE
wait_until 20 "the recent listing did not find the completed case" \
  sql_check -eq 1 "SELECT count(*) FROM artifacts WHERE case_id = '$recent1' AND kind = 'report'"
[[ $(q "SELECT source FROM case_status_history WHERE case_id = '$recent1' AND status = 'COMPLETE'") == reconcile ]] ||
  fail "COMPLETE not learnt from reconcile: $(q "SELECT status, source FROM case_status_history WHERE case_id = '$recent1'")"
wait_until 20 "archive jobs still pending" '(($(pending_jobs) == 0))'
pass "a recent case's lost completion found by the recent listing and archived"

# Old cases move: one of the 40-day cases completes, the 120-day case goes in progress. Until their
# scopes are due nothing asks about them.
wait_runs 2
details=$(calls cases.detail)
move_case "$mid1" COMPLETE
move_case "$old" IN_PROGRESS
wait_runs 3
[[ $(status_of "$mid1") == APPLICANT_INVITED && $(status_of "$old") == APPLICANT_INVITED &&
   $(calls cases.detail) -eq $details ]] ||
  fail "old cases asked for before their scopes were due: $(status_of "$mid1") $(status_of "$old")"

# A day later: open_before lists the 40-day cases by the status held for them (APPLICANT_INVITED);
# the completed one is no longer listed, so it alone is synced, then archived.
age_scope open_before '25 hours'
wait_until 20 "open_before did not find the completed 40-day case" \
  sql_check -eq 1 "SELECT count(*) FROM artifacts WHERE case_id = '$mid1' AND kind = 'report'"
[[ $(calls cases.detail) -eq $((details + 1)) ]] ||
  fail "$(($(calls cases.detail) - details)) GETs for one changed case ordered 40 days ago"
[[ $(status_of "$old") == APPLICANT_INVITED ]] || fail "the 120-day case was asked for daily"
pass "a day later, the 40-day case that completed is found by one listing and one GET"

# A week later: open_old lists the 120-day case, which has moved on.
details=$(calls cases.detail)
age_scope open_old '8 days'
wait_until 20 "open_old did not find the 120-day case in progress" \
  sql_check = IN_PROGRESS "SELECT overall_status FROM cases WHERE id = '$old'"
wait_until 20 "syncs still pending" '(($(pending_jobs) == 0))'
[[ $(calls cases.detail) -eq $((details + 1)) ]] ||
  fail "$(($(calls cases.detail) - details)) GETs for one changed case ordered 120 days ago"
pass "a week later, the 120-day case that moved on is found by one listing and one GET"

# Certn gives no order date: such an open case cannot be found by a dated listing, so it is asked
# for by GET once recheck_open has passed since its last sync, and only then.
curl -sf -X POST "$sim/_sim/shapes" -d '{"vary":{"case.created_name":"absent"}}' >/dev/null ||
  fail "control API: shapes"
undated=$(create_cases '{"count":1,"files_per_check":1,"ordered_days_ago":50}')
post_case_event "$undated"
wait_until 20 "the undated case was not synced" sql_check -eq 1 "SELECT count(*) FROM cases WHERE id = '$undated'"
[[ -z $(q "SELECT ordered_on FROM cases WHERE id = '$undated'") ]] || fail "an order date from nowhere"
details=$(calls cases.detail)
wait_runs 3
[[ $(calls cases.detail) -eq $details ]] || fail "the undated case was asked for before recheck_open"
q "UPDATE cases SET last_synced = last_synced - interval '25 hours' WHERE id = '$undated'" >/dev/null
wait_until 20 "the undated case was not asked for after a day" \
  sql_check -eq 1 "SELECT count(*) FROM cases WHERE id = '$undated' AND last_synced > now() - interval '1 hour'"
wait_until 20 "syncs still pending" '(($(pending_jobs) == 0))'
[[ $(calls cases.detail) -eq $((details + 1)) ]] ||
  fail "$(($(calls cases.detail) - details)) GETs for one undated case"
pass "an open case with no order date is asked for by GET once a day"

expect_no_dead_job
verify_objects
stop_serve
pass "SIGTERM: drained, exit 0"
