"""Every bad input of the contract raises a clear exception: the right class,
the library code, a detail naming the row, field, id or file."""
import glob
import math
import os
import shutil

import numpy as np
import pytest

import pefa
from conftest import tool


def check(e, cls, code, *words):
    assert isinstance(e, cls) and isinstance(e, pefa.Error), type(e)
    assert e.code == code and e.name == str(e).rsplit("[", 1)[1].rstrip("]")
    for w in words:
        assert w in str(e) and w in e.detail, (w, str(e))


# ---- search arguments --------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.complex64, np.bool_, object, "U3"])
def test_query_dtype(ix, scifact, dtype):
    Q = scifact.test[:2].astype(dtype) if dtype != "U3" else np.full((2, 100), "abc")
    with pytest.raises(ValueError) as e:
        ix.search(Q)
    check(e.value, pefa.InputError, pefa.ERR_INVALID_ARG, "Q: dtype", "not float32, float16 or float64")


@pytest.mark.parametrize("shape,words", [((2, 3, 100), "3 dimensions"), ((99,), "a query of 99 values"),
                                         ((4, 101), "rows of 101 values"), ((), "0 dimensions")])
def test_query_shape(ix, shape, words):
    with pytest.raises(ValueError) as e:
        ix.search(np.ones(shape, np.float32))
    check(e.value, pefa.InputError, pefa.ERR_INVALID_ARG, words)


@pytest.mark.parametrize("bad,word", [(math.nan, "NaN"), (math.inf, "infinite"), (-math.inf, "infinite")])
def test_query_not_finite_names_the_row(ix, scifact, bad, word):
    Q = scifact.test[:6].astype(np.float64)
    Q[3, 17] = bad
    with pytest.raises(ValueError) as e:
        ix.search(Q, mode="xl", threads=2)
    check(e.value, pefa.InputError, pefa.ERR_INVALID_ARG, "query 3", "value 17", word)
    with pytest.raises(ValueError, match="query 0: query value 17"):
        ix.search(Q[3])


def test_query_beyond_float32_names_the_value(ix, scifact):
    """a float64 value a float32 copy would hold as inf is named as such, before any cast (no numpy
    overflow warning leaks out)"""
    import warnings
    Q = scifact.test[:6].astype(np.float64)
    Q[3, 17] = -1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError) as e:
            ix.search(Q, mode="xl", threads=2)
        check(e.value, pefa.InputError, pefa.ERR_INVALID_ARG, "row 3 (0-based), column 17", "beyond float32")
        with pytest.raises(pefa.InputError, match="row 0 .0-based., column 17: -1e\\+300 is beyond float32"):
            ix.search(Q[3])
        P = scifact.passages[:50].astype(np.float64)
        P[7, 2] = 1e39
        with pytest.raises(pefa.InputError, match="passages: row 7 .0-based., column 2: 1e\\+39 is beyond float32"):
            pefa.build("/nonexistent-dir/x.pefa", P, progress=False)


def test_query_overflowing_under_ip_names_the_row(tmp_path, scifact):
    """under --metric ip a query is used as given: a squared norm that is no float32
    (values of 1e30) is refused, naming the query, as pefa-query and pefa-serve do"""
    np.save(tmp_path / "p.npy", scifact.passages[:300])
    tool("pefa-build", "-q", "-o", tmp_path / "ip.pefa", "--passages", tmp_path / "p.npy", "--metric", "ip",
         "--no-graphs", "--threads", "1")
    Q = scifact.test[:4].copy()
    Q[2] = 1e30
    with pefa.Index(str(tmp_path / "ip.pefa")) as ix:
        with pytest.raises(ValueError) as e:
            ix.search(Q, mode="erm")
        check(e.value, pefa.InputError, pefa.ERR_INVALID_ARG, "query 2", "query squared norm 1e+62 is over the float32")
        assert np.isfinite(ix.search(Q[:2], mode="erm")[1]).all()


