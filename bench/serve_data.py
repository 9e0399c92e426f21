#!/usr/bin/python3
"""serve_data.py DATA OUT - inputs for bench-serve from the GloVe-100 cache
(bench/fetch_glove.sh + prepare_glove.py):

  passages      glove-base.npy (331,479 unit rows), ids = the words
  training set  the first 8,000 of glove-queries.npy, each "relevant" to its 10
                exact nearest base rows (glove-gt.npy): synthetic search logs, so
                that PEFA-XS and PEFA-XL have something to serve
  test queries  the other 2,000 queries (held out): test_q.npy, and
                bodies_<mode>.jsonl, one POST /search body per line
"""
import json
import os
import sys

import numpy as np

data, out = sys.argv[1:3]
os.makedirs(out, exist_ok=True)
base_idx = np.load(os.path.join(data, "glove-base-idx.npy"))
words = open(os.path.join(data, "glove-words.txt"), encoding="utf-8").read().split("\n")
pids = [words[r] for r in base_idx]
with open(os.path.join(out, "passage_ids.txt"), "w", encoding="utf-8") as f:
    for w in pids:
        f.write(w + "\n")
q = np.load(os.path.join(data, "glove-queries.npy")).astype(np.float32)
gt = np.load(os.path.join(data, "glove-gt.npy"))
n_train = 8000
np.save(os.path.join(out, "train_q.npy"), q[:n_train])
with open(os.path.join(out, "train_qrels.tsv"), "w") as f:
    for i in range(n_train):
        for r in gt[i, :10]:
            f.write(f"{i}\t{pids[r]}\t1\n")
test = q[n_train:]
np.save(os.path.join(out, "test_q.npy"), test)
for mode in ("erm", "xs", "xl"):
    with open(os.path.join(out, f"bodies_{mode}.jsonl"), "w") as f:
        for row in test:
            f.write(json.dumps({"vector": [float(x) for x in row], "k": 10, "mode": mode}, separators=(",", ":")) + "\n")
print(f"{out}: {len(base_idx)} passages, {n_train} training queries, {len(test)} test queries")
