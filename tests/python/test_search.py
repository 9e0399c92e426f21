"""ix.search answers exactly what pefa-query answers, for every mode, from any
layout of Q; shapes, padding and the id round trip."""
import os

import numpy as np
import pytest

import pefa
from conftest import tool

# (name, search kwargs, pefa-query options)
MODES = [
    ("default", {}, ["--mode", "erm"]),
    ("erm", dict(mode="erm"), ["--mode", "erm"]),
    ("erm-ef50", dict(mode="erm", ef=50), ["--mode", "erm", "--ef", "50"]),
    ("xs", dict(mode="xs"), ["--mode", "xs"]),
    ("xs-lam0.3", dict(mode="xs", lam=0.3), ["--mode", "xs", "--lambda", "0.3"]),
    ("xl", dict(mode="xl"), ["--mode", "xl"]),
    ("xl-lam0.1-knn16", dict(mode="xl", lam=0.1, knn=16), ["--mode", "xl", "--lambda", "0.1", "--knn", "16"]),
    ("xl-sparse-add", dict(mode="xl", lam=0.1, knn=16, xl_scoring="sparse-add"),
     ["--mode", "xl", "--lambda", "0.1", "--knn", "16", "--xl-scoring", "sparse-add"]),
    ("xl-v1", dict(mode="xl", lam=0.5, knn=32, knn_norm="v1"),
     ["--mode", "xl", "--lambda", "0.5", "--knn", "32", "--knn-norm", "v1"]),
    ("xl-topk50", dict(mode="xl", lam=0.3, knn=8, topk_p=50),
     ["--mode", "xl", "--lambda", "0.3", "--knn", "8", "--topk-p", "50"]),
    ("erm-exact", dict(mode="erm", exact=True), ["--mode", "erm", "--exact"]),
    ("xs-exact", dict(mode="xs", exact=True), ["--mode", "xs", "--exact"]),
    ("xl-exact", dict(mode="xl", lam=0.1, knn=16, exact=True),
     ["--mode", "xl", "--lambda", "0.1", "--knn", "16", "--exact"]),
]


def cli_answers(index, scifact, opts, k):
    """pefa-query's hits: {query id: [(passage id, score), ...]}"""
    out = tool("pefa-query", index, "--queries", os.path.join(scifact.dir, "test_queries.npy"), "--query-ids",
               os.path.join(scifact.dir, "test_query_ids.txt"), "-k", k, "--threads", 1, *opts)
    runs = {}
    for line in out.splitlines():
        q, rank, p, s = line.split("\t")
        runs.setdefault(q, []).append((p, float(s)))
    return runs


@pytest.mark.parametrize("name,kw,opts", MODES, ids=[m[0] for m in MODES])
def test_equals_pefa_query(ix, sf_index, scifact, name, kw, opts):
    k = 100
    want = cli_answers(sf_index, scifact, opts, k)
    rows, scores = ix.search(scifact.test, k=k, **kw)
    assert rows.shape == scores.shape == (len(scifact.test), k)
    assert rows.dtype == np.int64 and scores.dtype == np.float32
    ids = ix.passage_ids(rows)
    assert len(want) == len(scifact.test_ids)
    for i, qid in enumerate(scifact.test_ids):
        w = want[qid]
        assert list(ids[i]) == [p for p, _ in w], "query %s: other passages than pefa-query" % qid
        np.testing.assert_allclose(scores[i], [s for _, s in w], rtol=0, atol=1e-6)


def test_threads_do_not_change_answers(ix, scifact):
    for mode in ("erm", "xs", "xl"):
        r1, s1 = ix.search(scifact.test, k=20, mode=mode, threads=1)
        r0, s0 = ix.search(scifact.test, k=20, mode=mode, threads=0)
        r2, s2 = ix.search(scifact.test, k=20, mode=mode, threads=2)
        assert np.array_equal(r1, r0) and np.array_equal(r1, r2)
        assert np.array_equal(s1, s0) and np.array_equal(s1, s2)


def test_scores_sorted(ix, scifact):
    for mode in ("erm", "xs", "xl"):
        _, s = ix.search(scifact.test, k=50, mode=mode)
        assert np.all(np.diff(s, axis=1) <= 0)


def test_one_query_gives_1d(ix, scifact):
    r, s = ix.search(scifact.test[7], k=10, mode="xl")
    assert r.shape == s.shape == (10,)
    r2, s2 = ix.search(scifact.test[7:8], k=10, mode="xl")
    assert r2.shape == (1, 10)
    assert np.array_equal(r, r2[0]) and np.array_equal(s, s2[0])
    assert ix.passage_ids(r).shape == (10,)


