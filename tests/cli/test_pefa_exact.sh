#!/usr/bin/env bash
# On SciFact: (1) with --exact, every mode's top-100 ids and scores match the
# independent numpy reference (tests/reference/pefa_ref.py): same ids except
# exact ties, scores within 1e-5; (2) with the default ef, HNSW answers have
# recall@100 >= 0.99 against the --exact answers, for every mode; (3) the
# exact quality figures are the ones data/scifact/README.md reports.
set -euo pipefail
bin=$(cd "${PEFA_BIN:?}" && pwd); src=$(cd "${PEFA_SRC:?}" && pwd)
d=$src/data/scifact
py=/usr/bin/python3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
check() { if "$@"; then pass=$((pass+1)); else echo "FAILED: $*"; fail=$((fail+1)); fi; }

"$bin"/pefa-build -q -o "$tmp"/sf.pefa --passages $d/passages.npy --passage-ids $d/passage_ids.txt \
  --queries $d/train_queries.npy --query-ids $d/train_query_ids.txt --qrels $d/train_qrels.tsv --lambda 0.5 --threads 1
q=(--queries $d/test_queries.npy --query-ids $d/test_query_ids.txt -k 100)
modes=("erm" "xs" "xs --lambda 0.3" "xl --lambda 0.1 --knn 16" "xl --lambda 0.1 --knn 16 --xl-scoring sparse-add"
       "xl --lambda 0.5 --knn 32 --knn-norm v1" "xl --lambda 0.3 --knn 8 --topk-p 50")
for m in "${modes[@]}"; do
  name=$(echo "$m" | tr ' ' '_')
  # shellcheck disable=SC2086
  $py "$src"/tests/reference/pefa_ref.py --data $d --mode $m -k 100 --out "$tmp/ref_$name.tsv" >/dev/null
  # shellcheck disable=SC2086
  "$bin"/pefa-query "$tmp"/sf.pefa "${q[@]}" --mode $m --exact > "$tmp/exact_$name.tsv" 2>/dev/null
  # shellcheck disable=SC2086
  "$bin"/pefa-query "$tmp"/sf.pefa "${q[@]}" --mode $m > "$tmp/ann_$name.tsv" 2>/dev/null
  echo "-- mode $m"
  check $py "$src"/tests/cli/compare_runs.py exact "$tmp/ref_$name.tsv" "$tmp/exact_$name.tsv" --tol 1e-5
  check $py "$src"/tests/cli/compare_runs.py recall "$tmp/exact_$name.tsv" "$tmp/ann_$name.tsv" --k 100 --min 0.99
done

# quality: the exact figures (data/scifact/README.md), to 3 decimals
metric() { "$bin"/pefa-query "$tmp"/sf.pefa "${q[@]}" --qrels $d/test_qrels.tsv --no-output --exact "$@" 2>&1 | grep '^recall@10='; }
expect() { # label, line, key, value
  local got; got=$(echo "$2" | sed -E "s/.*$3=([0-9.]+).*/\1/")
  if $py -c "import sys; sys.exit(0 if abs($got-$4) < 5e-4 else 1)"; then pass=$((pass+1)); echo "$1 $3=$got"; else fail=$((fail+1)); echo "FAILED: $1 $3=$got, expected $4"; fi
}
l=$(metric --mode erm); expect ERM "$l" recall@10 0.3461; expect ERM "$l" recall@100 0.5925
l=$(metric --mode xs); expect XS "$l" recall@10 0.5514
l=$(metric --mode xl --lambda 0.1 --knn 16); expect XL-exact "$l" recall@100 0.8067
l=$(metric --mode xl --lambda 0.1 --knn 16 --xl-scoring sparse-add); expect XL-sparse-add "$l" recall@100 0.7250

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
