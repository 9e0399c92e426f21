/*
 * index.c - pefa._pefa.Index: an opened index file (pefa_index), its id map
 * (opened on first use), batch search with the GIL released, ids, zero-copy
 * views of the vector sections, verification.
 *
 * Lifetime. Every call that releases the GIL counts itself in `busy`; every
 * live view (an ndarray from vectors()) holds a ViewOwner, counted in
 * `views`, which holds a reference to the Index. close() marks the index
 * closed at once (further calls raise StateError) and releases the mapping
 * when nothing uses it: at once when busy == views == 0, else when the last
 * running call returns or the last view is freed. Counters change under the
 * GIL only.
 */
#include "pefapy.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct {
    PyObject_HEAD
    pefa_index *ix;              /* NULL once released */
    pefa_idmap *im;              /* the id map, once open (read under the GIL) */
    pefa_idmap *im_locked;       /* the same, guarded by im_lock (set while the GIL is released) */
    PyThread_type_lock im_lock;
    unsigned idmap_flags;
    pefa_model_info mi;
    int closing;                 /* close() was called */
    Py_ssize_t busy, views;
    PyObject *path;              /* str */
} IndexObject;

typedef struct {
    PyObject_HEAD
    IndexObject *owner;
} ViewOwnerObject;

/* ---- lifetime -------------------------------------------------------------------- */
static void release_if_idle(IndexObject *s)
{
    if (!s->ix || !s->closing || s->busy || s->views) return;
    if (s->im) pefa_idmap_close(s->im);
    s->im = s->im_locked = NULL;
    pefa_index_close(s->ix);
    s->ix = NULL;
}

/* a call begins: StateError if the index is closed */
static int enter(IndexObject *s)
{
    if (!s->ix || s->closing) {
        pefapy_raise_closed(s->path, "index");
        return -1;
    }
    s->busy++;
    return 0;
}

static void leave(IndexObject *s)
{
    s->busy--;
    release_if_idle(s);
}

/* pefa_model_describe of a whole index: a shard set's manifest (META
 * set.shards, format [S2]) and a shard opened alone are refused, as pefa-query
 * refuses a shard (pefa_set_open), with words for Python: pefa.Set opens sets */
static int describe_single(pefa_index *ix, pefa_model_info *mi, char *err, size_t cap)
{
    const char *path = pefa_index_path(ix), *n;
    int rc;
    if (pefa_index_meta_get(ix, "set.shards", &n) == 0) {
        snprintf(err, cap,
                 "%s: a shard set's manifest (%s shards), not an index: pefa.Index opens single indexes only; "
                 "open the set with pefa.Set",
                 path, n);
        return PEFA_ERR_INVALID_ARG;
    }
    if ((rc = pefa_model_describe(ix, mi)) != 0) {
        snprintf(err, cap, "%s", pefa_last_error_detail());
        return rc;
    }
    if (mi->shard_count > 1) {
        snprintf(err, cap,
                 "%s: shard %u of %u of a shard set, not a whole index (its rows are a part of the passages): "
                 "pefa.Index opens single indexes only; open the set's manifest with pefa.Set",
                 path, mi->shard_index, mi->shard_count);
        return PEFA_ERR_INVALID_ARG;
    }
    return 0;
}

static int Index_init(IndexObject *s, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"path", "trust_idmap", NULL};
    PyObject *bpath = NULL;
    int trust = 0, rc;
    char err[600] = "";
    if (s->ix || s->path) {
        pefapy_raise(PEFA_ERR_STATE, "Index.__init__: already opened");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|$p:Index", kwlist, PyUnicode_FSConverter, &bpath, &trust))
        return -1;
    if (!s->im_lock && !(s->im_lock = PyThread_allocate_lock())) {
        Py_DECREF(bpath);
        PyErr_NoMemory();
        return -1;
    }
    s->idmap_flags = trust ? PEFA_IDMAP_TRUSTED : 0;
    s->mi.size = sizeof s->mi;
    Py_BEGIN_ALLOW_THREADS
    rc = pefa_index_open(PyBytes_AS_STRING(bpath), &s->ix);
    if (rc == 0 && (rc = describe_single(s->ix, &s->mi, err, sizeof err)) != 0) {
        pefa_index_close(s->ix);
        s->ix = NULL;
    } else if (rc) {
        snprintf(err, sizeof err, "%s", pefa_last_error_detail());
    }
    Py_END_ALLOW_THREADS
    if (rc == 0) s->path = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(bpath));
    Py_DECREF(bpath);
    if (rc) {
        pefapy_raise(rc, err);
        return -1;
    }
    return s->path ? 0 : -1;
}

