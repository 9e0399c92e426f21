#!/usr/bin/env bash
# Every bad input to pefa-build and pefa-query: the exact exit code, a clear
# message naming the file (and row/line where there is one), and for builds
# nothing at the output path (no partial file, no temporary left behind).
# PEFA_BAD_INPUT_TABLE=FILE also writes the markdown table of docs/bad-inputs.md.
set -uo pipefail
bin=$(cd "${PEFA_BIN:?}" && pwd); src=$(cd "${PEFA_SRC:?}" && pwd)
tmp=$(mktemp -d); trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
cd "$tmp"
/usr/bin/python3 "$src"/tests/cli/make_bad_inputs.py "$src" "$tmp" || { echo "cannot make inputs"; exit 1; }
table=${PEFA_BAD_INPUT_TABLE:-/dev/null}
printf '| # | tool | bad input | exit | message |\n|---|---|---|---|---|\n' > "$table"
pass=0; fail=0; n=0
# t TOOL "what" EXIT "substring of stderr" args...
t() {
  local tool=$1 what=$2 want=$3 sub=$4; shift 4
  local out rc
  n=$((n+1))
  rm -f out.pefa out.pefa.*
  out=$("$bin/$tool" "$@" 2>&1 >/dev/null); rc=$?
  local ok=1
  [ "$rc" -eq "$want" ] || { echo "FAILED #$n $what: exit $rc, expected $want"; ok=0; }
  [[ "$out" == *"$sub"* ]] || { echo "FAILED #$n $what: message '$out' lacks '$sub'"; ok=0; }
  if [ "$tool" = pefa-build ] && [ "$want" -ne 0 ]; then
    if ls out.pefa out.pefa.* 2>/dev/null | grep -q .; then echo "FAILED #$n $what: left $(ls out.pefa*)"; ok=0; fi
  fi
  if [ $ok -eq 1 ]; then pass=$((pass+1)); else fail=$((fail+1)); fi
  local msg; msg=$(echo "$out" | head -n 2 | sed "s#$tmp/##g; s/|/\\\\|/g" | tr '\n' ' ')
  printf '| %d | %s | %s | %d | `%s` |\n' "$n" "$tool" "$what" "$rc" "$msg" >> "$table"
}
B=(-o out.pefa -q)
ok_q=(--queries q.npy --query-ids qids.txt --qrels qrels.tsv)
t pefa-build "passages file missing" 1 "nope.npy" "${B[@]}" --passages nope.npy
t pefa-build "passages not a numpy file" 1 "garbage.npy" "${B[@]}" --passages garbage.npy
t pefa-build "float64 array" 1 "'<f8' not supported" "${B[@]}" --passages f64.npy
t pefa-build "int32 array" 1 "not supported" "${B[@]}" --passages ints.npy
t pefa-build "1-D array" 1 "onedim.npy" "${B[@]}" --passages onedim.npy
t pefa-build "Fortran-order array" 1 "fortran" "${B[@]}" --passages fortran.npy
t pefa-build "zero rows" 1 "empty.npy" "${B[@]}" --passages empty.npy
t pefa-build "truncated .npy" 1 "truncated" "${B[@]}" --passages truncated.npy
t pefa-build "trailing bytes after .npy data" 1 "trailing.npy" "${B[@]}" --passages trailing.npy
t pefa-build "NaN in passages" 1 "row 17" "${B[@]}" --passages nan.npy
t pefa-build "Inf in training queries" 1 "row 5" "${B[@]}" --passages p.npy --passage-ids pids.txt --queries inf_q.npy --query-ids qids.txt --qrels qrels.tsv
t pefa-build "query dimension differs" 1 "dimension 50 does not match" "${B[@]}" --passages p.npy --queries q50d.npy --qrels qrels.tsv
t pefa-build "fewer ids than rows" 1 "299 ids" "${B[@]}" --passages p.npy --passage-ids pids_short.txt
t pefa-build "duplicate passage id" 1 "duplicate" "${B[@]}" --passages p.npy --passage-ids pids_dup.txt
t pefa-build "empty line in id file" 1 "pids_empty_line.txt:11" "${B[@]}" --passages p.npy --passage-ids pids_empty_line.txt
t pefa-build "id with a space" 1 "pids_space.txt:7: id 'doc 7' has a space at byte 3" "${B[@]}" --passages p.npy --passage-ids pids_space.txt
t pefa-build "id with a trailing space (nothing is stripped)" 1 "pids_trailing_space.txt:9: id '" "${B[@]}" --passages p.npy --passage-ids pids_trailing_space.txt
t pefa-build "id that is not UTF-8" 1 "pids_bad_utf8.txt:5: id 'caf\\xe9' is not valid UTF-8 at byte 3" "${B[@]}" --passages p.npy --passage-ids pids_bad_utf8.txt
t pefa-build "id file ending in a blank line (accepted)" 0 "" "${B[@]}" --passages p.npy --passage-ids pids_final_blank.txt
t pefa-build "qrels: every score <= 0" 1 "qrels_nonpositive.tsv: no relevance pair with a score > 0" "${B[@]}" --passages p.npy --passage-ids pids.txt --queries q.npy --query-ids qids.txt --qrels qrels_nonpositive.tsv
t pefa-build "qrels: unknown query id" 1 "qrels_unknown_q.tsv:2: query id 'NO-SUCH-QUERY' not found" "${B[@]}" --passages p.npy --passage-ids pids.txt --queries q.npy --query-ids qids.txt --qrels qrels_unknown_q.tsv
t pefa-build "qrels: unknown passage id" 1 "qrels_unknown_p.tsv:2: passage id 'NO-SUCH-DOC' not found" "${B[@]}" --passages p.npy --passage-ids pids.txt --queries q.npy --query-ids qids.txt --qrels qrels_unknown_p.tsv
t pefa-build "qrels: unknown id with --skip-missing (warning, builds)" 0 "skipped 1 of 2 lines" "${B[@]}" --passages p.npy --passage-ids pids.txt --queries q.npy --query-ids qids.txt --qrels qrels_unknown_p.tsv --skip-missing
t pefa-build "qrels: header only" 1 "no relevance pairs" "${B[@]}" --passages p.npy --passage-ids pids.txt --queries q.npy --query-ids qids.txt --qrels qrels_header_only.tsv
t pefa-build "qrels: score not a number" 1 "qrels_bad_score.tsv:2" "${B[@]}" --passages p.npy --passage-ids pids.txt --queries q.npy --query-ids qids.txt --qrels qrels_bad_score.tsv
t pefa-build "qrels: NaN score" 1 "qrels_nan_score.tsv:2" "${B[@]}" --passages p.npy --passage-ids pids.txt --queries q.npy --query-ids qids.txt --qrels qrels_nan_score.tsv
t pefa-build "qrels: one field" 1 "qrels_one_field.tsv:2" "${B[@]}" --passages p.npy --passage-ids pids.txt --queries q.npy --query-ids qids.txt --qrels qrels_one_field.tsv
t pefa-build "--metric ip: a row whose squared norm is over the float32 maximum" 1 "p_ip_overflow.npy: row 11 has a squared norm of 1e+62, over the float32 maximum" "${B[@]}" --passages p_ip_overflow.npy --metric ip
t pefa-build "all-zero passage row (warning, builds)" 0 "1 all-zero rows" "${B[@]}" --passages zero_row.npy
t pefa-build "--queries without --qrels" 2 "go together" "${B[@]}" --passages p.npy --queries q.npy
t pefa-build "--lambda out of range" 2 "out of range" "${B[@]}" --passages p.npy --lambda 2
t pefa-build "-M not a number" 2 "not a number" "${B[@]}" --passages p.npy -M abc
t pefa-build "unknown option" 2 "Try 'pefa-build --help'" "${B[@]}" --passages p.npy --frobnicate
mkdir ro && chmod 555 ro
if [ "$(id -u)" -eq 0 ]; then
  # root ignores directory permissions: use a path below a regular file instead
  t pefa-build "output directory unwritable" 1 "cannot create files there" -o p.npy/out.pefa --passages p.npy
