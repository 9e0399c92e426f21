#!/usr/bin/env bash
# deps.sh [build|test|bench|fuzz|slurm]... - installs the Debian packages pefa needs
# that are missing (nothing is installed when everything is there).
set -euo pipefail
build=(gcc make cmake pkg-config libzstd-dev libxxhash-dev liblmdb-dev libmicrohttpd-dev libjansson-dev)
test=(libcmocka-dev python3-numpy python3-dev python3-pytest python3-setuptools python3-venv)
bench=(python3-numpy python3-hnswlib python3-faiss python3-matplotlib npm g++ libhnswlib-dev libfaiss-dev wrk)
fuzz=(clang libclang-rt-14-dev)
slurm=(slurm-wlm munge)
want=()
[ $# -eq 0 ] && set -- build
for group in "$@"; do
  case "$group" in
    build) want+=("${build[@]}") ;;
    test) want+=("${build[@]}" "${test[@]}") ;;
    bench) want+=("${build[@]}" "${bench[@]}") ;;
    fuzz) want+=("${build[@]}" "${test[@]}" "${fuzz[@]}") ;;
    slurm) want+=("${build[@]}" "${slurm[@]}") ;;
    *) echo "deps.sh: unknown group '$group' (build, test, bench, fuzz, slurm)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
  # a tool installed some other way (npm from nodesource, a hand-built cmake) is there too
  case $p in lib*|python3-*) ;; *) command -v "$p" >/dev/null 2>&1 && continue ;; esac
  missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps.sh: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
