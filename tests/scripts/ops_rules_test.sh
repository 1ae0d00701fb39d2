#!/bin/bash
# ops/: the Prometheus alerting rules pass `promtool check rules` and their unit tests
# (`promtool test rules`), the Grafana dashboard is a dashboard, and every metric the rules and
# the dashboard name is one a running serve exports, with values for the metrics added for them:
# the object store's operations, the last reconcile, the API key's days left.
source "$(dirname "$0")/fixture.sh"
ops_dir=$source_dir/ops
command -v promtool >/dev/null || fail "promtool is not installed (scripts/install-deps.sh: prometheus)"

(cd "$ops_dir/prometheus" && promtool check rules alerts.yml) || fail "promtool check rules"
(cd "$ops_dir/prometheus" && promtool test rules alerts_test.yml) || fail "promtool test rules"
pass "alerts.yml is valid and its unit tests pass"

dashboard=$ops_dir/grafana/certn-archiver.json
jq -e '.uid == "certn-archiver" and (.panels | length) > 10' "$dashboard" >/dev/null ||
  fail "$dashboard: not a dashboard with panels"
jq -e '[.panels[] | select(.type != "row") | .targets // [] | length > 0] | all' "$dashboard" >/dev/null ||
  fail "$dashboard: a panel without a query"
pass "the dashboard parses, every panel has a query"

create_database --migrate
archive_env
export CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=1
created=$(date -u -d '-340 days' +%F)
export CERTN_ARCHIVER_CERTN_API_KEY_CREATED=$created
start_serve
start_sim
ids=$(create_cases '{"count":1,"files_per_check":2}')
move_case "$ids" COMPLETE
wait_archived 6 60
metrics=$(curl -sf "http://127.0.0.1:$port/metrics") || fail "GET /metrics"

# Names as the rules and panels write them; a histogram's series end in _bucket, _sum or _count.
named=$(cat "$ops_dir/prometheus/alerts.yml" "$dashboard" | grep -oE 'certn_archiver_[a-z0-9_]+' |
  sed -E 's/_(bucket|sum|count)$//' | sort -u)
[[ $(wc -l <<<"$named") -ge 15 ]] || fail "only $(wc -l <<<"$named") metric names found in ops/"
missing=()
for name in $named; do
  grep -q "^# TYPE $name " <<<"$metrics" || missing+=("$name")
done
((${#missing[@]} == 0)) || fail "named in ops/ but not exported by serve: ${missing[*]}"
pass "all $(wc -l <<<"$named") metrics named in ops/ are exported"

value() { awk -v m="$1" '$1 == m {print $2}' <<<"$metrics"; }
puts=$(value 'certn_archiver_storage_operations_total{operation="put",outcome="ok"}')
[[ ${puts:-0} -ge 5 ]] || fail "storage put operations counted: ${puts:-none}"
days=$(value certn_archiver_certn_api_key_expiry_days)
awk -v d="${days:-x}" 'BEGIN { exit !(d > 24 && d <= 25) }' || fail "API key expiry days: ${days:-none}, expected 24-25"
grep -q "certn.api_key_created = $created) expires on .*in 25 day(s)" "$scratch/serve.log" ||
  fail "no expiry warning in the log: $(grep -i 'api key' "$scratch/serve.log")"
last_reconcile() {
  curl -sf "http://127.0.0.1:$port/metrics" |
    awk '$1 == "certn_archiver_reconcile_last_success_timestamp_seconds" {printf "%d", $2}'
}
wait_until 30 "a reconcile listing completed" '(( $(last_reconcile) > 0 ))'
last=$(last_reconcile)
now=$(date +%s)
awk -v l="$last" -v n="$now" 'BEGIN { exit !(l > n - 120 && l <= n + 5) }' || fail "last reconcile at $last, now $now"
pass "store operations ($puts puts), key expiry ($days days, warned in the log) and the last reconcile have values"
stop_serve
