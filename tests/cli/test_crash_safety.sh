#!/usr/bin/env bash
# Crash safety: pefa-build is killed with SIGKILL at random moments while it
# replaces an existing index. After every kill the output path must hold a
# complete index (the previous one, or the new one if the kill came after its
# commit), never a partial file; it must pass pefa-dump --verify (every
# checksum, and the id map's bytes), and the id map it names must agree with
# it (pefa-query opens it and checks the UUID).
set -uo pipefail
bin=$(cd "${PEFA_BIN:?}" && pwd); src=$(cd "${PEFA_SRC:?}" && pwd)
trials=${PEFA_CRASH_TRIALS:-24}
d=$src/data/scifact
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
args=(--passages $d/passages.npy --passage-ids $d/passage_ids.txt --queries $d/train_queries.npy
      --query-ids $d/train_query_ids.txt --qrels $d/train_qrels.tsv -M 8 --ef-construction 40 --threads 2 -q)
"$bin"/pefa-build -o idx.pefa "${args[@]}" --lambda 0.5 || { echo "initial build failed"; exit 1; }
# how long a full build takes, to spread the kills over it
t0=$(date +%s%N); "$bin"/pefa-build -o timing.pefa "${args[@]}"; t1=$(date +%s%N)
span_ms=$(( (t1 - t0) / 1000000 + 100 )); rm -f timing.pefa*
cp idx.pefa prev.pefa
pass=0; fail=0; old=0; new=0
for i in $(seq 1 "$trials"); do
  delay_ms=$(( (RANDOM * 32768 + RANDOM) % span_ms ))
  "$bin"/pefa-build -o idx.pefa "${args[@]}" --lambda 0.$(( i % 9 + 1 )) --seed "$i" &
  pid=$!
  sleep "$(( delay_ms / 1000 )).$(printf '%03d' $(( delay_ms % 1000 )))"
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  ok=1
  [ -f idx.pefa ] || { echo "trial $i: output path is empty"; ok=0; }
  "$bin"/pefa-dump --verify idx.pefa >/dev/null 2>verify.err || { echo "trial $i (kill at ${delay_ms} ms): verify failed: $(cat verify.err)"; ok=0; }
  "$bin"/pefa-query idx.pefa --queries $d/test_queries.npy --mode xl -k 5 > hits.tsv 2>q.err \
    || { echo "trial $i: query failed: $(cat q.err)"; ok=0; }
  [ "$(ls idx.pefa.*.ids 2>/dev/null | wc -l)" -ge 1 ] || { echo "trial $i: no id map"; ok=0; }
  if cmp -s idx.pefa prev.pefa 2>/dev/null; then old=$((old+1)); else new=$((new+1)); cp idx.pefa prev.pefa; fi
  if [ $ok -eq 1 ]; then pass=$((pass+1)); else fail=$((fail+1)); fi
done
left=$(ls | grep -c '\.tmp' || true)
echo "crash safety: $trials kills, $old left the previous index, $new found a newly committed one; $left temporary files left beside it (never at the output path)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