static void Index_dealloc(IndexObject *s)
{
    s->closing = 1;
    release_if_idle(s); /* busy and views are 0: each holds a reference */
    if (s->im_lock) PyThread_free_lock(s->im_lock);
    Py_XDECREF(s->path);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyObject *Index_close(IndexObject *s, PyObject *unused)
{
    s->closing = 1;
    release_if_idle(s);
    Py_RETURN_NONE;
}

static void ViewOwner_dealloc(ViewOwnerObject *v)
{
    IndexObject *s = v->owner;
    s->views--;
    release_if_idle(s);
    Py_DECREF(s);
    PyObject_Free(v);
}

PyTypeObject pefapy_ViewOwnerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pefa._pefa._ViewOwner",
    .tp_basicsize = sizeof(ViewOwnerObject),
    .tp_dealloc = (destructor)ViewOwner_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Keeps an Index's mapping alive while an ndarray views it.",
};

/* ---- the id map (opened on first use) ------------------------------------------------ */
/* the caller has entered: the index cannot be released meanwhile */
static pefa_idmap *idmap_get(IndexObject *s)
{
    pefa_idmap *im = NULL;
    int rc = 0;
    char err[600] = "";
    if (s->im) return s->im;
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(s->im_lock, WAIT_LOCK);
    if (!s->im_locked && (rc = pefa_idmap_open(s->ix, s->idmap_flags, &s->im_locked)) != 0)
        snprintf(err, sizeof err, "%s", pefa_last_error_detail());
    im = s->im_locked;
    PyThread_release_lock(s->im_lock);
    Py_END_ALLOW_THREADS
    if (rc) pefapy_raise(rc, err);
    return s->im = im;
}

/* ---- search ------------------------------------------------------------------------- */
static PyObject *search_kw_interned[PEFAPY_A_N], *time_kw_interned[PEFAPY_A_N];

