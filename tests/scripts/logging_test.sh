#!/bin/bash
# The logs of a whole archiving run, with expired download URLs and a refused webhook on the way,
# in each stderr format: JSON lines all parse, and a job's and an event's records carry their ids
# as keys of their own; no format shows a secret (API key, webhook secret, database password) or
# a presigned URL's query string.
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
start_sim --no-webhooks --report-delay-ms 200 --file-size 2000 --seed 5
read -r -a cases <<<"$(create_cases '{"count":2,"files_per_check":2}' | tr '\n' ' ')"
[[ ${#cases[@]} -eq 2 ]] || fail "cases: ${cases[*]}"

# One case per format, each archived through expired URLs (expire_next_urls) and a refused webhook.
archived=0
for format in json text; do
  if [[ $format == json ]]; then case_id=${cases[0]}; else case_id=${cases[1]}; fi
  export CERTN_ARCHIVER_LOG_FORMAT=$format CERTN_ARCHIVER_LOG_LEVEL=debug
  start_serve "$format"
  set_faults '{"expire_next_urls":3}' >/dev/null
  move_case "$case_id" COMPLETE
  port=${serve_port[$format]} post_case_event "$case_id"
  curl -s -o /dev/null -X POST "http://127.0.0.1:${serve_port[$format]}/webhooks/certn" \
    -H 'Content-Type: application/json' -H 'X-Signature: 00' -d '{"id":"x"}'
  archived=$((archived + 6))
  wait_archived "$archived" 60
  stop_serve "$format"
done
ids=${cases[0]}
json_log=$scratch/json.log
text_log=$scratch/text.log

# Every JSON line parses; the job and event records carry their ids.
lines=$(wc -l <"$json_log")
parsed=$(jq -c . "$json_log" | wc -l) || fail "a JSON log line does not parse: $(head -3 "$json_log")"
[[ $lines -gt 10 && $parsed -eq $lines ]] || fail "$parsed of $lines JSON lines parse"
jq -e -s '[.[] | select(.msg | test("^job [0-9]+ sync_case\\(.*\\) done"))]
          | length > 0 and all(.job_id != null and .job_kind == "sync_case" and .job_key != null)' \
  "$json_log" >/dev/null || fail "job records lack their ids: $(grep '"job ' "$json_log" | head -3)"
jq -e -s --arg case "$ids" '[.[] | select(.msg | test("^webhook event .* stored"))]
          | length > 0 and all(.event_id != null and .case_id == $case and .object_id == $case)' \
  "$json_log" >/dev/null || fail "event records lack their ids: $(grep 'webhook event' "$json_log" | head -3)"
pass "$lines JSON lines parse; job and event records carry job_id, job_kind, job_key, event_id, case_id"

grep -q "expired" "$json_log" && grep -q "expired" "$text_log" ||
  fail "no expired URL in the logs: the run did not go where the check matters"
for log in "$json_log" "$text_log"; do
  for secret in sim-key sim-webhook-secret X-Amz-Signature X-Amz-Credential 'Signature=' 'Expires=' \
    'password='; do
    ! grep -q -- "$secret" "$log" || fail "$(basename "$log") shows '$secret': $(grep -m1 -- "$secret" "$log")"
  done
  ! grep -qE 'https?://[^ "]*\?[^ "]*' "$log" ||
    fail "$(basename "$log") shows a URL with a query: $(grep -m1 -oE 'https?://[^ "]*\?[^ "]*' "$log")"
done
pass "neither format shows a secret or a presigned query string"
