#!/usr/bin/python3
"""Independent brute-force numpy reference of PEFA (ERM, PEFA-XS, PEFA-XL).

Follows /work/shared/PEFA.md (Chang et al., WSDM 2024). Everything is exact search:
no index, no approximation. Meant as the oracle for the C library's tests.

Data directory layout (as data/scifact/):
  passages.npy, passage_ids.txt, train_queries.npy, train_query_ids.txt,
  train_qrels.tsv (BEIR: query-id, corpus-id, score), test_queries.npy,
  test_query_ids.txt

With --metric cosine (default) all embedding rows are L2-normalised first (a zero row
stays zero); with --metric ip (raw inner product) nothing is normalised.
  ERM : score_j = <q, p_j>
  XS  : z_j = normalise(sum_i Y_ij q_i) (cosine) or sum_i Y_ij q_i / sum_i Y_ij (ip);
        e_j = lam p_j + (1 - lam) z_j; score_j = <q, e_j>
  XL  : NN = the k train queries with largest <q, q_i> (ties: smaller row);
        w_i = <q, q_i> / k (v0, k = min(--knn, n_train)) or <q, q_i> (v1);
        s_j = sum_{i in NN} w_i Y_ij;
        candidates = top max(topk_p, k) passages by ERM (ties: smaller row) UNION passages in
        the neighbours' Y rows;
        exact      : score_j = lam <q, p_j> + (1 - lam) s_j for every candidate
        sparse-add : ERM part only for ERM candidates, kNN part only for kNN ones.
Y_ij = sum of the qrels scores of the pair (duplicates add up); a pair whose sum is <= 0
is not relevant and is left out of Y (as pefa-build does).

Output TSV: query_id \t rank \t passage_id \t score   (rank from 1, score %.7g),
ordered by score descending, then passage row ascending.
With --qrels: prints recall@10, @20, @100 (|topk & rel| / |rel|) and ndcg@10 (gain = the
pair's summed qrels score, discount log2(rank + 1), ideal from the qrels), where rel = the
passages whose summed score is > 0; averaged over the JUDGED test queries only (those with
at least one relevant passage), as trec_eval / pytrec_eval / BEIR do; the others are
counted as skipped.

Computation is float64 by default (--dtype f32 for float32 arithmetic).
"""
import argparse
import math
import os
import sys
from collections import defaultdict

import numpy as np


