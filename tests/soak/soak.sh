#!/bin/bash
# The soak itself; run it through tests/soak/run.sh, which owns the PostgreSQL and the s3rver this
# script restarts (SOAK_PG_DIR, SOAK_S3_DIR, SOAK_S3_ENDPOINT; TEST_PG_DSN is that PostgreSQL).
#   soak.sh BINARY SOURCE_DIR SECONDS
# Set-up from tests/scripts/fixture.sh (a fresh database, certn-sim, serve's environment), switched
# to the S3 backend and two replicas: A takes the webhooks, both work.
# For SECONDS: new cases all along (some cancelled, some left open, some disputed and closed again,
# some with a file large enough for a multipart upload) while one fault after another hits: kill -9
# of a replica (restarted after 0.5-2 s), a PostgreSQL restart, an S3 server restart, and windows
# of 429s, 500s, slow answers, a rate limit and expired download URLs, and a database blackhole
# (replica B's connections stop answering, without closing, for longer than a lease: A rescues
# B's jobs, and B's late outcomes must be refused); webhooks are duplicated,
# reordered and dropped and downloads truncated at random throughout. Then the faults stop and the
# system settles (pending webhooks delivered, events processed, jobs finished, one reconcile run
# after the faults), and the invariants are checked:
#   1. every case with an acknowledged event that reached an archive status at Certn is archived
#      or has a dead job with a reason; every webhook certn-sim saw answered 2xx is stored;
#   2. no object differs from its recorded hash (`verify`), and for a sample awscli reads the
#      same bytes, which equal what certn-sim serves;
#   3. no job is left running without a live lease;
# the summary counts the stale outcomes refused (B's, after its blackhole) and the events lost
# (acknowledged but not stored: must be 0, part of 1).
# plus: no replica died unless killed, no sanitizer report, both replicas drain on SIGTERM.
# SOAK_SELF_TEST=1 damages the outcome before the checks (an object overwritten, a report's record
# and an acknowledged event deleted, a job left running without a lease): the run must then fail.
binary=$1
source_dir=$2
duration=$3
source "$source_dir/tests/scripts/fixture.sh"
[[ -n ${SOAK_PG_DIR:-} && -n ${SOAK_S3_DIR:-} && -n ${SOAK_S3_ENDPOINT:-} ]] ||
  fail "SOAK_PG_DIR, SOAK_S3_DIR and SOAK_S3_ENDPOINT are not set: run tests/soak/run.sh"
create_database --migrate
archive_env
s3_env "$SOAK_S3_ENDPOINT"  # run.sh's s3rver, which this script restarts
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$source_dir/tests/lsan.supp:print_suppressions=0}

