#!/usr/bin/env bash
# run_slurm_test.sh BIN_DIR SRC_DIR - the Slurm integration test (own target,
# not the default tier): installs Debian's slurm-wlm and munge if missing,
# starts a single-node cluster in a temporary directory (munged, slurmctld,
# slurmd, on unused ports), submits deploy/slurm's job array for N = 4 shards
# of the SciFact demo data plus the dependent manifest job, waits, and checks
# the set against the unsharded index (every mode, --exact: identical runs).
# Stops its daemons and removes its files on every exit path.
set -euo pipefail
bin=$(cd "${1:?usage: run_slurm_test.sh BIN_DIR SRC_DIR}" && pwd); src=$(cd "${2:?}" && pwd)
"$src"/scripts/deps.sh slurm
tmp=$(mktemp -d /tmp/pefa-slurm-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
host=$(hostname -s)
port=$(( 20000 + RANDOM % 20000 ))
mkdir -p "$tmp"/{state,spool,log,out}
dd if=/dev/urandom of="$tmp"/munge.key bs=1024 count=1 status=none; chmod 600 "$tmp"/munge.key
munged -F -f --key-file="$tmp"/munge.key --socket="$tmp"/munge.sock --pid-file="$tmp"/munged.pid \
  --log-file="$tmp"/log/munged.log --seed-file="$tmp"/munged.seed & pids+=($!)
cat > "$tmp"/slurm.conf <<CONF
ClusterName=pefatest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge.sock
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$tmp/slurm.conf
sleep 1
slurmctld -D -f "$SLURM_CONF" > "$tmp"/log/slurmctld.out 2>&1 & pids+=($!)
sleep 2
slurmd -D -f "$SLURM_CONF" > "$tmp"/log/slurmd.out 2>&1 & pids+=($!)
for _ in $(seq 60); do sinfo -h -o %t 2>/dev/null | grep -qE 'idle|mix' && break; sleep 1; done
sinfo || { tail -20 "$tmp"/log/*.log; exit 1; }

d=$src/data/scifact
args="--passages $d/passages.npy --passage-ids $d/passage_ids.txt --queries $d/train_queries.npy
      --query-ids $d/train_query_ids.txt --qrels $d/train_qrels.tsv --threads 1"
export PEFA_BIN=$bin
read -r array setjob < <("$src"/deploy/slurm/submit.sh 4 "$tmp"/out -- $args)
echo "submitted: shard array $array, manifest job $setjob"
for _ in $(seq 300); do
  state=$(scontrol show job "$setjob" -o 2>/dev/null | sed -nE 's/.*JobState=([A-Z_]+).*/\1/p')
  case $state in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL) break ;; esac
  sleep 1
done
echo "manifest job: $state"
cat "$tmp"/out/pefa-shard-*.out "$tmp"/out/pefa-set-*.out 2>/dev/null | grep -v '^$' | tail -20
[ "$state" = COMPLETED ] || { tail -30 "$tmp"/log/slurmctld.log; exit 1; }

"$bin"/pefa-build -q -o "$tmp"/full.pefa $args
q=(--queries $d/test_queries.npy --query-ids $d/test_query_ids.txt -k 100 --exact)
fail=0
for m in erm xs "xl --lambda 0.1 --knn 16"; do
  # shellcheck disable=SC2086
  "$bin"/pefa-query "$tmp"/full.pefa "${q[@]}" --mode $m > "$tmp"/a.tsv 2>/dev/null
  # shellcheck disable=SC2086
  "$bin"/pefa-query "$tmp"/out/set.pefaset "${q[@]}" --mode $m > "$tmp"/b.tsv 2>/dev/null
  if cmp -s "$tmp"/a.tsv "$tmp"/b.tsv; then echo "ok: $m: the Slurm-built set answers like the unsharded index"
  else echo "FAILED: $m differs"; fail=1; fi
done
exit $fail
