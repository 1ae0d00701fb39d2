#!/bin/bash
# bench/attacks: slow and flood attacks on `serve` while a legitimate sender posts signed webhook
# events beside them (legit_client.py: a fresh connection per event, steady rate). Attacks, one at
# a time: slowloris (slowhttptest -H), slow body (-B), slow read (-X), and a connection flood
# (flood.py) holding far more connections than server.max_connections. Each attack ramps up for
# RAMP seconds before the sender starts, so the sender meets it at full strength.
# Prints a table: attack, attacker connections, legit requests, success %, p50/p99 ms, and what the
# server did with the attack connections (shed or refused at the cap, from its metrics; closed
# otherwise, i.e. by a deadline, as the attacker saw it). Exits 1 when the sender's success rate
# is below 99% in any run.
# Usage: bash bench/attacks/run.sh [SECONDS_PER_ATTACK]   (default 30)
# Env: BINARY (certn-archiver; default: build build/release), TEST_PG_DSN (use that PostgreSQL,
# a database of our own is created in it; default: a throwaway one from scripts/pg.sh),
# MAX_CONNECTIONS=256, LEGIT_RATE=20 (events/s), ATTACK_RATE=200 (new slowhttptest
# connections/s), SLOW_READ_REQUESTS=10 (pipelined per slow-read connection, at most 10),
# FLOOD_CONNECTIONS=2048, FLOOD_RATE=1000 (flood reconnects/s), RAMP=3,
# ATTACKS="none slowloris slow-body slow-read flood".
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/attacks"
seconds=${1:-30}
max_connections=${MAX_CONNECTIONS:-256}
legit_rate=${LEGIT_RATE:-20}
attack_rate=${ATTACK_RATE:-200}
slow_read_requests=${SLOW_READ_REQUESTS:-10}
flood_connections=${FLOOD_CONNECTIONS:-2048}
flood_rate=${FLOOD_RATE:-1000}
ramp=${RAMP:-3}
attacks=${ATTACKS:-none slowloris slow-body slow-read flood}
secret=attack-bench-secret

source "$root/scripts/common.sh"
binary=${BINARY:-}
if [[ -z $binary ]]; then
  build_release >/dev/null
fi
command -v slowhttptest >/dev/null || { echo "slowhttptest is not installed" >&2; exit 1; }
make_workdir attacks

attacker_pid=""
db_name=""
cleanup() {
  if [[ -n $attacker_pid ]]; then
    kill "$attacker_pid" 2>/dev/null || true
    wait "$attacker_pid" 2>/dev/null || true
  fi
  cleanup_workdir
  if [[ -n $db_name ]]; then
    psql -w -q "$TEST_PG_DSN" -c "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

if [[ -n ${TEST_PG_DSN:-} ]]; then
  db_name="attacks_${RANDOM}${RANDOM}_$$"
  psql -w -q "$TEST_PG_DSN" -c "CREATE DATABASE $db_name" >/dev/null
  dsn="${TEST_PG_DSN%/*}/$db_name"
else
  dsn=$(bash "$root/scripts/pg.sh" start "$work/pg" "$(free_port)")
fi

port=$(free_port)
admin_port=$(free_port)
export CERTN_ARCHIVER_DATABASE_URL=$dsn
export CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port CERTN_ARCHIVER_SERVER_ADMIN_LISTEN=127.0.0.1:$admin_port
export CERTN_ARCHIVER_WEBHOOK_SECRETS=$secret CERTN_ARCHIVER_LOG_LEVEL=warn
export CERTN_ARCHIVER_SERVER_MAX_CONNECTIONS=$max_connections
"$binary" migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; exit 1; }
"$binary" serve 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null || { cat "$work/serve.log" >&2; exit 1; }

