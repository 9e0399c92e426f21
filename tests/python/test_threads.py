"""Many Python threads on one Index: same answers as alone; the GIL is released
while C searches; close() from one thread while another searches is deferred."""
import math
import shutil
import threading
import time

import numpy as np
import pytest

import pefa
from test_views import mapped


def run_threads(n, fn):
    """fn(i) on n threads started together; their exceptions re-raised"""
    start, errors = threading.Barrier(n), []

    def body(i):
        try:
            start.wait()
            fn(i)
        except BaseException as e:  # noqa: B902 - reported below
            errors.append(e)
    ts = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


def test_four_threads_search_at_once(ix, scifact):
    T = scifact.test
    kinds = [dict(mode="erm"), dict(mode="xs"), dict(mode="xl", lam=0.1, knn=16), dict(mode="xl", exact=True)]
    want = [ix.search(T, k=20, threads=1, **kw) for kw in kinds]

    def worker(i):
        for rep in range(6):
            kw = kinds[(i + rep) % 4]
            r, s = ix.search(T, k=20, threads=1 + rep % 2, **kw)
            w = want[(i + rep) % 4]
            assert np.array_equal(r, w[0]) and np.array_equal(s, w[1])
            j = (17 * i + rep) % len(T)  # one query at a time, too
            r1, s1 = ix.search(T[j], k=20, **kw)
            assert np.array_equal(r1, w[0][j]) and np.array_equal(s1, w[1][j])
    run_threads(4, worker)


def test_ids_from_threads(sf_index, scifact):
    with pefa.Index(sf_index) as fresh:  # the id map is opened by whichever thread comes first
        rows = np.arange(fresh.n_passages)

        def worker(i):
            for _ in range(3):
                assert list(fresh.passage_ids(rows[i::4])) == scifact.passage_ids[i::4]
                assert np.array_equal(fresh.passage_rows(scifact.passage_ids[i::4]), rows[i::4])
        run_threads(4, worker)


def long_batch(ix, Q, seconds):
    """Q repeated so that an exact one-thread ERM search of it takes about `seconds`"""
    t = time.perf_counter()
    ix.search(Q, k=10, exact=True, threads=1)
    once = max(time.perf_counter() - t, 1e-4)
    return np.tile(Q, (max(1, math.ceil(seconds / once)), 1))


def test_gil_is_released_while_searching(ix, scifact):
    """a thread that wakes from sleep needs the GIL to record the time: it gets it
    while the search runs only if the search released it"""
    Q = long_batch(ix, scifact.test, 0.8)
    woke = []
    other = threading.Thread(target=lambda: (time.sleep(0.1), woke.append(time.perf_counter())))
    t0 = time.perf_counter()
    other.start()
    ix.search(Q, k=10, exact=True, threads=1)
    t1 = time.perf_counter()
    other.join()
    assert t1 - t0 > 0.4, "the search was too short to show anything"
    assert woke[0] < t0 + 0.5 * (t1 - t0), "the other thread ran only after the search: GIL held"


def close_during_search(open_it, queries, path, what):
    """close() while another thread is inside a long search: the file stays mapped until that
    search returns (and answers right), then it is released; what names the mapped file"""
    for attempt in range(3):  # the searcher must be inside C when close() comes
        ix = open_it()
        Q = long_batch(ix, queries(ix), 1.0)
        want = ix.search(Q[:50], k=10, exact=True)
        inside, got, errors = threading.Event(), [], []

        def search():
            inside.set()
            try:
                got.append(ix.search(Q, k=10, exact=True, threads=1))
            except pefa.StateError as e:
                errors.append(e)
        t = threading.Thread(target=search)
        t.start()
        inside.wait()
        time.sleep(0.2)
        ix.close()
        assert ix.closed
        still_mapped = mapped(path)
        t.join()
        if errors:  # close() came first: try again
            continue
        assert still_mapped, "close() unmapped %s under a running search" % what
        assert np.array_equal(got[0][0][:50], want[0])
        assert not mapped(path)  # released when the search returned
        return
    pytest.fail("the search thread never got into C before close()")


def test_close_while_another_thread_searches(erm_index, tmp_path):
    path = str(tmp_path / "busy.pefa")
    shutil.copy(erm_index, path)
    close_during_search(lambda: pefa.Index(path),
                        lambda ix: np.random.default_rng(1).standard_normal((200, ix.dim)).astype(np.float32),
                        path, "the index")
