"""pefa.Set: a shard set (3 shards of SciFact and their manifest, built by the CLI)
answers as pefa-query answers over the same manifest, and in exact mode as the
unsharded index; ids of global rows; errors name the file; threads; no leaks."""
import glob
import os
import shutil
import threading
import time
import tracemalloc

import numpy as np
import pytest

import pefa
from conftest import tool
from test_search import cli_answers
from test_threads import close_during_search, long_batch, run_threads

# (name, search kwargs, pefa-query options); every one also with exact=True / --exact
MODES = [
    ("erm", dict(mode="erm"), ["--mode", "erm"]),
    ("xs", dict(mode="xs"), ["--mode", "xs"]),
    ("xs-lam0.3", dict(mode="xs", lam=0.3), ["--mode", "xs", "--lambda", "0.3"]),
    ("xl-lam0.1-knn16", dict(mode="xl", lam=0.1, knn=16), ["--mode", "xl", "--lambda", "0.1", "--knn", "16"]),
    ("xl-sparse-add", dict(mode="xl", lam=0.1, knn=16, xl_scoring="sparse-add"),
     ["--mode", "xl", "--lambda", "0.1", "--knn", "16", "--xl-scoring", "sparse-add"]),
    ("xl-v1", dict(mode="xl", lam=0.5, knn=32, knn_norm="v1"),
     ["--mode", "xl", "--lambda", "0.5", "--knn", "32", "--knn-norm", "v1"]),
    ("xl-topk50", dict(mode="xl", lam=0.3, knn=8, topk_p=50),
     ["--mode", "xl", "--lambda", "0.3", "--knn", "8", "--topk-p", "50"]),
]


def check(e, cls, code, *words):
    assert isinstance(e, cls) and isinstance(e, pefa.Error), type(e)
    assert e.code == code, (e.name, str(e))
    for w in words:
        assert w in str(e) and w in e.detail, (w, str(e))


@pytest.fixture(scope="module")
def st(sf_set):
    with pefa.Set(sf_set.manifest) as s:
        yield s


@pytest.fixture(scope="module")
def full(sf_set):
    with pefa.Index(sf_set.full) as ix:
        yield ix


@pytest.fixture()
def set_copy(sf_set, tmp_path):
    """a private copy of the set's directory (shards, id maps, manifest)"""
    for f in sf_set.files():
        shutil.copy(f, tmp_path / os.path.basename(f))
    return str(tmp_path / os.path.basename(sf_set.manifest))


# ---- what it is -------------------------------------------------------------------------
def test_attributes(st, full, sf_set):
    assert st.shard_count == 3 and st.shards == tuple(sf_set.shards)  # in shard order (given 2, 0, 1)
    assert (st.n_passages, st.n_queries, st.dim, st.vector_type) == (full.n_passages, full.n_queries, full.dim,
                                                                     full.vector_type)
    assert st.path == sf_set.manifest and not st.closed
    info, whole = st.info, full.info
    assert info.pop("shard_count") == 3
    assert info == whole
    assert repr(st).startswith("<pefa.Set %r: 3 shards, 5183 passages, 809 training queries, dim 100" % st.path)
    assert pefa.Set.search.__doc__.startswith("search(Q, k=10")
    assert "Set" in pefa.__all__


