#!/usr/bin/env bash
# test_serve.sh - pefa-serve on loopback (tests/cli/serve_test.py does the
# work): answers equal pefa-query in every mode, every bad input gets its
# status, reload by rename under load, refusal of a broken file, draining
# SIGTERM; a shard set served and reloaded by a new manifest. Two SciFact
# indexes with one build thread (same content, two UUIDs), two 3-shard sets. Skipped (exit 0 with a message) when pefa-serve was not built.
set -euo pipefail
bin=$(cd "${PEFA_BIN:?}" && pwd); src=$(cd "${PEFA_SRC:?}" && pwd)
if [ ! -x "$bin/pefa-serve" ]; then
  echo "pefa-serve not built (libmicrohttpd or jansson missing): skipped"
  exit 0
fi
d=$src/data/scifact
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for name in a b; do
  "$bin"/pefa-build -q -o "$tmp/$name.pefa" --passages $d/passages.npy --passage-ids $d/passage_ids.txt \
    --queries $d/train_queries.npy --query-ids $d/train_query_ids.txt --qrels $d/train_qrels.tsv \
    --lambda 0.5 --threads 1
done
# two shard sets of 3 (seeds 42 and 7): set-a.pefaset over sa*.pefa, set-b over sb*.pefa
for v in a:42 b:7; do
  for i in 0 1 2; do
    "$bin"/pefa-build -q -o "$tmp/s${v%:*}$i.pefa" --passages $d/passages.npy --passage-ids $d/passage_ids.txt \
      --queries $d/train_queries.npy --query-ids $d/train_query_ids.txt --qrels $d/train_qrels.tsv \
      --lambda 0.5 --threads 1 --seed ${v#*:} --shard $i/3
  done
  "$bin"/pefa-shardset -o "$tmp/set-${v%:*}.pefaset" "$tmp/s${v%:*}"{0,1,2}.pefa > /dev/null
done
# 30 passages: fewer than a request's k
/usr/bin/python3 -c 'import sys, numpy as np; np.save(sys.argv[2], np.load(sys.argv[1])[:30])' $d/passages.npy "$tmp/small.npy"
"$bin"/pefa-build -q -o "$tmp/small.pefa" --passages "$tmp/small.npy" --threads 1
"$bin"/pefa-build -q -o "$tmp/small-ip.pefa" --passages "$tmp/small.npy" --threads 1 --metric ip
timeout 600 /usr/bin/python3 "$src/tests/cli/serve_test.py" "$bin" "$tmp" "$d"
