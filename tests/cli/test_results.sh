#!/usr/bin/env bash
# What pefa-query returns and reports:
#  1. k hits for every query whenever the index has >= k passages: every mode,
#     exact and graph, k up to the whole set (2,000 SciFact passages);
#     --mode xl -k 1000 gives 1000; --topk-p below k still gives k;
#  2. its metrics follow trec_eval's conventions and agree with the numpy
#     reference on qrels with unjudged queries, scores <= 0, duplicated lines
#     and graded gains: averaged over judged queries only, judged=/skipped=
#     printed, a pair relevant when its summed score is > 0; only the cutoffs
#     k hits can fill are printed (recall@k, ndcg@min(10, k));
#  3. training qrels with scores <= 0 are left out of Y (counted), so a
#     negative line cannot push a passage down.
set -uo pipefail
bin=$(cd "${PEFA_BIN:?}" && pwd); src=$(cd "${PEFA_SRC:?}" && pwd)
d=$src/data/scifact
py=/usr/bin/python3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; }

# a 2,000-passage SciFact subset with the training pairs that fall inside it
$py - "$d" <<'EOF'
import os, sys, numpy as np
d = sys.argv[1]
P = np.load(os.path.join(d, "passages.npy"))[:2000]
pids = open(os.path.join(d, "passage_ids.txt")).read().split("\n")[:2000]
np.save("p.npy", P)
open("pids.txt", "w").write("\n".join(pids) + "\n")
keep = set(pids)
lines = [l for l in open(os.path.join(d, "train_qrels.tsv")).read().split("\n")[1:] if l and l.split("\t")[1] in keep]
open("qrels.tsv", "w").write("".join(l + "\n" for l in lines))
EOF
"$bin"/pefa-build -q -o sub.pefa --passages p.npy --passage-ids pids.txt --queries $d/train_queries.npy \
  --query-ids $d/train_query_ids.txt --qrels qrels.tsv --skip-missing --threads 1 -M 8 --ef-construction 40 2>/dev/null \
  || { echo "build failed"; exit 1; }
T=(--queries $d/test_queries.npy --query-ids $d/test_query_ids.txt)

