#!/bin/bash
# `certn-archiver export` (issue 16): a case as a BagIt bag, in a directory and in a zip, from the
# filesystem store and from S3 (s3rver): the bag validates (bagit.txt, Payload-Oxum, both
# manifests, which `sha256sum -c` also checks), current artifacts by default and every version
# with --all-versions, the export audited; an object that no longer matches its recorded sha256
# fails the export, leaving nothing behind; an existing output is never replaced.
source "$(dirname "$0")/fixture.sh"
command -v jq >/dev/null || fail "jq is not installed"
create_database --migrate
export CERTN_ARCHIVER_STORAGE_PATH=$archive

# object KEY CONTENT KIND SOURCE: writes CONTENT at KEY with PUT (a function given as $put_object)
# and records it as the pipeline would.
object() {
  local key=$1 content=$2 kind=$3 source=$4 sha size
  "$put_object" "$key" "$content"
  sha=$(printf '%s' "$content" | sha256sum | cut -d' ' -f1)
  size=$(printf '%s' "$content" | wc -c)
  q "INSERT INTO artifacts (case_id, kind, source_id, object_key, sha256, size_bytes)
       VALUES ('$case_id', '$kind', '$source', '$key', '$sha', $size)" >/dev/null
}
put_object=put_file
case_id=case-exp-1
object "cases/$case_id/report/r1.pdf" "%PDF-1.4 first report" report r1
object "cases/$case_id/supplementary-information/v1.json" '{"rev":1}' supplementary_information "$case_id"
object "cases/$case_id/supplementary-information/v2.json" '{"rev":2, "more":"text"}' supplementary_information "$case_id"
object "cases/$case_id/supplementary-files/chk-1/f1-id.png" "$(head -c 3000 /dev/urandom | base64 -w0)" supplementary_file f1
object "cases/$case_id/manifest.json" '{"manifest":true}' manifest "$case_id"

