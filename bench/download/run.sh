#!/bin/bash
# bench/download: one large file from certn-sim to disk, through the daemon's HTTP client and
# through curl -o on the same (presigned) URL, alternately, RUNS times. Prints throughput, the
# ratio, and both processes' peak RSS.
# Usage: bash bench/download/run.sh   (env: SIZE=1073741824 RUNS=3; BUILD=DIR uses binaries
# already built there instead of building build/release)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
size=${SIZE:-1073741824}
runs=${RUNS:-3}

source "$root/scripts/common.sh"
build=${BUILD:-}
if [[ -z $build ]]; then
  build_release --target certn-sim --target bench-download >/dev/null
  build="$root/build/release"
fi
make_workdir download
sim="$build/simulator/certn-sim"
bench="$build/bench/download/bench-download"

port=$(free_port)
"$sim" --listen "127.0.0.1:$port" --file-size "$size" >"$work/sim.out" 2>"$work/sim.err" &
serve_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/sim.out" && break; sleep 0.1; done
base="http://127.0.0.1:$port"
id=$(curl -sf -X POST "$base/_sim/cases" -d '{"count":1,"check_types":["CRIMINAL_RECORD_CHECK"]}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["ids"][0])')
curl -sf -X POST "$base/_sim/cases/$id/status" -d '{"status":"COMPLETE"}' >/dev/null
url=$(curl -sf -H 'Authorization: Api-Key sim-key' "$base/api/public/cases/$id/supplementary-files/" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["checks"][0]["files"][0]["url"])')

printf '%-5s %-22s %10s %10s %14s\n' run client MiB/s seconds "peak RSS MiB"
for run in $(seq "$runs"); do
  read -r bytes seconds ours rss <<<"$("$bench" "$url" "$work/ours.bin" |
    sed -E 's/[a-z_]+=//g')"
  [[ $bytes -eq $size ]] || { echo "client got $bytes bytes, expected $size" >&2; exit 1; }
  printf '%-5s %-22s %10s %10s %14s\n' "$run" certn-archiver "$ours" "$seconds" "$((rss / 1024))"
  rm -f "$work/ours.bin"
  /usr/bin/time -f '%e %M' -o "$work/curl.time" curl -sf -o "$work/curl.bin" "$url"
  read -r curl_seconds curl_rss <"$work/curl.time"
  [[ $(stat -c %s "$work/curl.bin") -eq $size ]] || { echo "curl got a short file" >&2; exit 1; }
  curl_rate=$(awk -v b="$size" -v s="$curl_seconds" 'BEGIN { printf "%.1f", b / 1048576 / s }')
  printf '%-5s %-22s %10s %10s %14s\n' "$run" "curl -o" "$curl_rate" "$curl_seconds" "$((curl_rss / 1024))"
  awk -v a="$ours" -v b="$curl_rate" 'BEGIN { printf "      ratio (ours / curl): %.2f\n", a / b }'
  rm -f "$work/curl.bin"
done
