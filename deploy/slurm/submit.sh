#!/usr/bin/env bash
# submit.sh N OUT_DIR -- PEFA-BUILD ARGS...
# Submits the N shard builds as a Slurm job array and the manifest job that
# waits for them (afterok); prints the two job ids.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=${1:?usage: submit.sh N OUT_DIR -- pefa-build args}; out=${2:?}; shift 2
[ "${1:-}" = "--" ] && shift
mkdir -p "$out"
export PEFA_SHARDS=$n PEFA_OUT=$(cd "$out" && pwd) PEFA_BUILD_ARGS="$*"
array=$(sbatch --parsable --array=0-$((n - 1)) --export=ALL --chdir="$out" "$here"/build-shards.sbatch)
set_job=$(sbatch --parsable --dependency=afterok:"$array" --export=ALL --chdir="$out" "$here"/make-set.sbatch)
echo "$array $set_job"
