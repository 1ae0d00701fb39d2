# Shared by scripts/demo.sh and the benchmarks (sourced, not run): builds the daemon and keeps a
# work directory whose PostgreSQL and `serve` are stopped on exit. Needs $root.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# build_release [cmake --build flags...]: installs packages, builds certn-archiver; sets $binary.
build_release() {
  bash "$root/scripts/install-deps.sh"
  # The same flags as scripts/test.sh's first build, so the two share one build directory.
  cmake -S "$root" -B "$root/build/release" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -DNDEBUG" -DARCHIVER_LIBRARY_TESTS=OFF >/dev/null
  cmake --build "$root/build/release" -j "$(nproc)" --target certn-archiver "$@"
  binary="$root/build/release/certn-archiver"
}

# make_workdir NAME: a fresh $work; on exit, `serve` ($serve_pid) gets SIGTERM, the PostgreSQL in
# $work/pg stops, and $work is removed.
make_workdir() {
  work=$(mktemp -d "/tmp/certn-archiver-$1.XXXXXX")
  chmod 755 "$work"
  serve_pid=""
  trap cleanup_workdir EXIT
}
cleanup_workdir() {
  if [[ -n $serve_pid ]]; then
    kill -TERM "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  fi
  bash "$root/scripts/pg.sh" stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
