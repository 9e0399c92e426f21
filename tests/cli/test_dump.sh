#!/usr/bin/env bash
# test_dump.sh - pefa-dump on the golden file: human and JSON output,
# --verify on a good and a damaged copy, and the exit-status contract
# (0 OK, 1 runtime failure, 2 bad usage). Run by ctest with PEFA_BIN,
# PEFA_SRC and PEFA_BUILD set.
set -euo pipefail

: "${PEFA_BIN:?PEFA_BIN must name the directory holding pefa-dump}"
: "${PEFA_SRC:?PEFA_SRC must name the source tree}"
DUMP="$PEFA_BIN/pefa-dump"
GOLD="$PEFA_SRC/tests/golden/good/v1-basic.pefa"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pefa-dump-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; }

# run CMD...: captures stdout, stderr and the status without tripping set -e
run() {
    set +e
    "$@" >"$TMP/out" 2>"$TMP/err"
    status=$?
    set -e
}
expect_status() { # name want
    if [ "$status" -eq "$2" ]; then ok "$1 (exit $2)"; else bad "$1: exit $status, want $2"; cat "$TMP/err"; fi
}
expect_grep() { # name file pattern
    if grep -q -- "$3" "$2"; then ok "$1"; else bad "$1: no '$3' in $(basename "$2")"; sed 's/^/    /' "$2"; fi
}

# ---- human summary ----------------------------------------------------------
run "$DUMP" "$GOLD"
expect_status "summary" 0
expect_grep "summary: format version" "$TMP/out" '^format  *1\.0$'
expect_grep "summary: uuid 8-4-4-4-12" "$TMP/out" '^uuid  *[0-9a-f]\{8\}-[0-9a-f]\{4\}-4[0-9a-f]\{3\}-[89ab][0-9a-f]\{3\}-[0-9a-f]\{12\}$'
expect_grep "summary: file size" "$TMP/out" '^file size  *12712 bytes'
expect_grep "summary: all META keys" "$TMP/out" '^  build.created_utc=2024-01-01T00:00:00Z$'
expect_grep "summary: passages" "$TMP/out" '^passages  *4$'
expect_grep "summary: META row" "$TMP/out" '^  0  META  *raw  *bytes  *-  *285  *285  *1.00  *4096  *[0-9a-f]\{16\} yes$'
expect_grep "summary: vectors row" "$TMP/out" '^  1  VECTORS/passages  *raw  *f32  *4x3  *48  *48 .* yes$'
expect_grep "summary: zstd row" "$TMP/out" '^  2  VECTORS/queries  *zstd  *f32  *2x3  *33  *24  *0.73  *12288  *[0-9a-f]\{16\} no$'
if grep -q '^verify:' "$TMP/out"; then bad "summary: verified without --verify"; else ok "summary: no verify line"; fi

run "$DUMP" --sections "$GOLD"
expect_status "--sections" 0
if grep -q '^uuid' "$TMP/out"; then bad "--sections printed the summary"; else ok "--sections: table only"; fi
expect_grep "--sections: rows" "$TMP/out" '^  1  VECTORS/passages  *raw  *f32  *4x3 '

# ---- JSON ---------------------------------------------------------------------
run "$DUMP" --json "$GOLD"
expect_status "--json" 0
if [ "$(wc -l <"$TMP/out")" -eq 1 ]; then ok "--json: one line"; else bad "--json: not one line"; fi
expect_grep "--json: object" "$TMP/out" '^{"file":.*}$'
expect_grep "--json: format" "$TMP/out" '"format":{"major":1,"minor":0}'
expect_grep "--json: size" "$TMP/out" '"file_size":12712,'
expect_grep "--json: meta" "$TMP/out" '"pefa.dim":"3"'
expect_grep "--json: utf-8 kept" "$TMP/out" '"golden.note":"format v1.0 golden file; café = UTF-8"'
expect_grep "--json: section" "$TMP/out" '{"index":1,"kind":2,"kind_name":"VECTORS","target":1,"target_name":"passages","codec":"raw","type":"f32","shape":\[4,3\],"stored_size":48,"raw_size":48,"offset":8192,"xxh3":"[0-9a-f]\{16\}","required":true}'
if command -v python3 >/dev/null 2>&1; then
    if python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d["sections"]) == 3' <"$TMP/out"; then
        ok "--json: parses (python3)"
    else
        bad "--json: does not parse"
    fi
