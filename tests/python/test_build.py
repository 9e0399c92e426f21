"""pefa.build from numpy builds what pefa-build builds; any layout of the
arrays; ids, qrels forms, options; the caller's arrays are never written; bad
inputs raise errors naming the row or id, and leave nothing behind."""
import hashlib
import os
import stat
import subprocess

import numpy as np
import pytest

import pefa
from conftest import BIN, tool

MODES = [dict(mode="erm"), dict(mode="xs"), dict(mode="xs", lam=0.3), dict(mode="xl", lam=0.1, knn=16),
         dict(mode="xl", exact=True)]


def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
        h.update(str((a.dtype, a.shape, a.strides)).encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def py_index(tmp_path_factory, scifact):
    """the demo index built from numpy arrays, as the CLI builds sf_index"""
    out = str(tmp_path_factory.mktemp("py") / "sf.pefa")
    before = digest(scifact.passages, scifact.train)
    stats = pefa.build(out, scifact.passages, queries=scifact.train, qrels=scifact.qrels,
                       passage_ids=scifact.passage_ids, query_ids=scifact.train_ids, lam=0.5, threads=1, seed=42,
                       progress=False)
    assert digest(scifact.passages, scifact.train) == before  # read, never written
    return out, stats


def test_build_equals_cli(py_index, sf_index, scifact):
    out, stats = py_index
    assert stats["nnz"] == 919 and stats["file_bytes"] == os.path.getsize(out) and stats["idmap_bytes"] > 0
    assert os.path.exists("%s.%s.ids" % (out, stats["uuid"].replace("-", "")))
    with pefa.Index(out) as a, pefa.Index(sf_index) as b:
        for kw in MODES:
            ra, sa = a.search(scifact.test, k=100, **kw)
            rb, sb = b.search(scifact.test, k=100, **kw)
            assert np.array_equal(ra, rb) and np.array_equal(sa, sb), kw
        for name in ("passages", "queries", "xs", "z"):
            assert a.vectors(name).tobytes() == b.vectors(name).tobytes(), name
        assert list(a.passage_ids(ra[0])) == list(b.passage_ids(rb[0]))
        assert list(a.query_ids(np.arange(a.n_queries))) == scifact.train_ids
        same = [k for k in b.meta if k.startswith(("pefa.", "hnsw.")) or k == "build.threads"]
        assert same and all(a.meta[k] == b.meta[k] for k in same)
        a.verify()


def small(scifact, n=600):
    """a small problem for the many builds below (no graphs: exact search)"""
    P = scifact.passages[:n]
    pairs = [(q, p, s) for q, p, s in scifact.qrels if p in set(scifact.passage_ids[:n])]
    qids = sorted({q for q, _, _ in pairs})
    rows = [scifact.train_ids.index(q) for q in qids]
    return P, scifact.train[rows], pairs, scifact.passage_ids[:n], qids


def build_small(path, P, Q, pairs, pids, qids, **kw):
    kw.setdefault("no_graphs", True)
    kw.setdefault("progress", False)
    kw.setdefault("threads", 1)
    pefa.build(str(path), P, queries=Q, qrels=pairs, passage_ids=pids, query_ids=qids, **kw)
    return str(path)


def vectors_of(path):
    with pefa.Index(path) as ix:
        return {n: np.array(ix.vectors(n)) for n in ("passages", "queries", "xs", "z")}


def layouts(A):
    d = A.shape[1]
    wide = np.zeros((A.shape[0], 3 * d), A.dtype)
    wide[:, ::3] = A
    padded = np.zeros((A.shape[0], d + 5), A.dtype)
    padded[:, :d] = A
    return {"float64": A.astype(np.float64), "fortran": np.asfortranarray(A), "column-stride": wide[:, ::3],
            "row-stride": padded[:, :d], "negative-stride": A[::-1].copy()[::-1],
            "big-endian": A.astype(A.dtype.newbyteorder(">")), "list": A.astype(np.float64).tolist()}


@pytest.mark.parametrize("layout", ["float64", "fortran", "column-stride", "row-stride", "negative-stride",
                                    "big-endian", "list"])
def test_any_layout_builds_the_same(tmp_path, scifact, layout):
    P, Q, pairs, pids, qids = small(scifact)
    want = vectors_of(build_small(tmp_path / "ref.pefa", P, Q, pairs, pids, qids))
    P2, Q2 = layouts(P)[layout], layouts(Q)[layout]
    before = digest(np.asarray(P2), np.asarray(Q2))
    got = vectors_of(build_small(tmp_path / "x.pefa", P2, Q2, pairs, pids, qids))
    assert digest(np.asarray(P2), np.asarray(Q2)) == before
    for n in want:
        assert np.array_equal(want[n], got[n]), n


def test_float16_rows(tmp_path, scifact):
    P, Q, pairs, pids, qids = small(scifact)
    P16, Q16 = P.astype(np.float16), Q.astype(np.float16)
    a = vectors_of(build_small(tmp_path / "a.pefa", P16, Q16, pairs, pids, qids))
    b = vectors_of(build_small(tmp_path / "b.pefa", P16.astype(np.float32), Q16.astype(np.float32), pairs, pids,
                               qids))
    assert all(np.array_equal(a[n], b[n]) for n in a)
    build_small(tmp_path / "c.pefa", P16[:, ::1], Q, pairs, pids, qids, vector_type="f16")
    with pefa.Index(str(tmp_path / "c.pefa")) as ix:
        assert ix.vector_type == "f16" and ix.vectors("passages").dtype == np.float16


def test_qrels_forms(tmp_path, scifact):
    P, Q, pairs, pids, qids = small(scifact)
    ref = build_small(tmp_path / "ref.pefa", P, Q, pairs, pids, qids)
    cols = tuple(np.array(c) for c in zip(*pairs))
    pairs2 = [(q, p) for q, p, _ in pairs]  # score 1 by default
    as_bytes = [(q.encode(), p.encode(), s) for q, p, s in pairs]
    T = scifact.test[:50]
    with pefa.Index(ref) as ix:
        want = ix.search(T, k=20, mode="xl", exact=True)
    for i, form in enumerate((cols, pairs2, as_bytes, iter(pairs))):
        with pefa.Index(build_small(tmp_path / ("f%d.pefa" % i), P, Q, form, pids, qids)) as ix:
            got = ix.search(T, k=20, mode="xl", exact=True)
            assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])


