#!/bin/sh
# first_query.sh - what a serving process pays for its first answer, cold and
# warm, on two ERM indexes over GloVe-100 rows (10,000 and 331,479 rows, M 16,
# efC 64), interleaved rounds, medians (bench/first_query.c measures one run).
#
#   bench/first_query.sh BUILD_DIR DATA_DIR [ROUNDS]      (DATA_DIR: bench/fetch_glove.sh)
#   FIRST_QUERY_PEER=/path/to/other/first_query  also runs another build's
#   binary in the same rounds (before/after comparisons)
#
# "cold" drops the file's pages with posix_fadvise(DONTNEED) first: nothing
# else may have the file mapped (a running pefa-query or pefa-serve keeps its
# pages in the cache).
set -eu
build=$1 data=$2 rounds=${3:-5}
work=${TMPDIR:-/tmp}/pefa-first-query
mkdir -p "$work"
[ -f "$work/g10k.npy" ] || /usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[2], np.load(sys.argv[1])[:10000])" "$data/glove-base.npy" "$work/g10k.npy"
for n in 10k 331k; do
    src=$data/glove-base.npy
    [ "$n" = 10k ] && src=$work/g10k.npy
    [ -f "$work/g$n.pefa" ] || "$build/tools/pefa-build" -o "$work/g$n.pefa" --passages "$src" -M 16 \
        --ef-construction 64 --threads 2 --quiet
done
bins="this=$build/bench/first_query"
[ -n "${FIRST_QUERY_PEER:-}" ] && bins="$bins peer=$FIRST_QUERY_PEER"
log=$work/runs.log
: > "$log"
r=0
while [ "$r" -lt "$rounds" ]; do
    for ix in "$work/g10k.pefa" "$work/g331k.pefa"; do
        for b in $bins; do
            name=${b%%=*} bin=${b#*=}
            echo "$name $("$bin" "$ix" "$data/glove-queries.npy")" >> "$log"
            echo "$name $(FIRST_QUERY_WARM=1 "$bin" "$ix" "$data/glove-queries.npy")" >> "$log"
        done
    done
    r=$((r + 1))
done
awk 'function med(str,   a, n, i, j, t) { n = split(str, a, " ");
       for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
       return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
     { f = ""; for (i = 1; i <= NF; i++) { if ($i == "open") o = $(i + 1); if ($i == "searcher") s = $(i + 1);
       if ($i == "first" && $(i + 1) == "query" && f == "") f = $(i + 2) }
       k = $1 " " $2 " " $3; O[k] = O[k] " " o; S[k] = S[k] " " s; F[k] = F[k] " " f }
     END { for (k in F) printf "%-40s median us: open %9.1f  searcher %8.1f  first query %9.1f   (first query:%s)\n",
           k, med(O[k]), med(S[k]), med(F[k]), F[k] }' "$log" | sort
echo "(each run: $log)"
