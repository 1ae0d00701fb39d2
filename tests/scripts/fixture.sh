# The one fixture of the shell tests (sourced by a test, not run): ctest runs a test as
# `bash X_test.sh BINARY SOURCE_DIR`, and this file reads the same two arguments. A test with a
# database needs TEST_PG_DSN (scripts/test.sh sets it).
# What it gives a test:
#   basics        fail, pass, $scratch (removed at exit unless KEEP_SCRATCH), free_port,
#                 wait_for CMD..., wait_until [-i S] SECONDS WHAT CONDITION, start_notify_listener
#   PostgreSQL    create_database [--migrate]: a database of its own on TEST_PG_DSN's server
#                 ($db_dsn, exported as CERTN_ARCHIVER_DATABASE_URL, dropped at exit); q SQL;
#                 start_own_postgres first: a server of the test's own, which it may stop
#   environment   certn_env (Certn = certn-sim at $sim), archive_env (serve against certn-sim on
#                 the filesystem backend at $archive), s3_env (the S3 backend on $s3_endpoint)
#   processes     start_sim / stop_sim (certn-sim), start_serve / spawn_serve / stop_serve /
#                 kill_serve / wait_serve_exit_0 (any number of `serve` instances, by name),
#                 start_s3 / stop_s3 (an s3rver of the test's own, scripts/s3.sh),
#                 start_db_proxy (a TCP proxy to PostgreSQL that SIGUSR1 stops, SIGUSR2 resumes)
#   archiving     create_cases, move_case, post_case_event, set_faults, pending_jobs, wait_archived,
#                 expect_no_dead_job, verify_objects, verify_case
# Every process started here is tracked by PID and stopped at exit (SIGKILL for serve, SIGTERM
# for certn-sim, `s3.sh stop` for s3rver); on_exit CMD adds a step run after that, before the
# database is dropped. Ports come from free_port, databases and scratch directories are the
# test's own: tests run side by side.
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

