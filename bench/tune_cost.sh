#!/usr/bin/env bash
# tune_cost.sh BIN_DIR DATA_DIR [THREADS] [-- extra pefa-build args]
# What pefa-build --tune adds to a build: the noisy-log collection of
# bench/noisy_logs.py (300k passages, 300k training queries over GloVe-100;
# made in DATA_DIR/noisy300k if absent), built once with --tune and the
# default graph parameters; prints the stage times, the ratio
# tune / (build without tune), peak RSS, and the tuned setting.
set -euo pipefail
bin=${1:?usage: tune_cost.sh BIN_DIR DATA_DIR [THREADS] [-- pefa-build args]}
data=${2:?}; threads=${3:-2}; shift $(( $# >= 3 ? 3 : $# ))
[ "${1:-}" = "--" ] && shift
here=$(cd "$(dirname "$0")" && pwd)
n=$data/noisy300k
[ -f "$n/qrels.tsv" ] || { "$here"/fetch_glove.sh "$data"; /usr/bin/python3 "$here"/noisy_logs.py --glove "$data" --out "$n"; }
log=$(mktemp); trap 'rm -f "$log" "$data"/tune-cost.pefa "$data"/tune-cost.pefa.*' EXIT
/usr/bin/time -v "$bin"/pefa-build -o "$data"/tune-cost.pefa --passages "$n"/passages.npy --queries "$n"/queries.npy \
  --qrels "$n"/qrels.tsv --threads "$threads" --tune "$@" > "$log" 2>&1
grep -E '^  (seconds|tuned|passages)' "$log"
tune=$(sed -nE 's/.* tune ([0-9.]+),.*/\1/p' "$log"); total=$(sed -nE 's/.* total ([0-9.]+)$/\1/p' "$log")
rss=$(sed -nE 's/.*Maximum resident set size \(kbytes\): ([0-9]+)/\1/p' "$log")
/usr/bin/python3 -c "t, T = $tune, $total; print('tuning: %.1f s of a %.1f s build: +%.1f%% over the build without it (target <= 25%%); peak RSS %.2f GB' % (t, T, 100 * t / (T - t), $rss / 1e6))"
