#!/bin/bash
# The command line's contract: exit 0 ok, 2 usage or configuration error, 1 other failure; every
# configuration error names its key; serve refuses a schema that is behind and says what to do.
source "$(dirname "$0")/fixture.sh"

expect_exit 0 "--help" "$binary" --help
grep -q serve "$scratch/out" || fail "--help does not list serve"
for command in serve migrate version; do
  expect_exit 0 "$command --help" "$binary" "$command" --help
done
expect_exit 0 "version" "$binary" version
grep -qE '^certn-archiver [0-9]+\.[0-9]+\.[0-9]+$' "$scratch/out" || fail "version output: $(cat "$scratch/out")"
expect_exit 2 "no command" "$binary"
expect_exit 2 "unknown command" "$binary" frobnicate
expect_exit 2 "bad --log-format" "$binary" --log-format xml version

printf '[server]\nlisen = "127.0.0.1:1"\n' >"$scratch/typo.toml"
expect_exit 2 "unknown config key" "$binary" --config "$scratch/typo.toml" migrate
grep -q 'server.lisen' "$scratch/err" || fail "error does not name server.lisen: $(cat "$scratch/err")"

expect_exit 2 "missing config file" "$binary" --config "$scratch/absent.toml" migrate
grep -q 'absent.toml' "$scratch/err" || fail "error does not name the file"

expect_exit 2 "bad value from the environment" env CERTN_ARCHIVER_SERVER_MAX_BODY_BYTES=lots "$binary" migrate
grep -q 'server.max_body_bytes' "$scratch/err" || fail "error does not name server.max_body_bytes"

expect_exit 2 "serve without a webhook secret" env CERTN_ARCHIVER_DATABASE_URL="$TEST_PG_DSN" "$binary" serve
grep -q 'webhook.secrets' "$scratch/err" || fail "error does not name webhook.secrets"


create_database
export CERTN_ARCHIVER_WEBHOOK_SECRETS=cli-test-secret CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port
expect_exit 1 "serve on an empty database" "$binary" serve
grep -q 'run `certn-archiver migrate`' "$scratch/err" || fail "serve does not say to run migrate: $(cat "$scratch/err")"

expect_exit 0 "migrate" "$binary" migrate
grep -q 'applied migration 1' "$scratch/err" || fail "migrate did not report migration 1"
expect_exit 0 "migrate again" "$binary" migrate
grep -q 'nothing to do' "$scratch/err" || fail "second migrate was not a no-op"
expect_exit 0 "the example config loads" "$binary" --config "$source_dir/config/certn-archiver.example.toml" migrate

expect_exit 1 "migrate against an unreachable database" env CERTN_ARCHIVER_DATABASE_URL=postgresql://postgres@127.0.0.1:1/x "$binary" migrate
grep -q 'migrate failed' "$scratch/err" || fail "no clear migrate failure"

expect_exit 0 "--log-format json" "$binary" --log-format json migrate
while read -r line; do
  python3 -c 'import json,sys; json.loads(sys.argv[1])' "$line" || fail "not JSON: $line"
done <"$scratch/err"
pass "JSON log lines parse"
