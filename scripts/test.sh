#!/bin/bash
# Runs every test of certn-archiver on a fresh Debian 12 machine, as root:
# installs what it needs, builds twice (normal, and with AddressSanitizer + UBSan), starts a
# throwaway PostgreSQL and s3rver, runs ctest on both builds and the fuzzers briefly, prints the
# summaries, and stops what it started. The sanitizer build compiles while the first build's
# tests run, and the fuzzers run beside the sanitizer build's tests, each at the lowest CPU
# priority: they take only the CPU the tests leave.
# Exits non-zero when anything fails.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${JOBS:-$(nproc)}
ctest_jobs=${CTEST_JOBS:-4}

step() { printf '\n==> %s (%s, %d s in)\n' "$*" "$(date +%T)" "$SECONDS"; }

step "installing packages"
bash "$root/scripts/install-deps.sh" || exit 1

work=$(mktemp -d /tmp/certn-archiver-test.XXXXXX)
chmod 755 "$work"
pg_dir="$work/pg"
asan_build=
fuzz=
cleanup() {
  local group
  for group in $asan_build $fuzz; do  # still running when the run was cut short: the whole group
    kill -TERM -- "-$group" 2>/dev/null
    wait "$group" 2>/dev/null
  done
  bash "$root/scripts/pg.sh" stop "$pg_dir" >/dev/null 2>&1 || true
  bash "$root/scripts/s3.sh" stop "$work/s3" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

step "starting PostgreSQL"
pg_port=$(free_port)
dsn=$(bash "$root/scripts/pg.sh" start "$pg_dir" "$pg_port") || exit 1
echo "PostgreSQL at $dsn"

step "starting s3rver (S3 server for the storage tests)"
s3_endpoint=$(bash "$root/scripts/s3.sh" start "$work/s3" "$(free_port)") || exit 1
echo "s3rver at $s3_endpoint"
export TEST_S3_ENDPOINT="$s3_endpoint" TEST_S3_BUCKET=testbucket

configure_and_build() {  # build-dir extra-cmake-args...
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" -G Ninja "$@" >"$work/cmake-$(basename "$dir").log" 2>&1 ||
    { cat "$work/cmake-$(basename "$dir").log"; return 1; }
  cmake --build "$dir" -j "$jobs"
}

# Both builds fit CI's time on 2 cores only without debug info (it costs a third of the compile
# time), and as unity builds (CMakeLists.txt); the sanitizer build is also unoptimised, which
# halves its compile time again. The -O2 build runs the unit tests and the end-to-end scripts
# against the binaries we ship; the integration and simulator test programs, which drive the
# libraries from inside, run in the sanitizer build only.
step "building (-O2)"
configure_and_build "$root/build/release" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -DNDEBUG" -DARCHIVER_LIBRARY_TESTS=OFF || exit 1
step "building (AddressSanitizer + UndefinedBehaviorSanitizer, -O0) in the background"
asan_log="$work/build-asan.log"
# Its own process group (setsid), so that cleanup can stop every compiler; the lowest priority,
# inherited by the compilers, so that the tests come first.
export -f configure_and_build
export root work jobs
setsid nice -n 19 bash -c 'configure_and_build "$root/build/asan" -DCMAKE_BUILD_TYPE=Debug \
  "-DCMAKE_CXX_FLAGS_DEBUG=-O0" -DARCHIVER_SANITIZE=ON' >"$asan_log" 2>&1 &
asan_build=$!

export TEST_PG_DSN="$dsn" TEST_PG_DIR="$pg_dir"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"

passed=0
failed=0
run_suite() {  # name build-dir
  local name=$1 dir=$2 log="$work/ctest-$1.log"
  step "ctest: $name"
  # Most tests wait on sockets and timers, not the CPU: four at a time. Tests that pause the shared
  # PostgreSQL or measure timing are RUN_SERIAL (tests/CMakeLists.txt).
  ctest --test-dir "$dir" --output-on-failure --timeout 600 -j "$ctest_jobs" 2>&1 | tee "$log"
  local summary
  summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1)
  if [[ -z $summary ]]; then
    echo "ctest ($name) printed no summary"
    failed=$((failed + 1))
    return
  fi
  local total bad
  bad=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$summary")
  total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$summary")
  passed=$((passed + total - bad))
  failed=$((failed + bad))
  summaries+=("$name: $summary")
}

# libFuzzer targets of the parsers (clang), briefly: replays past crashes, then 10 s each. Started
# with the sanitizer suite, in the background at the lowest CPU priority as the sanitizer build
# was: those tests mostly wait on sockets and timers, and the fuzzers take the CPU they leave.
fuzz_log="$work/fuzz.log"
fuzz=
start_fuzzing() {
  step "fuzzing (scripts/fuzz.sh 10) in the background"
  setsid nice -n 19 bash "$root/scripts/fuzz.sh" 10 >"$fuzz_log" 2>&1 &
  fuzz=$!
}

summaries=()
run_suite release "$root/build/release"
step "waiting for the sanitizer build"
if wait "$asan_build"; then
  asan_build=
  tail -n 1 "$asan_log"
  start_fuzzing
  run_suite asan "$root/build/asan"
else
  asan_build=
  tail -n 200 "$asan_log"
  echo "the sanitizer build failed (above: the end of its log)"
  failed=$((failed + 1))
  summaries+=("asan: the build FAILED")
fi

[[ -n $fuzz ]] || start_fuzzing  # the sanitizer build failed: fuzz now
step "waiting for the fuzzers"
fuzz_status=0
wait "$fuzz" || fuzz_status=$?
fuzz=
cat "$fuzz_log"
if ((fuzz_status == 0)); then
  passed=$((passed + 1))
  summaries+=("$(grep -E '^fuzz: [0-9]+ targets' "$fuzz_log" | tail -1)")
else
  failed=$((failed + 1))
  summaries+=("fuzz: FAILED (see above)")
fi

step "summary"
printf '%s\n' "${summaries[@]}"
echo "tests: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
