"""pefa.build: numpy arrays, ids and qrels in, one index file (and its id map) out."""
import sys
import time
import warnings

import numpy as np

from . import _pefa
from ._errors import InputError, NotFoundError

# one relevance triplet as the library reads it (pefa_pair: u32 q, u32 p, f32 y)
PAIR = np.dtype([("q", "<u4"), ("p", "<u4"), ("y", "<f4")])


def _error(cls, code, name, detail, **attrs):
    e = cls("%s [%s]" % (detail, name))
    e.code, e.name, e.detail = code, name, detail
    for k, v in attrs.items():
        setattr(e, k, v)
    return e


def _input_error(detail):
    return _error(InputError, _pefa.ERR_INVALID_ARG, "INVALID_ARG", detail)


def _rows_arg(a, name):
    """a 2-D float32/float16 array the library can read in place (float64 is
    converted, odd strides or byte order copied; the caller's array is never
    written)"""
    a = np.asarray(a)
    if a.dtype.kind != "f" or a.dtype.itemsize not in (2, 4, 8):
        raise _input_error("%s: dtype %s is not float32, float16 or float64" % (name, a.dtype))
    if a.ndim != 2:
        raise _input_error("%s: shape %s; expected (rows, dim)" % (name, a.shape))
    if a.dtype.itemsize == 8:
        beyond = np.isfinite(a) & (np.abs(a) > np.finfo(np.float32).max)
        if beyond.any():  # a float32 copy would hold inf
            r, c = np.argwhere(beyond)[0]
            raise _input_error("%s: row %d (0-based), column %d: %g is beyond float32 (at most %g)"
                               % (name, r, c, a[r, c], np.finfo(np.float32).max))
        return a.astype(np.float32)
    if not (a.dtype.isnative and a.flags.aligned and (a.shape[1] <= 1 or a.strides[1] == a.itemsize)
            and (a.shape[0] <= 1 or a.strides[0] > 0)):
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))
    return a


