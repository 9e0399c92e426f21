#!/usr/bin/env bash
# tests/golden/good/v1-pefa-full.pefa is a complete PEFA v1.0 file (META, all
# vector sets, Y, three graphs) written by pefa 0.1.0. Every later version must
# keep opening and verifying it, and answer its queries exactly as recorded.
set -uo pipefail
bin=$(cd "${PEFA_BIN:?}" && pwd); src=$(cd "${PEFA_SRC:?}" && pwd)
g=$src/tests/golden/good
pass=0; fail=0
if "$bin"/pefa-dump --verify "$g"/v1-pefa-full.pefa >/dev/null; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: verify"; fi
got=$(for m in "erm" "xs" "xl --knn 4"; do "$bin"/pefa-query "$g"/v1-pefa-full.pefa --queries "$g"/v1-pefa-queries.npy --mode $m -k 5 --exact 2>/dev/null; done)
if [ "$got" = "$(cat "$g"/v1-pefa-full.expected.tsv)" ]; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: answers differ from v1-pefa-full.expected.tsv"; diff <(echo "$got") "$g"/v1-pefa-full.expected.tsv | head; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
