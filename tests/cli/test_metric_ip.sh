#!/usr/bin/env bash
# pefa-build --metric ip: raw inner product, for encoders whose norms carry
# signal. On data where they do (passage norms spread over 0.2..5):
#  1. --metric ip --exact: ERM top-10 equals the numpy true-MIPS top-10
#     (overlap 1.0), where a cosine index scores far lower;
#  2. every mode, --exact, matches the numpy reference run with --metric ip
#     (tests/reference/pefa_ref.py: z_j the Y-weighted mean, no normalisation);
#  3. the HNSW graphs find >= 0.95 of the exact top-10 in every mode;
#  4. the file says so: META pefa.metric=ip, header flag 0x1 (format [P2]);
#  5. rows whose squared norm is no float32 are refused under ip (build: the
#     file and row; pefa-query: before any output); cosine normalises them.
set -uo pipefail
bin=$(cd "${PEFA_BIN:?}" && pwd); src=$(cd "${PEFA_SRC:?}" && pwd)
py=/usr/bin/python3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
pass=0; fail=0
check() { if "$@"; then pass=$((pass+1)); else echo "FAILED: $*"; fail=$((fail+1)); fi; }

mkdir data
$py - data <<'EOF'
import os, sys, numpy as np
out = sys.argv[1]
rng = np.random.default_rng(7)
n_p, n_tr, n_te, d = 3000, 600, 200, 32
centers = rng.normal(size=(40, d))
def dirs(n):
    x = centers[rng.integers(0, 40, n)] + 0.8 * rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)
P = dirs(n_p) * np.exp(rng.uniform(np.log(0.2), np.log(5.0), n_p))[:, None]   # norms carry signal
Qtr = dirs(n_tr) * rng.uniform(0.5, 2.0, n_tr)[:, None]
Qte = dirs(n_te) * rng.uniform(0.5, 2.0, n_te)[:, None]
np.save(os.path.join(out, "passages.npy"), P.astype(np.float32))
np.save(os.path.join(out, "train_queries.npy"), Qtr.astype(np.float32))
np.save(os.path.join(out, "test_queries.npy"), Qte.astype(np.float32))
w = lambda name, ids: open(os.path.join(out, name), "w").write("".join(f"{i}\n" for i in ids))
w("passage_ids.txt", [f"p{i}" for i in range(n_p)])
w("train_query_ids.txt", [f"t{i}" for i in range(n_tr)])
w("test_query_ids.txt", [f"q{i}" for i in range(n_te)])
S = Qtr.astype(np.float32) @ P.astype(np.float32).T
with open(os.path.join(out, "train_qrels.tsv"), "w") as f:
    f.write("query-id\tcorpus-id\tscore\n")
    for i in range(n_tr):   # 2 of its 5 best passages, and one at random
        top = np.argsort(-S[i])[:5]
        for j in rng.choice(top, 2, replace=False):
            f.write(f"t{i}\tp{j}\t{int(rng.integers(1, 3))}\n")
        f.write(f"t{i}\tp{int(rng.integers(0, n_p))}\t1\n")
EOF
d=data
B=(--passages $d/passages.npy --passage-ids $d/passage_ids.txt --queries $d/train_queries.npy
   --query-ids $d/train_query_ids.txt --qrels $d/train_qrels.tsv --threads 1 -q)
"$bin"/pefa-build -o ip.pefa "${B[@]}" --metric ip || { echo "build failed"; exit 1; }
"$bin"/pefa-build -o cos.pefa "${B[@]}" || { echo "build failed"; exit 1; }
q=(--queries $d/test_queries.npy --query-ids $d/test_query_ids.txt)

# ---- 4. the file ------------------------------------------------------------------
dump=$("$bin"/pefa-dump ip.pefa)
check grep -q '^  pefa.metric=ip$' <<< "$dump"
check grep -q '^  pefa.normalise=none$' <<< "$dump"
check grep -q '^flags  *0x0000000000000001$' <<< "$dump"
check grep -q '^  pefa.metric=cosine$' <<< "$("$bin"/pefa-dump cos.pefa)"
check bash -c "'$bin'/pefa-dump --verify ip.pefa > /dev/null"