metric() {  # metric NAME-WITH-LABELS: its value on the admin listener, 0 when absent
  curl -s "http://127.0.0.1:$admin_port/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
shed_metric='certn_archiver_http_refused_connections_total{listener="main",reason="max_connections_shed"}'
refused_metric='certn_archiver_http_refused_connections_total{listener="main",reason="max_connections"}'
open_metric='certn_archiver_http_open_connections{listener="main"}'

url="http://127.0.0.1:$port/webhooks/certn"
challenge=$(head -c 1000 /dev/zero | tr '\0' c)
start_attack() {  # start_attack NAME: the attacker in the background, $attacker_pid
  local total=$((attack_rate * (seconds + ramp + 2))) length=$((seconds + ramp + 2))
  local common=(-c "$total" -r "$attack_rate" -l "$length" -p 3 -g -o "$work/$1")
  case $1 in
    none) attacker_pid="" ;;
    slowloris) slowhttptest -H "${common[@]}" -i 5 -x 24 -u "$url" >"$work/$1.out" 2>&1 & attacker_pid=$! ;;
    slow-body) slowhttptest -B "${common[@]}" -i 5 -x 24 -s 8192 -u "$url" >"$work/$1.out" 2>&1 & attacker_pid=$! ;;
    # Pipelined challenge requests (1 KB answers each; -k allows 10 at most) read a few bytes a
    # second through a tiny window; what fits the socket buffers leaves the connection idle.
    slow-read) slowhttptest -X "${common[@]}" -k "$slow_read_requests" -n 1 -w 1 -y 64 -z 16 -u "$url?challenge=$challenge" \
      >"$work/$1.out" 2>&1 & attacker_pid=$! ;;
    flood) python3 "$here/flood.py" "$port" "$flood_connections" "$flood_rate" "$length" "$work/flood.json" \
      >"$work/$1.out" 2>&1 & attacker_pid=$! ;;
    *) echo "unknown attack $1" >&2; exit 2 ;;
  esac
}

# attacker_summary NAME: sets $attackers (peak open / opened) and $attacker_closed.
attacker_summary() {
  attackers="-" attacker_closed=0
  case $1 in
    none) ;;
    flood)
      attackers="$(jq .max_open "$work/flood.json") open / $(jq .opened "$work/flood.json") opened"
      attacker_closed=$(jq '.closed_within_1s + .closed_after_1s' "$work/flood.json") ;;
    *)
      [[ -s $work/$1.csv ]] || { echo "slowhttptest wrote no statistics: $(tail -3 "$work/$1.out")" >&2; exit 1; }
      # slowhttptest's CSV: Seconds,Closed,Pending,Connected,Service Available (Closed cumulative).
      attackers="$(awk -F, 'NR > 1 && $4 > m { m = $4 } END { print m + 0 }' "$work/$1.csv") open / $(awk -F, 'NR > 1 { n = $2 + $3 + $4 } END { print n + 0 }' "$work/$1.csv") opened"
      attacker_closed=$(awk -F, 'NR > 1 { c = $2 } END { print c + 0 }' "$work/$1.csv") ;;
  esac
}

wait_quiet() {  # until the main listener has no connection open (at most 30 s)
  for _ in $(seq 300); do
    [[ $(metric "$open_metric") -eq 0 ]] && return 0
    sleep 0.1
  done
  echo "warning: $(metric "$open_metric") connections still open" >&2
}

rows=()
worst_ok=1
for attack in $attacks; do
  wait_quiet
  shed_before=$(metric "$shed_metric") refused_before=$(metric "$refused_metric")
  echo "attack $attack: ${ramp}s ramp, then ${seconds}s with the legitimate sender..." >&2
  start_attack "$attack"
  [[ $attack == none ]] || sleep "$ramp"
  python3 "$here/legit_client.py" "$port" "$secret" "$seconds" "$legit_rate" "$work/legit-$attack.json" >&2
  if [[ -n $attacker_pid ]]; then
    # slowhttptest ends on its own; stop it should it still run, so the next attack starts clean.
    kill -INT "$attacker_pid" 2>/dev/null || true
    wait "$attacker_pid" 2>/dev/null || true
    attacker_pid=""
  fi
  shed=$(($(metric "$shed_metric") - shed_before))
  refused=$(($(metric "$refused_metric") - refused_before))
  attacker_summary "$attack"
  other=$((attacker_closed - shed - refused))
  ((other >= 0)) || other=0
  legit="$work/legit-$attack.json"
  success=$(jq -r '.success_pct | . * 100 | floor / 100' "$legit")
  jq -e '.success_pct >= 99' "$legit" >/dev/null || worst_ok=0
  rows+=("| $attack | $attackers | $(jq .requests "$legit") | $success | $(jq -r '.p50_ms | . * 10 | round / 10' "$legit") | $(jq -r '.p99_ms | . * 10 | round / 10' "$legit") | shed $shed, refused $refused, closed otherwise $other |")
done

cat <<TABLE
bench/attacks: serve with max_connections $max_connections, header/body timeouts at their defaults; legitimate sender: $legit_rate signed events/s, a fresh connection each, ${seconds}s per attack after a ${ramp}s ramp; $(nproc) cores
| attack | attacker connections (peak open / opened) | legit requests | success % | p50 ms | p99 ms | server's verdict on attack connections |
|---|---|---|---|---|---|---|
$(printf '%s\n' "${rows[@]}")
TABLE
if ((worst_ok == 0)); then
  echo "FAIL: the legitimate sender's success rate fell below 99% under at least one attack" >&2
  exit 1
fi
