#!/usr/bin/env bash
# Id maps over an index's life (format [I4], [I5]):
#  1. an index renamed (mv) and one copied (cp) keep working after the
#     original path is rebuilt twice: a build removes no id map;
#  2. pefa-dump --gc DIR removes exactly the id maps no index names, lists
#     them, keeps those of a running build (its lock is held) and removes
#     nothing when a file that looks like an index cannot be read; it removes
#     a killed build's temporary file (no lock held, 10 minutes old);
#  3. two concurrent builds of one output: the second fails at once with a
#     message naming the lock; the first commits an index whose id map is
#     there and agrees with it;
#  4. a symbolic link at an index or a manifest finds the id map and shards
#     beside the file it resolves to.
set -uo pipefail
bin=$(cd "${PEFA_BIN:?}" && pwd); src=$(cd "${PEFA_SRC:?}" && pwd)
d=$src/data/scifact
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
args=(--passages $d/passages.npy --passage-ids $d/passage_ids.txt --queries $d/train_queries.npy
      --query-ids $d/train_query_ids.txt --qrels $d/train_qrels.tsv -M 8 --ef-construction 40 -q)
query() { "$bin"/pefa-query "$1" --queries $d/test_queries.npy --query-ids $d/test_query_ids.txt --mode xl -k 5 \
            >/dev/null 2>q.err; }