# ---- answers ------------------------------------------------------------------------------
@pytest.mark.parametrize("exact", [True, False], ids=["exact", "hnsw"])
@pytest.mark.parametrize("name,kw,opts", MODES, ids=[m[0] for m in MODES])
def test_equals_pefa_query_over_the_manifest(st, sf_set, scifact, name, kw, opts, exact):
    """the same library call behind both: the same passages and scores, HNSW or not"""
    k = 100
    want = cli_answers(sf_set.manifest, scifact, opts + (["--exact"] if exact else []), k)
    rows, scores = st.search(scifact.test, k=k, exact=exact, **kw)
    assert rows.shape == scores.shape == (len(scifact.test), k)
    assert rows.dtype == np.int64 and scores.dtype == np.float32
    ids = st.passage_ids(rows)
    assert len(want) == len(scifact.test_ids)
    for i, qid in enumerate(scifact.test_ids):
        w = want[qid]
        assert list(ids[i]) == [p for p, _ in w], "query %s: other passages than pefa-query" % qid
        np.testing.assert_allclose(scores[i], [s for _, s in w], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name,kw,opts", MODES, ids=[m[0] for m in MODES])
def test_exact_equals_the_unsharded_index(st, full, scifact, name, kw, opts):
    """in exact mode a set answers exactly like the unsharded index: the same global rows, the same
    float32 scores"""
    rows, scores = st.search(scifact.test, k=100, exact=True, **kw)
    want_rows, want_scores = full.search(scifact.test, k=100, exact=True, **kw)
    assert np.array_equal(rows, want_rows)
    assert np.array_equal(scores, want_scores)
    assert np.array_equal(st.passage_ids(rows), full.passage_ids(want_rows))


def test_hnsw_as_good_as_the_unsharded_index(st, full, scifact):
    """with the graphs each shard is searched on its own graph: not the same rows as the unsharded
    index's graph finds, but as many of the exact top 100"""
    def overlap(a, b):
        return np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b)])
    for kw in (dict(mode="erm"), dict(mode="xs"), dict(mode="xl", lam=0.1, knn=16)):
        exact = full.search(scifact.test, k=100, exact=True, **kw)[0]
        got, whole = st.search(scifact.test, k=100, **kw)[0], full.search(scifact.test, k=100, **kw)[0]
        assert overlap(got, exact) >= overlap(whole, exact) - 0.01, kw


def test_one_query_and_padding(st, scifact):
    r, s = st.search(scifact.test[7], k=10, mode="xl")
    r2, s2 = st.search(scifact.test[7:8], k=10, mode="xl")
    assert r.shape == s.shape == (10,) and r2.shape == (1, 10)
    assert np.array_equal(r, r2[0]) and np.array_equal(s, s2[0])
    r, s = st.search(scifact.test[:3], k=st.n_passages + 5, mode="erm", exact=True)
    assert (r[:, -5:] == -1).all() and np.isneginf(s[:, -5:]).all()
    assert sorted(r[0, :-5]) == list(range(st.n_passages))  # every global row once
    assert list(st.passage_ids(r[0, -6:])[1:]) == [""] * 5


def test_any_layout_same_answers(st, scifact):
    from test_search import layouts
    T = scifact.test[:40]
    want = st.search(T, k=10, mode="xl")
    for name, Q in layouts(T).items():
        got = st.search(Q, k=10, mode="xl")
        assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1]), name


def test_a_plain_index_is_a_set_of_one(sf_set, full, scifact):
    with pefa.Set(sf_set.full) as one:
        assert one.shard_count == 1 and one.shards == (sf_set.full,)
        info = one.info
        assert info.pop("shard_count") == 1 and info == full.info
        assert repr(one).startswith("<pefa.Set %r: 1 shard, " % sf_set.full)
        for kw in (dict(), dict(mode="erm"), dict(mode="xs", lam=0.3), dict(mode="xl", lam=0.1, knn=16),
                   dict(mode="xl", exact=True)):
            a, b = one.search(scifact.test, k=50, **kw), full.search(scifact.test, k=50, **kw)
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]), kw
        rows = np.arange(full.n_passages)
        assert np.array_equal(one.passage_ids(rows), full.passage_ids(rows))
        one.verify()


# ---- ids ------------------------------------------------------------------------------------
def test_ids_of_global_rows(st, full, scifact):
    rows = np.arange(st.n_passages)
    assert list(st.passage_ids(rows)) == scifact.passage_ids
    assert np.array_equal(st.passage_rows(scifact.passage_ids), rows)
    assert list(st.query_ids(np.arange(st.n_queries))) == list(full.query_ids(np.arange(full.n_queries)))
    assert np.array_equal(st.query_rows(scifact.train_ids), full.query_rows(scifact.train_ids))
    # shapes, scalars, -1, and rows at the shards' edges (5183 rows: 0..1727, 1728..3454, 3455..5182)
    edges = np.array([[0, 1727, 1728], [3454, 3455, -1]])
    ids = st.passage_ids(edges)
    assert ids.shape == (2, 3) and ids[1, 2] == ""
    assert list(ids.ravel()[:5]) == [scifact.passage_ids[i] for i in edges.ravel()[:5]]
    assert st.passage_ids(3455) == scifact.passage_ids[3455]
    assert st.passage_rows(scifact.passage_ids[5182]) == 5182
    assert np.array_equal(st.passage_rows(np.array(ids[0])), edges[0])


