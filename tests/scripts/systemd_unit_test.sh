#!/bin/bash
# Checks systemd/certn-archiver.service with `systemd-analyze verify`, offline.
# Usage: systemd_unit_test.sh <path-to-built-certn-archiver> <project-source-dir>
# Fails when verify exits non-zero or prints anything at all: unknown keys and bad values only
# warn (exit 0), and a warning means systemd would ignore part of the unit.
# No fixture.sh: it starts nothing and needs no database or scratch state of its own.
set -uo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 <path-to-built-certn-archiver> <project-source-dir>" >&2
  exit 2
fi
binary=$(realpath -- "$1") || { echo "no such binary: $1"; exit 1; }
unit="$2/systemd/certn-archiver.service"
[ -f "$unit" ] || { echo "missing $unit"; exit 1; }
[ -x "$binary" ] || { echo "not executable: $binary"; exit 1; }
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found"; exit 1; }

work=$(mktemp -d /tmp/systemd_unit_test.XXXXXX)
trap 'rm -rf -- "$work"' EXIT
copy="$work/certn-archiver.service"

# verify checks that each command's binary exists, so point them at the one just built.
installed=/usr/local/bin/certn-archiver
grep -q "^ExecStart=$installed " "$unit" || { echo "ExecStart does not start with $installed"; exit 1; }
sed "s#$installed #$binary #g" "$unit" > "$copy"

out=$(systemd-analyze verify --man=no "$copy" 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
  echo "systemd-analyze verify failed (exit $rc):"
  echo "$out"
  exit 1
fi
echo "systemd-analyze verify: clean"

# Informational only: the exposure score (lower is better) with its one-line summary.
security=$(systemd-analyze security --offline=yes "$copy" 2>&1)
grep -i "overall exposure" <<<"$security" || echo "systemd-analyze security: $security" | tail -n 3
exit 0
