#!/bin/bash
# The day's Certn budget (issue "Spend Certn's quota wisely", daily budget): every call is charged
# to one count per account and UTC day in the database, whoever makes it (serve's workers, the
# CLI's `cases` and `backfill`); once only the live reserve is left, bulk work waits for the next
# day, without holding a worker and without a dead job, while live work goes on; `status` and
# /metrics show the count.
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
# 20 calls a day, half of them kept for live work.
export CERTN_ARCHIVER_CERTN_REQUESTS_PER_DAY=20 CERTN_ARCHIVER_CERTN_LIVE_RESERVE_PERCENT=50
start_serve
start_sim --webhook-drop-rate 1 --report-delay-ms 200 --file-size 2000 --seed 31
bulk_ids=$(create_cases '{"count":3,"files_per_check":0}')
for id in $bulk_ids; do
  move_case "$id" COMPLETE
done

used_today() { q "SELECT coalesce((SELECT day_used FROM rate_limits WHERE day = (now() AT TIME ZONE 'UTC')::date), 0)"; }
# An operator's calls are charged: 9 GETs of a case from the CLI.
for _ in $(seq 9); do
  "$binary" cases get "$(echo "$bulk_ids" | head -1)" >/dev/null 2>"$scratch/cases.err" ||
    fail "cases get: $(cat "$scratch/cases.err")"
done
[[ $(used_today) -eq 9 ]] || fail "9 CLI calls charged as $(used_today)"
# The backfill's listing (one page) is the 10th: only the live reserve is left.
out=$("$binary" backfill --since "$(date -u -d '1 day ago' +%F)" 2>"$scratch/backfill.err") ||
  fail "backfill failed: $(cat "$scratch/backfill.err")"
[[ $out == "backfill: 3 cases seen, 3 sync_case jobs enqueued, 0 already pending" ]] || fail "backfill said: $out"
[[ $(used_today) -eq 10 ]] || fail "the backfill's listing not charged: $(used_today)"
pass "the CLI's calls are charged to the shared day"

# The bulk syncs are held back by the budget: retried later without using up attempts, never sent.
wait_until 20 "bulk syncs not held back" sql_check -ge 3 \
  "SELECT count(*) FROM jobs WHERE kind = 'sync_case' AND state = 'failed' AND last_error LIKE '%not sent%'"
wait_for grep -q "Certn daily budget: 10 of 20 calls used today (UTC), 10 kept for live work; bulk work waits" "$scratch/serve.log" ||
  fail "no budget warning: $(grep -i budget "$scratch/serve.log" | head -3)"
[[ $(q "SELECT max(attempts) FROM jobs WHERE kind = 'sync_case'") -eq 0 ]] ||
  fail "held-back syncs used attempts: $(q "SELECT key, attempts, last_error FROM jobs WHERE kind = 'sync_case'")"
[[ $(used_today) -eq 10 ]] || fail "held-back calls were charged or sent: $(used_today)"
pass "bulk work waits for the next day once only the live reserve is left"

# A live event still goes through, spending the reserve.
live=$(create_cases '{"count":1,"files_per_check":0}')
move_case "$live" COMPLETE
post_case_event "$live"
wait_until 30 "the live case was not archived" sql_check -eq 1 "SELECT count(*) FROM artifacts WHERE case_id = '$live' AND kind = 'report'"
wait_until 10 "the live case's calls not charged" sql_check -eq 15 "SELECT day_used FROM rate_limits"
wait_until 20 "the live case's manifest was not written" sql_check -eq 1 "SELECT count(*) FROM artifacts WHERE case_id = '$live' AND kind = 'manifest'"
verify_case "$live" 0
[[ $(q "SELECT count(*) FROM cases WHERE id IN ($(echo "$bulk_ids" | sed "s/.*/'&'/" | paste -sd,))") -eq 0 ]] ||
  fail "a bulk case was synced beyond the budget"
expect_no_dead_job
pass "live work goes on with the reserve: 5 calls, case archived"

"$binary" status >"$scratch/status.out" 2>&1 || fail "status: $(cat "$scratch/status.out")"
grep -q "^certn calls 15 today (UTC) of 20, 10 kept for live work; " "$scratch/status.out" ||
  fail "status: $(cat "$scratch/status.out")"
"$binary" status --json | jq -e '.certn_budget.used_today == 15 and .certn_budget.per_day == 20' >/dev/null ||
  fail "status --json: $("$binary" status --json)"
metrics=$(curl -sf "http://127.0.0.1:$port/metrics")
grep -q '^certn_archiver_certn_budget_used 15$' <<<"$metrics" || fail "metrics: $(grep budget <<<"$metrics")"
grep -q '^certn_archiver_certn_budget_remaining 5$' <<<"$metrics" || fail "metrics: $(grep budget <<<"$metrics")"
pass "status and /metrics show the day's budget"
stop_serve