@pytest.mark.parametrize("kw,exc,words", [
    (dict(mode="foo"), ValueError, ["mode 'foo' is not one of 'erm', 'xs', 'xl'"]),
    (dict(mode="XL"), ValueError, ["mode 'XL'"]),
    (dict(mode=3), TypeError, ["mode must be a str"]),
    (dict(k=0), ValueError, ["k = 0 is out of range [1, 100000]"]),
    (dict(k=-1), ValueError, ["k = -1 is out of range"]),
    (dict(k=pefa.MAX_K + 1), ValueError, ["k = 100001 is out of range"]),
    (dict(k=1 << 70), ValueError, ["k is out of range"]),
    (dict(k=2.0), TypeError, ["k must be an int"]),
    (dict(k=True), TypeError, ["k must be an int"]),
    (dict(ef=0), ValueError, ["ef = 0"]),
    (dict(knn=0, mode="xl"), ValueError, ["knn = 0"]),
    (dict(topk_p=0, mode="xl"), ValueError, ["topk_p = 0"]),
    (dict(threads=-1), ValueError, ["threads = -1"]),
    (dict(lam=1.5, mode="xl"), ValueError, ["lambda: 1.5 is outside [0, 1]"]),
    (dict(lam=-0.1, mode="xs"), ValueError, ["lambda: -0.1 is outside [0, 1]"]),
    (dict(lam=math.nan, mode="xl"), ValueError, ["lambda: nan is outside [0, 1]"]),
    # a parameter the mode does not use is refused (the library's rule, as in pefa-query and pefa-serve)
    (dict(lam=0.3, mode="erm"), ValueError, ["lambda: mode erm does not use it (xs and xl do)"]),
    (dict(lam=0.3), ValueError, ["lambda: mode erm, the index's default, does not use it"]),
    (dict(knn=3, mode="xs"), ValueError, ["knn: mode xs does not use it (only xl does)"]),
    (dict(topk_p=50, mode="erm"), ValueError, ["topk_p: mode erm does not use it"]),
    (dict(knn_norm="v1", mode="xs"), ValueError, ["knn_norm: mode xs does not use it"]),
    (dict(xl_scoring="sparse-add", mode="erm"), ValueError, ["xl_scoring: mode erm does not use it"]),
    (dict(knn_norm="v0", mode="erm"), ValueError, ["knn_norm: mode erm does not use it"]),  # the default, given
    (dict(xl_scoring="exact", mode="xs"), ValueError, ["xl_scoring: mode xs does not use it"]),
    (dict(lam="x"), TypeError, []),
    (dict(knn_norm="v2", mode="xl"), ValueError, ["knn_norm 'v2' is not one of 'v0', 'v1'"]),
    (dict(xl_scoring="sparse", mode="xl"), ValueError, ["xl_scoring 'sparse'"]),
    (dict(bogus=1), TypeError, ["unexpected keyword argument 'bogus'"]),
])
def test_search_arguments(ix, scifact, kw, exc, words):
    with pytest.raises(exc) as e:
        ix.search(scifact.test[:2], **kw)
    for w in words:
        assert w in str(e.value)
    if exc is ValueError:
        assert isinstance(e.value, pefa.InputError) and e.value.code == pefa.ERR_INVALID_ARG


def test_search_call_shape(ix, scifact):
    with pytest.raises(TypeError, match="missing required argument 'Q'"):
        ix.search(k=3)
    with pytest.raises(TypeError, match="multiple values for argument 'k'"):
        ix.search(scifact.test[0], 3, k=3)
    r, _ = ix.search(scifact.test[0], 3, "xl")  # positional, in the documented order
    assert r.shape == (3,)


@pytest.mark.parametrize("mode,words", [("xs", "PEFA-XS needs training queries"), ("xl", "PEFA-XL needs")])
def test_mode_the_index_cannot_serve(erm_index, mode, words):
    with pefa.Index(erm_index) as ix:
        with pytest.raises(ValueError) as e:
            ix.search(np.ones(ix.dim, np.float32), mode=mode)
        check(e.value, pefa.InputError, pefa.ERR_INVALID_ARG, words)


# ---- ids --------------------------------------------------------------------------------
def test_missing_id_is_a_keyerror_naming_it(ix, scifact):
    with pytest.raises(KeyError) as e:
        ix.passage_rows([scifact.passage_ids[0], "no-such-doc", "other"])
    check(e.value, pefa.NotFoundError, pefa.ERR_NOT_FOUND, "passage id 'no-such-doc' not found")
    assert e.value.key == "no-such-doc"
    with pytest.raises(KeyError, match="query id 'zz' not found"):
        ix.query_rows("zz")
    for bad, word in (("", "empty"), ("a\0b", "NUL")):
        with pytest.raises(KeyError, match=word) as e:
            ix.passage_rows([bad])
        assert e.value.key == bad


def test_bad_id_types(ix):
    with pytest.raises(TypeError, match=r"ids\[1\] is int"):
        ix.passage_rows(["4983", 7])
    with pytest.raises(TypeError):
        ix.passage_rows(np.arange(3))


def test_rows_out_of_range(ix):
    for bad in (5183, -2, [0, 99999]):
        with pytest.raises(IndexError, match="out of range: the index has 5183 passages"):
            ix.passage_ids(bad)
    with pytest.raises(IndexError, match="809 training queries"):
        ix.query_ids([809])
    with pytest.raises(TypeError):
        ix.passage_ids(np.array([1.5]))


# ---- damaged files ----------------------------------------------------------------------
@pytest.fixture()
def sf_copy(sf_index, tmp_path):
    """a private copy of the demo index and its id map"""
    for f in [sf_index] + glob.glob(sf_index + ".*.ids"):
        shutil.copy(f, tmp_path / os.path.basename(f))
    return str(tmp_path / os.path.basename(sf_index))


def section_offset(path, name):
    for line in tool("pefa-dump", path).splitlines():
        f = line.split()
        if len(f) > 8 and f[1] == name:
            return int(f[0]), int(f[8])
    raise AssertionError(name)


