"""ix.vectors(): read-only ndarrays over the mapping itself (no copy), which keep
the index mapped; close() while views exist is deferred until the last is gone."""
import gc
import os
import re
import shutil
import subprocess
import weakref

import numpy as np
import pytest

import pefa
from conftest import tool


def mapped(path):
    """whether this process maps the file"""
    real = os.path.realpath(path)
    with open("/proc/self/maps") as f:
        return any(line.rstrip("\n").endswith(" " + real) for line in f)


@pytest.fixture()
def erm_copy(erm_index, tmp_path):
    """a private copy, so that /proc/self/maps shows only this test's mappings"""
    p = tmp_path / "private.pefa"
    shutil.copy(erm_index, p)
    return str(p)


def test_views_share_the_mapping(ix, scifact):
    P, P2 = ix.vectors("passages"), ix.vectors("passages")
    assert P.shape == (5183, 100) and P.dtype == np.float32 and P.strides == (400, 4)
    assert np.shares_memory(P, P2)
    assert P.flags.writeable is False and P.flags.owndata is False and P.flags.c_contiguous
    with pytest.raises(ValueError):
        P.flags.writeable = True
    with pytest.raises(ValueError):
        P[0, 0] = 1.0
    want = scifact.passages / np.linalg.norm(scifact.passages, axis=1, keepdims=True)
    np.testing.assert_allclose(P, want, rtol=0, atol=2e-7)


def test_view_is_the_file(erm_copy):
    """the view's bytes are the file's bytes at the section's offset"""
    with pefa.Index(erm_copy) as ix:
        P = ix.vectors("passages")
        raw = np.fromfile(erm_copy, np.uint8)
        at = raw.tobytes().find(P[:4].tobytes())
        assert at > 0 and at % 4096 == 0
        assert raw[at:at + P.nbytes].tobytes() == P.tobytes()
        del P


def test_every_vector_set(ix):
    Q, X, Z = ix.vectors("queries"), ix.vectors("xs"), ix.vectors("z")
    assert Q.shape == (809, 100) and Z.shape == (5183, 100)
    assert X.shape == (5183, 101) and X.strides == (404, 4)  # e_j completed to a unit vector by one column
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert not (Q.flags.writeable or X.flags.writeable or Z.flags.writeable)


def test_missing_and_unknown_sets(erm_index):
    with pefa.Index(erm_index) as ix:
        with pytest.raises(KeyError) as e:
            ix.vectors("queries")
        assert isinstance(e.value, pefa.NotFoundError) and e.value.code == pefa.ERR_NOT_FOUND
        assert "VECTORS/queries" in str(e.value)
        with pytest.raises(ValueError, match="'bogus' is not one of"):
            ix.vectors("bogus")


def test_view_keeps_index_alive(erm_copy):
    ix = pefa.Index(erm_copy)
    P = ix.vectors("passages")
    total = float(P.sum())
    alive = weakref.ref(ix)
    del ix
    gc.collect()
    assert alive() is not None and mapped(erm_copy)
    assert float(P.sum()) == total
    del P
    gc.collect()
    assert alive() is None and not mapped(erm_copy)


def test_close_without_views_unmaps_now(erm_copy):
    ix = pefa.Index(erm_copy)
    assert mapped(erm_copy)
    ix.close()
    assert ix.closed and not mapped(erm_copy)
    ix.close()  # idempotent


def test_close_is_deferred_while_views_exist(erm_copy):
    with pefa.Index(erm_copy) as ix:
        P = ix.vectors("passages")
        S = P[10:20, :5]  # a view of the view keeps it alive too
        first = P[0].copy()
    assert ix.closed
    with pytest.raises(pefa.StateError, match="closed") as e:
        ix.search(first, k=3)
    assert isinstance(e.value, ValueError) and e.value.code == pefa.ERR_STATE
    with pytest.raises(pefa.StateError):
        ix.vectors("passages")
    assert mapped(erm_copy)
    assert np.array_equal(P[0], first)
    del P
    gc.collect()
    assert mapped(erm_copy) and S.shape == (10, 5)
    float(S.sum())
    del S
    gc.collect()
    assert not mapped(erm_copy)
    assert ix.n_passages == 5000  # what was read at open stays readable


def test_f16_index_views(erm_index, tmp_path):
    out = tmp_path / "f16.pefa"
    base = os.path.join(os.environ.get("PEFA_SRC", "."), "tests", "data", "glove-5k-base.npy")
    tool("pefa-build", "-q", "-o", out, "--passages", base, "--vector-type", "f16", "--threads", "1", "--no-graphs")
    with pefa.Index(str(out)) as ix, pefa.Index(erm_index) as ix32:
        assert ix.vector_type == "f16"
        P = ix.vectors("passages")
        assert P.dtype == np.float16 and P.shape == (5000, 100) and not P.flags.writeable
        np.testing.assert_allclose(P.astype(np.float32), ix32.vectors("passages"), atol=1e-3)
        del P


@pytest.mark.skipif(not os.environ.get("PEFA_RECOMPRESS"), reason="needs the recompress helper (ctest sets it)")
def test_zstd_section_view(erm_copy, tmp_path):
    """a compressed section lives in the library's cache until close: the same
    rules hold (read-only, shared, close deferred)"""
    z = str(tmp_path / "zstd.pefa")
    subprocess.run([os.environ["PEFA_RECOMPRESS"], erm_copy, z, "2", "1"], check=True)  # VECTORS/passages
    with pefa.Index(erm_copy) as raw:
        want = np.array(raw.vectors("passages"))
        q = want[5] + want[9]
        want_hits = raw.search(q, k=10)
    assert re.search(r"VECTORS/passages +zstd", tool("pefa-dump", z))
    ix = pefa.Index(z)
    P, P2 = ix.vectors("passages"), ix.vectors("passages")
    assert np.array_equal(P, want)
    assert np.shares_memory(P, P2) and not P.flags.writeable
    with pytest.raises(ValueError):
        P.flags.writeable = True
    got = ix.search(q, k=10)
    assert np.array_equal(got[0], want_hits[0])
    ix.verify()
    ix.close()
    assert np.array_equal(P2, want)  # the cache is still there
    del P, P2
    gc.collect()
    assert not mapped(z)
