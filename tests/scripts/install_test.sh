#!/bin/bash
# `cmake --install` puts the binary, the config, the migrations and the systemd unit in the usual
# places under the prefix (a prefix other than /usr: cmake/install_system_files.cmake), the unit
# starting the binary installed there.
# No fixture.sh: it starts nothing and needs no database or scratch state of its own.
binary=$1
set -euo pipefail
build_dir=$(dirname "$(realpath "$binary")")
prefix=$(mktemp -d /tmp/certn-archiver-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
for path in bin/certn-archiver etc/certn-archiver/certn-archiver.toml \
  share/certn-archiver/migrations/0001_initial.sql lib/systemd/system/certn-archiver.service; do
  [[ -e $prefix/$path ]] || { echo "FAIL: $path not installed"; exit 1; }
  echo "ok: $path"
done
grep -q "^ExecStart=$prefix/bin/certn-archiver " "$prefix/lib/systemd/system/certn-archiver.service" || {
  echo "FAIL: ExecStart: $(grep ExecStart "$prefix/lib/systemd/system/certn-archiver.service")"
  exit 1
}
grep -q "^ExecStart=$prefix/bin/certn-archiver --config $prefix/etc/certn-archiver/certn-archiver.toml serve" \
  "$prefix/lib/systemd/system/certn-archiver.service" || { echo "FAIL: the unit names another config"; exit 1; }
# A second install keeps the operator's edited configuration.
echo "# edited by the operator" >>"$prefix/etc/certn-archiver/certn-archiver.toml"
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
grep -q "^# edited by the operator" "$prefix/etc/certn-archiver/certn-archiver.toml" ||
  { echo "FAIL: a reinstall replaced the edited configuration"; exit 1; }
[[ -f $prefix/etc/certn-archiver/certn-archiver.toml.example ]] || { echo "FAIL: no .example beside it"; exit 1; }
echo "ok: a reinstall keeps the edited configuration"
"$prefix/bin/certn-archiver" version
