#!/bin/bash
# `cmake --install` puts the binary, the example config, the migrations and the systemd unit in
# the usual places under the prefix.
# No fixture.sh: it starts nothing and needs no database or scratch state of its own.
binary=$1
set -euo pipefail
build_dir=$(dirname "$(realpath "$binary")")
prefix=$(mktemp -d /tmp/certn-archiver-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
for path in bin/certn-archiver etc/certn-archiver/certn-archiver.example.toml \
  share/certn-archiver/migrations/0001_initial.sql lib/systemd/system/certn-archiver.service; do
  [[ -e $prefix/$path ]] || { echo "FAIL: $path not installed"; exit 1; }
  echo "ok: $path"
done
"$prefix/bin/certn-archiver" version