def layouts(T):
    """the same queries in every layout the binding must accept"""
    d = T.shape[1]
    wide = np.zeros((T.shape[0], 2 * d), np.float32)
    wide[:, ::2] = T
    padded = np.zeros((T.shape[0], d + 3), np.float32)
    padded[:, :d] = T
    rev = T[::-1].copy()[::-1]  # negative row stride
    return {
        "float64": T.astype(np.float64),
        "fortran": np.asfortranarray(T),
        "column-stride": wide[:, ::2],
        "row-stride": padded[:, :d],
        "negative-stride": rev,
        "big-endian": T.astype(">f4"),
        "list": T.astype(np.float64).tolist(),
    }


@pytest.mark.parametrize("layout", ["float64", "fortran", "column-stride", "row-stride", "negative-stride",
                                    "big-endian", "list"])
def test_any_layout_same_answers(ix, scifact, layout):
    T = scifact.test[:40]
    want = ix.search(T, k=10, mode="xl")
    Q = layouts(T)[layout]
    before = np.array(Q, copy=True)
    got = ix.search(Q, k=10, mode="xl")
    assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])
    assert np.array_equal(np.asarray(Q), before)  # never written


def test_unaligned_rows(ix, scifact):
    T = scifact.test[:10]
    buf = np.zeros(T.size * 4 + 1, np.uint8)
    Q = np.frombuffer(buf.data, np.float32, count=T.size, offset=1).reshape(T.shape)  # misaligned by one byte
    buf[1:] = np.frombuffer(T.tobytes(), np.uint8)
    assert not Q.flags.aligned
    assert np.array_equal(ix.search(Q, k=10)[0], ix.search(T, k=10)[0])


def test_float16_queries(ix, scifact):
    T16 = scifact.test[:30].astype(np.float16)
    r, s = ix.search(T16, k=10, mode="xs")
    r2, s2 = ix.search(T16.astype(np.float32), k=10, mode="xs")
    assert np.array_equal(r, r2) and np.array_equal(s, s2)


def test_broadcast_rows(ix, scifact):
    Q = np.broadcast_to(scifact.test[3], (5, scifact.test.shape[1]))  # row stride 0
    r, _ = ix.search(Q, k=10)
    assert all(np.array_equal(r[0], r[i]) for i in range(5))
    assert np.array_equal(r[0], ix.search(scifact.test[3], k=10)[0])


def test_no_queries(ix):
    r, s = ix.search(np.zeros((0, ix.dim), np.float32), k=7)
    assert r.shape == s.shape == (0, 7)


def test_padding_when_fewer_passages(erm_index):
    with pefa.Index(erm_index) as ix:
        n = ix.n_passages
        q = np.ones(ix.dim, np.float32)
        r, s = ix.search(q, k=n + 25)
        assert r.shape == (n + 25,)
        assert sorted(r[:n]) == list(range(n))
        assert np.all(r[n:] == -1) and np.all(np.isneginf(s[n:]))
        ids = ix.passage_ids(r)
        assert ids[0] == str(r[0]) and np.all(ids[n:] == "")


def test_ids_round_trip(ix, scifact):
    rows = ix.passage_rows(scifact.passage_ids)
    assert np.array_equal(rows, np.arange(len(scifact.passage_ids)))
    ids = ix.passage_ids(np.arange(ix.n_passages).reshape(-1, 1))
    assert ids.shape == (ix.n_passages, 1) and list(ids[:, 0]) == scifact.passage_ids
    assert ix.passage_rows(scifact.passage_ids[17]) == 17
    assert ix.passage_ids(17) == scifact.passage_ids[17]
    grid = np.array([[scifact.passage_ids[1], scifact.passage_ids[2]]])
    assert ix.passage_rows(grid).tolist() == [[1, 2]]
    assert list(ix.query_ids([0, 1])) == scifact.train_ids[:2]
    assert ix.query_rows(scifact.train_ids[5]) == 5
    assert ix.passage_ids([]).shape == (0,) and ix.passage_rows([]).shape == (0,)


def test_row_number_ids(erm_index):
    with pefa.Index(erm_index) as ix:
        assert list(ix.passage_ids([0, 41, -1])) == ["0", "41", ""]
        assert ix.passage_rows(["41", "0"]).tolist() == [41, 0]


def test_attributes(ix, scifact):
    assert (ix.n_passages, ix.n_queries, ix.dim, ix.vector_type) == (5183, 809, 100, "f32")
    assert ix.meta["pefa.n_passages"] == "5183"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in ix.meta.items())
    assert ix.tuned is None
    assert ix.info["nnz"] == 919 and ix.info["has_graph_xs"]
    assert "5183 passages" in repr(ix)
    ix.verify()