def test_duplicates_add_up(tmp_path, scifact):
    P, Q, pairs, pids, qids = small(scifact)
    twice = [(q, p, s / 2) for q, p, s in pairs] * 2
    a = vectors_of(build_small(tmp_path / "a.pefa", P, Q, pairs, pids, qids))
    b = vectors_of(build_small(tmp_path / "b.pefa", P, Q, twice, pids, qids))
    assert all(np.array_equal(a[n], b[n]) for n in a)


def test_row_number_ids(tmp_path):
    rng = np.random.default_rng(7)
    P, Q = rng.standard_normal((300, 16)), rng.standard_normal((40, 16))
    qrels = [(i, (7 * i) % 300, 1.0) for i in range(40)] + [("3", "5", 2.0), (np.int64(4), np.uint32(6), 1)]
    out = str(tmp_path / "rows.pefa")
    stats = pefa.build(out, P, Q, qrels, M=8, ef_construction=50, threads=1, progress=False)
    assert stats["idmap_bytes"] == 0 and stats["nnz"] == 42
    with pefa.Index(out) as ix:
        assert (ix.n_passages, ix.n_queries, ix.dim) == (300, 40, 16)
        assert list(ix.passage_ids([0, 299])) == ["0", "299"]
        r, _ = ix.search(Q[5], k=5, mode="xl", lam=0.0)
        assert r[0] == 35  # its own relevant passage first when only the kNN votes count
    with pytest.raises(KeyError, match="passage id '007' not found in the passage rows 0..299"):
        pefa.build(out, P, Q, [(0, "007", 1.0)], progress=False)
    with pytest.raises(KeyError, match="query id 40 not found"):
        pefa.build(out, P, Q, [(40, 0, 1.0)], progress=False)