# ---- 1. k hits -----------------------------------------------------------------------
# hits per query, min and max over the 300 test queries: "min max"
counts() { "$bin"/pefa-query sub.pefa "${T[@]}" "$@" 2>/dev/null | cut -f1 | sort | uniq -c | awk '
  NR == 1 { lo = $1; hi = $1 } { if ($1 < lo) lo = $1; if ($1 > hi) hi = $1 } END { print lo + 0, hi + 0, NR }'; }
want_k() { # label k args...
  local label=$1 k=$2 got; shift 2
  got=$(counts -k "$k" "$@")
  if [ "$got" = "$k $k 300" ]; then ok "$label: $k hits for each of 300 queries"; else bad "$label: -k $k gave (min max queries) $got"; fi
}
want_k "xl, 2000 passages" 1000 --mode xl
want_k "xl, --topk-p 10 below k" 50 --mode xl --topk-p 10
want_k "xl, --topk-p 10 below k, sparse-add" 50 --mode xl --topk-p 10 --xl-scoring sparse-add
for m in "erm" "xs" "xs --lambda 0.3" "xl" "xl --knn 4"; do
  for k in 10 200 1000 2000; do
    # shellcheck disable=SC2086
    want_k "$m graph (ef 50)" $k --mode $m --ef 50
    # shellcheck disable=SC2086
    want_k "$m exact" $k --mode $m --exact
  done
done

# ---- 2. metrics: trec_eval conventions, and the reference agrees ----------------------
# test qrels with: the first 60 test queries unjudged; for 20 queries a
# score-0 and a negative line for a passage ranked in their top 10 (not
# relevant); duplicated lines (gains add up: 2); a line for an unknown query
"$bin"/pefa-build -q -o full.pefa --passages $d/passages.npy --passage-ids $d/passage_ids.txt --no-graphs
"$bin"/pefa-query full.pefa "${T[@]}" --exact -k 10 > top10.tsv 2>/dev/null
$py - "$d" <<'EOF'
import os, sys
d = sys.argv[1]
tq = open(os.path.join(d, "test_query_ids.txt")).read().split()
lines = open(os.path.join(d, "test_qrels.tsv")).read().split("\n")[1:]
lines = [l for l in lines if l and l.split("\t")[0] not in set(tq[:60])]
top = {}
for l in open("top10.tsv"):
    q, r, p, s = l.rstrip("\n").split("\t")
    top.setdefault(q, []).append(p)
extra = []
for q in tq[60:80]:
    extra += [f"{q}\t{top[q][0]}\t0", f"{q}\t{top[q][1]}\t-2"]
for l in lines[:40]:
    extra.append(l)               # the same pair again: gain 2
extra.append("NO-SUCH-QUERY\t123\t1")
open("eval_qrels.tsv", "w").write("query-id\tcorpus-id\tscore\n" + "\n".join(lines + extra) + "\n")
EOF
"$bin"/pefa-query full.pefa "${T[@]}" --exact -k 100 --qrels eval_qrels.tsv --no-output 2>q.err
ours=$(grep '^recall@10=' q.err)
ref=$($py "$src"/tests/reference/pefa_ref.py --data $d --mode erm -k 100 --qrels eval_qrels.tsv 2>/dev/null)
if [ -n "$ours" ] && [ "$ours" = "$ref" ]; then ok "metrics equal the reference's: $ours"; else bad "metrics: pefa-query '$ours', reference '$ref'"; fi
case $ours in *"judged=240 skipped=60"*) ok "judged=240 skipped=60" ;; *) bad "judged/skipped: '$ours'" ;; esac
grep -q "1 lines name queries that are not in" q.err && ok "the unknown query's line is counted" || bad "no warning for the unknown query: $(cat q.err)"
# by hand: a run of one query, its two relevant passages at ranks 1 and 3, one
# of them with gain 2: recall@10 = 1, ndcg@10 = (2/log2(2) + 1/log2(4)) / (2/log2(2) + 1/log2(3))
q0=$(sed -n 61p $d/test_query_ids.txt)
"$bin"/pefa-query full.pefa "${T[@]}" --exact -k 10 2>/dev/null | awk -v q="$q0" '$1 == q' > one.tsv
p1=$(sed -n 1p one.tsv | cut -f3); p3=$(sed -n 3p one.tsv | cut -f3)
printf '%s\t%s\t1\n%s\t%s\t1\n%s\t%s\t1\n' "$q0" "$p1" "$q0" "$p1" "$q0" "$p3" > hand.tsv
# the cutoffs printed are those k hits can fill: recall at 10, 20 below k and at
# k itself below 100, nDCG at min(10, k); k >= 100: recall@10 @20 @100 ndcg@10
by_hand() { # k, the line wanted (%s: nDCG of ranks 1 and 3; %t: of rank 1 and 2 only)
  local line want
  line=$("$bin"/pefa-query full.pefa "${T[@]}" --exact -k "$1" --qrels hand.tsv --no-output 2>&1 | grep '^recall@')
  want=$($py -c 'import math, sys; print(sys.argv[1].replace("%s", "%.4f" % ((2 + 1 / math.log2(4)) / (2 + 1 / math.log2(3)))).replace("%t", "%.4f" % (2 / (2 + 1 / math.log2(3)))))' "$2")
  [ "$line" = "$want" ] && ok "by hand, -k $1: $want" || bad "by hand, -k $1: got '$line', want '$want'"
}
by_hand 1 "recall@1=0.5000 ndcg@1=1.0000 judged=1 skipped=299"
by_hand 2 "recall@2=0.5000 ndcg@2=%t judged=1 skipped=299"
by_hand 5 "recall@5=1.0000 ndcg@5=%s judged=1 skipped=299"
by_hand 10 "recall@10=1.0000 ndcg@10=%s judged=1 skipped=299"
by_hand 15 "recall@10=1.0000 recall@15=1.0000 ndcg@10=%s judged=1 skipped=299"
by_hand 50 "recall@10=1.0000 recall@20=1.0000 recall@50=1.0000 ndcg@10=%s judged=1 skipped=299"
by_hand 100 "recall@10=1.0000 recall@20=1.0000 recall@100=1.0000 ndcg@10=%s judged=1 skipped=299"
by_hand 300 "recall@10=1.0000 recall@20=1.0000 recall@100=1.0000 ndcg@10=%s judged=1 skipped=299"

# evaluation qrels whose passage ids the index does not know: refused before any
# output when none is known (another id scheme), warned with a count when some are
awk -F'\t' 'BEGIN { OFS = "\t" } NR > 1 { $2 = "DOC-" $2 } { print }' $d/test_qrels.tsv > foreign_qrels.tsv
"$bin"/pefa-query full.pefa "${T[@]}" --exact -k 10 --qrels foreign_qrels.tsv > foreign.out 2> foreign.err; rc=$?
nrel=$(tail -n +2 $d/test_qrels.tsv | awk -F'\t' '$3 > 0' | sort -u | wc -l)
if [ $rc -eq 1 ] && [ ! -s foreign.out ] && grep -q "foreign_qrels.tsv: none of the $nrel relevant passages of its test queries is in full.pefa (first: 'DOC-" foreign.err
then ok "qrels naming no passage of the index: exit 1 before any output, names the file"
else bad "qrels naming no passage of the index: exit $rc, $(wc -l < foreign.out) lines out, $(cat foreign.err)"; fi
awk -F'\t' 'BEGIN { OFS = "\t" } NR > 1 && NR % 4 == 0 { $2 = "DOC-" $2 } { print }' $d/test_qrels.tsv > part_qrels.tsv
nunk=$(awk -F'\t' 'NR > 1 && NR % 4 == 0 && $3 > 0' $d/test_qrels.tsv | sort -u | wc -l)
"$bin"/pefa-query full.pefa "${T[@]}" --exact -k 10 --qrels part_qrels.tsv --no-output 2> part.err; rc=$?
if [ $rc -eq 0 ] && grep -q "part_qrels.tsv: $nunk of the $nrel relevant passages of its test queries are not in full.pefa (first: 'DOC-" part.err
then ok "qrels naming some unknown passages: a warning counts them ($nunk of $nrel)"
else bad "qrels naming some unknown passages: exit $rc, $(cat part.err)"; fi
# an index without an id map: a passage's id is its row number as pefa-query writes it
"$bin"/pefa-build -q -o rows.pefa --passages $d/passages.npy --no-graphs
printf '%s\t007\t1\n' "$q0" > rows_qrels.tsv
"$bin"/pefa-query rows.pefa "${T[@]}" --exact --qrels rows_qrels.tsv --no-output 2> rows.err; rc=$?
[ $rc -eq 1 ] && grep -q "(first: '007')" rows.err && ok "row-number ids: '007' is not row 7's id" \
  || bad "row-number ids: exit $rc, $(cat rows.err)"