# ---- 1. true MIPS --------------------------------------------------------------------
$py "$src"/tests/reference/pefa_ref.py --data $d --metric ip --mode erm -k 10 --out mips10.tsv >/dev/null
"$bin"/pefa-query ip.pefa "${q[@]}" --exact -k 10 > ip10.tsv 2>/dev/null
"$bin"/pefa-query cos.pefa "${q[@]}" --exact -k 10 > cos10.tsv 2>/dev/null
echo "top-10 overlap with true MIPS: --metric ip $($py "$src"/tests/cli/compare_runs.py recall mips10.tsv ip10.tsv --k 10 --min 0)," \
     "cosine $($py "$src"/tests/cli/compare_runs.py recall mips10.tsv cos10.tsv --k 10 --min 0)"
check $py "$src"/tests/cli/compare_runs.py recall mips10.tsv ip10.tsv --k 10 --min 1.0
# the data set is one where it matters: a cosine index misses much of the MIPS top-10
check bash -c "! $py '$src'/tests/cli/compare_runs.py recall mips10.tsv cos10.tsv --k 10 --min 0.8 >/dev/null"

# ---- 2 and 3. every mode: exact = reference; graph recall >= 0.95 -----------------------
modes=("erm" "xs" "xs --lambda 0.3" "xl --lambda 0.1 --knn 16" "xl --lambda 0.5 --knn 8 --xl-scoring sparse-add")
for m in "${modes[@]}"; do
  name=$(echo "$m" | tr ' ' '_')
  lam=(); case $m in xs) lam=(--lambda 0.5) ;; esac
  # shellcheck disable=SC2086
  $py "$src"/tests/reference/pefa_ref.py --data $d --metric ip --mode $m "${lam[@]}" -k 100 --out ref_$name.tsv >/dev/null
  # shellcheck disable=SC2086
  "$bin"/pefa-query ip.pefa "${q[@]}" --mode $m -k 100 --exact > exact_$name.tsv 2>/dev/null
  # shellcheck disable=SC2086
  "$bin"/pefa-query ip.pefa "${q[@]}" --mode $m -k 10 > ann_$name.tsv 2>/dev/null
  echo "-- mode $m"
  check $py "$src"/tests/cli/compare_runs.py exact ref_$name.tsv exact_$name.tsv --tol 2e-4
  check $py "$src"/tests/cli/compare_runs.py recall exact_$name.tsv ann_$name.tsv --k 10 --min 0.95
done

# ---- 5. rows whose inner products overflow float32 ------------------------------------
# under ip a row is used as given: a squared norm over FLT_MAX (3.4e38) gave
# -inf/inf scores ranked in row order; refused at build (the file, the row)
# and in pefa-query (before any output). Cosine normalises them correctly.
$py - $d <<'EOF2'
import os, sys, numpy as np
d = sys.argv[1]
P, Q, T = (np.load(os.path.join(d, f)) for f in ("passages.npy", "train_queries.npy", "test_queries.npy"))
def put(name, X, row, v):
    X = X.copy(); X[row] = v; np.save(os.path.join(d, name), X)
put("p_huge.npy", P, 3, 1e30)   # squared norm 32e60
put("p_over.npy", P, 3, 1e19)   # 3.2e39: just over
put("p_edge.npy", P, 3, 1e18)   # 3.2e37: under, accepted
put("q_huge.npy", Q, 5, -1e30)
put("t_huge.npy", T, 7, 1e30)
put("p_f16.npy", P, 3, 1e5)     # a float32, no float16
EOF2
refused() { # label, want (message part), build args...
  local label=$1 want=$2 out rc; shift 2
  rm -f x.pefa x.pefa.*
  out=$("$bin"/pefa-build -o x.pefa -q --threads 1 --no-graphs "$@" 2>&1); rc=$?
  if [ $rc -eq 1 ] && [[ "$out" == *"$want"* ]] && ! ls x.pefa* >/dev/null 2>&1; then pass=$((pass+1)); echo "$label: refused"
  else fail=$((fail+1)); echo "FAILED: $label: exit $rc, '$out'"; fi
}
refused "ip, passage row of 1e30" "p_huge.npy: row 3 has a squared norm of 3.2e+61, over the float32 maximum" \
  --metric ip --passages $d/p_huge.npy