def test_erm_only_and_options(tmp_path, scifact):
    out = str(tmp_path / "erm.pefa")
    stats = pefa.build(out, scifact.passages[:500], M=8, ef_construction=40, threads=2, vector_type="f16",
                       progress=False, meta={"encoder": "glove idf-mean", "note": "x=y"})
    assert stats["nnz"] == 0
    with pefa.Index(out) as ix:
        assert ix.n_queries == 0 and ix.vector_type == "f16"
        assert ix.meta["encoder"] == "glove idf-mean" and ix.meta["hnsw.M"] == "8"
        with pytest.raises(ValueError, match="needs training queries"):
            ix.search(scifact.test[0], mode="xs")


def test_zstd_y_same_answers(tmp_path, scifact):
    P, Q, pairs, pids, qids = small(scifact)
    a = build_small(tmp_path / "a.pefa", P, Q, pairs, pids, qids)
    b = build_small(tmp_path / "b.pefa", P, Q, pairs, pids, qids, y_codec="zstd")
    with pefa.Index(a) as x, pefa.Index(b) as y:
        assert y.meta["pefa.y_codec"] == "zstd"
        assert np.array_equal(x.search(scifact.test, k=10, mode="xl")[0], y.search(scifact.test, k=10, mode="xl")[0])


def test_progress(tmp_path, scifact, capsys, monkeypatch):
    P, Q, pairs, pids, qids = small(scifact, 300)
    seen = []
    build_small(tmp_path / "a.pefa", P, Q, pairs, pids, qids, no_graphs=False, threads=2,
                progress=lambda stage, done, total: seen.append((stage, done, total)))
    stages = [s for s, _, _ in seen]
    assert "writing" in stages and any(s != "writing" for s in stages)
    assert all(0 <= d <= t for _, d, t in seen)
    build_small(tmp_path / "b.pefa", P, Q, pairs, pids, qids, progress=True)
    assert "pefa.build: writing" in capsys.readouterr().err
    hooked = []
    monkeypatch.setattr("sys.unraisablehook", hooked.append)

    def broken(stage, done, total):
        raise RuntimeError("callback bug")
    build_small(tmp_path / "c.pefa", P, Q, pairs, pids, qids, progress=broken)  # reported once, build goes on
    assert len(hooked) == 1 and isinstance(hooked[0].exc_value, RuntimeError)
    assert os.path.exists(tmp_path / "c.pefa")