def test_id_errors(st):
    with pytest.raises(KeyError) as e:
        st.passage_rows(["4983", "no-such-doc"])
    check(e.value, pefa.NotFoundError, pefa.ERR_NOT_FOUND, "passage id 'no-such-doc' not found")
    assert e.value.key == "no-such-doc"
    with pytest.raises(KeyError, match="query id 'zz' not found"):
        st.query_rows("zz")
    for bad, word in (("", "empty"), ("a\0b", "NUL")):
        with pytest.raises(KeyError, match=word):
            st.passage_rows([bad])
    for bad in (5183, -2, [0, 99999]):
        with pytest.raises(IndexError, match="out of range: the set has 5183 passages"):
            st.passage_ids(bad)
    with pytest.raises(IndexError, match="the set has 809 training queries"):
        st.query_ids([809])
    with pytest.raises(TypeError, match=r"ids\[1\] is int"):
        st.passage_rows(["4983", 7])


# ---- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kw,exc,words", [
    (dict(mode="foo"), ValueError, ["mode 'foo' is not one of 'erm', 'xs', 'xl'"]),
    (dict(mode=3), TypeError, ["mode must be a str"]),
    (dict(k=0), ValueError, ["k = 0 is out of range [1, 100000]"]),
    (dict(k=2.0), TypeError, ["k must be an int"]),
    (dict(threads=-1), ValueError, ["threads = -1"]),
    (dict(knn=0, mode="xl"), ValueError, ["knn = 0"]),
    (dict(lam=1.5, mode="xl"), ValueError, ["lambda: 1.5 is outside [0, 1]"]),
    (dict(lam=0.3, mode="erm"), ValueError, ["lambda: mode erm does not use it"]),
    (dict(lam=0.3), ValueError, ["lambda: mode erm, the index's default, does not use it"]),
    (dict(knn=3, mode="xs"), ValueError, ["knn: mode xs does not use it"]),
    (dict(xl_scoring="exact", mode="xs"), ValueError, ["xl_scoring: mode xs does not use it"]),
    (dict(knn_norm="v2", mode="xl"), ValueError, ["knn_norm 'v2' is not one of 'v0', 'v1'"]),
    (dict(bogus=1), TypeError, ["unexpected keyword argument 'bogus'"]),
])
def test_search_arguments(st, scifact, kw, exc, words):
    """the same checks, the same words as Index.search"""
    with pytest.raises(exc) as e:
        st.search(scifact.test[:2], **kw)
    for w in words:
        assert w in str(e.value)
    if exc is ValueError:
        assert isinstance(e.value, pefa.InputError) and e.value.code == pefa.ERR_INVALID_ARG


def test_query_arrays_checked(st, scifact):
    for Q, words in ((scifact.test[:2].astype(np.int64), "Q: dtype int64 is not float32"),
                     (np.ones((2, 3, 100), np.float32), "3 dimensions"),
                     (np.ones(99, np.float32), "a query of 99 values; the set has dimension 100"),
                     (np.ones((4, 101), np.float32), "rows of 101 values; the set has dimension 100")):
        with pytest.raises(ValueError) as e:
            st.search(Q)
        check(e.value, pefa.InputError, pefa.ERR_INVALID_ARG, words)
    Q = scifact.test[:6].astype(np.float64)
    Q[3, 17] = np.nan
    with pytest.raises(ValueError) as e:
        st.search(Q, mode="xl", threads=2)
    check(e.value, pefa.InputError, pefa.ERR_INVALID_ARG, "query 3", "value 17", "NaN")
    with pytest.raises(TypeError, match="missing required argument 'Q'"):
        st.search(k=3)
    with pytest.raises(TypeError):
        pefa.Set(st.path, True)  # trust_idmap is keyword only


def test_missing_file(tmp_path):
    with pytest.raises(OSError) as e:
        pefa.Set(str(tmp_path / "nope.pefaset"))
    check(e.value, pefa.FileError, pefa.ERR_IO, "nope.pefaset")
    (tmp_path / "text.pefaset").write_bytes(b"hello, world\n" * 1000)
    with pytest.raises(pefa.FileError) as e:
        pefa.Set(str(tmp_path / "text.pefaset"))
    check(e.value, pefa.FileError, pefa.ERR_NOT_PEFA)


