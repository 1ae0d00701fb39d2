#!/bin/bash
# Rotation without a restart (SIGHUP, what `systemctl reload` sends): while events are posted over
# one keep-alive connection, the webhook secret goes from old to old+new to new, and neither secret
# is refused while both are configured, nor is the connection dropped; the old one is refused after.
# A new Certn API key is taken from its file and the jobs a refused key held back run at once; a new
# certn.api_key_created is logged; a key that only a restart applies is named as such; a
# configuration that fails validation is refused and the running one kept. No value is logged.
# ctest-timeout: 180
source "$(dirname "$0")/fixture.sh"
create_database --migrate
archive_env
unset CERTN_ARCHIVER_WEBHOOK_SECRETS CERTN_ARCHIVER_CERTN_API_KEY
printf 'old-webhook-secret\n' >"$scratch/webhook-secrets"
printf 'a-key-certn-refuses\n' >"$scratch/certn-api-key"
write_config() {  # EXTRA-TOML-LINES (for [certn])
  cat >"$scratch/config.toml" <<TOML
[webhook]
secrets_file = "$scratch/webhook-secrets"
[certn]
api_key_file = "$scratch/certn-api-key"
$1
TOML
}
first_created=$(date -u -d '-300 days' +%F)
next_created=$(date -u -d '-2 days' +%F)
next_expires=$(date -u -d '+363 days' +%F)
write_config "api_key_created = \"$first_created\""
export CERTN_ARCHIVER_CONFIG=$scratch/config.toml
start_serve
start_sim --no-webhooks --file-size 1000
case_id=$(create_cases '{"count":1,"files_per_check":1}')
move_case "$case_id" COMPLETE

reloads=0
reload_and_wait() {  # WHAT-TO-SEE-IN-THE-LOG
  reloads=$((reloads + 1))
  kill -HUP "$daemon_pid"
  wait_until 15 "reload $reloads: '$1' in the log" \
    "[[ \$(grep -c 'SIGHUP:' '$scratch/serve.log') -ge $reloads ]] && grep -q -- '$1' '$scratch/serve.log'"
}
phase() {  # written whole, then renamed: the poster never reads a half-written file
  echo "$1" >"$scratch/phase.new"
  mv "$scratch/phase.new" "$scratch/phase"
}
posted() { grep -c "^$1 $2 $3\$" "$scratch/posts.log" || true; }

phase old
: >"$scratch/posts.log"
python3 "$source_dir/tests/scripts/rotation_test.py" "$port" /webhooks/certn "$case_id" \
  "$scratch/phase" "$scratch/posts.log" &
poster=$!
track "$poster" TERM
wait_until 10 "posts with the old secret" '(( $(posted old old 200) >= 5 ))'

# The overlap: both secrets configured.
printf 'old-webhook-secret\nnew-webhook-secret\n' >"$scratch/webhook-secrets"
reload_and_wait "webhook.secrets: 2 secret(s) accepted"
phase both
wait_until 15 "posts with both secrets" '(( $(posted both new 200) >= 20 && $(posted both old 200) >= 20 ))'
# The old secret goes: posts with the new one only until the reload is seen, then both again.
phase new
printf 'new-webhook-secret\n' >"$scratch/webhook-secrets"
reload_and_wait "webhook.secrets: 1 secret(s) accepted"
phase after
wait_until 10 "the old secret refused" '(( $(posted after old 401) >= 5 && $(posted after new 200) >= 5 ))'
phase stop
rc=0
wait "$poster" || rc=$?
untrack "$poster"
[[ $rc -eq 0 ]] || fail "the poster's connection: $(grep dropped "$scratch/posts.log")"
unexpected=$(grep -v -E '^(old old|both old|both new|new new|after new) 200$|^after old 401$' "$scratch/posts.log" || true)
[[ -z $unexpected ]] || fail "answers outside the rotation's promise: $(sort "$scratch/posts.log" | uniq -c)"
pass "webhook secret rotated under load: $(sort "$scratch/posts.log" | uniq -c | awk '{printf "%s %s %s: %s; ", $2, $3, $4, $1}')one connection throughout"

# The Certn key: refused first, so the sync waits (5 minutes by the retry table); a new key in
# its file and a reload run it at once.
wait_until 30 "Certn refusing the first key" \
  '[[ $(curl -sf "http://127.0.0.1:$port/metrics" | awk "/^certn_archiver_certn_auth_refused / {print \$2}") == 1 ]]'
printf 'sim-key\n' >"$scratch/certn-api-key"
write_config "api_key_created = \"$next_created\""
reload_and_wait "applied certn.api_key, certn.api_key_created"
grep -q "job(s) that the refused API key held back run now" "$scratch/serve.log" ||
  wait_until 10 "held jobs brought forward" "grep -q 'held back run now' '$scratch/serve.log'"
grep -q "certn.api_key_created = $next_created) expires on $next_expires" "$scratch/serve.log" ||
  fail "the new creation date was not logged"
wait_archived 4 60
expect_no_dead_job
pass "a new API key from its file, applied by SIGHUP: the held jobs ran at once and the case is archived"

# A key only a restart applies is named; a configuration that does not validate is refused.
write_config "api_key_created = \"$next_created\"
live_reserve_percent = 30"
reload_and_wait "applies only at the next restart: certn.live_reserve_percent"
write_config "api_key_created = \"$next_created\"
live_reserve_percent = 95"
reload_and_wait "configuration refused, the running one is kept: certn.live_reserve_percent"
signature=$(printf '%s' '{"id":"evt-after-refusal","event_type":"CASE_STATUS_CHANGED","object_id":"x","object_type":"CASE"}' |
  openssl dgst -sha256 -hmac new-webhook-secret -hex | sed 's/^.* //')
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/webhooks/certn" \
  -H 'Content-Type: application/json' -H "X-Signature: $signature" \
  -d '{"id":"evt-after-refusal","event_type":"CASE_STATUS_CHANGED","object_id":"x","object_type":"CASE"}')
[[ $code == 200 ]] || fail "after a refused reload, the new secret got $code"
pass "a key for the next restart is named; an invalid configuration is refused and the running one kept"

for value in old-webhook-secret new-webhook-secret sim-key a-key-certn-refuses; do
  ! grep -q -- "$value" "$scratch/serve.log" || fail "the log shows a secret value ($value)"
done
pass "no secret value in the log"
stop_serve
