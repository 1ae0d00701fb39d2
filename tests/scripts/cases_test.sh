#!/bin/bash
# `certn-archiver cases ...` against the certn-sim binary: JSON on stdout, Certn's code and detail
# on stderr, exit 1 for a failed call and 2 for missing configuration, a PDF downloaded whole.
source "$(dirname "$0")/fixture.sh"
start_sim --no-webhooks --report-delay-ms 50 --file-size 1000
certn_env

run() { expect_exit "$1" "$2" "$binary" cases "${@:3}"; }  # expected-code description args...
json() { python3 -c "import json,sys; d=json.load(open('$scratch/out')); print($1)"; }

create_cases '{"count":12}' >/dev/null

run 0 "list" list --page-size 5
[[ $(json 'd["count"]') == 12 && $(json 'len(d["results"])') == 5 ]] || fail "list page: $(cat "$scratch/out")"
run 0 "list --all" list --all --page-size 5
[[ $(json 'len(d)') == 12 ]] || fail "list --all gave $(json 'len(d)') cases"
id=$(json 'd[0]["id"]')
run 0 "list --status" list --status COMPLETE
[[ $(json 'd["count"]') == 0 ]] || fail "no case is COMPLETE yet"

run 0 "get" get "$id"
[[ $(json 'd["id"]') == "$id" ]] || fail "get returned another case"
run 1 "get an unknown case" get 00000000-0000-0000-0000-000000000000
grep -q "not_found" "$scratch/err" || fail "stderr lacks Certn's code: $(cat "$scratch/err")"

run 0 "cancel a new case" cancel "$id"
done_id=$(create_cases '{"count":1}')
move_case "$done_id" COMPLETE
run 1 "cancel a COMPLETE case" cancel "$done_id"
grep -q "validation_error" "$scratch/err" || fail "stderr: $(cat "$scratch/err")"

run 0 "supplementary-files" supplementary-files "$done_id"
[[ $(json 'len(d["checks"])') -ge 1 ]] || fail "no checks"
run 0 "supplementary-information" supplementary-information "$done_id"
run 0 "generate-report" generate-report "$done_id" --language en-CA
report=$(json 'd["case_report_file_id"]')
wait_for bash -c "'$binary' cases report-file '$report' | grep -q COMPLETE" || fail "report never COMPLETE"
run 0 "report-file --download" report-file "$report" --download "$scratch/report.pdf"
head -c 5 "$scratch/report.pdf" | grep -q '%PDF-' || fail "not a PDF"
tail -c 6 "$scratch/report.pdf" | grep -q '%%EOF' || fail "PDF not whole"
[[ ! -e $scratch/report.pdf.part ]] || fail "a .part file was left behind"
grep -q "sha256" "$scratch/err" || fail "no checksum reported"

printf '{"email_address":"jo@example.com","check_types_with_arguments":{"CRIMINAL_RECORD_CHECK":{}}}' >"$scratch/order.json"
run 0 "order --json FILE" order --json "$scratch/order.json"
[[ $(json 'd["email_address"]') == jo@example.com ]] || fail "order answer"
rc=0; "$binary" cases order --json - <"$scratch/order.json" >"$scratch/out" 2>"$scratch/err" || rc=$?
[[ $rc -eq 0 ]] || fail "order --json - exit $rc"
pass "order --json -"
run 0 "order-package" order-package --package pkg-basic --email al@example.com
run 1 "order-package inactive" order-package --package pkg-retired --email al@example.com
grep -q "package" "$scratch/err" || fail "stderr does not name the field: $(cat "$scratch/err")"

run 2 "list --page-size 500" list --page-size 500
rc=0; env -u CERTN_ARCHIVER_CERTN_API_KEY "$binary" cases list >"$scratch/out" 2>"$scratch/err" || rc=$?
[[ $rc -eq 2 ]] && grep -q "certn.api_key" "$scratch/err" || fail "no API key: exit $rc, $(cat "$scratch/err")"
pass "no API key (exit 2)"
rc=0; CERTN_ARCHIVER_CERTN_API_KEY=k3y-that-must-not-leak "$binary" cases list >"$scratch/out" 2>"$scratch/err" || rc=$?
[[ $rc -eq 1 ]] && grep -q "authentication" "$scratch/err" || fail "wrong key: exit $rc, $(cat "$scratch/err")"
! grep -q "k3y-that-must-not-leak" "$scratch/err" || fail "the key leaked into the error"
pass "wrong API key (exit 1, key not shown)"

# A 429 is waited out: Certn's Retry-After honoured and said on stderr, then the same call again.
set_faults '{"rate_429":1,"retry_after_rate":1,"retry_after_seconds":1}' >/dev/null
"$binary" cases get "$done_id" >"$scratch/out" 2>"$scratch/err" &
patient=$!
wait_for grep -q "Certn answered 429 (rate limited); waiting 1 s as its Retry-After asks" "$scratch/err" ||
  fail "no word of the 429: $(cat "$scratch/err")"
set_faults '{"rate_429":0}' >/dev/null
rc=0
wait "$patient" || rc=$?
[[ $rc -eq 0 && $(json 'd["id"]') == "$done_id" ]] || fail "after the 429s: exit $rc, $(cat "$scratch/err")"
# Still refused after every retry: the 429 is the answer (exit 1, class rate_limited).
set_faults '{"rate_429":1,"retry_after_rate":1,"retry_after_seconds":1}' >/dev/null
rc=0
"$binary" cases get "$done_id" >"$scratch/out" 2>"$scratch/err" || rc=$?
set_faults '{"rate_429":0}' >/dev/null
[[ $rc -eq 1 && $(grep -c "answered 429" "$scratch/err") -eq 5 ]] && grep -q "rate_limited" "$scratch/err" ||
  fail "429 every time: exit $rc, $(cat "$scratch/err")"
pass "429 waited out as Retry-After asks (5 retries at most, then exit 1)"
