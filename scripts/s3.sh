#!/bin/bash
# A throwaway S3 server for tests and the demo: @20minutes/s3rver 4.0.4 (it checks SigV4),
# installed from the committed lock file in scripts/s3 (into scripts/s3/node_modules, once).
#   scripts/s3.sh start DIR PORT   start it on 127.0.0.1:PORT with its data in DIR and the bucket
#                                  `testbucket`; prints the endpoint http://127.0.0.1:PORT, the
#                                  only line it writes to stdout
#   scripts/s3.sh stop DIR         stop it; nothing to do when it is not running
# Credentials: S3RVER / S3RVER (s3rver's fixed pair); region us-east-1.
# Exit status: 0 on success, 2 on usage errors, 1 otherwise, with the reason (and the tail of
# DIR/s3.log when the server was involved) on stderr.
set -Eeuo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
pkg=$here/s3

usage() {
  echo "usage: $0 start DIR PORT | stop DIR" >&2
  exit 2
}
[[ $# -ge 2 ]] || usage
verb=$1
dir=$(realpath -m -- "$2")

die() {
  echo "s3.sh: $*" >&2
  exit 1
}
fail() {
  echo "s3.sh: $*" >&2
  if [[ -s $dir/s3.log ]]; then
    echo "s3.sh: last lines of $dir/s3.log:" >&2
    tail -n 20 "$dir/s3.log" >&2
  fi
  exit 1
}
trap 'fail "$verb $dir: command failed (line $LINENO): $BASH_COMMAND"' ERR

running() { [[ -f $dir/s3.pid ]] && kill -0 "$(<"$dir/s3.pid")" 2>/dev/null; }
port_in_use() { [[ -n $(ss -ltnH "sport = :$1") ]]; }

install_server() {
  command -v node >/dev/null ||
    die "node is not installed (s3rver needs Node.js 20; Debian: apt-get install nodejs npm)"
  command -v npm >/dev/null || die "npm is not installed (Debian: apt-get install npm)"
  # The lock file's hash is recorded so that a changed lock reinstalls.
  local stamp=$pkg/node_modules/.lock-sha256 want
  want=$(sha256sum "$pkg/package-lock.json" | cut -d' ' -f1)
  if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
    return 0
  fi
  if ! (cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error) >"$dir/npm.log" 2>&1; then
    cat "$dir/npm.log" >&2
    die "npm ci in $pkg failed"
  fi
  echo "$want" >"$stamp"
}

case $verb in
  start)
    [[ $# -eq 3 ]] || usage
    port=$3
    if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
      die "bad port: $port"
    fi
    mkdir -p "$dir/data"
    if running; then
      die "an s3rver from $dir is running already (pid $(<"$dir/s3.pid")): stop it first"
    fi
    if port_in_use "$port"; then
      die "port $port is already in use (ss -ltn shows a listener); pick another port"
    fi
    install_server
    endpoint=http://127.0.0.1:$port
    # setsid: the server outlives this script and gets no terminal signals meant for the caller.
    setsid node "$pkg/s3server.js" -d "$dir/data" -a 127.0.0.1 -p "$port" \
      --configure-bucket testbucket >"$dir/s3.log" 2>&1 </dev/null &
    echo $! >"$dir/s3.pid"
    # Ready when it answers at all (s3rver answers an anonymous GET / with 200).
    for _ in $(seq 1 300); do
      if curl -s -o /dev/null --max-time 1 "$endpoint/"; then
        echo "$endpoint"
        exit 0
      fi
      running || fail "s3rver exited while starting on 127.0.0.1:$port"
      sleep 0.1
    done
    fail "s3rver did not answer on $endpoint within 30 s"
    ;;
  stop)
    [[ $# -eq 2 ]] || usage
    if running; then
      pid=$(<"$dir/s3.pid")
      kill "$pid"
      for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
      fi
    fi
    rm -f "$dir/s3.pid"
    ;;
  *)
    usage
    ;;
esac
