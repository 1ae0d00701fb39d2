#!/bin/bash
# The certn-archiver demo on a fresh Debian 12 machine, as root: installs what it needs, builds,
# starts a throwaway PostgreSQL and certn-sim (the Certn simulator), serves with the example
# configuration and the filesystem backend, creates cases in the simulator and moves them to
# COMPLETE; Certn's webhooks reach the daemon, whose workers archive each case's PDF report,
# supplementary information and files. It waits until everything is archived, prints the archive
# tree, one case's manifest, `status` and a few metrics, then stops everything it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

source "$root/scripts/common.sh"

step "installing packages and building"
build_release --target certn-sim
sim_binary="$root/build/release/simulator/certn-sim"
make_workdir demo

step "starting a throwaway PostgreSQL"
dsn=$(bash "$root/scripts/pg.sh" start "$work/pg" "$(free_port)")
echo "$dsn"

# The example configuration, with what differs here given as the environment overrides an
# operator would use (secrets could equally come from files: secrets_file, api_key_file).
port=$(free_port)
sim_port=$(free_port)
export CERTN_ARCHIVER_DATABASE_URL=$dsn
export CERTN_ARCHIVER_SERVER_LISTEN=127.0.0.1:$port
export CERTN_ARCHIVER_WEBHOOK_SECRETS=demo-webhook-secret
export CERTN_ARCHIVER_CERTN_BASE_URL=http://127.0.0.1:$sim_port CERTN_ARCHIVER_CERTN_API_KEY=demo-api-key
# certn-sim runs on loopback over plain http: both are refused unless allowed explicitly.
export CERTN_ARCHIVER_CERTN_ALLOW_PLAIN_HTTP=true CERTN_ARCHIVER_CERTN_ALLOW_SPECIAL_ADDRESSES=true
export CERTN_ARCHIVER_CERTN_DOWNLOAD_HOSTS=127.0.0.1 CERTN_ARCHIVER_CERTN_REQUESTS_PER_MINUTE=600
export CERTN_ARCHIVER_STORAGE_PATH=$work/archive
export CERTN_ARCHIVER_WORKERS_REPORT_POLL_DELAY_SECONDS=2
config="$root/config/certn-archiver.example.toml"
url="http://127.0.0.1:$port/webhooks/certn"

step "certn-archiver migrate"
"$binary" --config "$config" migrate

step "certn-archiver serve (in the background)"
"$binary" --config "$config" serve 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/readyz"

step "certn-sim: challenges $url, then sends signed webhooks there"
"$sim_binary" --listen "127.0.0.1:$sim_port" --api-key demo-api-key \
  --webhook-url "$url" --webhook-secret demo-webhook-secret --report-delay-ms 1000 \
  --file-size 262144 >"$work/sim.out" 2>"$work/sim.log" &
sim_pid=$!
trap 'kill $sim_pid 2>/dev/null && wait $sim_pid 2>/dev/null; cleanup_workdir' EXIT
for _ in $(seq 100); do
  grep -q "listening on" "$work/sim.out" && break
  sleep 0.1
done
cat "$work/sim.out"
sim="http://127.0.0.1:$sim_port"

step "creating 3 cases in certn-sim (2 checks, 2 files each) and moving them to COMPLETE"
ids=$(curl -sf -X POST "$sim/_sim/cases" -d '{"count":3,"files_per_check":2}' | jq -r '.ids[]')
for id in $ids; do
  curl -sf -X POST "$sim/_sim/cases/$id/status" -d '{"status":"COMPLETE"}' |
    jq -r '"\(.id)  \(.overall_status)  checks: \([.checks[].status] | join(", "))"'
done

step "waiting until every case is archived (report, supplementary information, 4 files each)"
q() { psql -w -qtA "$dsn" -c "$1"; }
for _ in $(seq 600); do
  archived=$(q "SELECT count(*) FROM artifacts WHERE kind IN ('report', 'supplementary_file', 'supplementary_information')")
  # Queued, waiting or running; the periodic reconcile, due in 15 minutes, does not count.
  open_jobs=$(q "SELECT count(*) FROM jobs WHERE state IN ('queued', 'failed', 'running') AND kind <> 'reconcile'")
  [[ $archived -eq 18 && $open_jobs -eq 0 ]] && break
  sleep 0.1
done
echo "artifacts archived: $archived; jobs still open: $open_jobs"

step "the archive tree ($work/archive)"
(cd "$work/archive" && find . -type f | sort | sed 's#^\./##' |
  while read -r f; do printf '%10s  %s\n' "$(stat -c %s "$f")" "$f"; done)

first=$(echo "$ids" | head -1)
step "cases/$first/manifest.json"
jq . "$work/archive/cases/$first/manifest.json"

step "certn-archiver status"
"$binary" --config "$config" status

step "jobs (certn-archiver jobs list)"
"$binary" --config "$config" jobs list --limit 12

step "metrics (GET /metrics: jobs, bytes, Certn calls)"
curl -s "http://127.0.0.1:$port/metrics" |
  grep -E '^certn_archiver_(jobs_total|artifacts_total|downloaded_bytes_total|stored_bytes_total|webhook_events_total|certn_api_calls_total)' |
  head -40

step "Certn calls, as certn-sim counted them (5 per archived case)"
curl -s "$sim/_sim/stats" | jq -r '.requests | to_entries[] | "\(.key): \([.value[]] | add)"'
echo "total: $(curl -s "$sim/_sim/stats" | jq '.total_requests') for $(echo "$ids" | wc -l) cases"

step "stopping (SIGTERM drains and exits 0)"
kill -TERM "$serve_pid"
wait "$serve_pid" && echo "serve exited 0"
serve_pid=""
echo "--- the last lines of serve's log ---"
tail -15 "$work/serve.log"
