#!/bin/bash
# Builds the libFuzzer targets of tests/fuzz with clang, replays every input that once crashed
# (tests/fuzz/regressions/<target>/*), then runs each target for SECONDS on a scratch copy of its
# seed corpus (tests/fuzz/corpus/<target>, never written to) and prints one line per target.
# Exits non-zero, naming the reproducer, when a target crashed, leaked, ran out of memory or
# timed out.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (10)] [BUILD_DIR (<repo>/build/fuzz)]
# Environment: FUZZ_CXX (clang++-14), FUZZ_JOBS (build jobs and targets fuzzed at once; 2),
# FUZZ_TARGETS (all, space-separated).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-10}
build=${2:-$root/build/fuzz}
cxx=${FUZZ_CXX:-clang++-14}
jobs=${FUZZ_JOBS:-2}
read -r -a targets <<<"${FUZZ_TARGETS:-webhook_event webhook_signature certn_model s3_xml config url}"
fuzz_dir="$root/tests/fuzz"
started=$SECONDS

if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "usage: $0 [SECONDS_PER_TARGET] [BUILD_DIR]" >&2
  exit 2
fi

# -O1 -g without NDEBUG: asserts stay on, and -O1 builds faster than -O2 for about the same
# fuzzing speed.
echo "==> building the fuzz targets in $build"
mkdir -p "$build"
if ! cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DARCHIVER_FUZZ=ON \
  -DARCHIVER_TESTS=OFF -DCMAKE_UNITY_BUILD=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" \
  >"$build/configure.log" 2>&1; then
  cat "$build/configure.log" >&2
  echo "fuzz: cmake failed" >&2
  exit 1
fi
if ! nice ninja -C "$build" -j "$jobs" fuzz >"$build/build.log" 2>&1; then
  cat "$build/build.log" >&2
  echo "fuzz: build failed" >&2
  exit 1
fi
echo "    built in $((SECONDS - started)) s"

runs="$build/runs"
rm -rf "$runs"
mkdir -p "$runs"
# The config target makes its scratch directory under TMPDIR: keep it with the runs.
export TMPDIR="$runs"
# Stop at the first problem of any kind; UBSan findings are crashes too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
report_failure() {  # target, log, reproducer
  failed+=("$1")
  echo "fuzz: $1 FAILED; log: $2" >&2
  tail -n 40 "$2" >&2
  echo "fuzz: reproduce with: $build/tests/fuzz/$1_fuzz $3" >&2
}

echo "==> replaying regression inputs"
for target in "${targets[@]}"; do
  binary="$build/tests/fuzz/${target}_fuzz"
  shopt -s nullglob
  inputs=("$fuzz_dir/regressions/$target"/*)
  shopt -u nullglob
  ((${#inputs[@]} > 0)) || continue
  log="$runs/$target.regressions.log"
  if "$binary" -timeout=10 "${inputs[@]}" </dev/null >"$log" 2>&1; then
    echo "    $target: ${#inputs[@]} inputs pass"
  else
    # The last input started is the one that failed.
    culprit=$(grep -o "Running: .*" "$log" | tail -n 1 | sed 's/^Running: //')
    report_failure "$target" "$log" "${culprit:-${inputs[*]}}"
  fi
done

# fuzz_one TARGET: one bounded run on a scratch copy of the seed corpus; exit status in $work/status.
fuzz_one() {
  local target=$1 work="$runs/$1" dict=()
  mkdir -p "$work/corpus"
  cp "$fuzz_dir/corpus/$target"/* "$work/corpus/"
  if [[ -f $fuzz_dir/$target.dict ]]; then
    dict=("-dict=$fuzz_dir/$target.dict")
  fi
  "$build/tests/fuzz/${target}_fuzz" "${dict[@]}" -max_total_time="$seconds" -timeout=5 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" \
    </dev/null >"$work/fuzz.log" 2>&1
  echo $? >"$work/status"
}

echo "==> fuzzing each target for $seconds s, $jobs at a time"
for target in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= jobs)); do
    wait -n
  done
  fuzz_one "$target" &
done
wait

rows=()
for target in "${targets[@]}"; do
  work="$runs/$target"
  log="$work/fuzz.log"
  status=$(cat "$work/status" 2>/dev/null || echo "?")
  executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  last=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corpus=$(find "$work/corpus" -type f | wc -l)
  shopt -s nullglob
  artifacts=("$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*)
  shopt -u nullglob
  rows+=("$(printf '%-18s %10s %7s %12s %8s' "$target" "${executed:-?}" "$corpus" \
    "${cov:-?}/${ft:-?}" "${#artifacts[@]}")")
  if [[ $status != 0 ]] || ((${#artifacts[@]} > 0)); then
    report_failure "$target" "$log" "${artifacts[*]:-(no artifact; see the log)}"
  fi
done

echo
printf '%-18s %10s %7s %12s %8s\n' target runs corpus "cov/ft" crashes
printf '%s\n' "${rows[@]}"
echo
echo "fuzz: ${#targets[@]} targets, $seconds s each, $((SECONDS - started)) s in all"
if ((${#failed[@]} > 0)); then
  echo "fuzz: FAILED: ${failed[*]} (inputs and logs under $runs)" >&2
  exit 1
fi
echo "fuzz: no crashes"
