#!/usr/bin/python3
"""HNSW comparison on GloVe-100: pefa (C binary) vs hnswlib vs FAISS IndexHNSWFlat.

All three build with the same M / efConstruction and 2 threads; search is
single-threaded over one batch of queries per ef.  For each library the
recall@10-vs-QPS curve is interpolated (linear in recall, log in QPS) at
recall 0.95 and 0.99.  Prints a table (and a machine-readable JSON line per
config), and writes a recall-vs-QPS PNG per config.

Data: glove-base.npy / glove-queries.npy / glove-gt.npy in $PEFA_BENCH_DATA
(default <repo>/build/bench-data), made by bench/fetch_glove.sh and
bench/prepare_glove.py.

  /usr/bin/python3 bench/run_hnsw_bench.py --bin build/bench/pefa-hnsw-bench
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

DEFAULT_EFS = "10,20,40,60,80,120,160,240,320,480,640,960"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def recall_at(ids, gt, k):
    ids = np.asarray(ids)[:, :k]
    g = gt[:, :k]
    hits = 0
    for i in range(len(ids)):
        hits += len(np.intersect1d(ids[i], g[i], assume_unique=False))
    return hits / (len(ids) * k)


def interp_qps(curve, target):
    """curve: list of (recall, qps). QPS at recall == target, interpolated
    linearly in recall and geometrically in QPS between the two measured points
    around the target; None when the target is never reached."""
    pts = sorted(curve)
    if not pts or pts[-1][0] < target:
        return None
    # best QPS among points already at/above target (curve may be noisy)
    prev = None
    for r, q in pts:
        if r >= target:
            if prev is None or prev[0] >= r:
                return q
            r0, q0 = prev
            t = (target - r0) / (r - r0)
            return math.exp(math.log(q0) + t * (math.log(q) - math.log(q0)))
        prev = (r, q)
    return None


def best_time(fn, reps):
    best, out = None, None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t
        best = dt if best is None or dt < best else best
    return best, out


def run_pefa(binpath, base_path, q_path, gt_path, M, efc, threads, efs, nbase, nq, k, f16, reps):
    cmd = [binpath, "--base", base_path, "--queries", q_path, "--gt", gt_path,
           "--M", str(M), "--efc", str(efc), "--threads", str(threads),
           "--ef", ",".join(map(str, efs)), "--k", str(k), "--nbase", str(nbase), "--nq", str(nq), "--reps", str(reps)]
    if f16:
        cmd.append("--f16")
    log("+", " ".join(cmd))
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    build_s, curve, impl = None, [], "?"
    for line in out.splitlines():
        kind, *kv = line.split()
        d = dict(x.split("=", 1) for x in kv)
        if kind == "build":
            build_s = float(d["seconds"])
        elif kind == "search":
            curve.append((float(d["recall"]), float(d["qps"]), int(d["ef"])))
        elif kind == "impl":
            impl = d["name"]
    return build_s, curve, impl


def run_hnswlib(base, queries, gt, M, efc, threads, efs, k, reps, seed=42):
    import hnswlib
    idx = hnswlib.Index(space="ip", dim=base.shape[1])
    idx.init_index(max_elements=base.shape[0], M=M, ef_construction=efc, random_seed=seed)
    idx.set_num_threads(threads)
    t = time.perf_counter()
    idx.add_items(base, np.arange(base.shape[0]))
    build_s = time.perf_counter() - t
    idx.set_num_threads(1)
    idx.set_ef(efs[0])
    idx.knn_query(queries, k=k)  # warm-up
    curve = []
    for ef in efs:
        idx.set_ef(max(ef, k))
        dt, (labels, _) = best_time(lambda: idx.knn_query(queries, k=k), reps)
        curve.append((recall_at(labels, gt, k), len(queries) / dt, ef))
    del idx
    return build_s, curve


def run_faiss(base, queries, gt, M, efc, threads, efs, k, reps):
    import faiss
    idx = faiss.IndexHNSWFlat(base.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    idx.hnsw.efConstruction = efc
    faiss.omp_set_num_threads(threads)
    t = time.perf_counter()
    idx.add(base)
    build_s = time.perf_counter() - t
    faiss.omp_set_num_threads(1)
    idx.hnsw.efSearch = efs[0]
    idx.search(queries, k)  # warm-up
    curve = []
    for ef in efs:
        idx.hnsw.efSearch = max(ef, k)
        dt, (_, labels) = best_time(lambda: idx.search(queries, k), reps)
        curve.append((recall_at(labels, gt, k), len(queries) / dt, ef))
    del idx
    return build_s, curve


def exact_gt(base, queries, k):
    import faiss
    faiss.omp_set_num_threads(2)
    idx = faiss.IndexFlatIP(base.shape[1])
    idx.add(base)
    _, labels = idx.search(queries, k)
    return labels.astype(np.int32)


def fmt(x, spec="{:.0f}"):
    return "-" if x is None else spec.format(x)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def plot(path, title, curves):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, curve in curves.items():
        pts = sorted((r, q) for r, q, _ in curve)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("recall@10")
    ax.set_ylabel("queries / s (1 thread)")
    ax.set_xlim(left=max(0.5, min(min(c[0] for c in cv) for cv in curves.values()) - 0.01), right=1.0)
    for t in (0.95, 0.99):
        ax.axvline(t, color="grey", lw=0.5, ls="--")
    ax.grid(True, which="both", lw=0.3)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "bench", "pefa-hnsw-bench"))
    ap.add_argument("--data", default=os.environ.get("PEFA_BENCH_DATA", os.path.join(REPO, "build", "bench-data")))
    ap.add_argument("--out", default=os.path.join(REPO, "build", "bench-results"))
    ap.add_argument("--configs", default="16:200,32:500:100000",
                    help="comma list of M:efConstruction[:nbase] (nbase 0 = full base)")
    ap.add_argument("--ef", default=DEFAULT_EFS)
    ap.add_argument("--threads", type=int, default=2, help="build threads (search is always 1)")
    ap.add_argument("--nq", type=int, default=0, help="number of queries (0 = all)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--reps", type=int, default=2, help="search timing: best of N passes per ef")
    ap.add_argument("--libs", default="pefa,pefa-f16,hnswlib,faiss")
    ap.add_argument("--wait", type=int, default=1800, help="seconds to wait for the data files")
    args = ap.parse_args()

    paths = {n: os.path.join(args.data, "glove-%s.npy" % n) for n in ("base", "queries", "gt")}
    t0 = time.time()
    while not all(os.path.exists(p) for p in paths.values()):
        if time.time() - t0 > args.wait:
            sys.exit("missing data files in %s (run bench/fetch_glove.sh)" % args.data)
        log("waiting for data files in", args.data)
        time.sleep(30)
    base = np.ascontiguousarray(np.load(paths["base"], mmap_mode="r"), dtype=np.float32)
    queries = np.ascontiguousarray(np.load(paths["queries"]), dtype=np.float32)
    gt_full = np.load(paths["gt"]).astype(np.int32)
    if args.nq:
        queries = queries[:args.nq]
        gt_full = gt_full[:args.nq]
    nq = len(queries)
    efs = [int(x) for x in args.ef.split(",") if x]
    libs = args.libs.split(",")
    os.makedirs(args.out, exist_ok=True)
    tmpdir = tempfile.mkdtemp(prefix="pefa-hnsw-bench-")

    results = []
    for cfg in args.configs.split(","):
        parts = [int(x) for x in cfg.split(":")]
        M, efc = parts[0], parts[1]
        nbase = parts[2] if len(parts) > 2 and parts[2] else base.shape[0]
        nbase = min(nbase, base.shape[0])
        b = base[:nbase]
        if nbase == base.shape[0]:
            gt, gt_path = gt_full, paths["gt"]
            q_path = paths["queries"]
        else:
            log("computing exact ground truth for the first %d base rows" % nbase)
            gt = exact_gt(b, queries, 100)
            gt_path = os.path.join(tmpdir, "gt-%d.npy" % nbase)
            np.save(gt_path, gt)
            q_path = paths["queries"]
        note = "" if nbase == base.shape[0] else " (SUBSET: first %d base rows)" % nbase
        log("=== M=%d efC=%d n=%d nq=%d%s" % (M, efc, nbase, nq, note))
        row = {"M": M, "efC": efc, "n": nbase, "nq": nq, "build_threads": args.threads, "libs": {}}
        for lib in libs:
            log("--- %s" % lib)
            if lib in ("pefa", "pefa-f16"):
                bs, curve, impl = run_pefa(args.bin, paths["base"], q_path, gt_path, M, efc, args.threads,
                                           efs, nbase, nq, args.k, lib == "pefa-f16", args.reps)
                row["impl"] = impl
            elif lib == "hnswlib":
                bs, curve = run_hnswlib(b, queries, gt, M, efc, args.threads, efs, args.k, args.reps)
            elif lib == "faiss":
                bs, curve = run_faiss(b, queries, gt, M, efc, args.threads, efs, args.k, args.reps)
            else:
                sys.exit("unknown lib " + lib)
            rq = [(r, q) for r, q, _ in curve]
            row["libs"][lib] = {"build_s": bs, "curve": curve,
                                "qps95": interp_qps(rq, 0.95), "qps99": interp_qps(rq, 0.99)}
            log("    build %.1f s; " % bs + " ".join("ef%d:%.4f/%.0f" % (e, r, q) for r, q, e in curve))
        results.append(row)
        png = os.path.join(args.out, "hnsw-recall-qps-M%d-efc%d-n%d.png" % (M, efc, nbase))
        plot(png, "GloVe-100 n=%d, M=%d efC=%d, 1 search thread" % (nbase, M, efc),
             {k: v["curve"] for k, v in row["libs"].items()})
        row["png"] = png
        print_table(row)
        print("JSON " + json.dumps(row), flush=True)

    print("\n==== summary ====")
    for row in results:
        print_table(row)
    with open(os.path.join(args.out, "hnsw-bench.json"), "w") as f:
        json.dump(results, f, indent=1)


def print_table(row):
    libs = row["libs"]
    print("\nGloVe-100 n=%d nq=%d  M=%d efC=%d  build threads=%d  search threads=1  kernel=%s"
          % (row["n"], row["nq"], row["M"], row["efC"], row["build_threads"], row.get("impl", "?")))
    print("%-10s %10s %12s %12s" % ("lib", "build_s", "QPS@R0.95", "QPS@R0.99"))
    for name, v in libs.items():
        print("%-10s %10.1f %12s %12s" % (name, v["build_s"], fmt(v["qps95"]), fmt(v["qps99"])))
    for ours in ("pefa", "pefa-f16"):
        if ours not in libs:
            continue
        for other in ("hnswlib", "faiss"):
            if other not in libs:
                continue
            a, o = libs[ours], libs[other]
            print("  %s/%s: QPS ratio @0.95 %s  @0.99 %s   build-time ratio %s"
                  % (ours, other, fmt(ratio(a["qps95"], o["qps95"]), "{:.2f}x"),
                     fmt(ratio(a["qps99"], o["qps99"]), "{:.2f}x"),
                     fmt(ratio(a["build_s"], o["build_s"]), "{:.2f}x")))
    print("  plot: %s" % row.get("png", "-"), flush=True)


if __name__ == "__main__":
    main()