binary=${1:?usage: $0 BINARY [SOURCE_DIR]}
source_dir=${2:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
sim_binary="$(dirname "$binary")/simulator/certn-sim"

scratch=$(mktemp -d /tmp/certn-archiver-script.XXXXXX)
archive="$scratch/archive"
db_name="st_${RANDOM}${RANDOM}_$$"
db_dsn="${TEST_PG_DSN:-}"; db_dsn="${db_dsn%/*}/$db_name"
db_created=""

# ---- processes, tracked by PID ----------------------------------------------------------------
declare -A tracked=()       # PID -> signal that stops it at exit
declare -A serve_pid=() serve_port=()
declare -a s3_dirs=() exit_steps=()
daemon_pid="" last_serve=""  # the serve started last: its PID and name
sim_pid=""

track() { tracked[$1]=$2; }
untrack() { unset "tracked[$1]"; }
on_exit() { exit_steps+=("$1"); }

# stop_pid PID: SIGTERM, then its exit status (waits up to 15 s, then SIGKILL and fails).
stop_pid() {
  local pid=$1 deadline=$((SECONDS + 15)) rc=0
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || { kill -KILL "$pid"; untrack "$pid"; fail "pid $pid still running 15 s after SIGTERM"; }
    sleep 0.05
  done
  wait "$pid" || rc=$?
  untrack "$pid"
  return "$rc"
}

fixture_exit() {
  set +e  # a failed step must not skip the rest
  local pid dir step
  for pid in "${!tracked[@]}"; do
    kill "-${tracked[$pid]}" "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  for dir in "${s3_dirs[@]}"; do
    bash "$source_dir/scripts/s3.sh" stop "$dir"
  done
  for step in "${exit_steps[@]}"; do
    eval "$step"
  done
  [[ -n $db_created ]] &&
    psql -w -q "$TEST_PG_DSN" -c "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1
  if [[ -n ${KEEP_SCRATCH:-} ]]; then
    echo "kept $scratch" >&2
  else
    rm -rf "$scratch"
  fi
}
trap fixture_exit EXIT

# ---- basics ------------------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_for CMD... : polls a command for up to 10 s.
wait_for() {
  local deadline=$((SECONDS + 10))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

# wait_until [-i INTERVAL] SECONDS WHAT CMD...: runs CMD (one word: evaluates it as shell code)
# every INTERVAL (0.2) seconds until it succeeds; after SECONDS, shows the jobs and the logs' tails
# and fails "WHAT".
wait_until() {
  local interval=0.2
  if [[ $1 == -i ]]; then interval=$2; shift 2; fi
  local seconds=$1 what=$2
  local deadline=$((SECONDS + seconds))
  shift 2
  while true; do
    if (($# == 1)); then eval "$1" && break; else "$@" && break; fi
    ((SECONDS < deadline)) || { show_state; fail "$what (waited $seconds s)"; }
    sleep "$interval"
  done
}

# show_state: the jobs table and the tail of every serve log, on stderr.
show_state() {
  if [[ -n $db_created ]]; then
    q "SELECT id, kind, key, state, attempts, lease_owner, last_error FROM jobs ORDER BY id" >&2 2>/dev/null || true
  fi
  local name
  for name in "${!serve_pid[@]}"; do
    echo "--- $scratch/$name.log" >&2
    tail -20 "$scratch/$name.log" >&2 || true
  done
}

# expect_exit CODE WHAT CMD...: runs CMD with stdout in $scratch/out and stderr in $scratch/err;
# fails (showing both) unless it exits CODE.
expect_exit() {
  local expected=$1 what=$2 rc=0
  shift 2
  "$@" >"$scratch/out" 2>"$scratch/err" || rc=$?
  [[ $rc -eq $expected ]] || { cat "$scratch/out" "$scratch/err"; fail "$what: exit $rc, expected $expected"; }
  pass "$what (exit $rc)"
}

# expect_err WHAT PATTERN: the stderr of the last expect_exit matches PATTERN (grep -E).
expect_err() {
  grep -qE -- "$2" "$scratch/err" || fail "$1: stderr lacks /$2/: $(cat "$scratch/err")"
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
  track "$notify_listener_pid" TERM
  wait_for test -S "$1" || fail "notify listener did not start"
}

# ---- PostgreSQL ----------------------------------------------------------------------------------
# create_database [--migrate]: the test's own database, exported as CERTN_ARCHIVER_DATABASE_URL.
create_database() {
  [[ -n ${TEST_PG_DSN:-} ]] || fail "TEST_PG_DSN is not set: run through scripts/test.sh"
  psql -w -q "$TEST_PG_DSN" -c "CREATE DATABASE $db_name" >/dev/null || fail "cannot create $db_name"
  db_created=1
  export CERTN_ARCHIVER_DATABASE_URL=$db_dsn
  if [[ ${1:-} == --migrate ]]; then
    "$binary" migrate >"$scratch/migrate.log" 2>&1 || fail "migrate: $(cat "$scratch/migrate.log")"
  fi
}

# start_own_postgres: a PostgreSQL server of the test's own (scripts/pg.sh, under /tmp where the
# postgres user can reach it), for a test that stops it: TEST_PG_DSN and TEST_PG_DIR then name it
# and create_database makes the test's database there. Stopped and removed at exit.
# Its port lies below the kernel's ephemeral range, where free_port never looks: while the test
# has it stopped, no other test's free_port can take it.
start_own_postgres() {
  local dir pg_port tries
  dir=$(mktemp -d /tmp/certn-archiver-pg.XXXXXX)
  chmod 755 "$dir"
  on_exit "$(printf 'bash %q stop %q >/dev/null 2>&1; rm -rf %q' "$source_dir/scripts/pg.sh" "$dir/pg" "$dir")"
  for tries in 1 2 3 4 5; do
    pg_port=$((20000 + RANDOM % 12000))
    [[ -z $(ss -ltnH "sport = :$pg_port") ]] && break
  done
  TEST_PG_DSN=$(bash "$source_dir/scripts/pg.sh" start "$dir/pg" "$pg_port") ||
    fail "cannot start a PostgreSQL server of the test's own in $dir (port $pg_port, tries $tries)"
  export TEST_PG_DSN TEST_PG_DIR=$dir/pg
  db_dsn="${TEST_PG_DSN%/*}/$db_name"
}

q() { psql -w -qtA -v ON_ERROR_STOP=1 "$db_dsn" -c "$1"; }
# sql_check OP VALUE SQL: test(1) of SQL's answer against VALUE, e.g. sql_check -ge 1 "SELECT ...".
sql_check() { test "$(q "$3")" "$1" "$2"; }

# ---- the archiver's environment ----------------------------------------------------------------
port=$(free_port)      # serve's listener (the first instance's); certn-sim's webhooks go there
sim_port=$(free_port)  # certn-sim's; 0 before start_sim: any free port
sim="http://127.0.0.1:$sim_port"

# certn_env: Certn is certn-sim at $sim (for serve and the commands that call Certn).
certn_env() {
  export CERTN_ARCHIVER_CERTN_BASE_URL=$sim CERTN_ARCHIVER_CERTN_API_KEY=sim-key
  export CERTN_ARCHIVER_CERTN_ALLOW_PLAIN_HTTP=true CERTN_ARCHIVER_CERTN_ALLOW_SPECIAL_ADDRESSES=true
  export CERTN_ARCHIVER_CERTN_DOWNLOAD_HOSTS=127.0.0.1 CERTN_ARCHIVER_CERTN_REQUESTS_PER_MINUTE=6000
  # No daily budget unless a test sets one: tests make thousands of calls a run.
  export CERTN_ARCHIVER_CERTN_REQUESTS_PER_DAY=0
}

# archive_env: serve on $port against certn-sim, archiving to $archive, with short worker timings
# (a test exports its own values after this to change them).
archive_env() {
  certn_env
  export CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port CERTN_ARCHIVER_WEBHOOK_SECRETS=sim-webhook-secret
  export CERTN_ARCHIVER_STORAGE_PATH=$archive
  export CERTN_ARCHIVER_WORKERS_REPORT_POLL_DELAY_SECONDS=1 CERTN_ARCHIVER_WORKERS_BACKOFF_BASE_SECONDS=1
  export CERTN_ARCHIVER_WORKERS_BACKOFF_MAX_SECONDS=4 CERTN_ARCHIVER_WORKERS_POLL_INTERVAL_MS=500
  export CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=0
}

# s3_env [ENDPOINT]: the S3 backend (bucket testbucket, prefix archive/) on ENDPOINT (default: the
# test's own s3rver, else TEST_S3_ENDPOINT), its state under $scratch/state; aws (awscli) set up
# for the same server.
s3_env() {
  local endpoint=${1:-${s3_endpoint:-${TEST_S3_ENDPOINT:-}}}
  [[ -n $endpoint ]] || fail "no S3 server: start_s3 first, or set TEST_S3_ENDPOINT"
  export CERTN_ARCHIVER_STORAGE_BACKEND=s3 CERTN_ARCHIVER_STORAGE_PATH=$scratch/state
  export CERTN_ARCHIVER_STORAGE_PREFIX=archive/
  export CERTN_ARCHIVER_STORAGE_S3_ENDPOINT=$endpoint CERTN_ARCHIVER_STORAGE_S3_BUCKET=testbucket
  export CERTN_ARCHIVER_STORAGE_S3_PATH_STYLE=true CERTN_ARCHIVER_STORAGE_S3_REGION=us-east-1
  export CERTN_ARCHIVER_STORAGE_S3_ACCESS_KEY_ID=S3RVER CERTN_ARCHIVER_STORAGE_S3_SECRET_ACCESS_KEY=S3RVER
  export CERTN_ARCHIVER_STORAGE_S3_MULTIPART_THRESHOLD_BYTES=5242880 CERTN_ARCHIVER_STORAGE_S3_PART_SIZE_BYTES=5242880
  export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  command -v /usr/bin/aws >/dev/null || fail "awscli is not installed (scripts/install-deps.sh)"
  s3_endpoint=$endpoint
}
aws() { /usr/bin/aws --endpoint-url "$s3_endpoint" "$@"; }

# put_file KEY CONTENT / put_s3 KEY CONTENT: CONTENT as the object at KEY, written where the
# filesystem store ($archive) or the S3 store (testbucket, after s3_env) keeps it, bypassing the
# daemon (tests that set up the archive's rows themselves).
put_file() { mkdir -p "$(dirname "$archive/$1")" && printf '%s' "$2" >"$archive/$1"; }
put_s3() { printf '%s' "$2" | aws s3 cp --only-show-errors - "s3://testbucket/$1" || fail "aws s3 cp $1"; }

# ---- certn-sim ---------------------------------------------------------------------------------------
# start_sim [--no-webhooks] FLAGS...: certn-sim on $sim_port with FLAGS, its webhooks to serve at
# $port (serve must be up: the challenge) unless --no-webhooks; sets $sim. A running one is stopped
# first. CERTN_SIM_SHAPES (the ctest variant) reaches it through the environment.
start_sim() {
  local extra=()
  if [[ ${1:-} == --no-webhooks ]]; then
    shift
  else
    extra=(--webhook-url "http://127.0.0.1:$port/webhooks/certn")
    [[ " $* " == *" --webhook-retry-base-ms "* ]] || extra+=(--webhook-retry-base-ms 200)
  fi
  [[ -x $sim_binary ]] || fail "certn-sim not built at $sim_binary"
  stop_sim
  : >"$scratch/sim.out"
  "$sim_binary" --listen "127.0.0.1:$sim_port" "${extra[@]}" "$@" >"$scratch/sim.out" 2>"$scratch/sim.err" &
  sim_pid=$!
  track "$sim_pid" TERM
  wait_for grep -q "listening on" "$scratch/sim.out" || fail "certn-sim $* did not start: $(cat "$scratch/sim.err")"
  sim=$(sed -n 's/.*listening on //p' "$scratch/sim.out")
}

# stop_sim: SIGTERM to certn-sim, which must exit 0.
stop_sim() {
  [[ -n $sim_pid ]] || return 0
  local rc=0
  stop_pid "$sim_pid" || rc=$?
  sim_pid=""
  [[ $rc -eq 0 ]] || fail "certn-sim exited $rc after SIGTERM: $(tail -5 "$scratch/sim.err")"
}

# ---- serve ---------------------------------------------------------------------------------------------
# spawn_serve [NAME [PORT]]: `serve` with the caller's environment, listening on 127.0.0.1:PORT
# (default: CERTN_ARCHIVER_SERVER_LISTEN if set, else $port), stderr to $scratch/NAME.log (NAME
# default serve); sets serve_pid[NAME] and $daemon_pid. Does not wait for it.
spawn_serve() {
  local name=${1:-serve} listen=${CERTN_ARCHIVER_SERVER_LISTEN:-127.0.0.1:$port}
  [[ -n ${2:-} ]] && listen=127.0.0.1:$2
  CERTN_ARCHIVER_SERVER_LISTEN=$listen "$binary" serve 2>"$scratch/$name.log" &
  daemon_pid=$!
  last_serve=$name
  serve_pid[$name]=$daemon_pid
  serve_port[$name]=${listen##*:}
  track "$daemon_pid" KILL
}

# start_serve [NAME [PORT]]: spawn_serve, then waits for /readyz.
start_serve() {
  spawn_serve "$@"
  local name=${1:-serve}
  wait_for curl -sf "http://127.0.0.1:${serve_port[$name]}/readyz" ||
    fail "serve $name not ready: $(cat "$scratch/$name.log")"
}

# wait_serve_exit_0 [NAME...]: waits up to 15 s for each (default: the last started) to end, and
# fails unless it exited 0.
wait_serve_exit_0() {
  local names=("$@") name pid rc deadline
  ((${#names[@]})) || names=("$last_serve")
  for name in "${names[@]}"; do
    pid=${serve_pid[$name]}
    deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null; do
      ((SECONDS < deadline)) || fail "serve $name still running 15 s after SIGTERM"
      sleep 0.05
    done
    rc=0
    wait "$pid" || rc=$?
    untrack "$pid"
    [[ $rc -eq 0 ]] || fail "serve $name exited $rc after SIGTERM: $(tail -5 "$scratch/$name.log")"
  done
}

# stop_serve [NAME...]: SIGTERM to each (default: the last started) at once; each must drain
# and exit 0.
stop_serve() {
  local names=("$@") name
  ((${#names[@]})) || names=("$last_serve")
  for name in "${names[@]}"; do
    kill -TERM "${serve_pid[$name]}"
  done
  wait_serve_exit_0 "${names[@]}"
}

# kill_serve NAME: SIGKILL, as a crash.
kill_serve() {
  local pid=${serve_pid[$1]}
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  untrack "$pid"
}

# ---- a database that stops answering -------------------------------------------------------------
# start_db_proxy: tcp_blackhole.py between the test's database and its clients; sets $proxy_pid
# (kill -USR1: stop forwarding without closing anything; -USR2: resume) and $proxied_dsn ($db_dsn
# through the proxy).
start_db_proxy() {
  local address port
  address=$(sed -E 's#^[a-z]+://[^@/]*@?([^/?]+).*#\1#' <<<"$db_dsn")
  port=$(free_port)
  python3 "$source_dir/tests/scripts/tcp_blackhole.py" "$port" "${address%:*}" "${address##*:}" \
    >"$scratch/proxy.out" 2>&1 &
  proxy_pid=$!
  track "$proxy_pid" TERM
  wait_for grep -q ready "$scratch/proxy.out" || fail "the proxy did not start: $(cat "$scratch/proxy.out")"
  proxied_dsn=${db_dsn/$address/127.0.0.1:$port}
}

# ---- s3rver ----------------------------------------------------------------------------------------------
# start_s3 [DIR]: an s3rver of the test's own (scripts/s3.sh) with its data in DIR (default
# $scratch/s3) on $s3_port (a free port, kept across a restart); sets $s3_endpoint.
s3_port="" s3_endpoint=""
start_s3() {
  s3_dir=${1:-$scratch/s3}
  [[ -n $s3_port ]] || s3_port=$(free_port)
  [[ " ${s3_dirs[*]} " == *" $s3_dir "* ]] || s3_dirs+=("$s3_dir")
  s3_endpoint=$(bash "$source_dir/scripts/s3.sh" start "$s3_dir" "$s3_port") || fail "s3rver did not start"
}
stop_s3() { bash "$source_dir/scripts/s3.sh" stop "$s3_dir"; }

# ---- archiving: certn-sim's control API and the checks ----------------------------------------------
# create_cases JSON: prints the new case ids, one a line.
create_cases() {
  curl -sf -X POST "$sim/_sim/cases" -d "$1" | jq -r '.ids[]' || fail "control API: create $1"
}

move_case() {
  curl -sf -X POST "$sim/_sim/cases/$1/status" -d "{\"status\":\"$2\"}" >/dev/null || fail "move $1 to $2"
}

# post_case_event CASE_ID: a signed CASE_STATUS_CHANGED about CASE_ID posted to serve at $port, as
# Certn would send it (for tests whose certn-sim drops its own webhooks).
post_case_event() {
  local event="{\"id\":\"evt-$1-$RANDOM\",\"event_type\":\"CASE_STATUS_CHANGED\",\"object_id\":\"$1\",\"object_type\":\"CASE\"}"
  local signature
  signature=$(printf '%s' "$event" | openssl dgst -sha256 -hmac sim-webhook-secret -hex | sed 's/^.* //')
  curl -sf -X POST "http://127.0.0.1:$port/webhooks/certn" -H 'Content-Type: application/json' \
    -H "X-Signature: $signature" -d "$event" >/dev/null || fail "the event about $1 was refused"
}

set_faults() {
  curl -sf -X POST "$sim/_sim/faults" -d "$1" || fail "control API: faults $1"
}

pending_jobs() {
  q "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed') AND kind <> 'reconcile'"
}

archived_count() {
  q "SELECT count(*) FROM artifacts WHERE kind IN ('report', 'supplementary_file', 'supplementary_information')"
}

# wait_archived N SECONDS: until N reports, supplementary information and files exist and no job
# (but the periodic reconcile) is pending; on time-out shows the jobs and the logs' tails.
wait_archived() {
  local deadline=$((SECONDS + $2))
  until [[ $(archived_count) -eq $1 && $(pending_jobs) -eq 0 ]]; do
    ((SECONDS < deadline)) || { show_state; fail "$1 artifacts not archived within $2 s (have $(archived_count))"; }
    sleep 0.2
  done
}

expect_no_dead_job() {
  [[ $(q "SELECT count(*) FROM jobs WHERE state = 'dead'") -eq 0 ]] ||
    fail "dead jobs: $(q "SELECT kind, key, attempts, last_error FROM jobs WHERE state = 'dead'")"
}

# object_file KEY: a path holding the stored object KEY: the file itself on the filesystem
# backend, a copy read back with awscli on S3.
object_file() {
  if [[ ${CERTN_ARCHIVER_STORAGE_BACKEND:-filesystem} == s3 ]]; then
    aws s3 cp --only-show-errors "s3://testbucket/$1" "$scratch/object" || fail "awscli cannot read $1"
    echo "$scratch/object"
  else
    echo "$archive/$1"
  fi
}

# verify_objects [--tmp-allowed]: every artifact stored with its recorded size and sha256, and
# (unless --tmp-allowed) no temporary file left on the filesystem backend.
verify_objects() {
  local key sha size file n=0 copy=
  if [[ ${CERTN_ARCHIVER_STORAGE_BACKEND:-filesystem} == s3 ]]; then
    # The whole prefix read back by one awscli run (each run costs a second of CPU).
    copy=$scratch/bucket
    rm -rf "$copy"
    if ! aws s3 cp --only-show-errors --recursive "s3://testbucket/${CERTN_ARCHIVER_STORAGE_PREFIX:-}" \
      "$copy/${CERTN_ARCHIVER_STORAGE_PREFIX:-}"; then
      # s3rver stopped in the middle of a put can leave an entry that breaks its listing (an
      # InternalError on ListObjectsV2, seen once after archive_s3_test's restart), though no S3
      # would show an object whose PUT never completed: then every recorded key is read on its own.
      echo "awscli could not list the bucket: reading each recorded object by its key" >&2
      rm -rf "$copy"
      while read -r key; do
        aws s3 cp --only-show-errors "s3://testbucket/$key" "$copy/$key" ||
          fail "awscli cannot read $key"
      done < <(q "SELECT object_key FROM artifacts")
    fi
  fi
  while IFS='|' read -r key sha size; do
    file=${copy:-$archive}/$key
    [[ -f $file ]] || fail "missing $key"
    [[ $(stat -c %s "$file") -eq $size ]] || fail "size of $key: $(stat -c %s "$file") stored, $size recorded"
    [[ $(sha256sum "$file" | cut -d' ' -f1) == "$sha" ]] || fail "sha256 of $key"
    n=$((n + 1))
  done < <(q "SELECT object_key, sha256, size_bytes FROM artifacts")
  ((n > 0)) || fail "no artifact at all"
  if [[ ${1:-} != --tmp-allowed && -d $archive ]]; then
    [[ -z $(find "$archive" -name '*.tmp') ]] || fail "temporary files left: $(find "$archive" -name '*.tmp')"
  fi
  pass "$n objects stored with their recorded size and sha256"
}

# verify_case ID FILES: the case's supplementary files equal fresh downloads from certn-sim (FILES
# of them), exactly one report and it is a PDF, and the manifest lists every artifact. Faults that
# touch the API must be off.
verify_case() {
  local id=$1 files=$2 n=0 check file name url key
  curl -sf -H 'Authorization: Api-Key sim-key' "$sim/api/public/cases/$id/supplementary-files/" \
    >"$scratch/files.json" || fail "list files of $id"
  while IFS=$'\t' read -r check file name url; do
    curl -sf -o "$scratch/fresh" "$url" || fail "download $url"
    key=$(q "SELECT object_key FROM artifacts WHERE source_id = '$file'")
    [[ -n $key ]] || fail "file $file of case $id not archived"
    cmp -s "$scratch/fresh" "$(object_file "$key")" || fail "archived $key differs from Certn's file"
    n=$((n + 1))
  done < <(jq -r '.checks[] | .id as $c | .files[] | [$c, .id, .name, .url] | @tsv' "$scratch/files.json")
  rm -f "$scratch/fresh" "$scratch/object"
  [[ $n -eq $files ]] || fail "expected $files files for case $id, compared $n"
  [[ $(q "SELECT count(*) FROM artifacts WHERE case_id = '$id' AND kind = 'report'") -eq 1 ]] ||
    fail "case $id: expected exactly one report"
  key=$(q "SELECT object_key FROM artifacts WHERE case_id = '$id' AND kind = 'report'")
  head -c 5 "$(object_file "$key")" | grep -q '%PDF-' || fail "report of $id is not a PDF"
  local manifest
  manifest=$(object_file "${CERTN_ARCHIVER_STORAGE_PREFIX:-}cases/$id/manifest.json")
  [[ -f $manifest ]] || fail "no manifest for $id"
  [[ $(jq '.artifacts | length' "$manifest") -eq $(q "SELECT count(*) FROM artifacts WHERE case_id = '$id' AND kind <> 'manifest'") ]] ||
    fail "manifest of $id does not list every artifact: $(cat "$manifest")"
}