def full_build(out, scifact, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("threads", 1)
    return pefa.build(str(out), scifact.passages, queries=scifact.train, qrels=scifact.qrels,
                      passage_ids=scifact.passage_ids, query_ids=scifact.train_ids, **kw)


def tune_meta(path):
    with pefa.Index(str(path)) as ix:
        return {k: v for k, v in ix.meta.items() if k.startswith("tune.") and k != "tune.seconds"}


def test_tuned_build(tmp_path, scifact):
    """tune=True is pefa-build --tune: the same tuned setting in META, the index's default"""
    stats = full_build(tmp_path / "tuned.pefa", scifact, tune=True, no_graphs=True)
    assert stats["seconds_tune"] > 0
    tool("pefa-build", "-q", "-o", tmp_path / "cli.pefa", *scifact.cli_build_args(), "--threads", "1", "--no-graphs",
         "--tune")
    assert tune_meta(tmp_path / "tuned.pefa") == tune_meta(tmp_path / "cli.pefa")
    with pefa.Index(str(tmp_path / "tuned.pefa")) as ix:
        t, info = ix.tuned, ix.info
        assert t["mode"] in ("erm", "xs", "xl") and t["metric"] == "recall@100" and t["label_check"] == "on"
        assert info["tuned"] and info["default_mode"] == t["mode"]
        if t["mode"] != "erm":
            assert info["default_lambda"] == pytest.approx(t["lambda"])
        if t["mode"] == "xl":
            assert info["default_knn"] == t["knn"]
        assert np.array_equal(ix.search(scifact.test, k=10)[0],
                              ix.search(scifact.test, k=10, mode=t["mode"], lam=t.get("lambda"),
                                        knn=t.get("knn"))[0])


def test_tune_options(tmp_path, scifact):
    """tune_queries, tune_metric, tune_label_check as --tune-queries, --tune-metric, --tune-label-check"""
    full_build(tmp_path / "py.pefa", scifact, tune=True, no_graphs=True, tune_queries=200, tune_metric="ndcg@10",
               tune_label_check=False)
    tool("pefa-build", "-q", "-o", tmp_path / "cli.pefa", *scifact.cli_build_args(), "--threads", "1", "--no-graphs",
         "--tune", "--tune-queries", "200", "--tune-metric", "ndcg@10", "--tune-label-check", "off")
    m = tune_meta(tmp_path / "py.pefa")
    assert m == tune_meta(tmp_path / "cli.pefa")
    assert m["tune.queries"] == "200" and m["tune.metric"] == "ndcg@10" and m["tune.label_check"] == "off"
    with pefa.Index(str(tmp_path / "py.pefa")) as ix:
        assert ix.info["default_mode"] == m["tune.mode"]
    P, e = scifact.passages[:10], tmp_path / "errors"
    e.mkdir()
    build_error(e, ValueError, ["tuning needs training queries"], P, tune=True)
    build_error(e, ValueError, ["tune_queries, tune_metric and tune_label_check go with tune=True"], P,
                tune_metric="ndcg@10")
    build_error(e, ValueError, ["tune_metric 'map'"], P, scifact.train, [(scifact.train_ids[0], scifact.passage_ids[0])],
                scifact.passage_ids[:10], scifact.train_ids, tune=True, tune_metric="map")
    build_error(e, ValueError, ["tune_queries = 0"], P, tune=True, tune_queries=0)
    build_error(e, TypeError, ["tune_label_check must be True, False or None"], P, tune=True,
                tune_label_check="off")


def test_i8_build(tmp_path, scifact, sf_index):
    """vector_type="i8" is pefa-build --vector-type i8; its graph search is close to f32 exact search"""
    full_build(tmp_path / "i8.pefa", scifact, vector_type="i8", seed=42)
    tool("pefa-build", "-q", "-o", tmp_path / "cli.pefa", *scifact.cli_build_args(), "--threads", "1",
         "--vector-type", "i8")
    with pefa.Index(str(tmp_path / "i8.pefa")) as a, pefa.Index(str(tmp_path / "cli.pefa")) as b, \
            pefa.Index(sf_index) as f32:
        assert a.vector_type == "i8" and a.info["vector_type"] == "i8" and a.meta["pefa.codes"] == "i8"
        assert a.vectors("passages").dtype == np.float16
        for kw in MODES:
            ra, sa = a.search(scifact.test, k=100, **kw)
            rb, sb = b.search(scifact.test, k=100, **kw)
            assert np.array_equal(ra, rb) and np.array_equal(sa, sb), kw
        for mode in ("erm", "xs", "xl"):
            r8, s8 = a.search(scifact.test, k=10, mode=mode)
            rf, sf = f32.search(scifact.test, k=10, mode=mode, exact=True)
            overlap = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(r8, rf)])
            assert overlap >= 0.95, (mode, overlap)
            # the rows both find score alike (the i8 beam is re-scored from f16 rows)
            diff = [abs(s - dict(zip(yr, ys))[r]) for xr, xs, yr, ys in zip(r8, s8, rf, sf)
                    for r, s in zip(xr, xs) if r in set(yr)]
            assert max(diff) < 0.02, (mode, max(diff))


