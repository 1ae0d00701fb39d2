#!/bin/bash
# ctest-timeout: 300
# The soak with faults (tests/soak/run.sh, which says what it does and checks) in CI size: 75 s of
# faults, one fault every 5 s (kill -9 of either replica, PostgreSQL and S3 restarts, windows of
# 429s, 500s, slow answers, a rate limit, expired URLs), a light load (2 cases every 2 s, small
# files, a 6 MiB file for a multipart upload every 10th batch) that an ASan -O0 build also keeps
# up with, and at most 100 s to settle. Fails on any violation of the invariants. Runs its own
# PostgreSQL and s3rver: TEST_PG_DSN's server is never restarted.
binary=$1
source_dir=$2
SOAK_ARCHIVER_BIN=$binary SOAK_LOAD_PERIOD=2 SOAK_CASES_PER_STEP=2 SOAK_FILE_SIZE=20000 \
  SOAK_BIG_FILE_SIZE=6291456 SOAK_FAULT_PERIOD=5 SOAK_SETTLE_SECONDS=100 SOAK_SAMPLE_CASES=4 \
  exec bash "$source_dir/tests/soak/run.sh" 75
