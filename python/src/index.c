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

#include <math.h>
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

_Static_assert(sizeof(pefa_hit) == sizeof(int64_t), "hits are split in place in the int64 rows array");

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
        const char *p = s->path ? PyUnicode_AsUTF8(s->path) : NULL;
        char err[600];
        PyErr_Clear(); /* a path that is not UTF-8: named "the index" */
        snprintf(err, sizeof err, "%s: the index is closed", p ? p : "the index");
        pefapy_raise(PEFA_ERR_STATE, err);
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
 * refuses a shard (pefa_set_open), with words for Python, which has no set yet */
static int describe_single(pefa_index *ix, pefa_model_info *mi, char *err, size_t cap)
{
    const char *path = pefa_index_path(ix), *n;
    int rc;
    if (pefa_index_meta_get(ix, "set.shards", &n) == 0) {
        snprintf(err, cap,
                 "%s: a shard set's manifest (%s shards), not an index: pefa.Index opens single indexes only so "
                 "far (pefa-query, pefa-serve and pefa-dump open the set)",
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
                 "pefa.Index opens single indexes only so far (pefa-query, pefa-serve and pefa-dump open the "
                 "set's manifest)",
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
static const char *const search_kw[] = {"Q",       "k",     "mode",    "ef",       "lam",        "knn",
                                        "topk_p", "exact", "threads", "knn_norm", "xl_scoring", "single"};
enum { A_Q, A_K, A_MODE, A_EF, A_LAM, A_KNN, A_TOPK, A_EXACT, A_THREADS, A_NORM, A_SCORING, A_SINGLE, A_N };
static PyObject *search_kw_interned[A_N], *time_kw_interned[A_N];

static int search_params(PyObject **a, pefa_query_params *qp, uint32_t *threads)
{
    static const char *const modes[] = {"erm", "xs", "xl"}, *const norms[] = {"v0", "v1"},
                             *const scorings[] = {"exact", "sparse-add"};
    int v;
    qp->k = PEFA_DEFAULT_K;
    if (pefapy_u32(a[A_K], "k", 1, PEFA_MAX_K, &qp->k) || pefapy_u32(a[A_EF], "ef", 1, 1000000, &qp->ef) ||
        pefapy_u32(a[A_KNN], "knn", 1, 100000, &qp->knn) || pefapy_u32(a[A_TOPK], "topk_p", 1, 1000000, &qp->topk_p) ||
        pefapy_u32(a[A_THREADS], "threads", 0, PEFA_MAX_THREADS, threads))
        return -1;
    if (a[A_MODE] && a[A_MODE] != Py_None) {
        if (pefapy_choice(a[A_MODE], "mode", modes, 3, &v)) return -1;
        qp->mode = PEFA_MODE_ERM + v;
    }
    if (a[A_NORM] && a[A_NORM] != Py_None) {
        if (pefapy_choice(a[A_NORM], "knn_norm", norms, 2, &v)) return -1;
        qp->knn_norm = v ? PEFA_KNN_V1 : PEFA_KNN_V0;
        qp->set |= PEFA_SET_KNN_NORM;
    }
    if (a[A_SCORING] && a[A_SCORING] != Py_None) {
        if (pefapy_choice(a[A_SCORING], "xl_scoring", scorings, 2, &v)) return -1;
        qp->xl_scoring = v ? PEFA_XL_SPARSE_ADD : PEFA_XL_EXACT;
        qp->set |= PEFA_SET_XL_SCORING;
    }
    if (a[A_LAM] && a[A_LAM] != Py_None) {
        double l = PyFloat_AsDouble(a[A_LAM]);
        if (l == -1.0 && PyErr_Occurred()) return -1;
        qp->lambda = (float)l; /* the library checks the range */
        qp->set |= PEFA_SET_LAMBDA;
    }
    if (a[A_EXACT] && (v = PyObject_IsTrue(a[A_EXACT])) != 0) {
        if (v < 0) return -1;
        qp->exact = 1;
    }
    return 0;
}

typedef struct {
    PyArrayObject *arr;  /* owned: the array read (the caller's or a float32 copy) */
    const float *data;
    uint64_t n, stride;  /* rows; floats from row to row */
    int one_d;
} qblock;

static PyObject *describe_dtype(PyArrayObject *a)
{
    return PyObject_Str((PyObject *)PyArray_DESCR(a));
}

/* Q as float32 rows: the caller's array when it is already float32 with
 * unit column stride and a positive row stride, else one copy */
static int qblock_get(IndexObject *s, PyObject *obj, qblock *qb)
{
    PyArrayObject *a;
    npy_intp *st;
    int t, nd;
    if (PyArray_Check(obj)) Py_INCREF(a = (PyArrayObject *)obj);
    else if (!(a = (PyArrayObject *)PyArray_FromAny(obj, NULL, 0, 0, 0, NULL))) return -1;
    t = PyArray_TYPE(a);
    nd = PyArray_NDIM(a);
    if (t != NPY_FLOAT && t != NPY_HALF && t != NPY_DOUBLE) {
        PyObject *d = describe_dtype(a);
        if (d) pefapy_input_error("Q: dtype %s is not float32, float16 or float64", PyUnicode_AsUTF8(d));
        Py_XDECREF(d);
        goto fail;
    }
    if (nd != 1 && nd != 2) {
        pefapy_input_error("Q: %d dimensions; expected a query (dim,) or queries (n, dim)", nd);
        goto fail;
    }
    if (PyArray_DIM(a, nd - 1) != (npy_intp)s->mi.dim) {
        pefapy_input_error("Q: %s of %zd values; the index has dimension %u", nd == 1 ? "a query" : "rows",
                           (Py_ssize_t)PyArray_DIM(a, nd - 1), s->mi.dim);
        goto fail;
    }
    qb->one_d = nd == 1;
    qb->n = nd == 1 ? 1 : (uint64_t)PyArray_DIM(a, 0);
    st = PyArray_STRIDES(a);
    if (!(t == NPY_FLOAT && PyArray_ISNOTSWAPPED(a) && PyArray_ISALIGNED(a) && st[nd - 1] == 4 &&
          (qb->n <= 1 || (st[0] > 0 && st[0] % 4 == 0)))) {
        PyArrayObject *c = (PyArrayObject *)PyArray_FromAny((PyObject *)a, PyArray_DescrFromType(NPY_FLOAT), 0, 0,
                                                            NPY_ARRAY_CARRAY | NPY_ARRAY_FORCECAST, NULL);
        Py_DECREF(a);
        if (!(a = c)) return -1;
        st = PyArray_STRIDES(a);
    }
    qb->arr = a;
    qb->data = (const float *)PyArray_DATA(a);
    qb->stride = qb->n > 1 ? (uint64_t)st[0] / 4 : s->mi.dim;
    return 0;
fail:
    Py_DECREF(a);
    return -1;
}

/* hits (written by the library into the rows array) -> int64 rows and
 * float32 scores; -1 and -inf past n_hits */
static void split_hits(PyArrayObject *rows, PyArrayObject *scores, const uint32_t *nh, uint64_t n, uint32_t k)
{
    char *r = (char *)PyArray_DATA(rows);
    float *sc = (float *)PyArray_DATA(scores);
    for (uint64_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < k; j++) {
            size_t at = (size_t)i * k + j;
            int64_t row = -1;
            float v = -INFINITY;
            if (j < nh[i]) {
                pefa_hit h;
                memcpy(&h, r + at * sizeof h, sizeof h);
                row = h.row;
                v = h.score;
            }
            memcpy(r + at * sizeof row, &row, sizeof row);
            sc[at] = v;
        }
}

static PyObject *run_search(IndexObject *s, const qblock *qb, const pefa_query_params *qp, uint32_t threads)
{
    npy_intp dims[2] = {(npy_intp)qb->n, (npy_intp)qp->k};
    int nd = qb->one_d ? 1 : 2, rc;
    uint32_t one, *nh = qb->n <= 1 ? &one : (uint32_t *)PyMem_RawMalloc(qb->n * sizeof *nh);
    PyArrayObject *rows = (PyArrayObject *)PyArray_SimpleNew(nd, dims + 2 - nd, NPY_INT64);
    PyArrayObject *scores = (PyArrayObject *)PyArray_SimpleNew(nd, dims + 2 - nd, NPY_FLOAT32);
    PyObject *out = NULL;
    char err[600] = "";
    if (!nh || !rows || !scores) {
        if (!nh) PyErr_NoMemory();
        goto done;
    }
    if (enter(s)) goto done;
    Py_BEGIN_ALLOW_THREADS
    rc = pefa_search_batch(s->ix, qb->data, qb->n, qb->stride, qp, threads, (pefa_hit *)PyArray_DATA(rows), nh);
    if (rc) snprintf(err, sizeof err, "%s", pefa_last_error_detail());
    Py_END_ALLOW_THREADS
    leave(s);
    if (rc) {
        pefapy_raise(rc, err);
        goto done;
    }
    split_hits(rows, scores, nh, qb->n, qp->k);
    out = PyTuple_Pack(2, (PyObject *)rows, (PyObject *)scores);
done:
    if (nh != &one) PyMem_RawFree(nh);
    Py_XDECREF(rows);
    Py_XDECREF(scores);
    return out;
}

static PyObject *Index_search(IndexObject *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[A_N], *out;
    pefa_query_params qp = PEFA_QUERY_PARAMS_INIT;
    uint32_t threads = 0;
    qblock qb = {0};
    if (pefapy_parse("search", search_kw, search_kw_interned, A_SINGLE, args, nargs, kwnames, a)) return NULL;
    if (!a[A_Q]) return PyErr_Format(PyExc_TypeError, "search() missing required argument 'Q'");
    if (search_params(a, &qp, &threads) || qblock_get(s, a[A_Q], &qb)) return NULL;
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
static int time_loop(IndexObject *s, const qblock *qb, const pefa_query_params *qp, int single, double *sec)
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
    PyObject *a[A_N];
    pefa_query_params qp = PEFA_QUERY_PARAMS_INIT;
    uint32_t threads = 0;
    qblock qb = {0};
    double sec = 0;
    int rc = 0, single = 0;
    if (pefapy_parse("_time_c_loop", search_kw, time_kw_interned, A_N, args, nargs, kwnames, a)) return NULL;
    if (!a[A_Q]) return PyErr_Format(PyExc_TypeError, "_time_c_loop() missing required argument 'Q'");
    if (a[A_SINGLE] && (single = PyObject_IsTrue(a[A_SINGLE])) < 0) return NULL;
    if (search_params(a, &qp, &threads) || qblock_get(s, a[A_Q], &qb)) return NULL;
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
typedef struct {
    char *buf;
    size_t used, cap;
    size_t *off;   /* n + 1 offsets into buf */
} idbuf;

/* external ids of rows[0..n) (-1: "") into b, without the GIL */
static int ids_collect(pefa_idmap *im, int which, const int64_t *rows, size_t n, idbuf *b, char *err, size_t errlen)
{
    b->off[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        if (b->cap - b->used < PEFA_MAX_ID_BYTES + 1) {
            size_t nc = 2 * b->cap + PEFA_MAX_ID_BYTES + 1;
            char *nb = (char *)PyMem_RawRealloc(b->buf, nc);
            if (!nb) return PEFA_ERR_NOMEM;
            b->buf = nb;
            b->cap = nc;
        }
        if (rows[i] >= 0) {
            int rc = pefa_idmap_id(im, which, (uint32_t)rows[i], b->buf + b->used, b->cap - b->used, &len);
            if (rc) {
                snprintf(err, errlen, "%s", pefa_last_error_detail());
                return rc;
            }
        }
        b->used += len;
        b->off[i + 1] = b->used;
    }
    return 0;
}

/* ids as a numpy str array shaped like rows */
static PyObject *ids_array(PyArrayObject *rows, const idbuf *b, size_t n)
{
    PyObject **u = (PyObject **)PyMem_Calloc(n + 1, sizeof *u), *out = NULL;
    Py_ssize_t maxlen = 1;
    for (size_t i = 0; u && i < n; i++) {
        if (!(u[i] = PyUnicode_DecodeUTF8(b->buf + b->off[i], (Py_ssize_t)(b->off[i + 1] - b->off[i]),
                                          "surrogateescape")))
            goto done;
        if (PyUnicode_GET_LENGTH(u[i]) > maxlen) maxlen = PyUnicode_GET_LENGTH(u[i]);
    }
    if (!u) return PyErr_NoMemory();
    if (PyArray_NDIM(rows) == 0) {
        Py_INCREF(out = u[0]);
        goto done;
    }
    out = PyArray_New(&PyArray_Type, PyArray_NDIM(rows), PyArray_DIMS(rows), NPY_UNICODE, NULL, NULL,
                      (int)(maxlen * 4), 0, NULL);
    if (!out) goto done;
    memset(PyArray_DATA((PyArrayObject *)out), 0, n * (size_t)maxlen * 4);
    for (size_t i = 0; i < n; i++)
        if (!PyUnicode_AsUCS4(u[i], (Py_UCS4 *)PyArray_DATA((PyArrayObject *)out) + i * (size_t)maxlen, maxlen, 0)) {
            Py_CLEAR(out);
            break;
        }
done:
    for (size_t i = 0; u && i < n; i++) Py_XDECREF(u[i]);
    PyMem_Free(u);
    return out;
}

/* rows as int64, each -1 or a row of the set */
static PyArrayObject *rows_get(IndexObject *s, int which, PyObject *obj)
{
    uint32_t count = which == PEFA_IDS_QUERIES ? s->mi.n_queries : s->mi.n_passages;
    PyArrayObject *a = (PyArrayObject *)PyArray_FromAny(obj, NULL, 0, 0, 0, NULL), *r;
    if (!a) return NULL;
    if (PyArray_SIZE(a) == 0 && !PyArray_ISINTEGER(a))
        r = (PyArrayObject *)PyArray_ZEROS(PyArray_NDIM(a), PyArray_DIMS(a), NPY_INT64, 0);
    else
        r = (PyArrayObject *)PyArray_FromAny((PyObject *)a, PyArray_DescrFromType(NPY_INT64), 0, 0, NPY_ARRAY_CARRAY,
                                             NULL);
    Py_DECREF(a);
    for (npy_intp i = 0; r && i < PyArray_SIZE(r); i++) {
        int64_t v = ((const int64_t *)PyArray_DATA(r))[i];
        if (v < -1 || v >= (int64_t)count) {
            PyErr_Format(PyExc_IndexError, "row %lld (item %zd) is out of range: the index has %u %s (-1 means no hit)",
                         (long long)v, (Py_ssize_t)i, count, which == PEFA_IDS_QUERIES ? "training queries" : "passages");
            Py_CLEAR(r);
        }
    }
    return r;
}

static PyObject *Index_ids(IndexObject *s, PyObject *args)
{
    int which, rc = 0;
    PyObject *obj, *out = NULL;
    PyArrayObject *rows;
    pefa_idmap *im;
    idbuf b = {0};
    size_t n;
    char err[600] = "";
    if (!PyArg_ParseTuple(args, "iO:_ids", &which, &obj)) return NULL;
    if (!(rows = rows_get(s, which, obj))) return NULL;
    n = (size_t)PyArray_SIZE(rows);
    if (enter(s)) goto fail;
    if (!(im = idmap_get(s)) || !(b.off = (size_t *)PyMem_RawMalloc((n + 1) * sizeof *b.off))) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        leave(s);
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = ids_collect(im, which, (const int64_t *)PyArray_DATA(rows), n, &b, err, sizeof err);
    Py_END_ALLOW_THREADS
    leave(s);
    if (rc) pefapy_raise(rc, err);
    else out = ids_array(rows, &b, n);
fail:
    PyMem_RawFree(b.buf);
    PyMem_RawFree(b.off);
    Py_DECREF(rows);
    return out;
}

/* NotFoundError (a KeyError) naming the id, with .key */
static PyObject *raise_missing(PyObject *key, const char *detail)
{
    PyObject *exc = pefapy_error_new(PEFA_ERR_NOT_FOUND, detail);
    if (exc && PyObject_SetAttrString(exc, "key", key) == 0) PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_XDECREF(exc);
    return NULL;
}

/* UTF-8 of each id (pointers into the str objects t holds); -1 with an
 * exception, else the index of an id that cannot exist (empty or with a
 * NUL), or n */
static Py_ssize_t ids_utf8(PyObject *t, const char **p)
{
    Py_ssize_t n = PyTuple_GET_SIZE(t);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PyTuple_GET_ITEM(t, i);
        Py_ssize_t len;
        if (!PyUnicode_Check(o)) {
            PyErr_Format(PyExc_TypeError, "ids[%zd] is %s, not str", i, Py_TYPE(o)->tp_name);
            return -1;
        }
        if (!(p[i] = PyUnicode_AsUTF8AndSize(o, &len))) return -1;
        if (len == 0 || strlen(p[i]) != (size_t)len) return i;
    }
    return n;
}

static PyObject *Index_rows(IndexObject *s, PyObject *args)
{
    int which, rc = 0;
    PyObject *seq, *t, *out = NULL;
    const char **p = NULL;
    pefa_idmap *im;
    Py_ssize_t n, bad, failed = -1;
    char err[600] = "";
    if (!PyArg_ParseTuple(args, "iO:_rows", &which, &seq) || !(t = PySequence_Tuple(seq))) return NULL;
    n = PyTuple_GET_SIZE(t);
    if (!(p = (const char **)PyMem_Malloc((size_t)(n + 1) * sizeof *p))) {
        PyErr_NoMemory();
        goto done;
    }
    if ((bad = ids_utf8(t, p)) < 0) goto done;
    if (bad < n) {
        snprintf(err, sizeof err, "%s id %s not found", which == PEFA_IDS_QUERIES ? "query" : "passage",
                 p[bad] && *p[bad] ? "with a NUL character" : "'' (empty)");
        raise_missing(PyTuple_GET_ITEM(t, bad), err);
        goto done;
    }
    if (!(out = PyArray_SimpleNew(1, &n, NPY_INT64)) || enter(s)) goto done;
    if (!(im = idmap_get(s))) {
        leave(s);
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !rc; i++) {
        uint32_t row;
        if ((rc = pefa_idmap_row(im, which, p[i], &row)) != 0) {
            failed = i;
            snprintf(err, sizeof err, "%s", pefa_last_error_detail());
        } else {
            ((int64_t *)PyArray_DATA((PyArrayObject *)out))[i] = row;
        }
    }
    Py_END_ALLOW_THREADS
    leave(s);
    if (rc == PEFA_ERR_NOT_FOUND) raise_missing(PyTuple_GET_ITEM(t, failed), err);
    else if (rc) pefapy_raise(rc, err);
done:
    if (PyErr_Occurred()) Py_CLEAR(out);
    PyMem_Free(p);
    Py_DECREF(t);
    return out;
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
    static const char *const modes[] = {"erm", "xs", "xl"};
    const pefa_model_info *m = &s->mi;
    int dm = m->default_mode >= PEFA_MODE_ERM && m->default_mode <= PEFA_MODE_XL ? m->default_mode : PEFA_MODE_ERM;
    return Py_BuildValue("{s:I,s:I,s:I,s:K,s:d,s:O,s:O,s:O,s:O,s:O,s:s,s:O,s:s,s:d,s:I}", "n_passages", m->n_passages,
                         "n_queries", m->n_queries, "dim", m->dim, "nnz", (unsigned long long)m->nnz, "xs_lambda",
                         (double)m->xs_lambda, "has_xs", m->has_xs ? Py_True : Py_False, "has_z",
                         m->has_z ? Py_True : Py_False, "has_graph_passages",
                         m->has_graph_passages ? Py_True : Py_False, "has_graph_xs",
                         m->has_graph_xs ? Py_True : Py_False, "has_graph_queries",
                         m->has_graph_queries ? Py_True : Py_False, "vector_type", pefa_type_name(m->vector_type),
                         "tuned", m->tuned ? Py_True : Py_False, "default_mode", modes[dm - PEFA_MODE_ERM],
                         "default_lambda", (double)m->default_lambda, "default_knn", m->default_knn);
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
