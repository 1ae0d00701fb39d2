#!/bin/bash
# A full disk under the filesystem backend: the archive is a 600 KiB tmpfs and the files are
# larger than that. Jobs fail with "No space left on device" and retry; whenever no job is running
# there is no staging file, and every file at a final key is a complete, recorded object. Once the
# tmpfs grows to 64 MiB everything is archived, equal to fresh downloads from Certn.
# Needs root (mount).
source "$(dirname "$0")/fixture.sh"
[[ $EUID -eq 0 ]] || fail "needs root to mount a small tmpfs as the archive"
create_database --migrate
mkdir "$archive"
mount -t tmpfs -o size=600k tmpfs "$archive" || fail "cannot mount a tmpfs at $archive"
on_exit 'umount "$archive" || umount -l "$archive"'
archive_env
export CERTN_ARCHIVER_WORKERS_BACKOFF_MAX_SECONDS=2 CERTN_ARCHIVER_WORKERS_MAX_ATTEMPTS=30
export CERTN_ARCHIVER_WORKERS_POLL_INTERVAL_MS=300
start_serve
start_sim --report-delay-ms 300 --seed 3

# One case whose files are each larger than the whole tmpfs, one whose files fit one at a time.
big=$(create_cases '{"count":1,"file_size":700000}')
small=$(create_cases '{"count":1,"files_per_check":2,"file_size":200000}')
for id in "$big" "$small"; do
  move_case "$id" COMPLETE
done

# Every regular file at a case's final key (not a staging file) is an artifact of that size and
# sha256. (audit/digests/ holds serve's digests of the audit trail, which are not artifacts.)
check_final_keys() {
  local path key row
  while IFS= read -r path; do
    key=${path#"$archive"/}
    row=$(q "SELECT size_bytes || ' ' || sha256 FROM artifacts WHERE object_key = '$key'")
    [[ -n $row ]] || fail "$1: file at $key that no artifact records (partial?), $(stat -c %s "$path") bytes"
    [[ $row == "$(stat -c %s "$path") $(sha256sum "$path" | cut -d' ' -f1)" ]] ||
      fail "$1: $key is not the recorded object ($row)"
  done < <(find "$archive/cases" -type f ! -name '*.tmp')
}

# Full: the supplementary job fails for lack of space, and keeps retrying.
wait_until 30 "no job failing for lack of space" sql_check -ge 1 \
  "SELECT count(*) FROM jobs WHERE kind = 'archive_supplementary' AND state IN ('failed', 'running') AND attempts >= 3 AND last_error ILIKE '%no space left%'"
error=$(q "SELECT last_error FROM jobs WHERE last_error ILIKE '%no space left%' LIMIT 1")
expect_no_dead_job  # a full disk must not make jobs dead
pass "disk full: jobs fail and retry (df: $(df --output=used,size -k "$archive" | tail -1 | xargs) KiB): $error"

# A quiet moment: no job running before and after looking, and no claim in between (attempts
# unchanged). Then no staging file may exist.
quiet=""
deadline=$((SECONDS + 20))
while ((SECONDS < deadline)); do
  before=$(q "SELECT count(*) FILTER (WHERE state = 'running') || ' ' || sum(attempts) FROM jobs")
  if [[ $before == 0\ * ]]; then
    find "$archive" -name '*.tmp' >"$scratch/tmps"
    after=$(q "SELECT count(*) FILTER (WHERE state = 'running') || ' ' || sum(attempts) FROM jobs")
    if [[ $after == "$before" ]]; then
      quiet=1
      break
    fi
  fi
  sleep 0.05
done
[[ -n $quiet ]] || fail "never saw a moment with no job running"
[[ ! -s $scratch/tmps ]] || fail "staging files left behind by failed runs: $(cat "$scratch/tmps")"
check_final_keys "disk full"
pass "between retries: no staging file, every file at a final key complete and recorded"

mount -o remount,size=64m "$archive" || fail "cannot grow the tmpfs"
wait_archived $(((2 + 2 * 2) + 2 * 2)) 30  # 6 files, and a report and supplementary information per case
expect_no_dead_job
pass "space back: everything archived ($(q "SELECT count(*) FROM artifacts") artifacts, $(q "SELECT max(attempts) FROM jobs") attempts at most)"

verify_objects
check_final_keys "at the end"
verify_case "$big" 2
verify_case "$small" 4
pass "every object matches its size and sha256, no temporary file; all 6 files equal fresh downloads"

stop_serve
pass "SIGTERM: drained, exit 0"
