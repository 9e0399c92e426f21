#!/usr/bin/env bash
# Shard sets on SciFact (issue 14): three shards built independently
# (pefa-build --shard I/3, one thread) and tied by pefa-shardset answer like
# the unsharded index: with --exact, byte-identical runs (ids, ranks and
# scores) for every mode; with HNSW, recall@100 against the test qrels within
# 0.01 of the unsharded index's. A set with a missing, foreign, damaged or
# mismatched shard is refused with the file named.
set -euo pipefail
bin=$(cd "${PEFA_BIN:?}" && pwd); src=$(cd "${PEFA_SRC:?}" && pwd)
d=$src/data/scifact
py=/usr/bin/python3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok: $*"; }
bad() { fail=$((fail+1)); echo "FAILED: $*"; }

in=(--passages $d/passages.npy --passage-ids $d/passage_ids.txt --queries $d/train_queries.npy
    --query-ids $d/train_query_ids.txt --qrels $d/train_qrels.tsv --threads 1)
"$bin"/pefa-build -q -o "$tmp"/full.pefa "${in[@]}"
for i in 0 1 2; do "$bin"/pefa-build -q -o "$tmp"/s$i.pefa "${in[@]}" --shard $i/3; done
"$bin"/pefa-shardset -o "$tmp"/set.pefaset "$tmp"/s2.pefa "$tmp"/s0.pefa "$tmp"/s1.pefa 2>/dev/null
"$bin"/pefa-dump --verify "$tmp"/set.pefaset | grep -q '^verify: OK' && ok "pefa-dump --verify on the set" || bad "set verify"
"$bin"/pefa-dump "$tmp"/set.pefaset > "$tmp"/set.dump
grep -q '^passages       5183$' "$tmp"/set.dump && grep -q '^shards         3$' "$tmp"/set.dump \
  && ok "pefa-dump on the manifest: the set's passages and shards" || bad "manifest summary: $(head -8 "$tmp"/set.dump)"

q=(--queries $d/test_queries.npy --query-ids $d/test_query_ids.txt -k 100)
modes=("erm" "xs" "xs --lambda 0.3" "xl --lambda 0.1 --knn 16" "xl --lambda 0.1 --knn 16 --xl-scoring sparse-add"
       "xl --lambda 0.5 --knn 32 --knn-norm v1" "xl --lambda 0.3 --knn 8 --topk-p 50")
for m in "${modes[@]}"; do
  # shellcheck disable=SC2086
  "$bin"/pefa-query "$tmp"/full.pefa "${q[@]}" --mode $m --exact > "$tmp"/a.tsv 2>/dev/null
  # shellcheck disable=SC2086
  "$bin"/pefa-query "$tmp"/set.pefaset "${q[@]}" --mode $m --exact > "$tmp"/b.tsv 2>/dev/null
  cmp -s "$tmp"/a.tsv "$tmp"/b.tsv && ok "exact $m: the set's run equals the unsharded one" || bad "exact $m differs"
  # shellcheck disable=SC2086
  ra=$("$bin"/pefa-query "$tmp"/full.pefa "${q[@]}" --mode $m --qrels $d/test_qrels.tsv --no-output 2>&1 | sed -nE 's/.*recall@100=([0-9.]+).*/\1/p')
  # shellcheck disable=SC2086
  rb=$("$bin"/pefa-query "$tmp"/set.pefaset "${q[@]}" --mode $m --qrels $d/test_qrels.tsv --no-output 2>&1 | sed -nE 's/.*recall@100=([0-9.]+).*/\1/p')
  $py -c "import sys; sys.exit(0 if abs($ra - $rb) <= 0.01 else 1)" && ok "hnsw $m: recall@100 $rb (unsharded $ra)" || bad "hnsw $m: $rb vs $ra"
done
"$bin"/pefa-query "$tmp"/set.pefaset "${q[@]}" --mode xl --exact --explain --format jsonl > "$tmp"/e.jsonl 2>/dev/null
"$bin"/pefa-query "$tmp"/full.pefa "${q[@]}" --mode xl --exact --explain --format jsonl > "$tmp"/f.jsonl 2>/dev/null
cmp -s "$tmp"/e.jsonl "$tmp"/f.jsonl && ok "--explain on the set equals the unsharded one" || bad "explain differs"