else
  t pefa-build "output directory unwritable" 1 "cannot create files there" -o ro/out.pefa --passages p.npy
fi
mkdir outdir
t pefa-build "output path is a directory" 2 "-o outdir: is a directory, not a regular file" -o outdir --passages p.npy
# a FIFO stands in for a device (/dev/full): never replaced, --force or not, and no hint to use --force
mkfifo fifo
t pefa-build "-o names a FIFO (as for a device)" 2 "-o fifo: is a FIFO (named pipe), not a regular file: an index file is never written in its place" -o fifo --passages p.npy -q
t pefa-build "-o names a FIFO, with --force" 2 "-o fifo: is a FIFO (named pipe), not a regular file" -o fifo --passages p.npy -q --force
[ -p fifo ] || { echo "FAILED: the FIFO was replaced"; fail=$((fail+1)); }
"$bin"/pefa-build -o fifo --passages p.npy -q 2>&1 | grep -q -- "--force" && { echo "FAILED: the message for a FIFO suggests --force"; fail=$((fail+1)); }
ls fifo.* 2>/dev/null | grep -q . && { echo "FAILED: files left beside the FIFO: $(ls fifo.*)"; fail=$((fail+1)); }
cp p.npy p_in.npy; cp pids.txt pids_in.txt; cp qrels.tsv qrels_in.tsv
t pefa-build "-o is the passages file" 2 "is the --passages input p_in.npy" -o ./p_in.npy --passages p_in.npy -q
t pefa-build "-o is the passage id file" 2 "is the --passage-ids input" -o pids_in.txt --passages p.npy --passage-ids pids_in.txt -q
t pefa-build "-o is the qrels file" 2 "is the --qrels input" -o qrels_in.tsv "${ok_q[@]/qrels.tsv/qrels_in.tsv}" --passages p.npy --passage-ids pids.txt -q
cmp -s p.npy p_in.npy && cmp -s pids.txt pids_in.txt && cmp -s qrels.tsv qrels_in.tsv \
  || { echo "FAILED: an input named by -o was changed"; fail=$((fail+1)); }
