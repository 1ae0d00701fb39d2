#!/bin/bash
# The Debian packages (cmake/packaging.cmake): cpack builds certn-archiver and certn-archiver-sim,
# lintian reports no error, each holds the files it should (and the conffile), and the packaged
# programs, extracted into a scratch root with dpkg -x, run: --version and --help, the unit passes
# systemd-analyze verify as installed, serve refuses the packaged configuration without secrets
# (naming the setting), and serves once it is filled in.
# The sanitizer build is not packaged (no man pages there): skipped (77).
# ctest-timeout: 300
source "$(dirname "$0")/fixture.sh"
build_dir=$(dirname "$(realpath "$binary")")
if grep -q '^ARCHIVER_SANITIZE:BOOL=ON' "$build_dir/CMakeCache.txt"; then
  echo "skipped: the sanitizer build is not packaged"
  exit 77
fi
for tool in cpack lintian dpkg-deb systemd-analyze; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/install-deps.sh)"
done
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build_dir/CMakeCache.txt")
[[ -n $version ]] || fail "no project version in $build_dir/CMakeCache.txt"

packages=$scratch/packages
(cd "$build_dir" && cpack -G DEB -B "$packages" >"$scratch/cpack.log" 2>&1) ||
  fail "cpack: $(tail -20 "$scratch/cpack.log")"
arch=$(dpkg --print-architecture)
main_deb=$packages/certn-archiver_${version}_${arch}.deb
sim_deb=$packages/certn-archiver-sim_${version}_${arch}.deb
[[ -f $main_deb && -f $sim_deb ]] || fail "packages missing: $(ls "$packages")"
pass "cpack built $(basename "$main_deb") and $(basename "$sim_deb")"

lintian --fail-on error "$main_deb" "$sim_deb" >"$scratch/lintian.log" 2>&1 ||
  fail "lintian: $(cat "$scratch/lintian.log")"
! grep -q '^E:' "$scratch/lintian.log" || fail "lintian errors: $(grep '^E:' "$scratch/lintian.log")"
pass "lintian reports no error$(grep -c '^W:' "$scratch/lintian.log" | sed 's/^0$//; s/^[1-9].*/ (warnings: &)/')"

dpkg-deb -c "$main_deb" | awk '{print $6}' | sed 's|^\./||' >"$scratch/main.files"
dpkg-deb -c "$sim_deb" | awk '{print $6}' | sed 's|^\./||' >"$scratch/sim.files"
for path in usr/bin/certn-archiver etc/certn-archiver/certn-archiver.toml \
  lib/systemd/system/certn-archiver.service usr/share/man/man1/certn-archiver.1.gz \
  usr/share/doc/certn-archiver/copyright usr/share/doc/certn-archiver/changelog.gz \
  usr/share/certn-archiver/migrations/0001_initial.sql \
  usr/share/certn-archiver/ops/prometheus/alerts.yml usr/share/certn-archiver/ops/grafana/certn-archiver.json; do
  grep -qx "$path" "$scratch/main.files" || fail "certn-archiver lacks $path"
done
for path in usr/bin/certn-sim usr/share/man/man1/certn-sim.1.gz usr/share/doc/certn-archiver-sim/copyright; do
  grep -qx "$path" "$scratch/sim.files" || fail "certn-archiver-sim lacks $path"
done
! grep -q 'certn-sim' "$scratch/main.files" || fail "certn-archiver ships certn-sim"
! grep -q '^usr/local' "$scratch/main.files" "$scratch/sim.files" || fail "files under usr/local"
[[ $(dpkg-deb -f "$main_deb" Package Version | tr '\n' ' ') == "Package: certn-archiver Version: $version " ]] ||
  fail "control: $(dpkg-deb -f "$main_deb" Package Version)"
dpkg-deb -e "$main_deb" "$scratch/control"
[[ $(cat "$scratch/control/conffiles") == /etc/certn-archiver/certn-archiver.toml ]] ||
  fail "conffiles: $(cat "$scratch/control/conffiles" 2>&1)"
pass "file lists as expected; /etc/certn-archiver/certn-archiver.toml is a conffile"

root=$scratch/root
dpkg -x "$main_deb" "$root"
dpkg -x "$sim_deb" "$root"
out=$("$root/usr/bin/certn-archiver" --version) || fail "certn-archiver --version"
[[ $out == "certn-archiver $version" ]] || fail "--version printed '$out'"
out=$("$root/usr/bin/certn-sim" --version) || fail "certn-sim --version"
[[ $out == "certn-sim $version" ]] || fail "certn-sim --version printed '$out'"
"$root/usr/bin/certn-archiver" --help | grep -q "Exit status: 0 success" || fail "--help lacks the exit status"
"$root/usr/bin/certn-sim" --help | grep -q "listen" || fail "certn-sim --help"
zcat "$root/usr/share/man/man1/certn-archiver.1.gz" | grep -q '^\.SH "EXIT STATUS\|Exit status' ||
  fail "the man page does not document the exit status"
pass "the packaged programs run: --version ($version) and --help; the man page has the exit status"

unit=$root/lib/systemd/system/certn-archiver.service
grep -qx 'ExecStart=/usr/bin/certn-archiver --config /etc/certn-archiver/certn-archiver.toml serve' "$unit" ||
  fail "ExecStart: $(grep ExecStart "$unit")"
[[ $(grep -c '/usr/bin/certn-archiver copy-secrets --from /etc/certn-archiver --to %t/certn-archiver$' "$unit") -eq 2 ]] ||
  fail "ExecStartPre/ExecReload do not copy the secrets: $(grep -E 'ExecStartPre|ExecReload' "$unit")"