def test_missing_shard(set_copy):
    s1 = os.path.join(os.path.dirname(set_copy), "s1.pefa")
    os.remove(s1)
    with pytest.raises(OSError) as e:
        pefa.Set(set_copy)
    check(e.value, pefa.FileError, pefa.ERR_IO, s1 + ": shard 1 of set " + set_copy + " is missing")


def test_a_lone_shard_is_refused(sf_set):
    with pytest.raises(ValueError) as e:
        pefa.Set(sf_set.shards[1])
    check(e.value, pefa.InputError, pefa.ERR_INVALID_ARG, sf_set.shards[1] + ": shard 1 of 3",
          "open the set's manifest")


def test_a_manifest_of_another_set(set_copy, sf_set, scifact, tmp_path_factory):
    """the manifest of another set (another build's shards, under the same file names) over these shards"""
    d = tmp_path_factory.mktemp("other")
    shards = [str(d / ("s%d.pefa" % i)) for i in range(3)]
    for i, out in enumerate(shards):
        tool("pefa-build", "-q", "-o", out, *scifact.cli_build_args(), "--threads", "1", "--shard", "%d/3" % i,
             "--seed", "7", "--no-graphs")
    tool("pefa-shardset", "-o", d / "other.pefaset", *shards)
    with pefa.Set(str(d / "other.pefaset")) as other:  # a good set in its own directory
        assert other.shard_count == 3
    here = os.path.dirname(set_copy)
    shutil.copy(d / "other.pefaset", os.path.join(here, "other.pefaset"))
    with pytest.raises(OSError) as e:
        pefa.Set(os.path.join(here, "other.pefaset"))
    check(e.value, pefa.FileError, pefa.ERR_MISMATCH,
          os.path.join(here, "s0.pefa") + ": not shard 0 of set " + os.path.join(here, "other.pefaset"))


def test_a_damaged_shard_found_by_verify(set_copy, scifact):
    s2 = os.path.join(os.path.dirname(set_copy), "s2.pefa")
    with open(s2, "r+b") as f:  # a byte in a section, as tests/cli/test_shards.sh damages it
        f.seek(200000)
        b = f.read(1)
        f.seek(200000)
        f.write(bytes([b[0] ^ 0x01]))
    with pefa.Set(set_copy) as s:  # open reads no section data
        s.search(scifact.test[:2], mode="erm", exact=True)
        with pytest.raises(OSError) as e:
            s.verify()
        check(e.value, pefa.FileError, pefa.ERR_CHECKSUM, s2 + ": shard 2 differs from the one set " + set_copy)
        assert e.value.shard == 2


def test_a_damaged_idmap(set_copy):
    ids = glob.glob(os.path.join(os.path.dirname(set_copy), "s1.pefa.*.ids"))[0]
    with open(ids, "r+b") as f:
        f.seek(os.path.getsize(ids) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x40]))
    with pefa.Set(set_copy) as s:
        assert s.passage_ids(0)  # shard 0's id map is fine
        with pytest.raises(pefa.FileError) as e:
            s.passage_ids(2000)  # a row of shard 1
        check(e.value, pefa.FileError, pefa.ERR_CHECKSUM, os.path.basename(ids))
        with pytest.raises(pefa.FileError) as e:
            s.verify()
        assert e.value.shard == 1


def test_closed(sf_set, scifact):
    s = pefa.Set(sf_set.manifest)
    s.close()
    s.close()  # twice is fine
    assert s.closed and s.shard_count == 3 and s.n_passages == 5183
    for call in (lambda: s.search(scifact.test[0]), lambda: s.passage_ids([0]), lambda: s.passage_rows(["4983"]),
                 s.verify):
        with pytest.raises(ValueError) as e:
            call()
        check(e.value, pefa.StateError, pefa.ERR_STATE, sf_set.manifest + ": the set is closed")
    assert repr(s).startswith("<closed pefa.Set")


