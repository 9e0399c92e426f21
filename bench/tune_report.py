#!/usr/bin/env python3
"""tune_report.py - the leave-one-out grid of an index next to each setting's
test metrics (exact search), as a markdown table for docs/tuning.md.

  tune_report.py --bin BUILD/tools --index IDX.pefa --queries T.npy --query-ids T.txt
                 --qrels T.tsv [--threads N]

Runs `pefa-tune --json` (what the build chose and why) and, for every grid
setting, `pefa-query --exact` on the test queries: the columns show how far
the training-only estimate (leave-one-out) tracks the test figures.
"""
import argparse
import json
import re
import subprocess
import sys


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), p.stderr))
    return p


def test_metrics(a, mode, lam, knn):
    cmd = [a.bin + "/pefa-query", a.index, "--queries", a.queries, "--query-ids", a.query_ids,
           "--qrels", a.qrels, "-k", "100", "--no-output", "--exact", "--threads", str(a.threads),
           "--mode", mode]
    if mode != "erm":
        cmd += ["--lambda", "%g" % lam]
    if mode == "xl":
        cmd += ["--knn", str(knn)]
    err = run(cmd).stderr
    m = re.search(r"recall@10=([0-9.]+) .*recall@100=([0-9.]+) ndcg@10=([0-9.]+)", err)
    return float(m.group(1)), float(m.group(2)), float(m.group(3))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for f in ("bin", "index", "queries", "query_ids", "qrels"):
        ap.add_argument("--" + f.replace("_", "-"), dest=f, required=True)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    grid = json.loads(run([a.bin + "/pefa-tune", a.index, "--json", "-q"]).stdout)
    print("Leave-one-out %s on %d training queries (%d distinct), seed %d, %.2f s; test: exact search,"
          " k 100.\n" % (grid["metric"], grid["queries"], grid["distinct"], grid["seed"], grid["seconds"]))
    print("| | mode | λ | k | LOO %s | Δ vs ERM | bootstrap 5%% Δ | test R@10 | test R@100 | test nDCG@10 |"
          % grid["metric"])
    print("|---|---|---|---|---|---|---|---|---|---|")
    best = (None, -1)
    for i, s in enumerate(grid["grid"]):
        r10, r100, nd = test_metrics(a, s["mode"], s["lambda"], s["knn"])
        if r100 > best[1]:
            best = (i, r100)
        lam = "-" if s["mode"] == "erm" else "%.1f" % s["lambda"]
        k = str(s["knn"]) if s["mode"] == "xl" else "-"
        mark = "**chosen**" if i == grid["chosen"] else ""
        print("| %s | %s | %s | %s | %.4f | %+.4f | %+.4f | %.4f | %.4f | %.4f |"
              % (mark, s["mode"], lam, k, s["score"], s["delta"], s["delta_lo"], r10, r100, nd))
    b = grid["grid"][best[0]]
    print("\nBest test recall@100 in hindsight: %s λ %.1f k %s = %.4f." % (b["mode"], b["lambda"],
                                                                         b["knn"] or "-", best[1]))
    lc = grid.get("label_check")
    if lc:
        print("\nLabel check (%s): %s; ERM recall@100 on the tuning queries' own labels %.4f, on the other tuning"
              " queries' labels %.4f, bootstrap 5%% of the difference %+.4f."
              % ("on" if lc["enabled"] else "off", "passed" if lc["passed"] else "failed", lc["own"], lc["other"],
                 lc["delta_lo"]))


if __name__ == "__main__":
    main()