load_period=${SOAK_LOAD_PERIOD:-1}
cases_per_step=${SOAK_CASES_PER_STEP:-2}
file_size=${SOAK_FILE_SIZE:-65536}
big_file_size=${SOAK_BIG_FILE_SIZE:-12582912}
fault_period=${SOAK_FAULT_PERIOD:-8}
settle_seconds=${SOAK_SETTLE_SECONDS:-180}
seed=${SOAK_SEED:-1}
s3_port=${SOAK_S3_ENDPOINT##*:}

# A killed replica's jobs come back after 5 s; retries stay short so the run settles quickly; a
# reconcile every 15 s finds the cases whose every webhook was lost.
export CERTN_ARCHIVER_WORKERS_LEASE_SECONDS=5 CERTN_ARCHIVER_WORKERS_BACKOFF_MAX_SECONDS=4
export CERTN_ARCHIVER_WORKERS_RECONCILE_INTERVAL_SECONDS=15

violations=0
violation() {
  violations=$((violations + 1))
  echo "VIOLATION: $*"
}
note() { echo "soak [$(date -u +%T)] $*"; }

# Not the fixture's start_serve: replicas are killed and restarted all along with their logs
# appended, and a slow start is a violation to count, not the end of the run.
# B reaches PostgreSQL through a proxy that the blackhole fault stops.
start_db_proxy
declare -A replica_pid replica_port=([a]=$port [b]=$(free_port)) replica_dsn=([a]=$db_dsn [b]=$proxied_dsn)
start_replica() {
  CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:${replica_port[$1]} CERTN_ARCHIVER_STORAGE_PATH=$scratch/state-$1 \
    CERTN_ARCHIVER_DATABASE_URL=${replica_dsn[$1]} "$binary" serve 2>>"$scratch/$1.log" &
  replica_pid[$1]=$!
}
# replica_ready R: /readyz answers 200 within 60 s (an ASan build starts slowly).
replica_ready() {
  local deadline=$((SECONDS + 60))
  until curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:${replica_port[$1]}/readyz"; do
    ((SECONDS < deadline)) || return 1
    kill -0 "${replica_pid[$1]}" 2>/dev/null || return 1
    sleep 0.1
  done
}
ensure_ready() {
  replica_ready "$1" ||
    violation "replica $1 (pid ${replica_pid[$1]}) not ready 60 s after its start: $(tail -5 "$scratch/$1.log")"
}
# A replica that ended without being killed by us is a violation; it is started again.
check_alive() {
  local r rc
  for r in a b; do
    if ! kill -0 "${replica_pid[$r]}" 2>/dev/null; then
      rc=0
      wait "${replica_pid[$r]}" || rc=$?
      violation "replica $r (pid ${replica_pid[$r]}) exited $rc by itself: $(tail -20 "$scratch/$r.log")"
      start_replica "$r"
      ensure_ready "$r"
    fi
  done
}

finish() {
  set +e  # a failed kill or wait must not skip the rest
  [[ -n ${load_pid:-} ]] && kill "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
  for r in a b; do
    [[ -n ${replica_pid[$r]:-} ]] && kill -KILL "${replica_pid[$r]}" 2>/dev/null && wait "${replica_pid[$r]}" 2>/dev/null
  done
  [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  if [[ -n ${SOAK_LOG_DIR:-} ]]; then
    mkdir -p "$SOAK_LOG_DIR" && cp "$scratch"/*.log "$scratch"/sim.err "$SOAK_LOG_DIR"/ 2>/dev/null
  fi
  fixture_exit
}
trap finish EXIT

start_replica a
start_replica b
replica_ready a || fail "replica A not ready: $(cat "$scratch/a.log")"
replica_ready b || fail "replica B not ready: $(cat "$scratch/b.log")"
# Retries after 1, 2 and 4 s: a webhook outlives a replica restart, not always a long outage.
# (start_sim's default retries after 0.2 s.)
start_sim --webhook-retry-base-ms 1000 --report-delay-ms 500 --file-size "$file_size" --seed "$seed" \
  --webhook-duplicate-rate 0.2 --webhook-reorder-rate 0.2 --webhook-drop-rate 0.03 --fault-truncate-rate 0.03
started=$SECONDS
note "replicas A (pid ${replica_pid[a]}) and B (pid ${replica_pid[b]}), certn-sim at $sim, S3 at $SOAK_S3_ENDPOINT; $duration s of faults"

# The load: batches of new cases until $scratch/stop-load exists. Each case is completed (most),
# cancelled, left in progress for a batch and completed then, or left open. Every 5th batch
# disputes a completed case, closed again (with a new file per check) in the next batch; every
# 10th closes it again at once instead, as when the dispute's webhook was lost or the replicas
# were down all along: the case reopens and closes between two syncs.
load() {
  set +e
  RANDOM=$seed
  local n=0 ids id size files later=() completed=() disputed=""
  # Not move_case: its failure would end the load.
  move() { curl -sf -X POST "$sim/_sim/cases/$1/status" -d "{\"status\":\"$2\"}" >/dev/null; }
  while [[ ! -e $scratch/stop-load ]]; do
    n=$((n + 1))
    size=$file_size files=$((n % 3))
    if ((big_file_size > 0 && n % 10 == 0)); then
      size=$big_file_size files=1
    fi
    ids=$(curl -sf -X POST "$sim/_sim/cases" \
      -d "{\"count\":$cases_per_step,\"files_per_check\":$files,\"file_size\":$size}" | jq -r '.ids[]')
    for id in "${later[@]}"; do
      move "$id" COMPLETE && completed+=("$id")
    done
    later=()
    for id in $ids; do
      case $((RANDOM % 10)) in
        0) move "$id" CANCELLED ;;
        1 | 2) move "$id" IN_PROGRESS && later+=("$id") ;;
        3) move "$id" APPLICANT_SUBMITTED ;;  # stays open
        *) move "$id" COMPLETE && completed+=("$id") ;;
      esac
    done
    if [[ -n $disputed ]]; then
      curl -sf -X POST "$sim/_sim/cases/$disputed/close" >/dev/null && echo "closed $disputed"
      disputed=""
    elif ((n % 5 == 0 && ${#completed[@]} > 0)); then
      id=${completed[RANDOM % ${#completed[@]}]}
      curl -sf -X POST "$sim/_sim/cases/$id/dispute" >/dev/null && disputed=$id && echo "disputed $id"
      if ((n % 10 == 0)) && [[ -n $disputed ]]; then
        curl -sf -X POST "$sim/_sim/cases/$disputed/close" >/dev/null && echo "closed $disputed at once"
        disputed=""
      fi
    fi
    sleep "$load_period"
  done
  [[ -n $disputed ]] && curl -sf -X POST "$sim/_sim/cases/$disputed/close" >/dev/null
  echo "batches $n"
}
load >"$scratch/load.log" 2>&1 &
load_pid=$!

declare -A injected=()
count() { injected[$1]=$((${injected[$1]:-0} + 1)); }
no_api_faults='{"rate_429":0,"rate_500":0,"slow_rate":0,"slow_ms":0,"rate_limit_per_minute":0,"expire_next_urls":0}'
# Downtime of a restarted server or replica: 0.5 to 2 s.
pause_briefly() { sleep "$(awk -v r=$((RANDOM % 16)) 'BEGIN { print 0.5 + r / 10 }')"; }
kill_replica() {
  local pid=${replica_pid[$1]}
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  note "kill -9 of replica $1 (pid $pid)"
  count "kill -9 replica"
  pause_briefly
  start_replica "$1"
  ensure_ready "$1"
}
restart_pg() {
  bash "$source_dir/scripts/pg.sh" pause "$SOAK_PG_DIR"
  pause_briefly
  bash "$source_dir/scripts/pg.sh" resume "$SOAK_PG_DIR" || fail "PostgreSQL did not start again"
  note "PostgreSQL restarted"
  count "PostgreSQL restart"
}
restart_s3() {
  bash "$source_dir/scripts/s3.sh" stop "$SOAK_S3_DIR"
  pause_briefly
  bash "$source_dir/scripts/s3.sh" start "$SOAK_S3_DIR" "$s3_port" >/dev/null || fail "s3rver did not start again"
  note "s3rver restarted"
  count "S3 restart"
}
# B's database stops answering (nothing closed) for longer than a lease and a rescue, while B runs
# a job: A takes the job over, and B's outcome is refused when its connections come back. Slow
# Certn answers meanwhile keep jobs in flight across the start of the blackhole.
blackhole_b() {
  local until=$((SECONDS + fault_period)) b_owner=":${replica_pid[b]}:"
  set_faults '{"slow_rate":0.5,"slow_ms":3000}' >/dev/null
  until [[ $(q "SELECT count(*) FROM jobs WHERE state = 'running' AND lease_owner LIKE '%$b_owner%'") -gt 0 ]] ||
    ((SECONDS >= until)); do
    sleep 0.1
  done
  kill -USR1 "$proxy_pid"
  note "database blackhole for replica B ($(q "SELECT count(*) FROM jobs WHERE state = 'running' AND lease_owner LIKE '%$b_owner%'") job(s) of B running)"
  count "database blackhole"
  until=$((SECONDS + (fault_period > 9 ? fault_period : 9)))
  while ((SECONDS < until)); do sleep 0.5; done
  set_faults "$no_api_faults" >/dev/null
  kill -USR2 "$proxy_pid"
  note "database blackhole for replica B ended"
}
api_fault() {
  set_faults "$2" >/dev/null
  note "certn-sim fault window: $1 $2"
  count "$1 window"
}

RANDOM=$seed
schedule=(kill_a api_429 restart_pg kill_b api_500 blackhole_b restart_s3 kill_a api_slow expired_urls kill_b rate_limit)
step=0
end=$((SECONDS + duration))
while ((SECONDS < end)); do
  step_end=$((SECONDS + fault_period))
  set_faults "$no_api_faults" >/dev/null
  check_alive
  case ${schedule[step % ${#schedule[@]}]} in
    kill_a) kill_replica a ;;
    kill_b) kill_replica b ;;
    restart_pg) restart_pg ;;
    restart_s3) restart_s3 ;;
    blackhole_b) blackhole_b ;;
    api_429) api_fault "429" '{"rate_429":0.3,"retry_after_rate":0.5}' ;;
    api_500) api_fault "500" '{"rate_500":0.3}' ;;
    api_slow) api_fault "slow" '{"slow_rate":0.3,"slow_ms":2500}' ;;
    expired_urls) api_fault "expired URLs" '{"expire_next_urls":10}' ;;
    rate_limit) api_fault "rate limit" '{"rate_limit_per_minute":30}' ;;
  esac
  step=$((step + 1))
  while ((SECONDS < step_end && SECONDS < end)); do
    sleep 0.5
  done
done
set_faults "$no_api_faults" >/dev/null
touch "$scratch/stop-load"
wait "$load_pid" || true
load_pid=""
check_alive
faults_end=$(q "SELECT now()")
fault_seconds=$((SECONDS - started))
note "faults stopped after $fault_seconds s ($(tail -1 "$scratch/load.log")); settling (at most $settle_seconds s)"

# Settled: nothing pending at certn-sim or here, and a reconcile ran after the faults (it finds
# what no webhook told us), three polls in a row.
settled_once() {
  [[ $(curl -sf "$sim/_sim/webhooks" | jq '[.webhooks[] | select(.outcome == "pending")] | length') -eq 0 ]] &&
    [[ $(q "SELECT count(*) FROM webhook_events WHERE processed_at IS NULL") -eq 0 ]] &&
    [[ $(pending_jobs) -eq 0 ]] &&
    [[ $(q "SELECT count(*) FROM jobs WHERE kind = 'reconcile' AND state = 'succeeded' AND finished_at > '$faults_end'") -gt 0 ]]
}
settle_start=$SECONDS
deadline=$((SECONDS + settle_seconds))
calm=0
while ((calm < 3)); do
  if ((SECONDS >= deadline)); then
    violation "not settled within $settle_seconds s: $(pending_jobs) job(s) pending, $(q "SELECT count(*) FROM webhook_events WHERE processed_at IS NULL") event(s) unprocessed: $(q "SELECT id, kind, key, state, attempts, lease_owner, last_error FROM jobs WHERE state IN ('queued', 'running', 'failed') AND kind <> 'reconcile' ORDER BY id LIMIT 20" | tr '\n' ' ')"
    break
  fi
  if settled_once 2>/dev/null; then
    calm=$((calm + 1))
  else
    calm=0
  fi
  sleep 1
done
check_alive
settled_in=$((SECONDS - settle_start))
note "settled in $settled_in s; checking"

# SOAK_SELF_TEST=1: damage the outcome on purpose, one thing per check, to see each one fail.
if [[ ${SOAK_SELF_TEST:-0} == 1 ]]; then
  victim=$(q "SELECT object_key FROM artifacts WHERE kind = 'supplementary_file' ORDER BY id LIMIT 1")
  echo tampered >"$scratch/tampered"
  aws s3 cp --only-show-errors "$scratch/tampered" "s3://testbucket/$victim"
  q "DELETE FROM artifacts WHERE id = (SELECT max(id) FROM artifacts WHERE kind = 'report')" >/dev/null
  q "DELETE FROM webhook_events WHERE id = (SELECT max(id) FROM webhook_events)" >/dev/null
  # Leased for an hour to no replica (an expired lease would be rescued before the check).
  q "UPDATE jobs SET state = 'running', lease_owner = 'elsewhere:1:0', lease_expires = now() + interval '1 hour' WHERE id = (SELECT min(id) FROM jobs WHERE state = 'succeeded')" >/dev/null
  note "self-test: overwrote $victim, deleted a report's record and an event, left a job running without a lease"
fi

# Invariants 1 and 3, and the sample for 2.
while IFS= read -r line; do
  violation "${line#VIOLATION: }"
done < <(python3 "$source_dir/tests/soak/check.py" "$db_dsn" "$sim" "${replica_pid[a]},${replica_pid[b]}" \
  "${SOAK_SAMPLE_CASES:-10}" "$scratch/sample" "$scratch/stats" || echo "VIOLATION: check.py failed")
[[ -f $scratch/stats ]] || fail "check.py wrote no statistics"
declare -A counts
while IFS='=' read -r key value; do
  counts[$key]=$value
done <"$scratch/stats"

note "invariants 1 and 3 checked"
# Invariant 2: every object against its recorded hash, by the daemon's own verify...
verify_out=$(CERTN_ARCHIVER_STORAGE_PATH=$scratch/state-verify "$binary" verify 2>&1) || true
summary=$(grep -E '^verified [0-9]+ object' <<<"$verify_out" || true)
if ! grep -qE ', 0 mismatched, 0 missing, 0 unreadable$' <<<"$summary"; then
  violation "verify: $(grep -E '^(MISMATCH|MISSING|UNREADABLE)|^verified|error' <<<"$verify_out" | head -20)"
fi
note "verify done"
# ...and a sample read back with awscli, whose bytes must also equal what certn-sim serves.
fetch_fresh() {  # a truncated download (a fault still in force) is tried again
  local attempt
  for attempt in 1 2 3 4 5; do
    curl -sf -o "$2" "$1" && return 0
  done
  return 1
}
# One awscli call per sampled case (it starts slowly): the case's objects into a directory.
sampled=0 compared=0
while IFS=$'\t' read -r key sha size url; do
  sampled=$((sampled + 1))
  object=$scratch/sample-objects/$key
  if [[ ! -f $object ]]; then
    rest=${key#*cases/}
    prefix=${key%%cases/*}cases/${rest%%/*}  # the case's folder (archive/layout.cpp)
    aws s3 cp --recursive --only-show-errors "s3://testbucket/$prefix/" "$scratch/sample-objects/$prefix/" \
      2>"$scratch/aws.err" || violation "awscli cannot read s3://testbucket/$prefix/: $(cat "$scratch/aws.err")"
  fi
  if [[ ! -f $object ]]; then
    violation "awscli did not find $key"
    continue
  fi
  got_size=$(stat -c %s "$object")
  got_sha=$(sha256sum "$object" | cut -d' ' -f1)
  [[ $got_size -eq $size && $got_sha == "$sha" ]] ||
    violation "$key read by awscli: sha256 $got_sha ($got_size bytes), recorded $sha ($size bytes)"
  if [[ $url != - ]]; then
    if ! fetch_fresh "$url" "$scratch/fresh"; then
      violation "cannot download $url from certn-sim to compare with $key"
    elif ! cmp -s "$scratch/fresh" "$object"; then
      violation "$key differs from what certn-sim serves ($(stat -c %s "$scratch/fresh") bytes there, $got_size archived)"
    else
      compared=$((compared + 1))
    fi
  fi
done <"$scratch/sample"
((sampled > 0)) || violation "no archived case to sample"

note "sample compared"
# Sanitizer reports, lost leases (information) and a clean drain of both replicas.
if grep -hE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$scratch/a.log" "$scratch/b.log" >"$scratch/sanitizer"; then
  violation "sanitizer reports: $(head -5 "$scratch/sanitizer")"
fi
leases_lost=$(cat "$scratch/a.log" "$scratch/b.log" | grep -c 'lease lost' || true)
stale_refused=$(cat "$scratch/a.log" "$scratch/b.log" | grep -c 'result discarded' || true)
for r in a b; do
  kill -TERM "${replica_pid[$r]}"
done
for r in a b; do
  rc=0
  wait "${replica_pid[$r]}" || rc=$?
  [[ $rc -eq 0 ]] || violation "replica $r exited $rc after SIGTERM: $(tail -5 "$scratch/$r.log")"
  replica_pid[$r]=""
done

sim_stats=$(curl -sf "$sim/_sim/stats")
kills=${injected["kill -9 replica"]:-0}
echo
echo "== soak summary =="
echo "duration:            $fault_seconds s of faults, settled in $settled_in s after (bound $settle_seconds s), checked in $((SECONDS - settle_start - settled_in)) s"
echo "cases:               $(jq '.cases' <<<"$sim_stats") created at certn-sim, ${counts[cases_here]} known here; of the ${counts[acknowledged_cases]} with acknowledged events: ${counts[archived_cases]} archived, ${counts[dead_cases]} with a dead job, ${counts[open_cases]} not in an archive status"
echo "events acknowledged: ${counts[events]} stored; ${counts[acknowledged_deliveries]} of ${counts[webhooks_sent]} webhook deliveries answered 2xx (${counts[webhooks_failed]} failed, ${counts[webhooks_dropped]} dropped by certn-sim); lost (answered 2xx, not stored): ${counts[events_lost]}"
echo "jobs:                ${counts[jobs_succeeded]} done, ${counts[jobs_dead]} dead, ${counts[jobs_cancelled]} cancelled, ${counts[jobs_pending]} pending; lease lost: $leases_lost; stale outcomes refused: $stale_refused"
echo "artifacts:           ${counts[artifacts]}; verify: ${summary:-none}; awscli sample: $sampled object(s), $compared equal to certn-sim's bytes"
echo "kills:               $kills (kill -9 of a replica)"
echo "PostgreSQL restarts: ${injected["PostgreSQL restart"]:-0}"
echo "S3 restarts:         ${injected["S3 restart"]:-0}"
echo "DB blackholes:       ${injected["database blackhole"]:-0} (replica B's connections)"
echo "faults injected:     429: $(jq '.injected_429' <<<"$sim_stats") (in ${injected["429 window"]:-0} windows), rate-limited: $(jq '.rate_limited' <<<"$sim_stats") (${injected["rate limit window"]:-0} windows), 500: $(jq '.injected_500' <<<"$sim_stats") (${injected["500 window"]:-0}), slow: $(jq '.slowed' <<<"$sim_stats") (${injected["slow window"]:-0}), expired URLs: $(jq '.expired_urls' <<<"$sim_stats") (${injected["expired URLs window"]:-0}), duplicated webhooks: ${counts[webhooks_duplicated]}, dropped webhooks: ${counts[webhooks_dropped]}, reordered webhooks and truncated downloads: at rates 0.2 and 0.03 (not counted by certn-sim)"
echo "violations:          $violations"
((violations == 0)) || exit 1