refuse() { # label, expected text, args...
  local label=$1 want=$2 rc=0; shift 2
  "$@" > "$tmp"/r.err 2>&1 || rc=$?
  if [ $rc -ne 0 ] && grep -q -- "$want" "$tmp"/r.err; then ok "$label"; else bad "$label: exit $rc, $(cat "$tmp"/r.err)"; fi
}
refuse "one shard alone" "open the set's manifest" "$bin"/pefa-query "$tmp"/s0.pefa "${q[@]}" --mode xl
usage() { # label, expected text, args...: a usage error (exit 2) with that text
  local label=$1 want=$2 rc=0; shift 2
  "$@" > "$tmp"/r.err 2>&1 || rc=$?
  if [ $rc -eq 2 ] && grep -qF -- "$want" "$tmp"/r.err; then ok "$label"; else bad "$label: exit $rc, $(cat "$tmp"/r.err)"; fi
}
shards=("$tmp"/s0.pefa "$tmp"/s1.pefa "$tmp"/s2.pefa)
mkfifo "$tmp"/fifo   # stands in for a device
usage "-o a FIFO (as for a device)" "fifo: is a FIFO (named pipe), not a regular file" "$bin"/pefa-shardset -o "$tmp"/fifo "${shards[@]}"
[ -p "$tmp"/fifo ] && ok "the FIFO is still there" || bad "the FIFO was replaced"
echo "some notes" > "$tmp"/notes.txt
usage "-o a file that is not a pefa index" "notes.txt: the file there is not a pefa index; not replacing it" \
  "$bin"/pefa-shardset -o "$tmp"/notes.txt "${shards[@]}"
grep -q "some notes" "$tmp"/notes.txt && ok "notes.txt is untouched" || bad "notes.txt was replaced"
cp "$tmp"/s2.pefa "$tmp"/s2.copy
cp "$tmp"/full.pefa "$tmp"/idx_copy.pefa
usage "-o an index (or a shard of another set)" "idx_copy.pefa is a pefa index, not a set's manifest: not replacing it" \
  "$bin"/pefa-shardset -o "$tmp"/idx_copy.pefa "${shards[@]}"
cmp -s "$tmp"/full.pefa "$tmp"/idx_copy.pefa && ok "the index is untouched" || bad "the index was replaced"
usage "-o one of the shards" "-o $tmp/s2.pefa is the shard input $tmp/s2.pefa" "$bin"/pefa-shardset -o "$tmp"/s2.pefa "${shards[@]}"
usage "-o one of the shards, spelt another way" "is the shard input $tmp/s0.pefa" "$bin"/pefa-shardset -o "$tmp"/./s0.pefa "${shards[@]}"
cmp -s "$tmp"/s2.pefa "$tmp"/s2.copy && ok "the shard named by -o is untouched" || bad "s2.pefa was overwritten"
# the manifest opens its shards from its own directory: shards elsewhere are refused when it is written
mkdir -p "$tmp"/nu/other_dir
cp "${shards[@]}" "$tmp"/s[0-2].pefa.*.ids "$tmp"/nu/other_dir/
(cd "$tmp" && usage "shards outside the manifest's directory" \
  "nu/other_dir/s0.pefa: not in the manifest's directory $tmp/nu" "$bin"/pefa-shardset -o "$tmp"/nu/set.pefaset nu/other_dir/s0.pefa nu/other_dir/s1.pefa nu/other_dir/s2.pefa)
[ ! -e "$tmp"/nu/set.pefaset ] && ok "no manifest written for shards elsewhere" || bad "nu/set.pefaset exists"
(cd "$tmp"/nu && "$bin"/pefa-shardset -o ./other_dir/../other_dir/set.pefaset other_dir/s0.pefa "$tmp"/nu/other_dir/s1.pefa ./other_dir/s2.pefa 2>/dev/null) \
  && "$bin"/pefa-dump --verify "$tmp"/nu/other_dir/set.pefaset | grep -q '^verify: OK' \
  && ok "the same directory spelt three ways is accepted" || bad "the same directory spelt differently was refused"
mv "$tmp"/s1.pefa "$tmp"/s1.away
refuse "a missing shard" "s1.pefa: shard 1 of set" "$bin"/pefa-query "$tmp"/set.pefaset "${q[@]}"
"$bin"/pefa-build -q -o "$tmp"/s1.pefa "${in[@]}" --shard 1/3 --seed 7   # another build's shard 1
refuse "a foreign shard (another build)" "not shard 1 of set" "$bin"/pefa-query "$tmp"/set.pefaset "${q[@]}"
refuse "a shard set of mismatched builds" "differ in build.seed" "$bin"/pefa-shardset -o "$tmp"/x.pefaset "$tmp"/s0.pefa "$tmp"/s1.pefa "$tmp"/s2.pefa
mv "$tmp"/s1.away "$tmp"/s1.pefa
printf '\x01' | dd of="$tmp"/s2.pefa bs=1 seek=200000 conv=notrunc status=none
refuse "a damaged shard" "s2.pefa: shard 2 differs" "$bin"/pefa-dump --verify "$tmp"/set.pefaset
refuse "a shard given twice" "are both shard 0" "$bin"/pefa-shardset -o "$tmp"/x.pefaset "$tmp"/s0.pefa "$tmp"/s0.pefa "$tmp"/s1.pefa
refuse "too few shards" "but 2 files were given" "$bin"/pefa-shardset -o "$tmp"/x.pefaset "$tmp"/s0.pefa "$tmp"/s1.pefa
refuse "not a shard" "not a shard" "$bin"/pefa-shardset -o "$tmp"/x.pefaset "$tmp"/full.pefa
[ ! -e "$tmp"/x.pefaset ] && ok "no manifest written by the refused commands" || bad "x.pefaset exists"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