# validate_bag DIR N: a valid BagIt 1.0 bag with N payload files, checked with coreutils only.
validate_bag() {
  local dir=$1 files=$2
  [[ $(cat "$dir/bagit.txt") == $'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8' ]] || fail "bagit.txt: $(cat "$dir/bagit.txt")"
  (cd "$dir" && sha256sum -c --quiet --strict manifest-sha256.txt) || fail "manifest-sha256.txt does not check"
  (cd "$dir" && sha256sum -c --quiet --strict tagmanifest-sha256.txt) || fail "tagmanifest-sha256.txt does not check"
  [[ $(wc -l <"$dir/manifest-sha256.txt") -eq $files ]] || fail "manifest lists $(wc -l <"$dir/manifest-sha256.txt") files, not $files"
  [[ $(find "$dir/data" -type f | wc -l) -eq $files ]] || fail "data/ holds $(find "$dir/data" -type f | wc -l) files"
  local bytes oxum
  bytes=$(find "$dir/data" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
  oxum=$(sed -n 's/^Payload-Oxum: //p' "$dir/bag-info.txt")
  [[ $oxum == "$bytes.$files" ]] || fail "Payload-Oxum $oxum, payload $bytes.$files"
  grep -q "^External-Identifier: $case_id$" "$dir/bag-info.txt" || fail "bag-info.txt: $(cat "$dir/bag-info.txt")"
  grep -qE '^Bagging-Date: [0-9]{4}-[0-9]{2}-[0-9]{2}$' "$dir/bag-info.txt" || fail "Bagging-Date: $(cat "$dir/bag-info.txt")"
  [[ $(sort -k2 "$dir/tagmanifest-sha256.txt" | awk '{ print $2 }' | paste -sd' ') == "bag-info.txt bagit.txt manifest-sha256.txt" ]] ||
    fail "tagmanifest: $(cat "$dir/tagmanifest-sha256.txt")"
}

# --- into a directory: the current artifacts ------------------------------------------------------
expect_exit 0 "export to a directory" "$binary" export --case "$case_id" --out "$scratch/bag"
validate_bag "$scratch/bag" 4
[[ -f "$scratch/bag/data/cases/$case_id/supplementary-information/v2.json" &&
   ! -e "$scratch/bag/data/cases/$case_id/supplementary-information/v1.json" ]] ||
  fail "the current bag holds a superseded version: $(find "$scratch/bag/data" -type f)"
cmp "$scratch/bag/data/cases/$case_id/report/r1.pdf" "$archive/cases/$case_id/report/r1.pdf" || fail "report copy differs"
grep -q "^exported case $case_id: 4 artifact(s)" "$scratch/out" || fail "export output: $(cat "$scratch/out")"

# --- into a zip: every version ------------------------------------------------------------------
expect_exit 0 "export --all-versions to a zip" "$binary" export --case "$case_id" --out "$scratch/all.zip" --all-versions
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$scratch/all.zip" "$scratch/unzipped" ||
  fail "the zip does not unpack"
[[ $(ls "$scratch/unzipped") == all ]] || fail "the zip's top directory: $(ls "$scratch/unzipped")"
validate_bag "$scratch/unzipped/all" 5
grep -q "^External-Description: .*every archived version" "$scratch/unzipped/all/bag-info.txt" || fail "scope not said"
[[ -z $(find "$scratch" -maxdepth 1 -name 'all.zip.bag-*') ]] || fail "the staging directory of the zip was left"

# --- never replaces, and a mismatch leaves nothing ----------------------------------------------
expect_exit 1 "export onto an existing zip" "$binary" export --case "$case_id" --out "$scratch/all.zip"
expect_err "export onto an existing zip" "all.zip already exists"
expect_exit 1 "export into a non-empty directory" "$binary" export --case "$case_id" --out "$scratch/bag"
expect_err "export into a non-empty directory" "is not an empty directory"
expect_exit 1 "export of an unknown case" "$binary" export --case nobody --out "$scratch/none.zip"
expect_err "export of an unknown case" "no artifact recorded for case nobody"
printf 'tampered' >>"$archive/cases/$case_id/report/r1.pdf"
expect_exit 1 "export of a changed object" "$binary" export --case "$case_id" --out "$scratch/bad.zip"
expect_err "export of a changed object" "cases/$case_id/report/r1.pdf: recorded sha256 [0-9a-f]{64}, 21 bytes; the store holds sha256 [0-9a-f]{64}, 29 bytes"
expect_err "export of a changed object" "nothing was exported"
[[ -z $(find "$scratch" -maxdepth 1 -name 'bad.zip*') ]] || fail "a failed export left files: $(ls "$scratch")"
mkdir "$scratch/empty"
expect_exit 1 "export of a changed object into a directory" "$binary" export --case "$case_id" --out "$scratch/empty"
[[ -z $(ls -A "$scratch/empty") ]] || fail "a failed export left files in the directory: $(ls -A "$scratch/empty")"

# --- audited ------------------------------------------------------------------------------------
expect_exit 0 "audit of the exports" "$binary" audit --case "$case_id" --json
[[ $(jq -c '[.[] | select(.action == "export") | .detail | test("to .*(bag|all.zip)$")]' "$scratch/out") == '[true,true]' ]] ||
  fail "export audit rows: $(cat "$scratch/out")"

# --- from S3 ------------------------------------------------------------------------------------
s3_env
put_object=put_s3
case_id=case-exp-s3-$RANDOM$RANDOM
# Keys as the pipeline records them: with storage.prefix.
object "archive/cases/$case_id/report/r9.pdf" "%PDF-1.4 from S3" report r9
object "archive/cases/$case_id/manifest.json" '{"manifest":"s3"}' manifest "$case_id"
expect_exit 0 "export from S3 to a zip" "$binary" export --case "$case_id" --out "$scratch/s3.zip"
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$scratch/s3.zip" "$scratch/s3" ||
  fail "the S3 zip does not unpack"
validate_bag "$scratch/s3/s3" 2
grep -q "^Export-Source: s3 " "$scratch/s3/s3/bag-info.txt" || fail "S3 source: $(cat "$scratch/s3/s3/bag-info.txt")"
pass "exports validate as BagIt bags, from the filesystem and from S3"