def test_ip_build(tmp_path, scifact):
    """metric="ip" is pefa-build --metric ip: rows kept as given (norms carry signal), the same
    answers as the CLI's file; a bad metric name is an InputError"""
    rng = np.random.default_rng(5)
    P = (scifact.passages * rng.uniform(0.5, 2.0, (len(scifact.passages), 1))).astype(np.float32)
    np.save(tmp_path / "p_ip.npy", P)
    pefa.build(str(tmp_path / "ip.pefa"), P, threads=1, progress=False, metric="ip")
    tool("pefa-build", "-q", "-o", tmp_path / "cli.pefa", "--passages", tmp_path / "p_ip.npy", "--threads", "1",
         "--metric", "ip")
    with pefa.Index(str(tmp_path / "ip.pefa")) as a, pefa.Index(str(tmp_path / "cli.pefa")) as b:
        assert a.meta["pefa.metric"] == "ip"
        assert np.array_equal(a.vectors("passages"), P)  # as given, not normalised
        ra, sa = a.search(scifact.test, k=10, exact=True)
        rb, sb = b.search(scifact.test, k=10, exact=True)
        assert np.array_equal(ra, rb) and np.array_equal(sa, sb)
    with pytest.raises(pefa.InputError, match="metric 'dot' is not 'cosine' or 'ip'"):
        pefa.build(str(tmp_path / "bad.pefa"), P, progress=False, metric="dot")


# ---- errors -------------------------------------------------------------------------------
def build_error(tmp_path, exc, words, *args, **kw):
    kw.setdefault("progress", False)
    with pytest.raises(exc) as e:
        pefa.build(str(tmp_path / "bad.pefa"), *args, **kw)
    for w in words:
        assert w in str(e.value), str(e.value)
    assert not os.listdir(tmp_path), "a failed build left files"
    return e.value


def test_not_finite_rows_are_named(tmp_path, scifact):
    P, Q, pairs, pids, qids = small(scifact, 100)
    P, Q = P.copy(), Q.copy()
    P[7, 3] = np.nan
    e = build_error(tmp_path, ValueError, ["passages: row 7 column 3 is NaN"], P, Q, pairs, pids, qids)
    assert isinstance(e, pefa.InputError) and e.code == pefa.ERR_BAD_INPUT
    P[7, 3] = 0
    Q[2, 0] = np.inf
    build_error(tmp_path, ValueError, ["queries: row 2 column 0 is infinite"], P, Q, pairs, pids, qids)
    Q[2, 0] = 0
    build_error(tmp_path, ValueError, ["relevance pair 0 (query row", "value is not finite"], P, Q,
                [(pairs[0][0], pairs[0][1], np.nan)], pids, qids)


@pytest.mark.parametrize("bad,words", [
    (np.zeros((10, 4), np.int32), ["passages: dtype int32 is not float32, float16 or float64"]),
    (np.zeros(10, np.float32), ["passages: shape (10,); expected (rows, dim)"]),
    (np.zeros((2, 3, 4), np.float32), ["passages: shape (2, 3, 4)"]),
    (["a", "b"], ["passages: dtype <U1"]),
])
def test_bad_passages(tmp_path, bad, words):
    build_error(tmp_path, ValueError, words, bad)