echo "some notes" > notes.txt
t pefa-build "-o names a file that is not a pefa index" 2 "not a pefa index; not replacing it (--force" -o notes.txt --passages p.npy -q
grep -q "some notes" notes.txt || { echo "FAILED: notes.txt was replaced"; fail=$((fail+1)); }
cp notes.txt notes2.txt
t pefa-build "-o names a file that is not a pefa index, with --force (replaced)" 0 "" -o notes2.txt --passages p.npy -q --force
"$bin"/pefa-dump notes2.txt >/dev/null 2>&1 || { echo "FAILED: --force did not replace notes2.txt with an index"; fail=$((fail+1)); }
t pefa-build "-o '' (empty path)" 2 "the output path is empty" -o '' --passages p.npy
t pefa-build "--seed -1" 2 "--seed: -1 is out of range (0..18446744073709551615)" "${B[@]}" --passages p.npy --seed -1
t pefa-build "--seed with 21 digits" 2 "is out of range (0..18446744073709551615)" "${B[@]}" --passages p.npy --seed 123456789012345678901
t pefa-build ".ivecs given as passages" 1 "p.ivecs: .ivecs holds int32 vectors, not float32" "${B[@]}" --passages p.ivecs
# disk full: a file-size limit makes write() fail the same way ENOSPC does
(trap '' XFSZ; ulimit -f 50; t pefa-build "disk full (write fails)" 1 "write failed" "${B[@]}" --passages p.npy --no-graphs; echo "$pass $fail $n" > counts) ; read -r pass fail n < counts