def _uint(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError("%s must be an int, not %s" % (name, type(v).__name__))
    if v < 0 or v > 0xFFFFFFFF:
        raise _input_error("%s = %d is out of range" % (name, v))
    return int(v)


def _ids_arg(ids, n, name):
    """(tuple of UTF-8 bytes, {id: row}) or (None, None) for row numbers"""
    if ids is None:
        return None, None
    ids = ids.ravel().tolist() if isinstance(ids, np.ndarray) else list(ids)
    if len(ids) != n:
        raise _input_error("%s: %d ids for %d rows (one id per row, in row order)" % (name, len(ids), n))
    enc, lookup = [], {}
    for i, x in enumerate(ids):
        if isinstance(x, bytes):
            x = x.decode("utf-8", "surrogateescape")
        elif isinstance(x, (int, np.integer)) and not isinstance(x, bool):
            x = str(int(x))
        elif not isinstance(x, str):
            raise TypeError("%s[%d] is %s, not str" % (name, i, type(x).__name__))
        b = x.encode("utf-8", "surrogateescape")
        if b"\0" in b:
            raise _input_error("%s[%d]: an id with a NUL character" % (name, i))
        enc.append(b)
        lookup.setdefault(x, i)
    return tuple(enc), lookup


def _qrels_columns(qrels):
    """qrels as three lists: (query ids, passage ids, scores)"""
    if isinstance(qrels, (tuple, list)) and len(qrels) == 3 and all(isinstance(c, np.ndarray) for c in qrels):
        q, p, y = (np.asarray(c).ravel() for c in qrels)
        if not len(q) == len(p) == len(y):
            raise _input_error("qrels: three arrays of different lengths (%d, %d, %d)" % (len(q), len(p), len(y)))
        return q.tolist(), p.tolist(), y.tolist()
    q, p, y = [], [], []
    for i, t in enumerate(qrels):
        if isinstance(t, (str, bytes)) or len(t) not in (2, 3):
            raise _input_error("qrels[%d]: expected (query_id, passage_id[, score])" % i)
        q.append(t[0])
        p.append(t[1])
        y.append(t[2] if len(t) == 3 else 1.0)
    return q, p, y


def _row_of(x, lookup, n):
    """the row of an id (row numbers when lookup is None), or None"""
    if lookup is not None:
        if isinstance(x, bytes):
            x = x.decode("utf-8", "surrogateescape")
        elif not isinstance(x, str):
            x = str(x)
        return lookup.get(x)
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return int(x) if 0 <= x < n else None
    if isinstance(x, str) and x.isdigit() and x.isascii() and str(int(x)) == x and int(x) < n:
        return int(x)
    return None


def _pairs(qrels, qlookup, nq, plookup, np_, skip_missing):
    q, p, y = _qrels_columns(qrels)
    pairs = np.empty(len(q), dtype=PAIR)
    kept = skipped = 0
    for i in range(len(q)):
        qr, pr = _row_of(q[i], qlookup, nq), _row_of(p[i], plookup, np_)
        if qr is None or pr is None:
            if skip_missing:
                skipped += 1
                continue
            what, key = ("query", q[i]) if qr is None else ("passage", p[i])
            where = ("query_ids" if qlookup is not None else "the query rows 0..%d" % (nq - 1)) if qr is None else \
                    ("passage_ids" if plookup is not None else "the passage rows 0..%d" % (np_ - 1))
            raise _error(NotFoundError, _pefa.ERR_NOT_FOUND, "NOT_FOUND",
                         "qrels[%d]: %s id %r not found in %s (skip_missing=True skips such pairs)"
                         % (i, what, key, where), key=key)
        try:
            pairs[kept] = (qr, pr, float(y[i]))
        except (TypeError, ValueError):
            raise _input_error("qrels[%d]: score %r is not a number" % (i, y[i])) from None
        kept += 1
    if skipped:
        warnings.warn("qrels: skipped %d of %d pairs with unknown ids" % (skipped, len(q)), stacklevel=3)
    if kept == 0:
        raise _input_error("qrels: no relevance pair" + (" left after skipping unknown ids" if skipped else ""))
    # the library's qrels rule, as pefa-build applies it: duplicates add up, a total <= 0 is not relevant
    pairs = pairs[:kept]
    kept, left_out = _pefa._merge_pairs(pairs)
    if left_out:
        warnings.warn("qrels: %d (query, passage) pairs with a total score <= 0 left out (not relevant: they add "
                      "nothing to Y)" % left_out, stacklevel=3)
    if kept == 0:
        raise _input_error("qrels: no relevance pair with a score > 0")
    return pairs[:kept], left_out


class _Progress:
    """progress=True: stage lines on stderr, a live percentage when it is a terminal"""

    def __init__(self):
        self.stage, self.t0, self.last = None, 0.0, 0.0

    def __call__(self, stage, done, total):
        err, t = sys.stderr, time.monotonic()
        tty = err.isatty()
        if stage != self.stage:
            if self.stage and tty:
                err.write("\n")
            err.write("pefa.build: %s ...%s" % (stage, "" if tty else "\n"))
            self.stage, self.t0, self.last = stage, t, t
        if tty and total and (t - self.last > 0.2 or done == total):
            err.write("\rpefa.build: %s ... %5.1f%% (%.1fs)" % (stage, 100.0 * done / total, t - self.t0))
            self.last = t
        if done == total and total and not tty and t - self.t0 > 1.0:
            err.write("pefa.build: %s done in %.1fs\n" % (stage, t - self.t0))
        err.flush()


def _str_arg(v, name):
    if not isinstance(v, str):
        raise TypeError("%s must be a str, not %s" % (name, type(v).__name__))
    return v


def _tune_args(tune, tune_queries, tune_metric, tune_label_check):
    """the tuning keywords of _pefa._build (as pefa-build --tune and its options)"""
    if not tune:
        if tune_queries is not None or tune_metric is not None or tune_label_check is not None:
            raise _input_error("tune_queries, tune_metric and tune_label_check go with tune=True")
        return {}
    kw = {"tune": True}
    if tune_queries is not None:
        kw["tune_queries"] = _uint(tune_queries, "tune_queries")
        if kw["tune_queries"] == 0:
            raise _input_error("tune_queries = 0: tune on at least 1 training query (None = 2000)")
    if tune_metric is not None:
        if not isinstance(tune_metric, str):
            raise TypeError("tune_metric must be a str, not %s" % type(tune_metric).__name__)
        kw["tune_metric"] = tune_metric
    if tune_label_check is not None:
        if not isinstance(tune_label_check, bool):
            raise TypeError("tune_label_check must be True, False or None, not %r" % (tune_label_check,))
        kw["tune_label_check"] = _pefa.LABEL_CHECK_ON if tune_label_check else _pefa.LABEL_CHECK_OFF
    return kw


def build(out, passages, queries=None, qrels=None, passage_ids=None, query_ids=None, lam=0.5, M=32,
          ef_construction=500, threads=0, vector_type="f32", tune=False, progress=True, *, seed=42,
          y_codec="raw", no_graphs=False, skip_missing=False, meta=None, force=False, tune_queries=None,
          tune_metric=None, tune_label_check=None, metric="cosine"):
    """Builds an index file at ``out`` (atomically) and, when ids are given, its id map
    ``<out>.<uuid>.ids`` beside it; returns the build's statistics as a dict.

    passages: (n, dim) float32 / float16 / float64 array (any strides: float32 and
    float16 rows are read in place, anything else is converted once). queries: the
    training queries, likewise; they go with ``qrels``: (query_id, passage_id[, score])
    triples, or three numpy arrays. Ids default to row numbers (then qrels name rows,
    as ints or decimal strings); duplicates in qrels add up, and a pair whose total is
    <= 0 is not relevant: left out, counted (``nonpositive_pairs`` in the returned
    statistics) and warned about (UserWarning), as pefa-build does. lam: the PEFA-XS weight
    fixed in the file. M, ef_construction: HNSW. threads: 0 = all cores; one thread
    and a seed give the same file content. vector_type: "f32" or "f16" storage, or
    "i8": f16 rows plus int8 codes that the graphs are searched on (each search's
    final beam re-scored from the f16 rows), as ``pefa-build --vector-type``.
    metric: "cosine" (rows and queries L2-normalised) or "ip" (raw inner product:
    norms carry signal), as ``pefa-build --metric``.
    progress: True (stage lines on stderr), False, or a function (stage, done, total)
    called from the build's threads with the GIL held. The caller's arrays are never
    modified.

    tune=True (needs queries and qrels) chooses mode, lambda and k by leave-one-out
    over the training queries after the build, as ``pefa-build --tune``; the index
    records the winner (``Index.tuned``, ``Index.info["default_mode"]``) and a search
    with mode=None uses it. With it: tune_queries (training queries to tune on;
    None = 2000), tune_metric ("recall@100" (None), "recall@10" or "ndcg@10"),
    tune_label_check (None or True: choose ERM when the labels do not follow the
    query text; False: report only).

    An existing file at ``out`` is replaced only if it is a pefa index; force=True
    also replaces a regular file that is not one. A directory, device, FIFO or socket
    is never replaced (the library's rule, ``pefa_output_check``). Both are checked
    first, before any work.

    Errors: pefa.InputError (a ValueError naming the row, id or field; ``out`` names
    a directory, device, FIFO or socket), pefa.NotFoundError (a KeyError: a qrels id
    not among the ids), pefa.FileError (cannot write; code ERR_NOT_PEFA: ``out`` is a
    file that is not a pefa index and force is False), pefa.NoMemoryError.
    """
    _pefa._output_check(out, bool(force))
    tune_kw = _tune_args(tune, tune_queries, tune_metric, tune_label_check)
    P = _rows_arg(passages, "passages")
    Q = None if queries is None else _rows_arg(queries, "queries")
    if (Q is None) != (qrels is None):
        raise _input_error("queries and qrels go together (PEFA needs training queries and their relevant passages)")
    if Q is not None and Q.shape[1] != P.shape[1]:
        raise _input_error("queries: dimension %d differs from the passages' (%d)" % (Q.shape[1], P.shape[1]))
    pids, plookup = _ids_arg(passage_ids, P.shape[0], "passage_ids")
    nq = 0 if Q is None else Q.shape[0]
    qids, qlookup = _ids_arg(query_ids, nq, "query_ids")
    if qids is not None and Q is None:
        raise _input_error("query_ids needs queries")
    pairs, left_out = (None, 0) if Q is None else _pairs(qrels, qlookup, nq, plookup, P.shape[0], skip_missing)
    mk = mv = None
    if meta:
        mk = tuple(str(k).encode() for k in meta)
        mv = tuple(str(v).encode() for v in meta.values())
    if progress is True:
        progress = _Progress()
    elif progress is False:
        progress = None
    elif progress is not None and not callable(progress):
        raise TypeError("progress must be True, False, None or a function (stage, done, total)")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 1 << 64:
            raise _input_error("seed %r is not an int in [0, 2^64)" % (seed,))
        seed = int(seed)
    stats = _pefa._build(out, P, Q, pairs, pids, qids, mk, mv, None if lam is None else float(lam), _uint(M, "M"),
                         _uint(ef_construction, "ef_construction"), seed, _uint(threads, "threads"), vector_type,
                         y_codec, bool(no_graphs), progress, "passages", "queries", metric=_str_arg(metric, "metric"),
                         **tune_kw)
    stats["nonpositive_pairs"] = left_out
    return stats