def test_bad_arguments(tmp_path, scifact):
    P, Q, pairs, pids, qids = small(scifact, 100)
    build_error(tmp_path, ValueError, ["queries and qrels go together"], P, Q)
    build_error(tmp_path, ValueError, ["queries and qrels go together"], P, None, pairs)
    build_error(tmp_path, ValueError, ["queries: dimension 50 differs from the passages' (100)"], P, Q[:, :50],
                pairs)
    build_error(tmp_path, ValueError, ["passage_ids: 99 ids for 100 rows"], P, Q, pairs, pids[:99], qids)
    build_error(tmp_path, ValueError, ["duplicate"], P, Q, [(qids[0], pids[0], 1.0)], [pids[0]] * 100, qids)
    build_error(tmp_path, KeyError, ["qrels[1]: passage id 'nope' not found in passage_ids"], P, Q,
                [pairs[0], (pairs[0][0], "nope", 1.0)], pids, qids)
    build_error(tmp_path, ValueError, ["qrels[0]: expected (query_id, passage_id[, score])"], P, Q, ["ab"], pids,
                qids)
    build_error(tmp_path, ValueError, ["qrels[0]: score 'x' is not a number"], P, Q,
                [(pairs[0][0], pairs[0][1], "x")], pids, qids)
    build_error(tmp_path, ValueError, ["vector_type 'f64'"], P, vector_type="f64")
    build_error(tmp_path, ValueError, ["y_codec 'lz4'"], P, y_codec="lz4")
    build_error(tmp_path, ValueError, ["lambda"], P, Q, pairs, pids, qids, lam=2.0)
    build_error(tmp_path, ValueError, ["M"], P, M=1)
    build_error(tmp_path, ValueError, ["M = -3 is out of range"], P, M=-3)
    build_error(tmp_path, TypeError, ["threads must be an int"], P, threads=1.5)
    build_error(tmp_path, ValueError, ["seed -1"], P, seed=-1)


def test_skip_missing(tmp_path, scifact):
    P, Q, pairs, pids, qids = small(scifact, 100)
    with pytest.warns(UserWarning, match="skipped 1 of"):
        build_small(tmp_path / "s.pefa", P, Q, pairs + [(pairs[0][0], "nope", 1.0)], pids, qids, skip_missing=True)


def test_nonpositive_pairs_are_left_out(tmp_path, scifact):
    """as pefa-build (the library's pefa_pairs_merge): duplicates add up, a pair whose total is <= 0 is left
    out, counted and warned about; the index equals the CLI's from the same qrels"""
    P, Q, pairs, pids, qids = small(scifact, 100)
    used = {p for _, p, _ in pairs}
    free = [p for p in pids if p not in used]
    extra = [(qids[0], free[0], 0.0), (qids[1], free[1], -1.0), (qids[2], free[2], 2.0), (qids[2], free[2], -2.0),
             (qids[3], free[3], -1.0), (qids[3], free[3], 3.0)]  # left out: 3; the last two add up to 2
    with pytest.warns(UserWarning, match=r"qrels: 3 \(query, passage\) pairs with a total score <= 0 left out"):
        stats = pefa.build(str(tmp_path / "py.pefa"), P, queries=Q, qrels=pairs + extra, passage_ids=pids,
                           query_ids=qids, no_graphs=True, threads=1, progress=False)
    assert stats["nonpositive_pairs"] == 3 and stats["nnz"] == len(pairs) + 1
    np.save(tmp_path / "p.npy", P)
    np.save(tmp_path / "q.npy", Q)
    (tmp_path / "pids.txt").write_text("".join(x + "\n" for x in pids))
    (tmp_path / "qids.txt").write_text("".join(x + "\n" for x in qids))
    (tmp_path / "qrels.tsv").write_text("".join("%s\t%s\t%g\n" % t for t in pairs + extra))
    r = subprocess.run([os.path.join(BIN, "pefa-build"), "-q", "-o", str(tmp_path / "cli.pefa"), "--passages",
                        str(tmp_path / "p.npy"), "--passage-ids", str(tmp_path / "pids.txt"), "--queries",
                        str(tmp_path / "q.npy"), "--query-ids", str(tmp_path / "qids.txt"), "--qrels",
                        str(tmp_path / "qrels.tsv"), "--no-graphs", "--threads", "1"],
                       stderr=subprocess.PIPE, text=True, check=True)
    assert "3 (query, passage) pairs with a total score <= 0 left out" in r.stderr
    with pefa.Index(str(tmp_path / "py.pefa")) as a, pefa.Index(str(tmp_path / "cli.pefa")) as b:
        assert a.info["nnz"] == b.info["nnz"] == len(pairs) + 1
        for name in ("xs", "z"):
            assert a.vectors(name).tobytes() == b.vectors(name).tobytes(), name
    # nothing left: an error after the warning, as pefa-build
    (tmp_path / "e").mkdir()
    with pytest.warns(UserWarning, match="pairs with a total score <= 0 left out"):
        build_error(tmp_path / "e", ValueError, ["qrels: no relevance pair with a score > 0"], P, Q, extra[:2], pids,
                    qids)


