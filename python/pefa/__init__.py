"""pefa: PEFA retrieval (ERM, PEFA-XS, PEFA-XL) from one memory-mapped index file.

A thin binding of the C library libidx (``pefa.h``): numpy arrays in, numpy arrays
out, vectors viewed in place, the GIL released while C works::

    import numpy as np, pefa
    stats = pefa.build("idx.pefa", P, queries=Q_train, qrels=[("q1", "doc7", 1.0)],
                       passage_ids=pids, query_ids=qids, lam=0.5)
    with pefa.Index("idx.pefa") as ix:
        rows, scores = ix.search(T, k=10, mode="xl")   # (n, k) int64 / float32
        ids = ix.passage_ids(rows)                      # same shape, str

A shard set (shards built with ``pefa-build --shard I/N``, tied by ``pefa-shardset``)
opens with :class:`pefa.Set`, which searches like an Index and answers with global rows::

    with pefa.Set("idx.pefaset") as s:
        rows, scores = s.search(T, k=10, mode="xl")
        ids = s.passage_ids(rows)

Errors raise subclasses of :class:`pefa.Error` (see ``pefa._errors``).
"""
import numpy as _np

from . import _pefa
from ._build import build
from ._errors import Error, FileError, InputError, NoMemoryError, NotFoundError, StateError

__all__ = ["Index", "Set", "build", "Error", "FileError", "InputError", "NotFoundError", "StateError",
           "NoMemoryError"]
__version__ = _pefa.library_version
kernel_name = _pefa.kernel_name
MAX_K = _pefa.MAX_K
for _name in dir(_pefa):
    if _name.startswith("ERR_"):
        globals()[_name] = getattr(_pefa, _name)
del _name

_TUNE_TYPES = {"tune.lambda": float, "tune.knn": int}


class _Ids:
    """ids of rows and rows of ids, and the context manager: what Index and Set share
    (their C halves _ids and _rows differ)"""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def passage_ids(self, rows):
        """External ids of passage rows (an int or an array-like of ints, e.g. the rows
        from search): a numpy str array of the same shape, "" where a row is -1; a str
        for an int. IndexError for a row out of range."""
        return self._ids(_pefa.IDS_PASSAGES, rows)

    def query_ids(self, rows):
        """External ids of training-query rows, as passage_ids."""
        return self._ids(_pefa.IDS_QUERIES, rows)

    def passage_rows(self, ids):
        """Rows of passage ids (a str, or a sequence / array of str): an int64 array of
        the same shape (an int for a str). A missing id raises pefa.NotFoundError, a
        KeyError whose ``.key`` and message name it."""
        return self._rows_of(_pefa.IDS_PASSAGES, ids)

    def query_rows(self, ids):
        """Rows of training-query ids, as passage_rows."""
        return self._rows_of(_pefa.IDS_QUERIES, ids)

    def _rows_of(self, which, ids):
        if isinstance(ids, str):
            return int(self._rows(which, (ids,))[0])
        if isinstance(ids, (list, tuple)) and not any(isinstance(x, (list, tuple, _np.ndarray)) for x in ids):
            return self._rows(which, ids)  # checks that each is a str
        a = _np.asarray(ids)
        if a.size and a.dtype.kind not in "UO":
            raise TypeError("ids: expected str values, got an array of %s" % a.dtype)
        return self._rows(which, a.ravel().tolist()).reshape(a.shape)


class Index(_Ids, _pefa.Index):
    """Index(path, *, trust_idmap=False): an opened pefa index file.

    Opening maps the file and checks its header and directory only: it costs the
    same for 1 MB and 100 GB. The id map beside the file is opened on the first
    call that needs ids, and hashed to check it is the one the index was built
    with, unless ``trust_idmap=True`` (after ``verify()`` or ``pefa-dump --verify``
    on this copy).

    Also a context manager (``close()`` on exit). ``close()`` while arrays from
    ``vectors()`` are alive, or while another thread is inside a call, makes the
    index unusable at once but releases the mapping only when the last of them
    is gone, so a view never points at unmapped memory.

    Any number of threads may call ``search`` and the id methods at once.

    Single indexes only: a shard set's manifest, or one shard of a set, raises
    pefa.InputError naming the file; open the set's manifest with :class:`pefa.Set`.
    """

    def __repr__(self):
        state = "closed " if self.closed else ""
        return "<%spefa.Index %r: %d passages, %d training queries, dim %d, %s>" % (
            state, self.path, self.n_passages, self.n_queries, self.dim, self.vector_type)

    @property
    def meta(self):
        """The META section as a dict of str (a copy)."""
        m = self.__dict__.get("_meta_cache")
        if m is None:
            m = self.__dict__["_meta_cache"] = self._meta()
        return dict(m)

    @property
    def tuned(self):
        """The setting ``pefa-build --tune`` stored (META ``tune.*``) as a dict with
        ``mode`` and, when recorded, ``lambda`` (float), ``knn`` (int), ``metric`` and
        any other ``tune.*`` key (str); None when the index was not tuned. A search
        with ``mode=None`` uses the library's default: this setting when the index was
        built with tuning (``pefa.build(tune=True)``, ``pefa-build --tune``), else ERM
        (``info["default_mode"]`` says which)."""
        m = self.meta
        if "tune.mode" not in m:
            return None
        out = {}
        for key, value in m.items():
            if key.startswith("tune."):
                try:
                    out[key[5:]] = _TUNE_TYPES.get(key, str)(value)
                except ValueError:
                    out[key[5:]] = value
        return out


class Set(_Ids, _pefa.Set):
    """Set(path, *, trust_idmap=False): an opened shard set.

    ``path`` is a set's manifest (written by ``pefa-shardset``; its shards, built with
    ``pefa-build --shard I/N``, are opened from the manifest's directory) or a plain
    index file, opened as a set of one shard. Opening checks that every shard is
    there, is the file the manifest recorded (size and UUID) and says it is that
    shard: a missing shard raises pefa.FileError naming the file, one from another
    build or set a FileError (``ERR_MISMATCH``) naming it. A lone shard raises
    pefa.InputError: open its set's manifest.

    The set answers as one index: ``search`` takes the arguments of Index.search and
    returns global passage rows, exactly those of the unsharded index in exact mode
    (``exact=True``); ``passage_ids`` / ``passage_rows`` map global rows; ``info`` is
    the set described as one index, plus ``shard_count``. Each shard's id map is
    opened on first use, and hashed unless ``trust_idmap=True``. ``verify()`` checks
    every shard against the manifest's digest and then as Index.verify does; a
    failure's ``.shard`` says which.

    Also a context manager (``close()`` on exit); ``close()`` while another thread is
    inside a call makes the set unusable at once and closes its files when that call
    returns. Any number of threads may call ``search`` and the id methods at once.
    """

    def __repr__(self):
        state = "closed " if self.closed else ""
        return "<%spefa.Set %r: %d shard%s, %d passages, %d training queries, dim %d, %s>" % (
            state, self.path, self.shard_count, "" if self.shard_count == 1 else "s", self.n_passages,
            self.n_queries, self.dim, self.vector_type)