# ---- pefa-query --------------------------------------------------------------
"$bin"/pefa-build -q -o good.pefa --passages p.npy --passage-ids pids.txt "${ok_q[@]}" --threads 2 -M 8 --ef-construction 50
"$bin"/pefa-build -q -o other.pefa --passages p.npy --passage-ids pids.txt "${ok_q[@]}" --threads 2 -M 8 --ef-construction 50
"$bin"/pefa-build -q -o ermonly.pefa --passages p.npy -M 8 --ef-construction 50
Qq=(--queries test.npy)
t pefa-query "index missing" 1 "missing.pefa: cannot open" missing.pefa "${Qq[@]}"
t pefa-query "index is not a pefa file" 1 "not a pefa file" p.npy "${Qq[@]}"
head -c 5000 good.pefa > trunc.pefa
t pefa-query "index truncated" 1 "truncated" trunc.pefa "${Qq[@]}"
cp good.pefa flipped.pefa; printf '\x01' | dd of=flipped.pefa bs=1 seek=40 conv=notrunc status=none
t pefa-query "index header damaged" 1 "header checksum mismatch" flipped.pefa "${Qq[@]}"
t pefa-query "test queries: wrong dimension" 1 "dimension 50 does not match the index" good.pefa --queries q50d.npy
t pefa-query "test queries: NaN" 1 "row 2" good.pefa --queries test_nan.npy
"$bin"/pefa-build -q -o ip.pefa --passages p.npy --metric ip --no-graphs
t pefa-query "test queries under --metric ip: a squared norm over the float32 maximum" 1 "test_ip_overflow.npy: row 4 (0-based): query squared norm 1e+62 is over the float32 maximum" ip.pefa --queries test_ip_overflow.npy
t pefa-query "query ids: count differs from rows" 1 "19 ids" good.pefa "${Qq[@]}" --query-ids test_ids_short.txt
ids=$(ls good.pefa.*.ids); mv "$ids" saved.ids
t pefa-query "id map missing" 1 ".ids: id map of" good.pefa "${Qq[@]}"
cp "$(ls other.pefa.*.ids)" "$ids"
t pefa-query "id map of another index" 1 "not the id map this index was built with" good.pefa "${Qq[@]}"
mv saved.ids "$ids"
cp "$ids" saved.ids; printf '\x5a' | dd of="$ids" bs=1 seek=5000 conv=notrunc status=none
t pefa-query "id map damaged (same size)" 1 "id map checksum mismatch" good.pefa "${Qq[@]}"
mv saved.ids "$ids"
cp "$ids" saved.ids; printf 'xx' >> "$ids"
t pefa-query "id map damaged (size differs)" 1 "damaged or truncated copy" good.pefa "${Qq[@]}"
mv saved.ids "$ids"
t pefa-query "--mode xs on an index without training queries" 1 "needs training queries" ermonly.pefa "${Qq[@]}" --mode xs
t pefa-query "--explain with --mode erm" 2 "--explain works with --mode xl" good.pefa "${Qq[@]}" --explain
t pefa-query "-k 0" 2 "out of range" good.pefa "${Qq[@]}" -k 0
t pefa-query "--knn with --mode erm" 2 "--knn: mode erm does not use it (only xl does)" good.pefa "${Qq[@]}" --mode erm --knn 8
t pefa-query "--topk-p with --mode xs" 2 "--topk-p: mode xs does not use it (only xl does)" good.pefa "${Qq[@]}" --mode xs --topk-p 50
t pefa-query "--knn-norm v0 (its default) with --mode xs" 2 "--knn-norm: mode xs does not use it" good.pefa "${Qq[@]}" --mode xs --knn-norm v0
t pefa-query "--xl-scoring with --mode erm" 2 "--xl-scoring: mode erm does not use it" good.pefa "${Qq[@]}" --mode erm --xl-scoring exact
t pefa-query "--lambda with --mode erm" 2 "--lambda: mode erm does not use it (xs and xl do)" good.pefa "${Qq[@]}" --mode erm --lambda 0.3
t pefa-query "--lambda with the index's default mode erm" 2 "--lambda: mode erm, the index's default, does not use it" good.pefa "${Qq[@]}" --lambda 0.3
t pefa-query "--knn with the index's default mode erm" 2 "--knn: mode erm, the index's default, does not use it" good.pefa "${Qq[@]}" --knn 8
"$bin"/pefa-build -q -o nographs.pefa --passages p.npy --no-graphs
t pefa-query "--ef on an index without graphs (warning)" 0 "--ef has no effect: nographs.pefa has no HNSW graph" nographs.pefa "${Qq[@]}" --ef 50
t pefa-query "no INDEX" 2 "missing INDEX" "${Qq[@]}"
Qi=(--queries test.npy --query-ids test_ids.txt --no-output)
t pefa-query "eval qrels: no line names a test query" 1 "test_qrels_other.tsv: none of its 2 lines names one of the 20 queries" good.pefa "${Qi[@]}" --qrels test_qrels_other.tsv
t pefa-query "eval qrels: header only" 1 "qrels_header_only.tsv: no relevance judgements" good.pefa "${Qi[@]}" --qrels qrels_header_only.tsv
t pefa-query "eval qrels: no score > 0" 1 "test_qrels_zero.tsv: no test query has a relevant passage (score > 0)" good.pefa "${Qi[@]}" --qrels test_qrels_zero.tsv
t pefa-query "eval qrels: no relevant passage id is in the index" 1 "test_qrels_unknown_p.tsv: none of the 5 relevant passages of its test queries is in good.pefa (first: 'DOC-" good.pefa "${Qi[@]}" --qrels test_qrels_unknown_p.tsv
t pefa-query "eval qrels: some passage ids not in the index (warning)" 0 "test_qrels_some_unknown_p.tsv: 1 of the 5 relevant passages of its test queries are not in good.pefa (first: 'DOC-" good.pefa "${Qi[@]}" --qrels test_qrels_some_unknown_p.tsv
t pefa-query "eval qrels: a bad line (before any query runs)" 1 "qrels_bad_score.tsv:2: score 'abc'" good.pefa "${Qi[@]}" --qrels qrels_bad_score.tsv
t pefa-query "good index, good queries (control)" 0 "queries=20" good.pefa "${Qq[@]}" --mode xl

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