static PyObject *run_search(IndexObject *s, const pefapy_qblock *qb, const pefa_query_params *qp, uint32_t threads)
{
    pefapy_results r;
    int rc;
    char err[600] = "";
    if (pefapy_results_new(qb, qp->k, &r)) return NULL;
    if (enter(s)) {
        pefapy_results_free(&r);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = pefa_search_batch(s->ix, qb->data, qb->n, qb->stride, qp, threads, r.hits, r.nh);
    if (rc) snprintf(err, sizeof err, "%s", pefa_last_error_detail());
    Py_END_ALLOW_THREADS
    leave(s);
    return pefapy_results_finish(&r, rc, err);
}

static PyObject *Index_search(IndexObject *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[PEFAPY_A_N], *out;
    pefa_query_params qp = PEFA_QUERY_PARAMS_INIT;
    uint32_t threads = 0;
    pefapy_qblock qb = {0};
    if (pefapy_parse("search", pefapy_search_kw, search_kw_interned, PEFAPY_A_SINGLE, args, nargs, kwnames, a)) return NULL;
    if (!a[PEFAPY_A_Q]) return PyErr_Format(PyExc_TypeError, "search() missing required argument 'Q'");
    if (pefapy_search_params(a, &qp, &threads) || pefapy_qblock_get(s->mi.dim, "index", a[PEFAPY_A_Q], &qb)) return NULL;
    out = run_search(s, &qb, &qp, threads);
    Py_DECREF(qb.arr);
    return out;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* the C cost of the same searches, for bench/py_peers.py: one query at a
 * time, through pefa_search_batch(n = 1) or (single=True) pefa_search with
 * a searcher of its own, warmed by one untimed search; the seconds the loop
 * took, timed in C */
static int time_loop(IndexObject *s, const pefapy_qblock *qb, const pefa_query_params *qp, int single, double *sec)
{
    pefa_hit *hits = (pefa_hit *)PyMem_RawMalloc(qp->k * sizeof *hits);
    pefa_searcher *se = NULL;
    uint32_t nh;
    int rc = hits ? 0 : PEFA_ERR_NOMEM;
    if (!rc && single && (rc = pefa_searcher_new(s->ix, &se)) == 0 && qb->n)
        rc = pefa_search(se, qb->data, qp, hits, &nh); /* warm: its buffers grown, as the pool's are */
    *sec = now_s();
    for (uint64_t i = 0; i < qb->n && !rc; i++) {
        const float *q = qb->data + i * qb->stride;
        rc = single ? pefa_search(se, q, qp, hits, &nh) : pefa_search_batch(s->ix, q, 1, 0, qp, 1, hits, &nh);
    }
    *sec = now_s() - *sec;
    pefa_searcher_free(se);
    PyMem_RawFree(hits);
    return rc;
}

static PyObject *Index_time_c_loop(IndexObject *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[PEFAPY_A_N];
    pefa_query_params qp = PEFA_QUERY_PARAMS_INIT;
    uint32_t threads = 0;
    pefapy_qblock qb = {0};
    double sec = 0;
    int rc = 0, single = 0;
    if (pefapy_parse("_time_c_loop", pefapy_search_kw, time_kw_interned, PEFAPY_A_N, args, nargs, kwnames, a)) return NULL;
    if (!a[PEFAPY_A_Q]) return PyErr_Format(PyExc_TypeError, "_time_c_loop() missing required argument 'Q'");
    if (a[PEFAPY_A_SINGLE] && (single = PyObject_IsTrue(a[PEFAPY_A_SINGLE])) < 0) return NULL;
    if (pefapy_search_params(a, &qp, &threads) || pefapy_qblock_get(s->mi.dim, "index", a[PEFAPY_A_Q], &qb)) return NULL;
    if (enter(s)) {
        Py_DECREF(qb.arr);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = time_loop(s, &qb, &qp, single, &sec);
    Py_END_ALLOW_THREADS
    leave(s);
    Py_DECREF(qb.arr);
    if (rc) return pefapy_raise_last(rc);
    return PyFloat_FromDouble(sec);
}

/* ---- ids ---------------------------------------------------------------------------- */
static PyObject *Index_ids(IndexObject *s, PyObject *args)
{
    int which;
    PyObject *obj;
    pefapy_ids_job j;
    pefapy_idsrc src = {0};
    if (!PyArg_ParseTuple(args, "iO:_ids", &which, &obj)) return NULL;
    if (pefapy_ids_begin(which == PEFA_IDS_QUERIES ? s->mi.n_queries : s->mi.n_passages, "index", which, obj, &j))
        return NULL;
    if (enter(s)) return pefapy_ids_end(&j, 0);
    if (!(src.im = idmap_get(s))) {
        leave(s);
        return pefapy_ids_end(&j, 0);
    }
    Py_BEGIN_ALLOW_THREADS
    pefapy_ids_run(&src, &j);
    Py_END_ALLOW_THREADS
    leave(s);
    return pefapy_ids_end(&j, 1);
}

static PyObject *Index_rows(IndexObject *s, PyObject *args)
{
    int which;
    PyObject *seq;
    pefapy_rows_job j;
    pefapy_idsrc src = {0};
    if (!PyArg_ParseTuple(args, "iO:_rows", &which, &seq) || pefapy_rows_begin(which, seq, &j)) return NULL;
    if (enter(s)) return pefapy_rows_end(&j, 0);
    if (!(src.im = idmap_get(s))) {
        leave(s);
        return pefapy_rows_end(&j, 0);
    }
    Py_BEGIN_ALLOW_THREADS
    pefapy_rows_run(&src, &j);
    Py_END_ALLOW_THREADS
    leave(s);
    return pefapy_rows_end(&j, 1);
}

/* ---- views, META, verify ---------------------------------------------------------------- */
static const char *const view_names[] = {"passages", "queries", "xs", "z"};
static const uint32_t view_targets[] = {PEFA_TARGET_PASSAGES, PEFA_TARGET_QUERIES, PEFA_TARGET_XS, PEFA_TARGET_XS_Z};

/* a read-only ndarray over section i, its base a ViewOwner of s */
static PyObject *section_view(IndexObject *s, int i, const pefa_section_info *si, const void *data)
{
    npy_intp dims[2] = {(npy_intp)si->shape[0], (npy_intp)si->shape[1]};
    PyObject *arr = PyArray_New(&PyArray_Type, 2, dims, si->elem == PEFA_TYPE_F16 ? NPY_HALF : NPY_FLOAT32, NULL,
                                (void *)(uintptr_t)data, 0, NPY_ARRAY_CARRAY_RO, NULL);
    ViewOwnerObject *v = arr ? PyObject_New(ViewOwnerObject, &pefapy_ViewOwnerType) : NULL;
    if (!v) {
        Py_XDECREF(arr);
        return NULL;
    }
    Py_INCREF(s);
    v->owner = s;
    s->views++;
    if (PyArray_SetBaseObject((PyArrayObject *)arr, (PyObject *)v)) { /* it took v either way */
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

static PyObject *Index_vectors(IndexObject *s, PyObject *args)
{
    const char *name;
    int t = 0, i, rc;
    pefa_section_info si;
    const void *data = NULL;
    uint64_t size = 0;
    char err[600] = "";
    PyObject *out = NULL;
    if (!PyArg_ParseTuple(args, "s:vectors", &name)) return NULL;
    while (t < 4 && strcmp(name, view_names[t]) != 0) t++;
    if (t == 4) return pefapy_input_error("vectors: '%s' is not one of 'passages', 'queries', 'xs', 'z'", name);
    if (enter(s)) return NULL;
    if ((i = pefa_index_find(s->ix, PEFA_KIND_VECTORS, view_targets[t])) < 0) {
        snprintf(err, sizeof err, "%s has no VECTORS/%s section%s", pefa_index_path(s->ix), name,
                 t != 0 ? " (built without training queries?)" : "");
        pefapy_raise(PEFA_ERR_NOT_FOUND, err);
        goto done;
    }
    if ((rc = pefa_index_section_info(s->ix, (uint32_t)i, &si)) != 0) {
        pefapy_raise_last(rc);
        goto done;
    }
    if (si.ndim != 2 || (si.elem != PEFA_TYPE_F32 && si.elem != PEFA_TYPE_F16)) {
        snprintf(err, sizeof err, "%s: VECTORS/%s is not a 2-D f32/f16 array", pefa_index_path(s->ix), name);
        pefapy_raise(PEFA_ERR_CORRUPT, err);
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS /* a zstd section is decompressed here, once */
    rc = pefa_index_section_data(s->ix, (uint32_t)i, &data, &size);
    if (rc) snprintf(err, sizeof err, "%s", pefa_last_error_detail());
    Py_END_ALLOW_THREADS
    if (rc) pefapy_raise(rc, err);
    else out = section_view(s, i, &si, data);
done:
    leave(s);
    return out;
}

static PyObject *Index_meta(IndexObject *s, PyObject *unused)
{
    PyObject *d;
    int n;
    if (enter(s)) return NULL;
    if ((n = pefa_index_meta_count(s->ix)) < 0) {
        leave(s);
        return pefapy_raise_last(n);
    }
    d = PyDict_New();
    for (int i = 0; d && i < n; i++) {
        const char *k, *v;
        PyObject *ko, *vo;
        int rc = pefa_index_meta_at(s->ix, i, &k, &v);
        if (rc) {
            pefapy_raise_last(rc);
            Py_CLEAR(d);
            break;
        }
        ko = PyUnicode_DecodeUTF8(k, (Py_ssize_t)strlen(k), "surrogateescape");
        vo = PyUnicode_DecodeUTF8(v, (Py_ssize_t)strlen(v), "surrogateescape");
        if (!ko || !vo || PyDict_SetItem(d, ko, vo)) Py_CLEAR(d);
        Py_XDECREF(ko);
        Py_XDECREF(vo);
    }
    leave(s);
    return d;
}

static PyObject *Index_verify(IndexObject *s, PyObject *unused)
{
    int rc, bad = -1;
    char err[600] = "";
    PyObject *exc, *b;
    if (enter(s)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = pefa_index_verify(s->ix, &bad);
    if (rc == 0) rc = pefa_verify(s->ix, &bad);
    if (rc) snprintf(err, sizeof err, "%s", pefa_last_error_detail());
    Py_END_ALLOW_THREADS
    leave(s);
    if (!rc) Py_RETURN_NONE;
    if (!(exc = pefapy_error_new(rc, err))) return NULL;
    if ((b = PyLong_FromLong(bad)) && PyObject_SetAttrString(exc, "section", b) == 0)
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_XDECREF(b);
    Py_DECREF(exc);
    return NULL;
}

/* ---- attributes ------------------------------------------------------------------------- */
static PyObject *get_n_passages(IndexObject *s, void *c) { return PyLong_FromUnsignedLong(s->mi.n_passages); }
static PyObject *get_n_queries(IndexObject *s, void *c) { return PyLong_FromUnsignedLong(s->mi.n_queries); }
static PyObject *get_dim(IndexObject *s, void *c) { return PyLong_FromUnsignedLong(s->mi.dim); }
static PyObject *get_vector_type(IndexObject *s, void *c) { return PyUnicode_FromString(pefa_type_name(s->mi.vector_type)); }
static PyObject *get_closed(IndexObject *s, void *c) { return PyBool_FromLong(!s->ix || s->closing); }

static PyObject *get_path(IndexObject *s, void *c)
{
    PyObject *p = s->path ? s->path : Py_None;
    Py_INCREF(p);
    return p;
}

static PyObject *get_info(IndexObject *s, void *c)
{
    return pefapy_info_dict(&s->mi);
}

static PyGetSetDef Index_getset[] = {
    {"n_passages", (getter)get_n_passages, NULL, "Passages (rows of P).", NULL},
    {"n_queries", (getter)get_n_queries, NULL, "Training queries (0 for a plain ERM index).", NULL},
    {"dim", (getter)get_dim, NULL, "Embedding dimension.", NULL},
    {"vector_type", (getter)get_vector_type, NULL, "'f32', 'f16' or 'i8' (f16 rows plus int8 codes): how the vectors are stored.", NULL},
    {"path", (getter)get_path, NULL, "The index file's path.", NULL},
    {"closed", (getter)get_closed, NULL, "True after close().", NULL},
    {"info", (getter)get_info, NULL, "What the index holds (pefa_model_describe) as a dict.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

#define PEFAPY_FASTCALL(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL | METH_KEYWORDS

static PyMethodDef Index_methods[] = {
    {"search", PEFAPY_FASTCALL(Index_search),
     "search(Q, k=10, mode=None, ef=None, lam=None, knn=None, topk_p=None, exact=False, threads=0,\n"
     "       knn_norm=None, xl_scoring=None) -> (rows, scores)\n\n"
     "Top-k passages for each query of Q ((dim,) or (n, dim); float32, float16 or float64, any\n"
     "strides: float32 rows are read in place, anything else is copied once). rows: int64 (n, k),\n"
     "-1 where the index has fewer passages; scores: float32 (n, k), -inf there. A 1-D Q gives 1-D\n"
     "results. mode: None (the index's default setting), 'erm', 'xs' or 'xl'. None means the\n"
     "library's default for every other parameter. threads: 0 = all cores. The GIL is released\n"
     "while the C library searches (pefa_search_batch)."},
    {"_time_c_loop", PEFAPY_FASTCALL(Index_time_c_loop),
     "_time_c_loop(Q, ..., single=False) -> seconds: the searches of search(Q, ...) one query at\n"
     "a time in C (pefa_search_batch with n = 1, or pefa_search when single), timed in C."},
    {"_ids", (PyCFunction)Index_ids, METH_VARARGS, "_ids(which, rows) -> str array: see passage_ids."},
    {"_rows", (PyCFunction)Index_rows, METH_VARARGS, "_rows(which, ids) -> int64 array: see passage_rows."},
    {"vectors", (PyCFunction)Index_vectors, METH_VARARGS,
     "vectors(name) -> read-only ndarray viewing the mapped section (no copy).\n\n"
     "name: 'passages' (n_passages, dim), 'queries' (n_queries, dim), 'xs' (n_passages, dim + 1:\n"
     "e_j completed to a unit vector) or 'z' (n_passages, dim). dtype float32 or float16 as stored.\n"
     "The array keeps the index mapped: close() while views exist is deferred until the last is\n"
     "freed."},
    {"_meta", (PyCFunction)Index_meta, METH_NOARGS, "_meta() -> dict of str: the META section."},
    {"verify", (PyCFunction)Index_verify, METH_NOARGS,
     "verify(): every checksum and padding byte (pefa_index_verify), then what the sections mean and\n"
     "the id map (pefa_verify). Raises pefa.FileError (.code, .detail, .section) on damage."},
    {"close", (PyCFunction)Index_close, METH_NOARGS,
     "close(): the index cannot be used any more; its mapping is released now, or, while views\n"
     "from vectors() or calls in other threads still use it, when the last of them ends."},
    {NULL, NULL, 0, NULL}};

PyTypeObject pefapy_IndexType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pefa._pefa.Index",
    .tp_basicsize = sizeof(IndexObject),
    .tp_dealloc = (destructor)Index_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Index(path, *, trust_idmap=False): an opened pefa index (see pefa.Index).",
    .tp_methods = Index_methods,
    .tp_getset = Index_getset,
    .tp_init = (initproc)Index_init,
    .tp_new = PyType_GenericNew,
};
