#!/usr/bin/python3
"""compare_runs.py - compares two TSV runs (query_id, rank, passage_id, score).

  compare_runs.py exact REF GOT [--tol 1e-5]
      same ids in the same order per query, except where scores tie (|diff| <= tol,
      then the order among the tied group may differ); scores within tol.
  compare_runs.py recall REF GOT [--k 100] [--min 0.99]
      recall@k of GOT against REF's top-k, averaged over REF's queries.
Prints one line and exits 1 when the check fails.
"""
import sys
from collections import defaultdict


def load(path):
    runs = defaultdict(list)
    with open(path) as f:
        for line in f:
            q, r, p, s = line.rstrip("\n").split("\t")[:4]
            runs[q].append((int(r), p, float(s)))
    for q in runs:
        runs[q].sort()
    return runs


def exact(ref, got, tol):
    bad = 0
    worst = 0.0
    for q, rl in ref.items():
        gl = got.get(q, [])
        if len(gl) != len(rl):
            print(f"query {q}: {len(gl)} hits, reference has {len(rl)}")
            return 1
        for (_, rp, rs), (_, gp, gs) in zip(rl, gl):
            worst = max(worst, abs(rs - gs))
            if abs(rs - gs) > tol:
                print(f"query {q}: score {gs} vs reference {rs} (passage {gp} / {rp})")
                return 1
        # ids: compare as multisets within groups of tied scores
        i = 0
        while i < len(rl):
            j = i
            while j + 1 < len(rl) and abs(rl[j + 1][2] - rl[i][2]) <= tol:
                j += 1
            rset = sorted(x[1] for x in rl[i:j + 1])
            gset = sorted(x[1] for x in gl[i:j + 1])
            if rset != gset:
                # a tie group cut by the end of the list may hold different members
                if j == len(rl) - 1 and abs(rl[-1][2] - gl[-1][2]) <= tol:
                    pass
                else:
                    bad += 1
                    print(f"query {q}: ranks {i+1}-{j+1} differ: {gset[:5]} vs reference {rset[:5]}")
                    return 1
            i = j + 1
    print(f"exact: {len(ref)} queries match (max score difference {worst:.2e}, tolerance {tol:g})")
    return 0


def recall(ref, got, k, minimum):
    total = 0.0
    for q, rl in ref.items():
        rs = {p for _, p, _ in rl[:k]}
        gs = {p for _, p, _ in got.get(q, [])[:k]}
        total += len(rs & gs) / max(len(rs), 1)
    r = total / max(len(ref), 1)
    ok = r >= minimum
    print(f"recall@{k} against the exact answers: {r:.4f} (need >= {minimum}) {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


def main(argv):
    mode, refp, gotp = argv[1], argv[2], argv[3]
    opts = dict(zip(argv[4::2], argv[5::2]))
    ref, got = load(refp), load(gotp)
    if mode == "exact":
        return exact(ref, got, float(opts.get("--tol", "1e-5")))
    if mode == "recall":
        return recall(ref, got, int(opts.get("--k", "100")), float(opts.get("--min", "0.99")))
    print("usage: compare_runs.py exact|recall REF GOT [opts]")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