fi

# ---- --verify -------------------------------------------------------------------
run "$DUMP" --verify "$GOLD"
expect_status "--verify good" 0
expect_grep "--verify good: OK" "$TMP/out" '^verify: OK$'

cp "$GOLD" "$TMP/damaged.pefa"
# one byte inside section 1 (VECTORS/passages, offset 8192): open succeeds, verify fails
printf '\x7f' | dd of="$TMP/damaged.pefa" bs=1 seek=8200 conv=notrunc status=none
run "$DUMP" --verify "$TMP/damaged.pefa"
expect_status "--verify damaged" 1
expect_grep "--verify damaged: FAILED" "$TMP/out" '^verify: FAILED: .*checksum mismatch'
expect_grep "--verify damaged: names the section" "$TMP/out" '^verify: FAILED: .*\[section 1 VECTORS/passages\]$'
run "$DUMP" --json --verify "$TMP/damaged.pefa"
expect_status "--json --verify damaged" 1
expect_grep "--json --verify damaged" "$TMP/out" '"verify":{"ok":false,"error":"CHECKSUM","section":1,'
# the same file without --verify: header, directory and META only, so it is fine
run "$DUMP" "$TMP/damaged.pefa"
expect_status "damaged without --verify" 0

# ---- failures -----------------------------------------------------------------------
run "$DUMP" "$TMP/missing.pefa"
expect_status "missing file" 1
expect_grep "missing file: message" "$TMP/err" "^pefa-dump: error: .*missing.pefa: cannot open: No such file or directory$"

run "$DUMP" "$PEFA_SRC/tests/golden/bad/bad-magic.pefa"
expect_status "bad magic" 1
expect_grep "bad magic: message" "$TMP/err" '^pefa-dump: error: .*not a pefa file'

run "$DUMP" "$PEFA_SRC/tests/golden/bad/truncated.pefa"
expect_status "truncated" 1
expect_grep "truncated: message" "$TMP/err" 'truncated'

run "$DUMP" "$GOLD" "$TMP/missing.pefa"
expect_status "one good, one missing" 1
expect_grep "one good, one missing: good still printed" "$TMP/out" '^format  *1\.0$'

run "$DUMP" --no-such-option "$GOLD"
expect_status "bad option" 2
expect_grep "bad option: message" "$TMP/err" "^pefa-dump: error: unknown option '--no-such-option'"
run "$DUMP"
expect_status "no file" 2

run "$DUMP" --help
expect_status "--help" 0
expect_grep "--help on stdout" "$TMP/out" '^Usage: pefa-dump'
run "$DUMP" --version
expect_status "--version" 0
expect_grep "--version" "$TMP/out" '^pefa-dump (pefa [0-9]'

# ---- one meaning for -V, file names, write errors -----------------------------------
run "$DUMP" -V
expect_status "-V is --version" 0
expect_grep "-V prints the version" "$TMP/out" '^pefa-dump (pefa [0-9]'
run "$DUMP" -V "$GOLD"
expect_status "-V with a FILE: usage error, not a silent skip of --verify" 2
expect_grep "-V with a FILE: says --verify" "$TMP/err" 'takes no FILE (to check files: --verify)'
run "$DUMP" --sections "$GOLD" "$GOLD"
expect_status "two files" 0
if [ "$(grep -c "^==> $GOLD <==\$" "$TMP/out")" -eq 2 ]; then ok "two files: a header naming each"; else bad "two files: no header per file"; fi
run "$DUMP" "$GOLD"
if grep -q '^==> ' "$TMP/out"; then bad "one file: header printed"; else ok "one file: no header"; fi
if [ -w /dev/full ]; then
    set +e; "$DUMP" "$GOLD" > /dev/full 2>"$TMP/err"; status=$?; set -e
    expect_status "stdout is /dev/full" 1
    expect_grep "stdout is /dev/full: message" "$TMP/err" 'writing to stdout failed'
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