printf '%s\t7\t1\n' "$q0" > rows_qrels.tsv
"$bin"/pefa-query rows.pefa "${T[@]}" --exact --qrels rows_qrels.tsv --no-output 2> rows.err; rc=$?
[ $rc -eq 0 ] && ! grep -q "not in rows.pefa" rows.err && ok "row-number ids: '7' is known" || bad "row-number ids: exit $rc, $(cat rows.err)"

# a write that fails (disk full) says why: mid-run (300 queries: the buffer
# fills) and at the final flush (2 queries: less than a buffer)
if [ -w /dev/full ]; then
  $py -c 'import sys, numpy as np; np.save("two.npy", np.load(sys.argv[1])[:2])' $d/test_queries.npy
  for qs in "$d/test_queries.npy" two.npy; do
    "$bin"/pefa-query full.pefa --queries "$qs" --exact > /dev/full 2> full.err; rc=$?
    if [ $rc -eq 1 ] && grep -q "writing results to stdout failed: No space left on device" full.err
    then ok "stdout is /dev/full ($(basename "$qs")): exit 1 with the reason"
    else bad "stdout is /dev/full ($(basename "$qs")): exit $rc, $(cat full.err)"; fi
  done
fi

# ---- 3. training qrels with scores <= 0 -------------------------------------------------
# the ERM top passage of the first test query, listed with -5 for every
# training query (and a 0 line): under the old rule its XL score fell below
# passages with no kNN vote at all; now those lines are left out
ptop=$(head -1 top10.tsv | cut -f3)
$py - "$d" "$ptop" <<'EOF'
import os, sys
d, ptop = sys.argv[1], sys.argv[2]
text = open(os.path.join(d, "train_qrels.tsv")).read()
have = {tuple(l.split("\t")[:2]) for l in text.split("\n")[1:] if l}
tq = open(os.path.join(d, "train_query_ids.txt")).read().split()
extra = [f"{q}\t{ptop}\t-5" for q in tq if (q, ptop) not in have]
open("neg_qrels.tsv", "w").write(text + "\n".join(extra) + "\n")
open("neg_count", "w").write(str(len(extra)))
EOF
"$bin"/pefa-build -o neg.pefa --passages $d/passages.npy --passage-ids $d/passage_ids.txt --queries $d/train_queries.npy \
  --query-ids $d/train_query_ids.txt --qrels neg_qrels.tsv --no-graphs 2>build.err; rc=$?
[ $rc -eq 0 ] && ok "qrels with scores <= 0: builds" || bad "qrels with scores <= 0: exit $rc"
nneg=$(cat neg_count)
grep -q "neg_qrels.tsv: $nneg (query, passage) pairs with a total score <= 0 left out" build.err \
  && ok "warning counts the $nneg pairs" || bad "no warning: $(cat build.err)"
grep -q "($nneg left out: score <= 0)" build.err && ok "the build summary counts them" || bad "summary: $(cat build.err)"
"$bin"/pefa-dump neg.pefa | grep -q "^  input.qrels.nonpositive_pairs=$nneg\$" && ok "META records the count" \
  || bad "META lacks input.qrels.nonpositive_pairs=$nneg"
"$bin"/pefa-build -q -o pos.pefa --passages $d/passages.npy --passage-ids $d/passage_ids.txt --queries $d/train_queries.npy \
  --query-ids $d/train_query_ids.txt --qrels $d/train_qrels.tsv --no-graphs
a=$("$bin"/pefa-query neg.pefa "${T[@]}" --mode xl --exact -k 100 2>/dev/null | md5sum)
b=$("$bin"/pefa-query pos.pefa "${T[@]}" --mode xl --exact -k 100 2>/dev/null | md5sum)
[ "$a" = "$b" ] && ok "XL answers as if those lines were absent" || bad "XL answers differ from the index without those lines"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