# ---- threads ----------------------------------------------------------------------------------
def test_four_threads_search_one_set_at_once(sf_set, scifact):
    T = scifact.test
    kinds = [dict(mode="erm"), dict(mode="xs"), dict(mode="xl", lam=0.1, knn=16), dict(mode="xl", exact=True)]
    with pefa.Set(sf_set.manifest) as s:
        want = [s.search(T, k=20, threads=1, **kw) for kw in kinds]
        want_ids = [s.passage_ids(w[0]) for w in want]

        def worker(i):
            for rep in range(6):
                j = (i + rep) % 4
                r, sc = s.search(T, k=20, threads=1 + rep % 2, **kinds[j])
                assert np.array_equal(r, want[j][0]) and np.array_equal(sc, want[j][1])
                q = (17 * i + rep) % len(T)  # one query at a time, too
                r1, s1 = s.search(T[q], k=20, **kinds[j])
                assert np.array_equal(r1, want[j][0][q]) and np.array_equal(s1, want[j][1][q])
                assert np.array_equal(s.passage_ids(r), want_ids[j])  # the id maps opened by whoever comes first
        run_threads(4, worker)


def test_gil_is_released_while_searching(st, scifact):
    Q = long_batch(st, scifact.test, 0.8)
    woke = []
    other = threading.Thread(target=lambda: (time.sleep(0.1), woke.append(time.perf_counter())))
    t0 = time.perf_counter()
    other.start()
    st.search(Q, k=10, exact=True, threads=1)
    t1 = time.perf_counter()
    other.join()
    assert t1 - t0 > 0.4, "the search was too short to show anything"
    assert woke[0] < t0 + 0.5 * (t1 - t0), "the other thread ran only after the search: GIL held"


def test_close_while_another_thread_searches(set_copy, scifact):
    shard = os.path.join(os.path.dirname(set_copy), "s1.pefa")
    close_during_search(lambda: pefa.Set(set_copy), lambda s: scifact.test, shard, "a shard")


# ---- memory -------------------------------------------------------------------------------------
def rss_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def counts():
    """(mappings, open file descriptors) of this process"""
    with open("/proc/self/maps") as f:
        maps = sum(1 for _ in f)
    return maps, len(os.listdir("/proc/self/fd"))


def set_maps(sf_set):
    """mappings of the set's own files (its shards, manifest and id maps) in this process"""
    mine = [os.path.abspath(p) for p in sf_set.shards + [sf_set.manifest]]
    with open("/proc/self/maps") as f:
        paths = [line.rstrip().split(" ")[-1] for line in f]
    return sum(1 for p in paths for m in mine if p == m or p.startswith(m + "."))


def test_open_close_200_times_does_not_grow(sf_set, scifact):
    """each round opens the set (4 files mapped), searches, reads ids (3 id maps opened) and closes it:
    nothing may stay behind, neither mappings, descriptors, Python objects nor memory"""
    T = scifact.test[:8]

    def once(i):
        with pefa.Set(sf_set.manifest) as s:
            rows, _ = s.search(T, k=10, mode="xl" if i % 2 else "xs")
            s.passage_ids(rows)
            s.passage_rows(scifact.passage_ids[i::1000])
            s.info, s.shards, repr(s)
        try:  # an error path too
            pefa.Set(sf_set.shards[0])
        except pefa.InputError:
            pass
    for i in range(20):  # warm: caches, the allocator's arenas
        once(i)
    before, rss0, maps0 = counts(), rss_kb(), set_maps(sf_set)  # other tests' sets may stay open
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    for i in range(200):
        once(i)
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(d.size_diff for d in snap1.compare_to(snap0, "filename"))
    after = counts()
    assert set_maps(sf_set) == maps0, "%d more mappings of the set's files after 200 rounds" % (
        set_maps(sf_set) - maps0)
    if not os.environ.get("PEFA_SANITIZED"):  # ASan's allocator maps memory of its own as it goes
        assert after[0] - before[0] < 20, "%d more mappings after 200 rounds" % (after[0] - before[0])
    assert after[1] == before[1], "%d more open files after 200 rounds" % (after[1] - before[1])
    assert grown < 8192, "Python memory grew by %d bytes over 200 rounds" % grown
    if not os.environ.get("PEFA_SANITIZED"):  # ASan keeps freed memory in quarantine (resident)
        assert rss_kb() - rss0 < 4096, "RSS grew by %d kB over 200 rounds" % (rss_kb() - rss0)
