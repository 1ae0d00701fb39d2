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
  if [[ -n ${KEEP_SCRATCH:-} ]]; then
    echo "kept $scratch" >&2
  else
    rm -rf "$scratch"
  fi
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

# start_notify_listener SOCKET LOG: a stand-in for the service manager; every message received on
# the datagram SOCKET is appended to LOG, until STOPPING=1 or 30 s of silence.
start_notify_listener() {
  python3 - "$1" "$2" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        try:
            data = s.recv(4096)
        except socket.timeout:
            break
        for line in data.decode().splitlines():
            log.write(line + "\n")
        if b"STOPPING=1" in data:
            break
PY
  notify_listener_pid=$!
  wait_for test -S "$1" || fail "notify listener did not start"
}

# expect_daemon_exit_0: waits up to 15 s for $daemon_pid to end, and fails unless it exited 0.
expect_daemon_exit_0() {
  local deadline=$((SECONDS + 15)) rc=0
  while kill -0 "$daemon_pid" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "serve still running 15 s after SIGTERM"
    sleep 0.05
  done
  wait "$daemon_pid" || rc=$?
  daemon_pid=""
  [[ $rc -eq 0 ]] || fail "serve exited $rc after SIGTERM"
}

# expect_exit_after_sigterm: SIGTERM to $daemon_pid, then expect_daemon_exit_0.
expect_exit_after_sigterm() {
  kill -TERM "$daemon_pid"
  expect_daemon_exit_0
}
