#!/usr/bin/python3
"""make_y_pairs.py - pair files for bench/y_bench.c (docs/y-encoding.md):
SciFact's training qrels as row numbers, and Y derived from GloVe's exact
neighbours (10 per held-out query; values 1, and click counts 1..5)."""
import os
import sys

import numpy as np

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
cache = os.environ.get("PEFA_BENCH_DATA", os.path.join(root, "build", "bench-data"))
d = os.path.join(root, "data", "scifact")
pids = {l.strip(): i for i, l in enumerate(open(os.path.join(d, "passage_ids.txt")))}
qids = {l.strip(): i for i, l in enumerate(open(os.path.join(d, "train_query_ids.txt")))}
with open(os.path.join(cache, "y_scifact.tsv"), "w") as f:
    for n, line in enumerate(open(os.path.join(d, "train_qrels.tsv"))):
        if n == 0:
            continue
        q, p, s = line.rstrip("\n").split("\t")
        f.write(f"{qids[q]}\t{pids[p]}\t{s}\n")
gt_path = os.path.join(cache, "glove-gt.npy")
if not os.path.exists(gt_path):
    sys.exit(f"{gt_path} missing: run bench/fetch_glove.sh first")
gt = np.load(gt_path)
with open(os.path.join(cache, "y_glove.tsv"), "w") as f, open(os.path.join(cache, "y_glove_clicks.tsv"), "w") as g:
    for q in range(gt.shape[0]):
        for r in range(10):
            f.write(f"{q}\t{gt[q, r]}\t1\n")
            g.write(f"{q}\t{gt[q, r]}\t{1 + (q * 7 + r) % 5}\n")
print("wrote y_scifact.tsv, y_glove.tsv, y_glove_clicks.tsv to", cache)