sed "s#/usr/bin/certn-archiver #$root/usr/bin/certn-archiver #g" "$unit" >"$scratch/certn-archiver.service"
out=$(systemd-analyze verify --man=no "$scratch/certn-archiver.service" 2>&1) && [[ -z $out ]] ||
  fail "systemd-analyze verify: $out"
pass "the installed unit starts /usr/bin/certn-archiver and passes systemd-analyze verify"

# What the unit does, by hand: copy-secrets (ExecStartPre=+) from a stand-in for
# /etc/certn-archiver into a stand-in for the RuntimeDirectory, owned by the service's user
# (nobody here), then serve with the unit's environment.
etc_dir=$scratch/etc-certn-archiver
runtime=$scratch/run-certn-archiver
mkdir -p "$etc_dir" "$runtime"
chmod 700 "$runtime"
[[ $EUID -ne 0 ]] || chown nobody:nogroup "$runtime"
copy_secrets() {
  "$root/usr/bin/certn-archiver" copy-secrets --from "$etc_dir" --to "$runtime" 2>>"$scratch/copy.log" ||
    fail "copy-secrets: $(cat "$scratch/copy.log")"
}
copy_secrets
for name in webhook-secrets certn-api-key database-url; do
  [[ $(cat "$runtime/$name") == "" && $(stat -c %a "$runtime/$name") == 400 ]] ||
    fail "$name, missing, copied as '$(cat "$runtime/$name")' mode $(stat -c %a "$runtime/$name")"
  [[ $(stat -c %U "$runtime/$name") == $(stat -c %U "$runtime") ]] ||
    fail "$name owned by $(stat -c %U "$runtime/$name"), not the service's user"
done
grep -q "webhook-secrets is missing: an empty value" "$scratch/copy.log" || fail "no word of the missing file"
[[ ! -e $runtime/s3-access-key-id ]] || fail "an optional secret copied though absent"
printf 'AKIDEXAMPLE\n' >"$etc_dir/s3-access-key-id"
chmod 600 "$etc_dir/s3-access-key-id"
copy_secrets
[[ $(cat "$runtime/s3-access-key-id") == AKIDEXAMPLE && $(stat -c %a "$runtime/s3-access-key-id") == 400 ]] ||
  fail "s3-access-key-id not copied"
rm "$etc_dir/s3-access-key-id"
copy_secrets
[[ ! -e $runtime/s3-access-key-id ]] || fail "a copy outlived its source"
packaged=(env -i PATH=/usr/bin:/bin
  CERTN_ARCHIVER_WEBHOOK_SECRETS_FILE="$runtime/webhook-secrets"
  CERTN_ARCHIVER_CERTN_API_KEY_FILE="$runtime/certn-api-key"
  CERTN_ARCHIVER_DATABASE_URL_FILE="$runtime/database-url"
  CERTN_ARCHIVER_STORAGE_PATH="$scratch/archive" CERTN_ARCHIVER_SERVER_LISTEN="127.0.0.1:$port"
  "$root/usr/bin/certn-archiver" --config "$root/etc/certn-archiver/certn-archiver.toml")
rc=0
"${packaged[@]}" serve 2>"$scratch/unfilled.log" || rc=$?
[[ $rc -eq 2 ]] || fail "serve without secrets exited $rc: $(cat "$scratch/unfilled.log")"
grep -q "database.url: empty" "$scratch/unfilled.log" ||
  fail "serve without a database URL said: $(cat "$scratch/unfilled.log")"
create_database
printf '%s\n' "$db_dsn" >"$etc_dir/database-url"
chmod 600 "$etc_dir/database-url"
copy_secrets
rc=0
"${packaged[@]}" serve 2>"$scratch/unfilled.log" || rc=$?
[[ $rc -eq 2 ]] || fail "serve without webhook secrets exited $rc: $(cat "$scratch/unfilled.log")"
grep -q "webhook.secrets: at least one secret is required" "$scratch/unfilled.log" ||
  fail "serve without webhook secrets said: $(cat "$scratch/unfilled.log")"
pass "copy-secrets gives the service's user its secret files (0400); without them serve exits 2 naming database.url, then webhook.secrets"

printf 'package-test-secret\n' >"$etc_dir/webhook-secrets"
chmod 600 "$etc_dir/webhook-secrets"
copy_secrets
"${packaged[@]}" migrate 2>"$scratch/migrate.log" || fail "migrate: $(cat "$scratch/migrate.log")"
"${packaged[@]}" serve 2>"$scratch/filled.log" &
packaged_pid=$!
track "$packaged_pid" KILL
wait_for curl -sf "http://127.0.0.1:$port/readyz" || fail "packaged serve not ready: $(cat "$scratch/filled.log")"
body=$(curl -sf "http://127.0.0.1:$port/webhooks/certn?challenge=packaged") || fail "challenge"
[[ $body == packaged ]] || fail "challenge answered '$body'"
# systemctl reload: ExecReload= copies the secrets again, then sends SIGHUP.
printf 'package-test-secret\nnext-secret\n' >"$etc_dir/webhook-secrets"
copy_secrets
kill -HUP "$packaged_pid"
wait_for grep -q "webhook.secrets: 2 secret(s) accepted" "$scratch/filled.log" ||
  fail "the reload did not apply the new secret file: $(tail -5 "$scratch/filled.log")"
kill -TERM "$packaged_pid"
rc=0
wait "$packaged_pid" || rc=$?
untrack "$packaged_pid"
[[ $rc -eq 0 ]] || fail "packaged serve exited $rc after SIGTERM: $(tail -5 "$scratch/filled.log")"
pass "with its secrets and a database filled in, the packaged serve runs on the packaged config; a reload takes a rotated secret"
