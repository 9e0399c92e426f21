#!/usr/bin/env bash
# scaling.sh BIN_DIR DATA_DIR [THREADS] [SIZES] - the build scaling table of
# docs/scaling.md: synthetic collections (bench/scale_data.py; made in
# DATA_DIR/scale-<n>-d<dim> if absent) of 100k, 300k and 1M passages at d 100
# and 100k at d 768, as many training queries as passages, 3 pairs each.
# Each is built with -M 16 --ef-construction 100 (issue 9's build settings);
# printed: seconds per stage, peak RSS, file size, RSS / file. Then the 1M
# collection as N = 2 and 4 shards: seconds per shard, and pefa-query's p50
# latency over the set against the unsharded file, one thread, k 100, per mode
# (interleaved, 3 rounds, median ratio and its range), with recall@100 of the
# set's HNSW answers against the unsharded exact ones.
# SIZES: default "100000:100 300000:100 1000000:100 100000:768"; the shard part
# runs on the largest d-100 size.
set -euo pipefail
bin=$(cd "${1:?usage: scaling.sh BIN_DIR DATA_DIR [THREADS] [SIZES]}" && pwd)
data=${2:?}; threads=${3:-2}
sizes=${4:-"100000:100 300000:100 1000000:100 100000:768"}
here=$(cd "$(dirname "$0")" && pwd); src=$(cd "$here/.." && pwd)
py=/usr/bin/python3
mkdir -p "$data"; data=$(cd "$data" && pwd)
work=$data/scaling-work; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
graph=(-M 16 --ef-construction 100 --threads "$threads" --seed 42)

collection() { # n dim -> its directory (made once)
  local c=$data/scale-$1-d$2
  [ -f "$c/meta.json" ] || { echo "making $c ..." >&2; $py "$here"/scale_data.py --out "$c" --passages "$1" --dim "$2" >&2; }
  echo "$c"
}

build() { # dir out log [args...]
  local c=$1 out=$2 log=$3; shift 3
  /usr/bin/time -v "$bin"/pefa-build -o "$out" --passages "$c"/passages.npy --queries "$c"/queries.npy \
    --qrels "$c"/qrels.tsv "${graph[@]}" "$@" > "$log" 2>&1 || { cat "$log"; exit 1; }
}

row() { # label log file
  local secs rss bytes
  secs=$(sed -nE 's/^  seconds: //p' "$2")
  rss=$(sed -nE 's/.*Maximum resident set size \(kbytes\): ([0-9]+)/\1/p' "$2")
  bytes=$(stat -c %s "$3")
  $py -c "r, b = $rss * 1024, $bytes; print('| %s | %s | %.2f | %.2f | %.2f |' % ('$1', '$secs', r / 1e9, b / 1e9, r / b))"
}

query() { # index dir mode [args] -> p50 ms
  local ix=$1 c=$2 mode=$3; shift 3
  "$bin"/pefa-query "$ix" --queries "$c"/test_queries.npy -k 100 --mode "$mode" --threads 1 --no-output "$@" 2>&1 |
    sed -nE 's/.*latency_ms p50=([0-9.]+).*/\1/p'
}

echo "## build scaling ($(nproc) cores, threads $threads, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "| collection | seconds per stage | peak RSS GB | file GB | RSS / file |"
echo "|---|---|---|---|---|"
big=""
for s in $sizes; do
  n=${s%:*}; d=${s#*:}; c=$(collection "$n" "$d")
  build "$c" "$work"/one.pefa "$work"/one.log
  row "$n x d$d (+ $n queries)" "$work"/one.log "$work"/one.pefa
  if [ "$d" = 100 ]; then big=$c; bign=$n; mv "$work"/one.pefa "$work"/big.pefa; mv "$work"/one.log "$work"/big.log; fi
  rm -f "$work"/one.pefa*
done

[ -n "$big" ] || exit 0
echo
echo "## shards of $bign x d100 (load $(cut -d' ' -f1-3 /proc/loadavg))"
for m in erm xs xl; do "$bin"/pefa-query "$work"/big.pefa --queries "$big"/test_queries.npy -k 100 --mode $m --exact \
  --threads "$threads" > "$work"/exact-$m.tsv 2>/dev/null; done
echo "| N | seconds per shard (shard 0 holds Q, its graph and Y) | peak RSS GB per shard | mode | p50 ms set / unsharded (median of 3, range) | recall@100 set HNSW vs exact |"
echo "|---|---|---|---|---|---|"
for N in 2 4; do
  secs=(); rsss=(); files=()
  for ((i = 0; i < N; i++)); do
    build "$big" "$work"/s$i.pefa "$work"/s$i.log --shard $i/$N
    secs+=("$(sed -nE 's/.* total ([0-9.]+)$/\1/p' "$work"/s$i.log)")
    rsss+=("$(sed -nE 's/.*Maximum resident set size \(kbytes\): ([0-9]+)/\1/p' "$work"/s$i.log | awk '{printf "%.2f", $1 * 1024 / 1e9}')")
    files+=("$work"/s$i.pefa)
  done
  "$bin"/pefa-shardset -o "$work"/set.pefaset "${files[@]}" > /dev/null
  for m in erm xs xl; do
    ratios=()
    for r in 1 2 3; do
      a=$(query "$work"/big.pefa "$big" $m); b=$(query "$work"/set.pefaset "$big" $m)
      ratios+=("$($py -c "print('%.3f' % ($b / $a))")")
    done
    "$bin"/pefa-query "$work"/set.pefaset --queries "$big"/test_queries.npy -k 100 --mode $m --threads "$threads" \
      > "$work"/set-$m.tsv 2>/dev/null
    rec=$($py "$src"/tests/cli/compare_runs.py recall "$work"/exact-$m.tsv "$work"/set-$m.tsv --k 100 --min 0 | sed -nE 's/.*answers: ([0-9.]+).*/\1/p')
    med=$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n 2p)
    echo "| $N | ${secs[*]} | ${rsss[*]} | $m | $med (${ratios[0]}, ${ratios[1]}, ${ratios[2]}) | $rec |"
  done
  rm -f "$work"/s*.pefa* "$work"/set.pefaset*
done
