#!/bin/bash
# ctest-timeout: 180
# Slow and flood attacks (bench/attacks/run.sh, shortened): slowloris, slow body, slow read and a
# connection flood far past server.max_connections, each with a legitimate sender posting signed
# events on fresh connections beside it; at least 99% of its events must be accepted under every
# attack, and the attack connections must have met the cap (shed there, not merely timed out).
source "$(dirname "$0")/fixture.sh"
# Only the basics: bench/attacks/run.sh starts serve (and its database) itself, as the benchmark.
command -v slowhttptest >/dev/null || fail "slowhttptest is not installed"

# Sized for an ASan build on two busy cores: 100 slow connections a second still hold ~1000 open
# against a cap of 64 (10 s deadlines), and 3 pipelined slow-read requests instead of 10 keep that
# attack about connection slots rather than the CPU time of parsing requests.
BINARY=$binary MAX_CONNECTIONS=64 ATTACK_RATE=100 SLOW_READ_REQUESTS=3 FLOOD_CONNECTIONS=1024 \
  FLOOD_RATE=600 RAMP=2 \
  ATTACKS="slowloris slow-body slow-read flood" \
  bash "$source_dir/bench/attacks/run.sh" 10 >"$scratch/table.txt" 2>"$scratch/run.log" ||
  fail "the legitimate sender fell below 99% (or the run failed): $(cat "$scratch/table.txt") $(tail -20 "$scratch/run.log")"
cat "$scratch/table.txt"

for attack in slowloris slow-body slow-read flood; do
  row=$(grep "^| $attack |" "$scratch/table.txt") || fail "no row for $attack"
  shed=$(sed -E 's/.*shed ([0-9]+),.*/\1/' <<<"$row")
  ((shed > 0)) || fail "$attack never reached the connection cap (nothing shed): $row"
  pass "$attack: the legitimate sender kept >= 99% while $shed attack connections were shed at the cap"
done
