# Shared helpers for the shell tests (sourced, not run). Needs TEST_PG_DSN.
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

[[ -n ${TEST_PG_DSN:-} ]] || fail "TEST_PG_DSN is not set: run through scripts/test.sh"

scratch=$(mktemp -d /tmp/certn-archiver-script.XXXXXX)
db_name="st_${RANDOM}${RANDOM}_$$"
db_dsn="${TEST_PG_DSN%/*}/$db_name"
daemon_pid=""

cleanup_scratch() {
  if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -KILL "$daemon_pid" 2>/dev/null || true
  fi
  psql -w -q "$TEST_PG_DSN" -c "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap cleanup_scratch EXIT

create_database() { psql -w -q "$TEST_PG_DSN" -c "CREATE DATABASE $db_name" >/dev/null; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_for CMD... : polls a command for up to 10 s.
wait_for() {
  local deadline=$((SECONDS + 10))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}
