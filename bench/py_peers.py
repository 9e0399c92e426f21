#!/usr/bin/python3
"""pefa vs hnswlib vs FAISS, all three from Python, in one process, on GloVe-100.

The same base (331k unit rows) and held-out queries (10k) as bench-hnsw; the same
M and efConstruction for the three HNSW graphs, built with all threads. Search: one
batch of all queries per (ef, library), with 1 thread and with all threads; every
(ef, repeat) runs the three libraries back to back in rotating order (interleaved,
so load from other processes hits them alike) and the median of the repeats is
taken. QPS at recall@10 0.95 and 0.99 is interpolated on each curve (linear in
recall, geometric in QPS: bench/run_hnsw_bench.py's interp_qps).

Per-call overhead: each query alone through ix.search(q) (1-D q, threads=1, timed
with perf_counter_ns around the call), against the same query searched in C
inside the extension (Index._time_c_loop: pefa_search_batch with n = 1, the call
ix.search makes, and pefa_search with a warm searcher of its own, timed in C with
clock_gettime), query by query, after one untimed search of that query so that
both find the same data in the caches; binding overhead = the median over
queries of (python time - C time), each the minimum of --reps runs.

  PYTHONPATH=build/python /usr/bin/python3 bench/py_peers.py --data /path/to/bench-data
  (cmake --build build --target bench-python)
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run_hnsw_bench import interp_qps  # noqa: E402 (one home for the interpolation rule)

import pefa  # noqa: E402

DEFAULT_EFS = "10,20,40,60,80,120,160,240,320,480,640"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def recall(ids, gt, k):
    ids = np.asarray(ids)[:, :k]
    return float((ids[:, :, None] == gt[:, None, :k]).any(axis=2).sum()) / (len(ids) * k)


class Pefa:
    name = "pefa"

    def __init__(self, base, M, efc, threads, workdir):
        self.path = os.path.join(workdir, "glove-M%d-efc%d.pefa" % (M, efc))
        t = time.perf_counter()
        stats = pefa.build(self.path, base, M=M, ef_construction=efc, threads=threads, progress=False)
        self.build_s = time.perf_counter() - t  # the whole build: normalise, graph, write + fsync the file
        self.graph_s = stats["seconds_graphs"]
        self.ix = pefa.Index(self.path)

    def search(self, Q, k, ef, threads):
        return self.ix.search(Q, k=k, mode="erm", ef=ef, threads=threads)[0]

    def one(self, q, k, ef):
        return self.ix.search(q, k=k, mode="erm", ef=ef, threads=1)

    def close(self):
        self.ix.close()
        os.remove(self.path)


class Hnswlib:
    name = "hnswlib"

    def __init__(self, base, M, efc, threads, workdir):
        import hnswlib
        self.ix = hnswlib.Index(space="ip", dim=base.shape[1])
        self.ix.init_index(max_elements=base.shape[0], M=M, ef_construction=efc, random_seed=42)
        t = time.perf_counter()
        self.ix.add_items(base, np.arange(base.shape[0]), num_threads=threads or -1)
        self.build_s = time.perf_counter() - t

    def search(self, Q, k, ef, threads):
        self.ix.set_ef(max(ef, k))
        return self.ix.knn_query(Q, k=k, num_threads=threads or -1)[0]

    def one(self, q, k, ef):
        return self.ix.knn_query(q, k=k, num_threads=1)

    def close(self):
        del self.ix


class Faiss:
    name = "faiss"

    def __init__(self, base, M, efc, threads, workdir):
        import faiss
        self.faiss = faiss
        self.all = faiss.omp_get_max_threads()
        self.ix = faiss.IndexHNSWFlat(base.shape[1], M, faiss.METRIC_INNER_PRODUCT)
        self.ix.hnsw.efConstruction = efc
        faiss.omp_set_num_threads(threads or self.all)
        t = time.perf_counter()
        self.ix.add(base)
        self.build_s = time.perf_counter() - t

    def search(self, Q, k, ef, threads):
        self.faiss.omp_set_num_threads(threads or self.all)
        self.ix.hnsw.efSearch = max(ef, k)
        return self.ix.search(Q, k)[1]

    def one(self, q, k, ef):
        self.faiss.omp_set_num_threads(1)
        return self.ix.search(q[None, :], k)

    def close(self):
        del self.ix


LIBS = {"pefa": Pefa, "hnswlib": Hnswlib, "faiss": Faiss}


def sweep(libs, Q, gt, k, efs, threads, reps):
    """{lib: [(recall, qps, ef), ...]}; (ef, repeat) runs the libraries in rotating order"""
    times = {lib.name: {ef: [] for ef in efs} for lib in libs}
    rec = {lib.name: {} for lib in libs}
    for lib in libs:  # warm-up (first touches of pages, thread pools)
        lib.search(Q[:200], k, efs[0], threads)
    for ef in efs:
        for rep in range(reps):
            for j in range(len(libs)):
                lib = libs[(rep + j) % len(libs)]
                t = time.perf_counter()
                ids = lib.search(Q, k, ef, threads)
                times[lib.name][ef].append(time.perf_counter() - t)
                if rep == 0:
                    rec[lib.name][ef] = recall(ids, gt, k)
        log("  threads=%s ef=%d: %s" % (threads or "all", ef, "  ".join(
            "%s r=%.4f qps=%.0f" % (n, rec[n][ef], len(Q) / statistics.median(times[n][ef])) for n in rec)))
    return {n: [(rec[n][ef], len(Q) / statistics.median(times[n][ef]), ef) for ef in efs] for n in rec}


def clock_cost(n=20000):
    """the least time between two perf_counter_ns() calls (ns)"""
    pc, best = time.perf_counter_ns, 1 << 62
    for _ in range(n):
        a = pc()
        best = min(best, pc() - a)
    return best


def per_call(libs, Q, k, ef, reps):
    """microseconds per query, one query per call, with the caches equally warm:
    each query is first searched once untimed, then timed through ix.search(q) and
    through the C loop (in alternating order), then through each peer (after an
    untimed call of its own). Per query the least disturbed (minimum) of `reps`
    runs is kept and the median over queries reported: on a loaded machine the
    time of a whole loop mostly measures the other processes."""
    px = next(lib for lib in libs if lib.name == "pefa")
    peers = [lib for lib in libs if lib.name != "pefa"]
    keys = ["python ix.search(q)", "C pefa_search_batch(n=1)", "C pefa_search"] + \
           ["python %s (one query per call)" % lib.name for lib in peers]
    t = {key: np.full((reps, len(Q)), np.inf) for key in keys}
    pc, tick = time.perf_counter_ns, clock_cost()

    def py(r, i, q):
        a = pc()
        px.one(q, k, ef)
        t[keys[0]][r, i] = pc() - a - tick

    def c(r, i, q):
        t[keys[1]][r, i] = 1e9 * px.ix._time_c_loop(Q[i:i + 1], k=k, mode="erm", ef=ef)
        t[keys[2]][r, i] = 1e9 * px.ix._time_c_loop(Q[i:i + 1], k=k, mode="erm", ef=ef, single=True)
    for r in range(reps):
        for i in range(len(Q)):
            q = Q[i]
            px.one(q, k, ef)  # warm
            for f in ((py, c) if (r + i) % 2 else (c, py)):
                f(r, i, q)
            for j, lib in enumerate(peers):
                lib.one(q, k, ef)
                a = pc()
                lib.one(q, k, ef)
                t[keys[3 + j]][r, i] = pc() - a - tick
    best = {key: v.min(axis=0) for key, v in t.items()}
    out = {key: float(np.median(v)) / 1e3 for key, v in best.items()}
    out["binding overhead (median of per-query differences)"] = float(np.median(best[keys[0]] - best[keys[1]])) / 1e3
    return out


def fmt(x, spec="{:.0f}"):
    return "-" if x is None else spec.format(x)


def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else "%.2fx" % (a / b)


def plot(path, title, curves_by_threads):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(curves_by_threads), figsize=(6.5 * len(curves_by_threads), 5))
    axes = np.atleast_1d(axes)
    for ax, (label, curves) in zip(axes, curves_by_threads.items()):
        for name, curve in curves.items():
            pts = sorted((r, q) for r, q, _ in curve)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=name)
        ax.set_yscale("log")
        ax.set_xlabel("recall@10")
        ax.set_ylabel("queries / s (%s)" % label)
        ax.set_xlim(left=0.8, right=1.0)
        for t in (0.95, 0.99):
            ax.axvline(t, color="grey", lw=0.5, ls="--")
        ax.grid(True, which="both", lw=0.3)
        ax.set_title(label)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(args, libs, curves, calls, nbase, nq):
    names = [lib.name for lib in libs]
    lines = ["GloVe-100 from Python, one process: n=%d nq=%d k=%d M=%d efC=%d build threads=%s, median of %d"
             % (nbase, nq, args.k, args.M, args.efc, args.build_threads or "all", args.reps),
             "lib        build_s   1 thread QPS@0.95  @0.99    all threads QPS@0.95  @0.99"]
    q = {(n, t, r): interp_qps([(c[0], c[1]) for c in curves[t][n]], r) for t in curves for n in names
         for r in (0.95, 0.99)}
    for lib in libs:
        n = lib.name
        lines.append("%-9s %8.1f   %18s %6s    %21s %6s" % (n, lib.build_s, fmt(q[n, "1", 0.95]), fmt(q[n, "1", 0.99]),
                                                            fmt(q[n, "all", 0.95]), fmt(q[n, "all", 0.99])))
    if hasattr(libs[0], "graph_s"):
        lines.append("  (pefa build_s is pefa.build end to end, file written and synced; its graph alone %.1f s)"
                     % libs[0].graph_s)
    for other in names[1:]:
        b = {lib.name: lib.build_s for lib in libs}
        lines.append("  pefa/%s: QPS 1 thread @0.95 %s @0.99 %s; all threads @0.95 %s @0.99 %s; build time %s" % (
            other, ratio(q["pefa", "1", 0.95], q[other, "1", 0.95]), ratio(q["pefa", "1", 0.99], q[other, "1", 0.99]),
            ratio(q["pefa", "all", 0.95], q[other, "all", 0.95]),
            ratio(q["pefa", "all", 0.99], q[other, "all", 0.99]), ratio(b["pefa"], b[other])))
    for ef, c in calls.items():
        lines.append("per call, one query at a time, k=%d ef=%d, %d queries (us, warm caches; per query the minimum "
                     "of %d runs, median over queries):" % (args.k, ef, args.call_nq, args.reps))
        for key, us in c.items():
            lines.append("  %-52s %8.2f" % (key, us))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("PEFA_BENCH_DATA", os.path.join(HERE, "..", "build",
                                                                                     "bench-data")))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "build", "bench-results"))
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--ef", default=DEFAULT_EFS)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--nbase", type=int, default=0, help="0 = the whole base")
    ap.add_argument("--nq", type=int, default=0, help="0 = all queries")
    ap.add_argument("--build-threads", type=int, default=0, help="0 = all cores")
    ap.add_argument("--call-nq", type=int, default=2000, help="queries for the per-call measurement")
    ap.add_argument("--call-ef", default="10,40", help="ef values for the per-call measurement")
    ap.add_argument("--libs", default="pefa,hnswlib,faiss")
    args = ap.parse_args()

    base = np.load(os.path.join(args.data, "glove-base.npy"))
    Q = np.load(os.path.join(args.data, "glove-queries.npy"))
    gt = np.load(os.path.join(args.data, "glove-gt.npy"))
    if args.nbase:
        base = base[:args.nbase]
        gt = None
    if args.nq:
        Q, gt = Q[:args.nq], None if gt is None else gt[:args.nq]
    base, Q = np.ascontiguousarray(base, np.float32), np.ascontiguousarray(Q, np.float32)
    if gt is None:  # a subset: exact ground truth by brute force
        gt = np.argsort(-(Q @ base.T), axis=1)[:, :args.k]
    efs = [int(x) for x in args.ef.split(",")]
    os.makedirs(args.out, exist_ok=True)
    log("pefa %s, kernel %s; base %s, queries %s; load average %s" % (
        pefa.__version__, pefa.kernel_name(), base.shape, Q.shape, os.getloadavg()))

    libs = []
    with tempfile.TemporaryDirectory(dir=args.out) as work:
        for name in args.libs.split(","):
            log("building %s ..." % name)
            libs.append(LIBS[name](base, args.M, args.efc, args.build_threads, work))
            log("  %s built in %.1f s" % (name, libs[-1].build_s))
        curves = {}
        for t, label in ((1, "1"), (0, "all")):
            log("search sweep, threads=%s" % label)
            curves[label] = sweep(libs, Q, gt, args.k, efs, t, args.reps)
        calls = {}
        for ef in (int(x) for x in args.call_ef.split(",")):
            log("per-call overhead, ef=%d" % ef)
            calls[ef] = per_call(libs, Q[:args.call_nq], args.k, ef, args.reps)
        for lib in libs:
            lib.close()
    text = report(args, libs, curves, calls, len(base), len(Q))
    print(text)
    stem = os.path.join(args.out, "py-peers-M%d-efc%d-n%d" % (args.M, args.efc, len(base)))
    with open(stem + ".txt", "w") as f:
        f.write(text + "\n")
    with open(stem + ".json", "w") as f:
        json.dump({"curves": curves, "per_call_us": calls, "build_s": {lib.name: lib.build_s for lib in libs},
                   "args": vars(args), "loadavg_end": os.getloadavg()}, f, indent=1)
    plot(stem + ".png", "GloVe-100 from Python (n=%d, M=%d, efC=%d)" % (len(base), args.M, args.efc),
         {"1 thread": curves["1"], "all threads": curves["all"]})
    log("wrote %s.{txt,json,png}" % stem)


if __name__ == "__main__":
    main()
