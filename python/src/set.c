/*
 * set.c - pefa._pefa.Set: an opened shard set (pefa_set): a manifest written
 * by pefa-shardset and every shard it lists, or a plain index file as a set
 * of one shard. Batch search with the GIL released (pefa_set_search_batch,
 * global passage rows), ids of global rows and rows of ids (pefa_set_id /
 * pefa_set_row, which open the shards' id maps on first use, under the
 * set's own lock), verification of every shard (pefa_set_verify).
 *
 * Lifetime, as Index's without views: every call that releases the GIL
 * counts itself in `busy`; close() marks the set closed at once (further
 * calls raise StateError) and closes it when no call is running, else when
 * the last running call returns. The counter changes under the GIL only.
 */
#include "pefapy.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    pefa_set *set;               /* NULL once released */
    pefa_model_info mi;          /* pefa_set_describe: the set as one index */
    uint32_t n_shards;
    int closing;                 /* close() was called */
    Py_ssize_t busy;
    PyObject *path;              /* str */
    PyObject *shards;            /* tuple of str: each shard's path */
} SetObject;

/* ---- lifetime -------------------------------------------------------------------- */
static void release_if_idle(SetObject *s)
{
    if (!s->set || !s->closing || s->busy) return;
    pefa_set_close(s->set);
    s->set = NULL;
}

/* a call begins: StateError if the set is closed */
static int enter(SetObject *s)
{
    if (!s->set || s->closing) {
        pefapy_raise_closed(s->path, "set");
        return -1;
    }
    s->busy++;
    return 0;
}

static void leave(SetObject *s)
{
    s->busy--;
    release_if_idle(s);
}

/* the shards' paths as a tuple of str */
static PyObject *shard_paths(pefa_set *set, uint32_t n)
{
    PyObject *t = PyTuple_New(n);
    for (uint32_t i = 0; t && i < n; i++) {
        PyObject *p = PyUnicode_DecodeFSDefault(pefa_index_path(pefa_set_shard(set, i)));
        if (!p) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, p);
    }
    return t;
}

static int Set_init(SetObject *s, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"path", "trust_idmap", NULL};
    PyObject *bpath = NULL;
    int trust = 0, rc;
    char err[600] = "";
    if (s->set || s->path) {
        pefapy_raise(PEFA_ERR_STATE, "Set.__init__: already opened");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|$p:Set", kwlist, PyUnicode_FSConverter, &bpath, &trust)) return -1;
    s->mi.size = sizeof s->mi;
    Py_BEGIN_ALLOW_THREADS
    rc = pefa_set_open(PyBytes_AS_STRING(bpath), trust ? PEFA_IDMAP_TRUSTED : 0, &s->set);
    if (rc == 0 && (rc = pefa_set_describe(s->set, &s->mi)) != 0) {
        pefa_set_close(s->set);
        s->set = NULL;
    }
    if (rc) snprintf(err, sizeof err, "%s", pefa_last_error_detail());
    Py_END_ALLOW_THREADS
    if (rc) {
        Py_DECREF(bpath);
        pefapy_raise(rc, err);
        return -1;
    }
    s->n_shards = pefa_set_shard_count(s->set);
    s->shards = shard_paths(s->set, s->n_shards);
    s->path = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(bpath));
    Py_DECREF(bpath);
    if (s->path && s->shards) return 0;
    pefa_set_close(s->set); /* leaves the object as if never opened */
    s->set = NULL;
    Py_CLEAR(s->path);
    Py_CLEAR(s->shards);
    return -1;
}

