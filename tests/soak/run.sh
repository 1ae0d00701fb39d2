#!/bin/bash
# Soak with faults: the whole daemon for a bounded time. Two `serve` replicas on one database and
# one S3 bucket (s3rver), certn-sim creating and closing cases all along, while the replicas are
# killed with SIGKILL and restarted, PostgreSQL and the S3 server are restarted, and certn-sim
# answers 429s, 500s, slowly, with expired download URLs, and sends webhooks duplicated,
# reordered, dropped and downloads truncated. Then the faults stop, the system settles, and the
# invariants are checked (tests/soak/soak.sh says which); every violation is printed.
#
#   tests/soak/run.sh [SECONDS]     SECONDS of faults (default 600)
#
# Environment:
#   SOAK_ARCHIVER_BIN    the certn-archiver binary (default <repo>/build/release/certn-archiver);
#                        certn-sim must be next to it at simulator/certn-sim (the build layout)
#   SOAK_LOAD_PERIOD     seconds between two batches of new cases (default 1)
#   SOAK_CASES_PER_STEP  cases per batch (default 2)
#   SOAK_FILE_SIZE       bytes per supplementary file (default 65536)
#   SOAK_BIG_FILE_SIZE   bytes of the file of every 10th batch, 0 for none (default 12 MiB:
#                        multipart uploads)
#   SOAK_FAULT_PERIOD    seconds between two faults (default 8)
#   SOAK_SETTLE_SECONDS  bound of the wait for the system to settle after the faults (default 180)
#   SOAK_SEED            seed of certn-sim and of the load (default 1)
#   SOAK_SAMPLE_CASES    archived cases whose objects awscli reads back and compares with
#                        certn-sim's bytes (default 10)
#   SOAK_SELF_TEST=1     damage the outcome before the checks, to see them fail (soak.sh)
# Runs its own PostgreSQL (scripts/pg.sh) and s3rver (scripts/s3.sh), both restarted on purpose, in
# a fresh directory under /tmp, removed at the end unless SOAK_KEEP=1 (then its path is printed);
# after a failed run the replicas' and certn-sim's logs are kept (the path is printed).
# Exit status: 0 when no invariant was violated, 1 otherwise (or when the set-up failed).
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$here/../.." && pwd)
duration=${1:-600}
[[ $duration =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
binary=${SOAK_ARCHIVER_BIN:-$repo/build/release/certn-archiver}
[[ -x $binary ]] || { echo "run.sh: no certn-archiver at $binary (set SOAK_ARCHIVER_BIN)" >&2; exit 1; }
binary=$(realpath "$binary")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The servers live outside soak.sh's scratch directory: soak.sh restarts them, this script owns
# them, so they are stopped however soak.sh ends. PostgreSQL runs as the postgres user when we are
# root: the directory must be reachable by it.
work=$(mktemp -d /tmp/certn-soak.XXXXXX)
chmod 755 "$work"
stop_servers() {
  set +e
  bash "$repo/scripts/s3.sh" stop "$work/s3" 2>/dev/null
  bash "$repo/scripts/pg.sh" stop "$work/pg" 2>/dev/null
  if [[ ${SOAK_KEEP:-0} == 1 ]]; then
    echo "soak: servers' files kept in $work"
  else
    rm -rf "$work"
  fi
}
trap stop_servers EXIT

pg_dsn=$(bash "$repo/scripts/pg.sh" start "$work/pg" "$(free_port)") || { echo "run.sh: PostgreSQL did not start" >&2; exit 1; }
s3_endpoint=$(bash "$repo/scripts/s3.sh" start "$work/s3" "$(free_port)") || { echo "run.sh: s3rver did not start" >&2; exit 1; }

rc=0
TEST_PG_DSN=$pg_dsn SOAK_PG_DIR=$work/pg SOAK_S3_DIR=$work/s3 SOAK_S3_ENDPOINT=$s3_endpoint \
  SOAK_LOG_DIR=$work/logs bash "$here/soak.sh" "$binary" "$repo" "$duration" || rc=$?
# The logs of a failed run outlive it.
if [[ $rc -ne 0 && -d $work/logs && ${SOAK_KEEP:-0} != 1 ]]; then
  logs=$(mktemp -d /tmp/certn-soak-logs.XXXXXX)
  cp -r "$work/logs/." "$logs/"
  echo "soak: logs of the replicas and certn-sim kept in $logs"
fi
exit "$rc"