def test_unwritable_output(tmp_path, scifact):
    with pytest.raises(OSError) as e:
        pefa.build(str(tmp_path / "no" / "such" / "dir.pefa"), scifact.passages[:10], progress=False)
    assert isinstance(e.value, pefa.FileError) and e.value.code == pefa.ERR_IO


def test_output_not_an_index_is_kept(tmp_path, scifact):
    """pefa.build never replaces a file that is not a pefa index, unless force=True"""
    notes = tmp_path / "notes.txt"
    notes.write_text("some notes\n")
    with pytest.raises(OSError) as e:
        pefa.build(str(notes), scifact.passages[:10], progress=False)
    assert isinstance(e.value, pefa.FileError) and e.value.code == pefa.ERR_NOT_PEFA
    assert "notes.txt: the file there is not a pefa index; not replacing it (force=True replaces it)" in str(e.value)
    assert notes.read_text() == "some notes\n" and os.listdir(tmp_path) == ["notes.txt"]
    pefa.build(notes, scifact.passages[:10], progress=False, no_graphs=True, force=True)
    with pefa.Index(str(notes)) as ix:
        assert ix.n_passages == 10
    pefa.build(notes, scifact.passages[:20], progress=False, no_graphs=True)  # an index: replaced without force
    with pefa.Index(str(notes)) as ix:
        assert ix.n_passages == 20


def test_output_fifo_is_never_replaced(tmp_path, scifact):
    """a FIFO stands in for a device (/dev/full): refused with or without force, nothing made beside it"""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for force in (False, True):
        with pytest.raises(ValueError) as e:
            pefa.build(str(fifo), scifact.passages[:10], progress=False, no_graphs=True, force=force)
        assert isinstance(e.value, pefa.InputError) and e.value.code == pefa.ERR_INVALID_ARG
        assert str(fifo) + ": is a FIFO (named pipe), not a regular file" in str(e.value)
        assert "force" not in str(e.value)
        assert stat.S_ISFIFO(os.stat(fifo).st_mode) and os.listdir(tmp_path) == ["fifo"]
    d = tmp_path / "dir.pefa"
    d.mkdir()
    with pytest.raises(pefa.InputError, match="dir.pefa: is a directory"):
        pefa.build(str(d), scifact.passages[:10], progress=False, force=True)


def test_tuned_reads_meta(tmp_path, scifact):
    """ix.tuned is META tune.* (as pefa-build --tune writes it), typed"""
    P, Q, pairs, pids, qids = small(scifact, 100)
    out = build_small(tmp_path / "t.pefa", P, Q, pairs, pids, qids,
                      meta={"tune.mode": "xl", "tune.lambda": "0.3", "tune.knn": "16", "tune.metric": "ndcg@10"})
    with pefa.Index(out) as ix:
        assert ix.tuned == {"mode": "xl", "lambda": 0.3, "knn": 16, "metric": "ndcg@10"}
    with pefa.Index(build_small(tmp_path / "u.pefa", P, Q, pairs, pids, qids, meta={"tune.lambda": "0.3"})) as ix:
        assert ix.tuned is None  # no tune.mode: not tuned