refused "ip, passage row of 1e19" "p_over.npy: row 3 has a squared norm of 3.2e+39" --metric ip --passages $d/p_over.npy
refused "ip, training query row of -1e30" "q_huge.npy: row 5 has a squared norm" --metric ip --passages $d/passages.npy \
  --queries $d/q_huge.npy --qrels $d/train_qrels.tsv --passage-ids $d/passage_ids.txt --query-ids $d/train_query_ids.txt
refused "ip, f16 storage, a value of 1e5" "p_f16.npy: row 3 column 0 is 100000, beyond float16" --metric ip \
  --vector-type f16 --passages $d/p_f16.npy
finite() { # file: every score a finite number
  $py -c 'import math, sys; sys.exit(0 if all(math.isfinite(float(l.split("\t")[3])) for l in open(sys.argv[1])) else 1)' "$1"; }
"$bin"/pefa-build -o edge.pefa -q --threads 1 --metric ip --passages $d/p_edge.npy --no-graphs \
  && "$bin"/pefa-query edge.pefa "${q[@]}" --exact -k 10 > edge.tsv 2>/dev/null && finite edge.tsv \
  && { pass=$((pass+1)); echo "ip, a row of 1e18 (squared norm 3.2e37): built, finite scores"; } \
  || { fail=$((fail+1)); echo "FAILED: ip, a row of 1e18"; }
out=$("$bin"/pefa-query ip.pefa --queries $d/t_huge.npy --exact 2>&1 > t_huge.tsv); rc=$?
if [ $rc -eq 1 ] && [ ! -s t_huge.tsv ] && [[ "$out" == *"t_huge.npy: row 7 (0-based): query squared norm 3.2e+61 is over the float32 maximum"* ]]
then pass=$((pass+1)); echo "ip, a test query of 1e30: refused, no output"
else fail=$((fail+1)); echo "FAILED: ip, a test query of 1e30: exit $rc, $(wc -c < t_huge.tsv) bytes out, '$out'"; fi
# cosine: the same rows normalised in double: finite scores, and the all-equal
# passage 3 is the all-equal query 7's best hit (ERM: with cosine 1)
"$bin"/pefa-build -o cos_huge.pefa -q --threads 1 --passages $d/p_huge.npy --queries $d/q_huge.npy \
  --qrels $d/train_qrels.tsv --passage-ids $d/passage_ids.txt --query-ids $d/train_query_ids.txt -M 8 --ef-construction 40
for m in erm xs xl; do
  "$bin"/pefa-query cos_huge.pefa --queries $d/t_huge.npy --mode $m -k 10 > cos_huge_$m.tsv 2>/dev/null; rc=$?
  top=$(awk -F'\t' '$1 == 7 && $2 == 1 { print $3, $4 }' cos_huge_$m.tsv)
  if [ $rc -eq 0 ] && finite cos_huge_$m.tsv && [ "${top%% *}" = p3 ] \
     && { [ $m != erm ] || $py -c "import sys; sys.exit(0 if abs(${top##* } - 1) < 1e-5 else 1)"; }
  then pass=$((pass+1)); echo "cosine, rows and a query of 1e30, $m: finite scores, p3 first for query 7 ($top)"
  else fail=$((fail+1)); echo "FAILED: cosine, rows of 1e30, $m: exit $rc, top '$top'"; fi
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