def read_ids(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\r\n") for line in f if line.strip()]


def read_qrels(path):
    """BEIR qrels TSV -> list of (query_id, corpus_id, score). Header optional."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) < 2 or not parts[0]:
                continue
            if n == 0 and parts[0] == "query-id":
                continue
            score = float(parts[2]) if len(parts) > 2 and parts[2] != "" else 1.0
            out.append((parts[0], parts[1], score))
    return out


def l2norm(m, dtype):
    m = np.asarray(m, dtype=np.float64)
    n = np.sqrt((m * m).sum(axis=1))
    out = np.zeros_like(m)
    nz = n > 0
    out[nz] = m[nz] / n[nz, None]
    return out.astype(dtype)


def order_desc(scores, rows):
    """Indices into rows ordering by score desc, then row asc."""
    return np.lexsort((rows, -scores))


def topk_rows(scores, k):
    """Top-k row ids of a dense score vector: score desc, ties by smaller row."""
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k < n:
        part = np.argpartition(-scores, k - 1)[:k]
        kth = scores[part].min()
        cand = np.nonzero(scores >= kth)[0]  # every row tied with the k-th
    else:
        cand = np.arange(n)
    o = order_desc(scores[cand], cand)[:k]
    return cand[o]


def load(data):
    j = lambda n: os.path.join(data, n)
    P = np.load(j("passages.npy"))
    pids = read_ids(j("passage_ids.txt"))
    Qtr = np.load(j("train_queries.npy"))
    trids = read_ids(j("train_query_ids.txt"))
    Qte = np.load(j("test_queries.npy"))
    teids = read_ids(j("test_query_ids.txt"))
    assert P.shape[0] == len(pids), "passages.npy / passage_ids.txt mismatch"
    assert Qtr.shape[0] == len(trids), "train_queries.npy / train_query_ids.txt mismatch"
    assert Qte.shape[0] == len(teids), "test_queries.npy / test_query_ids.txt mismatch"
    prow = {p: i for i, p in enumerate(pids)}
    qrow = {q: i for i, q in enumerate(trids)}
    Y = defaultdict(float)  # (train row, passage row) -> value
    skipped = 0
    for q, p, s in read_qrels(j("train_qrels.tsv")):
        if q in qrow and p in prow:
            Y[(qrow[q], prow[p])] += s
        else:
            skipped += 1
    if skipped:
        print("warning: %d train qrels pairs with unknown ids skipped" % skipped, file=sys.stderr)
    Yrows = [dict() for _ in range(len(trids))]
    for (i, jj), v in Y.items():
        if v > 0:
            Yrows[i][jj] = v
    return P, pids, Qtr, trids, Yrows, Qte, teids


def run(args):
    dt = np.float32 if args.dtype == "f32" else np.float64
    P, pids, Qtr, trids, Yrows, Qte, teids = load(args.data)
    if args.metric == "ip":
        P, Qtr, Qte = P.astype(dt), Qtr.astype(dt), Qte.astype(dt)
    else:
        P, Qtr, Qte = l2norm(P, dt), l2norm(Qtr, dt), l2norm(Qte, dt)
    lam = dt(args.lam)
    one_m = dt(1.0) - lam
    n_p = P.shape[0]
    results = []  # per test query: list of (row, score)

    if args.mode == "erm":
        S = Qte @ P.T
        for r in range(Qte.shape[0]):
            rows = topk_rows(S[r], args.k)
            results.append([(int(j), float(S[r, j])) for j in rows])

    elif args.mode == "xs":
        Z = np.zeros((n_p, P.shape[1]), dtype=np.float64)
        W = np.zeros(n_p, dtype=np.float64)
        for i, row in enumerate(Yrows):
            for j, v in row.items():
                Z[j] += v * Qtr[i].astype(np.float64)
                W[j] += v
        if args.metric == "ip":
            nz = W > 0
            Z[nz] /= W[nz, None]
            Z = Z.astype(dt)
        else:
            Z = l2norm(Z, dt)
        E = lam * P + one_m * Z
        S = Qte @ E.T
        for r in range(Qte.shape[0]):
            rows = topk_rows(S[r], args.k)
            results.append([(int(j), float(S[r, j])) for j in rows])

    else:  # xl
        erm_all = Qte @ P.T
        sim_all = Qte @ Qtr.T
        kk = min(args.knn, Qtr.shape[0])
        for r in range(Qte.shape[0]):
            erm = erm_all[r]
            nn = topk_rows(sim_all[r], kk)
            w = sim_all[r, nn]
            if args.knn_norm == "v0":
                w = w / dt(kk)
            knn = defaultdict(float)
            for i, wi in zip(nn, w):
                for j, v in Yrows[i].items():
                    knn[j] += float(wi) * v
            erm_c = set(int(j) for j in topk_rows(erm, max(args.topk_p, args.k)))
            cands = np.array(sorted(erm_c | set(knn)), dtype=np.int64)
            sc = np.empty(cands.shape[0], dtype=np.float64)
            for t, j in enumerate(cands):
                j = int(j)
                if args.xl_scoring == "exact":
                    e = float(lam) * float(erm[j])
                else:
                    e = float(lam) * float(erm[j]) if j in erm_c else 0.0
                kn = float(one_m) * knn[j] if j in knn else 0.0
                sc[t] = e + kn
            if dt is np.float32:
                sc = sc.astype(np.float32).astype(np.float64)
            o = order_desc(sc, cands)[: args.k]
            results.append([(int(cands[t]), float(sc[t])) for t in o])

    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="\n") as f:
            for qid, res in zip(teids, results):
                for rank, (j, s) in enumerate(res, 1):
                    f.write("%s\t%d\t%s\t%.7g\n" % (qid, rank, pids[j], s))

    if args.qrels:
        evaluate(args.qrels, teids, [[pids[j] for j, _ in res] for res in results])


def evaluate(qrels_path, teids, ranked_ids):
    """recall@10/20/100 and ndcg@10 over the judged queries (trec_eval conventions)."""
    summed = defaultdict(lambda: defaultdict(float))
    for q, p, s in read_qrels(qrels_path):
        summed[q][p] += s
    rel = {q: {p: g for p, g in ps.items() if g > 0} for q, ps in summed.items()}
    unknown = set(rel) - set(teids)
    if unknown:
        print("warning: %d qrels query ids not among the test queries (ignored)" % len(unknown), file=sys.stderr)
    cut = [10, 20, 100]
    rec = {c: 0.0 for c in cut}
    ndcg = 0.0
    judged = skipped = 0
    for qid, ranked in zip(teids, ranked_ids):
        rq = rel.get(qid, {})
        if not rq:
            skipped += 1
            continue
        judged += 1
        for c in cut:
            rec[c] += sum(1 for p in ranked[:c] if p in rq) / len(rq)
        dcg = sum(rq.get(p, 0.0) / math.log2(i + 2) for i, p in enumerate(ranked[:10]))
        ideal = sorted(rq.values(), reverse=True)[:10]
        ndcg += dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    n = max(judged, 1)
    print("recall@10=%.4f recall@20=%.4f recall@100=%.4f ndcg@10=%.4f judged=%d skipped=%d"
          % (rec[10] / n, rec[20] / n, rec[100] / n, ndcg / n, judged, skipped))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/scifact")
    ap.add_argument("--mode", choices=["erm", "xs", "xl"], default="erm")
    ap.add_argument("--lambda", dest="lam", type=float, default=0.5)
    ap.add_argument("--knn", type=int, default=32)
    ap.add_argument("--topk-p", dest="topk_p", type=int, default=500)
    ap.add_argument("--knn-norm", dest="knn_norm", choices=["v0", "v1"], default="v0")
    ap.add_argument("--xl-scoring", dest="xl_scoring", choices=["exact", "sparse-add"], default="exact")
    ap.add_argument("-k", dest="k", type=int, default=100)
    ap.add_argument("--out", default=None, help="write the ranked lists as TSV here")
    ap.add_argument("--qrels", default=None, help="evaluate against this qrels TSV")
    ap.add_argument("--dtype", choices=["f64", "f32"], default="f64")
    ap.add_argument("--metric", choices=["cosine", "ip"], default="cosine")
    args = ap.parse_args()
    if not (0.0 <= args.lam <= 1.0):
        ap.error("--lambda must be in [0, 1]")
    if args.k <= 0 or args.knn <= 0 or args.topk_p < 0:
        ap.error("-k and --knn must be > 0, --topk-p >= 0")
    run(args)


if __name__ == "__main__":
    main()