static void Set_dealloc(SetObject *s)
{
    s->closing = 1;
    release_if_idle(s); /* busy is 0: a running call holds a reference */
    Py_XDECREF(s->path);
    Py_XDECREF(s->shards);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyObject *Set_close(SetObject *s, PyObject *unused)
{
    s->closing = 1;
    release_if_idle(s);
    Py_RETURN_NONE;
}

/* ---- search ------------------------------------------------------------------------- */
static PyObject *search_kw_interned[PEFAPY_A_N];

static PyObject *Set_search(SetObject *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[PEFAPY_A_N], *out;
    pefa_query_params qp = PEFA_QUERY_PARAMS_INIT;
    uint32_t threads = 0;
    pefapy_qblock qb = {0};
    pefapy_results r;
    int rc;
    char err[600] = "";
    if (pefapy_parse("search", pefapy_search_kw, search_kw_interned, PEFAPY_A_SINGLE, args, nargs, kwnames, a))
        return NULL;
    if (!a[PEFAPY_A_Q]) return PyErr_Format(PyExc_TypeError, "search() missing required argument 'Q'");
    if (pefapy_search_params(a, &qp, &threads) || pefapy_qblock_get(s->mi.dim, "set", a[PEFAPY_A_Q], &qb))
        return NULL;
    if (pefapy_results_new(&qb, qp.k, &r)) {
        Py_DECREF(qb.arr);
        return NULL;
    }
    if (enter(s)) {
        pefapy_results_free(&r);
        Py_DECREF(qb.arr);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = pefa_set_search_batch(s->set, qb.data, qb.n, qb.stride, &qp, threads, r.hits, r.nh);
    if (rc) snprintf(err, sizeof err, "%s", pefa_last_error_detail());
    Py_END_ALLOW_THREADS
    leave(s);
    out = pefapy_results_finish(&r, rc, err);
    Py_DECREF(qb.arr);
    return out;
}

/* ---- ids ---------------------------------------------------------------------------- */
static PyObject *Set_ids(SetObject *s, PyObject *args)
{
    int which;
    PyObject *obj;
    pefapy_ids_job j;
    pefapy_idsrc src = {0};
    if (!PyArg_ParseTuple(args, "iO:_ids", &which, &obj)) return NULL;
    if (pefapy_ids_begin(which == PEFA_IDS_QUERIES ? s->mi.n_queries : s->mi.n_passages, "set", which, obj, &j))
        return NULL;
    if (enter(s)) return pefapy_ids_end(&j, 0);
    src.set = s->set;
    Py_BEGIN_ALLOW_THREADS /* the first lookup in a shard opens (and hashes) its id map */
    pefapy_ids_run(&src, &j);
    Py_END_ALLOW_THREADS
    leave(s);
    return pefapy_ids_end(&j, 1);
}

static PyObject *Set_rows(SetObject *s, PyObject *args)
{
    int which;
    PyObject *seq;
    pefapy_rows_job j;
    pefapy_idsrc src = {0};
    if (!PyArg_ParseTuple(args, "iO:_rows", &which, &seq) || pefapy_rows_begin(which, seq, &j)) return NULL;
    if (enter(s)) return pefapy_rows_end(&j, 0);
    src.set = s->set;
    Py_BEGIN_ALLOW_THREADS
    pefapy_rows_run(&src, &j);
    Py_END_ALLOW_THREADS
    leave(s);
    return pefapy_rows_end(&j, 1);
}

/* ---- verify ------------------------------------------------------------------------- */
static PyObject *Set_verify(SetObject *s, PyObject *unused)
{
    int rc, bad = -1;
    char err[600] = "";
    PyObject *exc, *b;
    if (enter(s)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = pefa_set_verify(s->set, &bad);
    if (rc) snprintf(err, sizeof err, "%s", pefa_last_error_detail());
    Py_END_ALLOW_THREADS
    leave(s);
    if (!rc) Py_RETURN_NONE;
    if (!(exc = pefapy_error_new(rc, err))) return NULL;
    if ((b = PyLong_FromLong(bad)) && PyObject_SetAttrString(exc, "shard", b) == 0)
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_XDECREF(b);
    Py_DECREF(exc);
    return NULL;
}

/* ---- attributes ------------------------------------------------------------------------- */
static PyObject *get_n_passages(SetObject *s, void *c) { return PyLong_FromUnsignedLong(s->mi.n_passages); }
static PyObject *get_n_queries(SetObject *s, void *c) { return PyLong_FromUnsignedLong(s->mi.n_queries); }
static PyObject *get_dim(SetObject *s, void *c) { return PyLong_FromUnsignedLong(s->mi.dim); }
static PyObject *get_vector_type(SetObject *s, void *c) { return PyUnicode_FromString(pefa_type_name(s->mi.vector_type)); }
static PyObject *get_shard_count(SetObject *s, void *c) { return PyLong_FromUnsignedLong(s->n_shards); }
static PyObject *get_closed(SetObject *s, void *c) { return PyBool_FromLong(!s->set || s->closing); }

static PyObject *get_path(SetObject *s, void *c)
{
    PyObject *p = s->path ? s->path : Py_None;
    Py_INCREF(p);
    return p;
}

static PyObject *get_shards(SetObject *s, void *c)
{
    PyObject *p = s->shards ? s->shards : Py_None;
    Py_INCREF(p);
    return p;
}

static PyObject *get_info(SetObject *s, void *c)
{
    PyObject *d = pefapy_info_dict(&s->mi), *n = PyLong_FromUnsignedLong(s->n_shards);
    if (d && (!n || PyDict_SetItemString(d, "shard_count", n))) Py_CLEAR(d);
    Py_XDECREF(n);
    return d;
}

static PyGetSetDef Set_getset[] = {
    {"n_passages", (getter)get_n_passages, NULL, "Passages of the whole set (global rows 0 .. n_passages - 1).", NULL},
    {"n_queries", (getter)get_n_queries, NULL, "Training queries (held by shard 0; 0 for a plain ERM set).", NULL},
    {"dim", (getter)get_dim, NULL, "Embedding dimension.", NULL},
    {"vector_type", (getter)get_vector_type, NULL, "'f32', 'f16' or 'i8': how the vectors are stored.", NULL},
    {"shard_count", (getter)get_shard_count, NULL, "Shards in the set (1 for a plain index file).", NULL},
    {"shards", (getter)get_shards, NULL, "The shards' paths, in shard order (a tuple of str).", NULL},
    {"path", (getter)get_path, NULL, "The path opened: the manifest (or the plain index file).", NULL},
    {"closed", (getter)get_closed, NULL, "True after close().", NULL},
    {"info", (getter)get_info, NULL,
     "What the set holds as one index (pefa_set_describe) as a dict, as Index.info, plus 'shard_count'.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

#define PEFAPY_FASTCALL(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL | METH_KEYWORDS

static PyMethodDef Set_methods[] = {
    {"search", PEFAPY_FASTCALL(Set_search),
     "search(Q, k=10, mode=None, ef=None, lam=None, knn=None, topk_p=None, exact=False, threads=0,\n"
     "       knn_norm=None, xl_scoring=None) -> (rows, scores)\n\n"
     "As Index.search, over the whole set: rows are global passage rows (int64, -1 past the\n"
     "hits), scores float32 (-inf there). In exact mode the answers are those of the unsharded\n"
     "index built from the same inputs. The GIL is released while the C library searches\n"
     "(pefa_set_search_batch)."},
    {"_ids", (PyCFunction)Set_ids, METH_VARARGS, "_ids(which, rows) -> str array: see passage_ids."},
    {"_rows", (PyCFunction)Set_rows, METH_VARARGS, "_rows(which, ids) -> int64 array: see passage_rows."},
    {"verify", (PyCFunction)Set_verify, METH_NOARGS,
     "verify(): every shard: its bytes against the manifest's XXH3, then every checksum and what the\n"
     "sections mean, and its id map (pefa_set_verify). Raises pefa.FileError (.code, .detail naming\n"
     "the file, .shard: the failing shard or -1) on damage."},
    {"close", (PyCFunction)Set_close, METH_NOARGS,
     "close(): the set cannot be used any more; its files are closed now, or, while calls in other\n"
     "threads still use it, when the last of them returns."},
    {NULL, NULL, 0, NULL}};

PyTypeObject pefapy_SetType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pefa._pefa.Set",
    .tp_basicsize = sizeof(SetObject),
    .tp_dealloc = (destructor)Set_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Set(path, *, trust_idmap=False): an opened shard set (see pefa.Set).",
    .tp_methods = Set_methods,
    .tp_getset = Set_getset,
    .tp_init = (initproc)Set_init,
    .tp_new = PyType_GenericNew,
};
