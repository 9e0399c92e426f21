#!/usr/bin/python3
"""Recall@k vs single-thread QPS (log y) from peers_bench's JSON.

  /usr/bin/python3 bench/plot_peers.py RESULT.json|DIR ...

Writes RESULT.png beside each JSON (for a directory: every peers*.json in it).
The first build is drawn with markers; further builds (--builds N) as thin
lines of the same colour, so the spread between builds is visible.
"""
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"pefa": "C0", "pefa-f16": "C9", "pefa-i8": "C4", "hnswlib": "C1", "faiss": "C2"}


def plot(path):
    with open(path) as f:
        r = json.load(f)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    lo = 1.0
    for b, build in enumerate(r["builds"]):
        for name, lib in build["libs"].items():
            pts = [(p["recall"], p["qps"]) for p in lib["curve"] if p["qps"]]
            if not pts:
                continue
            lo = min(lo, min(p[0] for p in pts))
            kw = dict(color=COLOURS.get(name), label=name) if b == 0 else dict(color=COLOURS.get(name), lw=0.6, alpha=0.5)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if b == 0 else None, ms=3, **kw)
    ax.set_yscale("log")
    ax.set_xlabel("recall@%d" % r["k"])
    ax.set_ylabel("queries / s (1 thread, median of %d)" % r["reps"])
    ax.set_xlim(left=max(0.5, lo - 0.01), right=1.0)
    for t in (0.95, 0.99):
        ax.axvline(t, color="grey", lw=0.5, ls="--")
    ax.grid(True, which="both", lw=0.3)
    sub = "" if r["n"] == r["n_full"] else " (first %d rows)" % r["n"]
    ax.set_title("GloVe-100 n=%d%s nq=%d, M=%d efC=%d, %d build(s)\n%s; pefa kernel %s"
                 % (r["n"], sub, r["nq"], r["M"], r["efC"], len(r["builds"]), r["cpu"], r["kernels"]["pefa"]),
                 fontsize=9)
    ax.legend()
    fig.tight_layout()
    out = os.path.splitext(path)[0] + ".png"
    fig.savefig(out, dpi=120)
    plt.close(fig)
    print("plot:", out)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    paths = []
    for a in sys.argv[1:]:
        paths += sorted(glob.glob(os.path.join(a, "peers*.json"))) if os.path.isdir(a) else [a]
    if not paths:
        sys.exit("plot_peers.py: no peers*.json in " + " ".join(sys.argv[1:]))
    for p in paths:
        plot(p)


if __name__ == "__main__":
    main()