def flip(path, at):
    with open(path, "r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0x40]))


def test_missing_file(tmp_path):
    with pytest.raises(OSError) as e:
        pefa.Index(str(tmp_path / "nope.pefa"))
    check(e.value, pefa.FileError, pefa.ERR_IO, "nope.pefa")


def test_not_a_pefa_file(tmp_path):
    p = tmp_path / "text.pefa"
    p.write_bytes(b"hello, world\n" * 1000)
    with pytest.raises(pefa.FileError) as e:
        pefa.Index(str(p))
    check(e.value, pefa.FileError, pefa.ERR_NOT_PEFA)


def test_truncated_file(sf_copy):
    os.truncate(sf_copy, os.path.getsize(sf_copy) - 4096)
    with pytest.raises(pefa.FileError) as e:
        pefa.Index(sf_copy)
    check(e.value, pefa.FileError, pefa.ERR_TRUNCATED, os.path.basename(sf_copy))


def test_damaged_header(sf_copy):
    flip(sf_copy, 40)
    with pytest.raises(pefa.FileError) as e:
        pefa.Index(sf_copy)
    assert e.value.code in (pefa.ERR_CHECKSUM, pefa.ERR_CORRUPT, pefa.ERR_VERSION) and e.value.detail


def test_damaged_section_found_by_verify(sf_copy, scifact):
    i, off = section_offset(sf_copy, "VECTORS/passages")
    flip(sf_copy, off + 1234)
    with pefa.Index(sf_copy) as ix:  # open reads no section data
        ix.search(scifact.test[:2])
        with pytest.raises(OSError) as e:
            ix.verify()
        check(e.value, pefa.FileError, pefa.ERR_CHECKSUM, "VECTORS/passages")
        assert e.value.section == i


def test_damaged_idmap(sf_copy):
    ids = glob.glob(sf_copy + ".*.ids")[0]
    flip(ids, os.path.getsize(ids) // 2)
    with pefa.Index(sf_copy) as ix:
        with pytest.raises(pefa.FileError) as e:
            ix.passage_ids([0])
        check(e.value, pefa.FileError, pefa.ERR_CHECKSUM, os.path.basename(ids))
        with pytest.raises(pefa.FileError) as e:
            ix.verify()  # pefa_verify checks the id map too
        assert e.value.code == pefa.ERR_CHECKSUM


def test_missing_idmap(sf_copy):
    os.remove(glob.glob(sf_copy + ".*.ids")[0])
    with pefa.Index(sf_copy) as ix:
        ix.search(np.ones(ix.dim, np.float32))  # searching needs no ids
        with pytest.raises(OSError) as e:
            ix.passage_rows(["4983"])
        check(e.value, pefa.FileError, pefa.ERR_IO, ".ids")
        with pytest.raises(OSError):  # not cached: tried again, same answer
            ix.passage_ids([0])


def test_trusted_idmap(sf_copy, scifact):
    with pefa.Index(sf_copy, trust_idmap=True) as ix:
        assert list(ix.passage_ids([0, 1])) == scifact.passage_ids[:2]
    with pytest.raises(TypeError):
        pefa.Index(sf_copy, True)  # keyword only


def test_error_classes():
    assert issubclass(pefa.FileError, OSError) and issubclass(pefa.InputError, ValueError)
    assert issubclass(pefa.NotFoundError, KeyError) and issubclass(pefa.StateError, ValueError)
    assert issubclass(pefa.NoMemoryError, MemoryError)
    assert all(issubclass(c, pefa.Error) for c in (pefa.FileError, pefa.InputError, pefa.NotFoundError,
                                                   pefa.StateError, pefa.NoMemoryError))
    assert pefa.ERR_CHECKSUM == -7 and pefa.ERR_OK == 0


@pytest.fixture(scope="module")
def shard_set(sf_set):
    """SciFact as 3 shards and their manifest, built by the CLI (conftest.ShardSet)"""
    return sf_set.manifest, sf_set.shards


def test_a_set_manifest_is_named(shard_set, scifact):
    """a shard set's manifest is not an index: the error says what it is and what opens it in Python, and
    names no C function a Python user cannot call"""
    with pytest.raises(ValueError) as e:
        with pefa.Index(shard_set[0]) as ix:
            ix.search(scifact.test[0], k=3)
    check(e.value, pefa.InputError, pefa.ERR_INVALID_ARG, shard_set[0] + ": a shard set's manifest (3 shards)",
          "pefa.Index opens single indexes only", "open the set with pefa.Set")
    assert "pefa_set_open" not in str(e.value)
    with pefa.Set(shard_set[0]) as s:  # which does open it
        assert s.shard_count == 3


@pytest.mark.parametrize("i", [0, 1, 2])
def test_a_shard_alone_is_refused(shard_set, i):
    """one shard holds a third of the passages: opened alone it would answer with shard-local rows over
    them, so it is refused as pefa-query refuses it"""
    with pytest.raises(ValueError) as e:
        pefa.Index(shard_set[1][i])
    check(e.value, pefa.InputError, pefa.ERR_INVALID_ARG,
          shard_set[1][i] + ": shard %d of 3 of a shard set, not a whole index" % i,
          "pefa.Index opens single indexes only", "open the set's manifest with pefa.Set")
    assert "pefa_set_open" not in str(e.value)
