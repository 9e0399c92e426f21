#!/usr/bin/python3
"""make_bad_inputs.py DIR - writes the damaged inputs test_bad_inputs.sh feeds
to pefa-build and pefa-query (small, derived from data/scifact)."""
import os
import sys

import numpy as np

src, out = sys.argv[1], sys.argv[2]
d = os.path.join(src, "data", "scifact")
P = np.load(os.path.join(d, "passages.npy"))[:300]
Q = np.load(os.path.join(d, "train_queries.npy"))[:50]
pids = open(os.path.join(d, "passage_ids.txt")).read().split("\n")[:300]
qids = open(os.path.join(d, "train_query_ids.txt")).read().split("\n")[:50]


def w(name, data):
    with open(os.path.join(out, name), "w" if isinstance(data, str) else "wb") as f:
        f.write(data)


np.save(os.path.join(out, "p.npy"), P)
np.save(os.path.join(out, "q.npy"), Q)
np.save(os.path.join(out, "p16.npy"), P.astype(np.float16))
w("pids.txt", "\n".join(pids) + "\n")
w("qids.txt", "\n".join(qids) + "\n")
w("qrels.tsv", "query-id\tcorpus-id\tscore\n" + "".join(f"{qids[i]}\t{pids[(7 * i) % 300]}\t1\n" for i in range(50)))
np.save(os.path.join(out, "f64.npy"), P.astype(np.float64))
np.save(os.path.join(out, "onedim.npy"), P[0])
np.save(os.path.join(out, "ints.npy"), (P * 100).astype(np.int32))
np.save(os.path.join(out, "empty.npy"), np.zeros((0, 100), np.float32))
raw = open(os.path.join(out, "p.npy"), "rb").read()
w("truncated.npy", raw[: len(raw) - 1000])
w("trailing.npy", raw + b"\0" * 12)
w("garbage.npy", b"this is not a numpy file at all\n" * 10)
x = P.copy(); x[17, 3] = np.nan; np.save(os.path.join(out, "nan.npy"), x)
x = Q.copy(); x[5, 0] = np.inf; np.save(os.path.join(out, "inf_q.npy"), x)
x = P.copy(); x[4] = 0; np.save(os.path.join(out, "zero_row.npy"), x)
np.save(os.path.join(out, "q50d.npy"), Q[:, :50].copy())
np.save(os.path.join(out, "fortran.npy"), np.asfortranarray(P))
w("pids_short.txt", "\n".join(pids[:299]) + "\n")
w("pids_dup.txt", "\n".join(pids[:299] + [pids[3]]) + "\n")
w("pids_empty_line.txt", "\n".join(pids[:10] + [""] + pids[11:]) + "\n")
w("qrels_unknown_q.tsv", f"{qids[0]}\t{pids[0]}\t1\nNO-SUCH-QUERY\t{pids[1]}\t1\n")
w("qrels_unknown_p.tsv", f"{qids[0]}\t{pids[0]}\t1\n{qids[1]}\tNO-SUCH-DOC\t1\n")
w("qrels_header_only.tsv", "query-id\tcorpus-id\tscore\n")
w("qrels_bad_score.tsv", f"{qids[0]}\t{pids[0]}\t1\n{qids[1]}\t{pids[1]}\tabc\n")
w("qrels_nan_score.tsv", f"{qids[0]}\t{pids[0]}\t1\n{qids[1]}\t{pids[1]}\tnan\n")
w("qrels_one_field.tsv", f"{qids[0]}\t{pids[0]}\t1\n{qids[1]}\n")
x = Q[:20].copy(); x[2, 9] = np.nan; np.save(os.path.join(out, "test_nan.npy"), x)
np.save(os.path.join(out, "test.npy"), Q[:20])
w("test_ids_short.txt", "\n".join(qids[:19]) + "\n")
ivecs = np.hstack([np.full((300, 1), 100, np.int32), (P * 1000).astype(np.int32)])
w("p.ivecs", ivecs.tobytes())
w("pids_space.txt", "\n".join(pids[:6] + ["doc 7"] + pids[7:]) + "\n")
w("pids_trailing_space.txt", "\n".join(pids[:8] + [pids[8] + " "] + pids[9:]) + "\n")
with open(os.path.join(out, "pids_bad_utf8.txt"), "wb") as f:
    f.write(("\n".join(pids[:4]) + "\n").encode() + b"caf\xe9\n" + ("\n".join(pids[5:]) + "\n").encode())
w("pids_final_blank.txt", "\n".join(pids) + "\n\n")
w("qrels_nonpositive.tsv", "".join(f"{qids[i]}\t{pids[i]}\t0\n" for i in range(5)) + f"{qids[9]}\t{pids[9]}\t-1\n")
w("test_ids.txt", "\n".join(qids[:20]) + "\n")
w("test_qrels_other.tsv", "query-id\tcorpus-id\tscore\nX1\t{0}\t1\nX2\t{0}\t1\n".format(pids[0]))
w("test_qrels_zero.tsv", "".join(f"{qids[i]}\t{pids[i]}\t0\n" for i in range(5)))
w("test_qrels_unknown_p.tsv", "".join(f"{qids[i]}\tDOC-{pids[i]}\t1\n" for i in range(5)))
w("test_qrels_some_unknown_p.tsv", "".join(f"{qids[i]}\t{'DOC-' if i == 3 else ''}{pids[i]}\t1\n" for i in range(5)))
x = P.copy(); x[11] = 1e30; np.save(os.path.join(out, "p_ip_overflow.npy"), x)
x = Q[:20].copy(); x[4] = -1e30; np.save(os.path.join(out, "test_ip_overflow.npy"), x)
