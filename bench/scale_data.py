#!/usr/bin/env python3
"""scale_data.py - a synthetic collection of any size and dimension, for the
build scaling table (bench/scaling.sh). No download: the rows are drawn here.

Passages are a mixture of Gaussian clusters on the unit sphere (one cluster
per 500 passages, spread 0.6 around its centre), so HNSW sees neighbourhoods
rather than uniform noise. Training queries follow bench/noisy_logs.py's log
model without its real-embedding geometry: each has an intent passage drawn
from a Zipf law (s 1.1: a few passages get thousands of queries), is worded
near it, q = normalise(a p_intent + (1 - a) w) with a ~ U(0.5, 1) and w a
random direction, and has --rels relevant passages: the intent, and rels - 1
clicks that are with probability --noise an unrelated passage and otherwise
another passage of the intent's cluster. Test queries are drawn the same way.

  scale_data.py --out DIR --passages N [--queries N] [--dim 100] [--rels 3]
                [--noise 0.667] [--test 1000] [--seed 1]

Writes passages.npy, queries.npy, qrels.tsv (ids are row numbers),
test_queries.npy, test_qrels.tsv (intent only), meta.json. Streams in blocks
of 65536 rows, so memory stays near one block whatever N is.
"""
import argparse
import json
import os

import numpy as np

BLOCK = 65536


def unit(x):
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def passages(args, centres, out):
    rng = np.random.default_rng(args.seed)
    n, d = args.passages, args.dim
    P = np.lib.format.open_memmap(os.path.join(out, "passages.npy"), "w+", np.float32, (n, d))
    cluster = np.empty(n, np.int64)
    for a in range(0, n, BLOCK):
        b = min(n, a + BLOCK)
        c = rng.integers(0, len(centres), b - a)
        cluster[a:b] = c
        P[a:b] = unit(centres[c] + 0.6 / np.sqrt(d) * rng.standard_normal((b - a, d), np.float32))
    P.flush()
    return P, cluster


def log_queries(rng, P, cluster, members, n, args, name, out, qrels_path, clicks):
    d = args.dim
    Q = np.lib.format.open_memmap(os.path.join(out, name), "w+", np.float32, (n, d))
    w = 1.0 / np.arange(1, len(P) + 1) ** 1.1
    w /= w.sum()
    order = rng.permutation(len(P))
    with open(qrels_path, "w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for a in range(0, n, BLOCK):
            b = min(n, a + BLOCK)
            intent = order[rng.choice(len(P), b - a, p=w)]
            alpha = rng.uniform(0.5, 1.0, (b - a, 1)).astype(np.float32)
            noise = unit(rng.standard_normal((b - a, d), np.float32))
            Q[a:b] = unit(alpha * P[intent] + (1 - alpha) * noise)
            lines = []
            for i in range(b - a):
                rel = [int(intent[i])]
                for _ in range(clicks):
                    if rng.random() < args.noise:
                        rel.append(int(rng.integers(0, len(P))))
                    else:
                        m = members[cluster[intent[i]]]
                        rel.append(int(m[rng.integers(0, len(m))]))
                lines.extend("%d\t%d\t1\n" % (a + i, r) for r in dict.fromkeys(rel))
            f.write("".join(lines))
    Q.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--passages", type=int, required=True)
    ap.add_argument("--queries", type=int)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--rels", type=int, default=3)
    ap.add_argument("--noise", type=float, default=0.667)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    args.queries = args.queries or args.passages
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed + 1)
    centres = unit(rng.standard_normal((max(1, args.passages // 500), args.dim), np.float32))
    P, cluster = passages(args, centres, args.out)
    members = np.split(np.argsort(cluster, kind="stable"), np.cumsum(np.bincount(cluster, minlength=len(centres)))[:-1])
    log_queries(rng, P, cluster, members, args.queries, args, "queries.npy", args.out,
                os.path.join(args.out, "qrels.tsv"), args.rels - 1)
    log_queries(rng, P, cluster, members, args.test, args, "test_queries.npy", args.out,
                os.path.join(args.out, "test_qrels.tsv"), 0)
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(vars(args), f, indent=1)


if __name__ == "__main__":
    main()
