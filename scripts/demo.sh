#!/usr/bin/env bash
# demo.sh - README command one: installs what is missing, builds pefa, builds an
# index from the embedded SciFact data and prints Recall@10/@100 for ERM,
# PEFA-XS and PEFA-XL side by side.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPEFA_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
bin=build/tools
d=data/scifact
out=build/demo
mkdir -p "$out"
echo "== building the index from $d (5,183 passages, 809 training queries, 919 pairs; one thread, seed 42: the same graphs, so the same figures, on every run)"
"$bin"/pefa-build -o "$out"/scifact.pefa --passages $d/passages.npy --passage-ids $d/passage_ids.txt \
  --queries $d/train_queries.npy --query-ids $d/train_query_ids.txt --qrels $d/train_qrels.tsv \
  --lambda 0.5 --encoder "glove-100 idf-mean (data/scifact/derive.py)" --threads 1 --seed 42 --tune
# one build thread and a seed: the same index, and the same figures, on every run
echo
"$bin"/pefa-dump "$out"/scifact.pefa | head -n 12 || true
echo
echo "== 300 test queries, top 100, HNSW search (default ef), recall against test qrels"
q=(--queries $d/test_queries.npy --query-ids $d/test_query_ids.txt --qrels $d/test_qrels.tsv -k 100 --no-output)
row() { # label, args...
  local label=$1; shift
  local line
  line=$("$bin"/pefa-query "$out"/scifact.pefa "${q[@]}" "$@" 2>&1 >/dev/null | grep '^recall@10=')
  printf '%-40s %s\n' "$label" "$(echo "$line" | sed -E 's/.*recall@10=([0-9.]+).*recall@100=([0-9.]+).*/R@10 \1   R@100 \2/')"
}
row "ERM (frozen encoder)" --mode erm
row "PEFA-XS (lambda 0.5)" --mode xs
row "PEFA-XL (lambda 0.1, k 16, exact)" --mode xl --lambda 0.1 --knn 16
row "PEFA-XL (lambda 0.1, k 16, sparse-add)" --mode xl --lambda 0.1 --knn 16 --xl-scoring sparse-add
tuned=$("$bin"/pefa-dump "$out"/scifact.pefa | sed -nE 's/^tuned +([a-z]+( lambda [0-9.]+)?( k [0-9]+)?).*/\1/p')
row "PEFA tuned, no flags ($tuned)"
echo
echo "Ids in every output are SciFact's own, e.g.:"
# (the run goes to a file first: head closing the pipe early would kill pefa-query by SIGPIPE)
"$bin"/pefa-query "$out"/scifact.pefa --queries $d/test_queries.npy --query-ids $d/test_query_ids.txt \
  --mode xl --lambda 0.1 --knn 16 -k 3 > "$out"/demo-run.tsv 2>/dev/null
head -n 3 "$out"/demo-run.tsv
