#!/bin/bash
# Installs every Debian package certn-archiver needs to build, test and run its demo.
# Idempotent: re-running only checks that the packages are there.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(
  build-essential cmake pkg-config ninja-build lld
  postgresql postgresql-contrib
  libboost-dev libboost-system-dev libsimdjson-dev libspdlog-dev libfmt-dev libpqxx-dev
  doctest-dev libssl-dev libsystemd-dev libtomlplusplus-dev libcli11-dev libzip-dev
  systemd curl jq openssl python3 wrk awscli time
  clang libfuzzer-14-dev libclang-rt-14-dev slowhttptest
  prometheus  # promtool: checks and unit-tests ops/prometheus/alerts.yml
  help2man lintian file dpkg-dev  # the Debian packages (cmake/packaging.cmake) and their check
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi
