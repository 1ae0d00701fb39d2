#!/bin/bash
# Reconciliation never stops: the periodic reconcile books its next run before it lists anything,
# so a run that dies (Certn answering 500 until the job is dead) or meets an unreadable list entry
# still leaves exactly one next run. Webhooks are all lost, so only reconcile can archive the
# cases that close afterwards; the unreadable entry is skipped and counted, the rest archived.
# Then a restart of serve still leaves one chain, not two.
# ctest-timeout: 180
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env

export CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=3 CERTN_ARCHIVER_WORKERS_MAX_ATTEMPTS=2
start_serve
start_sim --webhook-drop-rate 1 --report-delay-ms 300 --file-size 20000 --seed 5 --fault-500-rate 1

pending_chain() {
  q "SELECT count(*) FROM jobs WHERE kind = 'reconcile' AND key = 'periodic' AND state IN ('queued', 'failed')"
}

# The first reconcile meets nothing but 500s (or, before certn-sim is up, a refused connection)
# and dies after its two attempts.
wait_until 30 "the failing reconcile did not die" \
  sql_check -ge 1 "SELECT count(*) FROM jobs WHERE kind = 'reconcile' AND state = 'dead'"
[[ $(pending_chain) -eq 1 ]] ||
  fail "after a dead reconcile, expected one pending periodic run: $(q "SELECT id, key, state, run_at FROM jobs WHERE kind = 'reconcile'")"
pass "a reconcile killed by 500s left its next run booked"

# Certn recovers, but the first entry of every list page is unreadable (no id).
set_faults '{"rate_500":0}' >/dev/null
curl -sf -X POST "$sim/_sim/shapes" -d '{"vary":{"list.bad_entry":"first"}}' >/dev/null ||
  fail "control API: shapes"
ids=$(create_cases '{"count":3,"files_per_check":1}')
for id in $ids; do
  move_case "$id" COMPLETE
done
# The cases whose entry is readable are archived (the list order decides which entry is first).
readable_archived() {
  sql_check -ge 2 "SELECT count(DISTINCT case_id) FROM artifacts WHERE kind = 'report'" && ((!$(pending_jobs)))
}
wait_until 60 "readable cases not archived" readable_archived
[[ $(q "SELECT count(*) FROM jobs WHERE state = 'dead' AND kind <> 'reconcile'") -eq 0 ]] ||
  fail "dead jobs: $(q "SELECT kind, key, attempts, last_error FROM jobs WHERE state = 'dead'")"
verify_objects
admin=127.0.0.1:$port
skipped=$(curl -sf "http://$admin/metrics" | awk '/^certn_archiver_certn_skipped_entries_total\{endpoint="list_cases"\}/ {print $2}')
[[ -n $skipped ]] && (($(printf '%.0f' "$skipped") >= 1)) ||
  fail "no skipped list entry counted: $(curl -sf "http://$admin/metrics" | grep skipped)"
grep -q "reconcile: a listed case was skipped: .*id: missing" "$scratch/serve.log" ||
  fail "no warning naming the skipped entry: $(grep reconcile "$scratch/serve.log" | tail -3)"
pass "an unreadable list entry is skipped, counted and named; the rest of the page is archived"

# Runs go on: several completed reconciles, never more than one pending.
three_runs_one_chain() {
  [[ $(pending_chain) -le 1 ]] || fail "two pending periodic reconciles"
  [[ $(grep -c "reconcile: .* to sync (periodic)" "$scratch/serve.log") -ge 3 ]]
}
wait_until 20 "reconcile did not keep running" three_runs_one_chain
pass "reconcile keeps running every 3 s after the failures"

# A restart (and a second replica's start) books a run due now: still one chain.
stop_serve
start_serve
[[ $(pending_chain) -eq 1 ]] ||
  fail "after a restart: $(q "SELECT id, key, state, run_at FROM jobs WHERE kind = 'reconcile' AND state IN ('queued', 'failed', 'running')")"
pass "after a restart, still exactly one pending periodic reconcile"

stop_serve
pass "SIGTERM: drained, exit 0"