verify() { "$bin"/pefa-dump --verify "$1" >/dev/null 2>&1; }
nids() { ls ./*.ids 2>/dev/null | wc -l; }

# ---- 1. mv, cp, rebuild x2, query all three ---------------------------------------
mkdir life && cd life
"$bin"/pefa-build -o idx.pefa "${args[@]}" || { echo "build failed"; exit 1; }
mv idx.pefa moved.pefa
cp moved.pefa copied.pefa
"$bin"/pefa-build -o idx.pefa "${args[@]}" --seed 1 && "$bin"/pefa-build -o idx.pefa "${args[@]}" --seed 2 \
  || { echo "rebuild failed"; exit 1; }
for f in idx.pefa moved.pefa copied.pefa; do
  check "$f answers after mv, cp and two rebuilds" query $f
  check "$f verifies" verify $f
done
check "three id maps: the moved/copied index's and two rebuilds' (none removed)" [ "$(nids)" -eq 3 ]

# ---- 2. --gc ------------------------------------------------------------------------
"$bin"/pefa-dump --gc . --dry-run > dry.out 2>dry.err
check "--gc --dry-run: lists one id map" [ "$(grep -c '^would remove ' dry.out)" -eq 1 ]
check "--gc --dry-run: removes nothing" [ "$(nids)" -eq 3 ]
printf '\x89PEFA\r\n\x1a' > damaged.pefa   # starts like an index, cannot be read
"$bin"/pefa-dump --gc . > gc.out 2> gc.err; rc=$?
check "--gc with an unreadable index: exit 1" [ $rc -eq 1 ]
check "--gc with an unreadable index: names it" grep -q "damaged.pefa: .*it may be an index" gc.err
check "--gc with an unreadable index: removes nothing" [ "$(nids)" -eq 3 ]
rm damaged.pefa
echo "not an index" > notes.txt            # not an index: ignored
"$bin"/pefa-dump --gc . > gc.out 2> gc.err; rc=$?
check "--gc: exit 0" [ $rc -eq 0 ]
check "--gc: lists what it removed" [ "$(grep -c '^removed \./idx\.pefa\.[0-9a-f]\{32\}\.ids$' gc.out)" -eq 1 ]
check "--gc: two id maps left" [ "$(nids)" -eq 2 ]
for f in idx.pefa moved.pefa copied.pefa; do check "$f answers after --gc" query $f; done
# an id map whose build is running (its lock held) is kept even though no index names it
"$bin"/pefa-build -o other.pefa "${args[@]}" && rm other.pefa
exec 9>other.pefa.lock; flock -x 9
"$bin"/pefa-dump --gc . > gc.out 2> gc.err
check "--gc keeps the id map of a running build" grep -q "^kept \./other\.pefa\..*\.ids (a build of its index is running)" gc.out
flock -u 9; exec 9>&-; rm -f other.pefa.lock
"$bin"/pefa-dump --gc . > gc.out 2> gc.err
check "--gc removes it once the build is over" grep -q "^removed \./other\.pefa\." gc.out
# a killed build's temporary file: removed when no build holds its lock and it is 10 minutes old
wtmp() { { head -c 4096 /dev/zero; head -c 5000 copied.pefa; } > "$1"; }  # a writer's, before its commit
wtmp idx.pefa.tmp.Ab12Cd; touch -d '20 minutes ago' idx.pefa.tmp.Ab12Cd
wtmp new.pefa.tmp.Ef34Gh                                        # being written right now
wtmp held.pefa.tmp.Ij56Kl; touch -d '20 minutes ago' held.pefa.tmp.Ij56Kl
echo "the user's" > report.tmp.Mn78Op; touch -d '1 hour ago' report.tmp.Mn78Op  # the same name pattern, not pefa's
cp copied.pefa bak.pefa.tmp.backup; touch -d '1 hour ago' bak.pefa.tmp.backup   # a committed index: the user's copy
exec 9>held.pefa.lock; flock -x 9                                # its build is running
"$bin"/pefa-dump --gc . --dry-run > gc.out 2> gc.err
check "--gc --dry-run lists a killed build's temporary file" grep -q "^would remove \./idx\.pefa\.tmp\.Ab12Cd (left by a writer that is gone)" gc.out
check "--gc --dry-run leaves it" [ -e idx.pefa.tmp.Ab12Cd ]
"$bin"/pefa-dump --gc . > gc.out 2> gc.err; rc=$?
check "--gc removes a killed build's temporary file (exit 0)" bash -c "[ $rc -eq 0 ] && [ ! -e idx.pefa.tmp.Ab12Cd ] && grep -q '^removed \./idx\.pefa\.tmp\.Ab12Cd' gc.out"
check "--gc keeps a temporary file written just now" bash -c "[ -e new.pefa.tmp.Ef34Gh ] && grep -q '^kept \./new\.pefa\.tmp\.Ef34Gh (written less than 10 minutes ago)' gc.out"
check "--gc keeps the temporary file of a running build" bash -c "[ -e held.pefa.tmp.Ij56Kl ] && grep -q '^kept \./held\.pefa\.tmp\.Ij56Kl (a build of \./held\.pefa is running)' gc.out"
check "--gc leaves a file of that name that no pefa writer left (text, a committed index)" \
  bash -c "[ -e report.tmp.Mn78Op ] && [ -e bak.pefa.tmp.backup ] && ! grep -q 'report.tmp\|bak.pefa.tmp' gc.out"
flock -u 9; exec 9>&-; rm -f held.pefa.lock held.pefa.tmp.Ij56Kl new.pefa.tmp.Ef34Gh report.tmp.Mn78Op bak.pefa.tmp.backup
check "--gc: no such directory is exit 1" bash -c "! '$bin'/pefa-dump --gc ./nope 2>/dev/null"
"$bin"/pefa-dump --gc . x.pefa > /dev/null 2>&1; rc=$?
check "--gc DIR FILE: usage error (exit 2)" [ $rc -eq 2 ]
cd ..

# ---- 3. two concurrent builds of one output -----------------------------------------
mkdir conc && cd conc
slow=(--passages $d/passages.npy --passage-ids $d/passage_ids.txt --queries $d/train_queries.npy
      --query-ids $d/train_query_ids.txt --qrels $d/train_qrels.tsv --threads 1 -q)
"$bin"/pefa-build -o idx.pefa "${slow[@]}" --seed 7 2>a.err & a=$!
for _ in $(seq 1 400); do [ -e idx.pefa.lock ] && break; sleep 0.01; done
"$bin"/pefa-build -o idx.pefa "${slow[@]}" --seed 8 2>b.err; rb=$?
wait $a; ra=$?
check "first build succeeds" [ $ra -eq 0 ]
check "second build fails (exit 1)" [ $rb -eq 1 ]
check "second build names the lock" grep -q "another build of this output .*idx.pefa.lock is locked" b.err
check "one id map" [ "$(nids)" -eq 1 ]
check "the lock file is gone" [ ! -e idx.pefa.lock ]
check "the committed index verifies" verify idx.pefa
check "the committed index answers with its id map" query idx.pefa
check "the committed index is the first build's (seed 7)" grep -q '^  hnsw.seed=7$' <("$bin"/pefa-dump idx.pefa)
cd ..

# ---- 4. a symbolic link at an index (or a set's manifest) in a build directory ------------
# (a deploy that flips a link): the id map and the shards are found beside the file the
# link resolves to when nothing of that name is beside the link
mkdir -p links/builds links/live
"$bin"/pefa-build -o links/builds/v1.pefa "${args[@]}" --seed 3 && "$bin"/pefa-build -o links/builds/v2.pefa "${args[@]}" --seed 4 \
  || { echo "link builds failed"; exit 1; }
ln -s ../builds/v1.pefa links/live/current.pefa
check "a link at an index answers (id map beside its target)" query links/live/current.pefa
check "a link at an index verifies" verify links/live/current.pefa
ln -sfn ../builds/v2.pefa links/live/current.pefa
check "the link flipped to another build answers" query links/live/current.pefa
check "... with that build's index" grep -q '^  hnsw.seed=4$' <("$bin"/pefa-dump links/live/current.pefa)
for i in 0 1; do "$bin"/pefa-build -o links/builds/s$i.pefa "${args[@]}" --shard $i/2 || exit 1; done
"$bin"/pefa-shardset -o links/builds/set.pefaset links/builds/s0.pefa links/builds/s1.pefa >/dev/null || exit 1
ln -s ../builds/set.pefaset links/live/set.pefaset
check "a link at a set's manifest answers (shards beside its target)" query links/live/set.pefaset
check "a link at a set's manifest verifies" verify links/live/set.pefaset

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
