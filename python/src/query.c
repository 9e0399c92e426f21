/*
 * query.c - what pefa.Index (index.c) and pefa.Set (set.c) share: search
 * arguments, query arrays (Q) read in place or copied once, result arrays the
 * library writes its hits into, ids of rows and rows of ids, the info dict.
 * Each job has a half that runs with the GIL released (no Python calls) and
 * halves before and after it that run with the GIL held.
 */
#include "pefapy.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(pefa_hit) == sizeof(int64_t), "hits are split in place in the int64 rows array");

/* ---- search arguments --------------------------------------------------------------- */
const char *const pefapy_search_kw[PEFAPY_A_N] = {"Q",       "k",     "mode",    "ef",       "lam",        "knn",
                                                  "topk_p", "exact", "threads", "knn_norm", "xl_scoring", "single"};

int pefapy_search_params(PyObject **a, pefa_query_params *qp, uint32_t *threads)
{
    static const char *const modes[] = {"erm", "xs", "xl"}, *const norms[] = {"v0", "v1"},
                             *const scorings[] = {"exact", "sparse-add"};
    int v;
    qp->k = PEFA_DEFAULT_K;
    if (pefapy_u32(a[PEFAPY_A_K], "k", 1, PEFA_MAX_K, &qp->k) || pefapy_u32(a[PEFAPY_A_EF], "ef", 1, 1000000, &qp->ef) ||
        pefapy_u32(a[PEFAPY_A_KNN], "knn", 1, 100000, &qp->knn) ||
        pefapy_u32(a[PEFAPY_A_TOPK], "topk_p", 1, 1000000, &qp->topk_p) ||
        pefapy_u32(a[PEFAPY_A_THREADS], "threads", 0, PEFA_MAX_THREADS, threads))
        return -1;
    if (a[PEFAPY_A_MODE] && a[PEFAPY_A_MODE] != Py_None) {
        if (pefapy_choice(a[PEFAPY_A_MODE], "mode", modes, 3, &v)) return -1;
        qp->mode = PEFA_MODE_ERM + v;
    }
    if (a[PEFAPY_A_NORM] && a[PEFAPY_A_NORM] != Py_None) {
        if (pefapy_choice(a[PEFAPY_A_NORM], "knn_norm", norms, 2, &v)) return -1;
        qp->knn_norm = v ? PEFA_KNN_V1 : PEFA_KNN_V0;
        qp->set |= PEFA_SET_KNN_NORM;
    }
    if (a[PEFAPY_A_SCORING] && a[PEFAPY_A_SCORING] != Py_None) {
        if (pefapy_choice(a[PEFAPY_A_SCORING], "xl_scoring", scorings, 2, &v)) return -1;
        qp->xl_scoring = v ? PEFA_XL_SPARSE_ADD : PEFA_XL_EXACT;
        qp->set |= PEFA_SET_XL_SCORING;
    }
    if (a[PEFAPY_A_LAM] && a[PEFAPY_A_LAM] != Py_None) {
        double l = PyFloat_AsDouble(a[PEFAPY_A_LAM]);
        if (l == -1.0 && PyErr_Occurred()) return -1;
        qp->lambda = (float)l; /* the library checks the range */
        qp->set |= PEFA_SET_LAMBDA;
    }
    if (a[PEFAPY_A_EXACT] && (v = PyObject_IsTrue(a[PEFAPY_A_EXACT])) != 0) {
        if (v < 0) return -1;
        qp->exact = 1;
    }
    return 0;
}

/* ---- query arrays --------------------------------------------------------------------- */
static PyObject *describe_dtype(PyArrayObject *a)
{
    return PyObject_Str((PyObject *)PyArray_DESCR(a));
}

/* a float64 query value a float32 copy would hold as inf: an InputError naming it */
static int beyond_f32(PyArrayObject *a)
{
    PyArrayObject *c = (PyArrayObject *)PyArray_FromAny((PyObject *)a, PyArray_DescrFromType(NPY_DOUBLE), 0, 0,
                                                        NPY_ARRAY_CARRAY_RO, NULL);
    const double *x;
    npy_intp n, dim;
    if (!c) return -1;
    x = (const double *)PyArray_DATA(c);
    n = PyArray_SIZE(c);
    dim = PyArray_DIM(c, PyArray_NDIM(c) - 1);
    for (npy_intp i = 0; i < n; i++)
        if (isfinite(x[i]) && fabs(x[i]) > FLT_MAX) {
            pefapy_input_error("Q: row %zd (0-based), column %zd: %g is beyond float32 (at most %g)",
                               (Py_ssize_t)(dim ? i / dim : 0), (Py_ssize_t)(dim ? i % dim : 0), x[i], (double)FLT_MAX);
            Py_DECREF(c);
            return -1;
        }
    Py_DECREF(c);
    return 0;
}

int pefapy_qblock_get(uint32_t dim, const char *noun, PyObject *obj, pefapy_qblock *qb)
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
    if (PyArray_DIM(a, nd - 1) != (npy_intp)dim) {
        pefapy_input_error("Q: %s of %zd values; the %s has dimension %u", nd == 1 ? "a query" : "rows",
                           (Py_ssize_t)PyArray_DIM(a, nd - 1), noun, dim);
        goto fail;
    }
    if (t == NPY_DOUBLE && beyond_f32(a)) goto fail;
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
    qb->stride = qb->n > 1 ? (uint64_t)st[0] / 4 : dim;
    return 0;
fail:
    Py_DECREF(a);
    return -1;
}

/* ---- results ------------------------------------------------------------------------------ */
int pefapy_results_new(const pefapy_qblock *qb, uint32_t k, pefapy_results *r)
{
    npy_intp dims[2] = {(npy_intp)qb->n, (npy_intp)k};
    int nd = qb->one_d ? 1 : 2;
    r->n = qb->n;
    r->k = k;
    r->nh = qb->n <= 1 ? &r->one : (uint32_t *)PyMem_RawMalloc(qb->n * sizeof *r->nh);
    r->rows = (PyArrayObject *)PyArray_SimpleNew(nd, dims + 2 - nd, NPY_INT64);
    r->scores = (PyArrayObject *)PyArray_SimpleNew(nd, dims + 2 - nd, NPY_FLOAT32);
    r->hits = r->rows ? (pefa_hit *)PyArray_DATA(r->rows) : NULL;
    if (r->nh && r->rows && r->scores) return 0;
    if (!r->nh) PyErr_NoMemory();
    pefapy_results_free(r);
    return -1;
}

void pefapy_results_free(pefapy_results *r)
{
    if (r->nh != &r->one) PyMem_RawFree(r->nh);
    r->nh = NULL;
    Py_CLEAR(r->rows);
    Py_CLEAR(r->scores);
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

PyObject *pefapy_results_finish(pefapy_results *r, int rc, const char *err)
{
    PyObject *out = NULL;
    if (rc) {
        pefapy_raise(rc, err);
    } else {
        split_hits(r->rows, r->scores, r->nh, r->n, r->k);
        out = PyTuple_Pack(2, (PyObject *)r->rows, (PyObject *)r->scores);
    }
    pefapy_results_free(r);
    return out;
}

/* ---- ids of rows ------------------------------------------------------------------------ */
static int id_of(const pefapy_idsrc *src, int which, uint32_t row, char *buf, size_t cap, size_t *len)
{
    return src->set ? pefa_set_id(src->set, which, row, buf, cap, len) : pefa_idmap_id(src->im, which, row, buf, cap, len);
}

static int row_of(const pefapy_idsrc *src, int which, const char *id, uint32_t *row)
{
    return src->set ? pefa_set_row(src->set, which, id, row) : pefa_idmap_row(src->im, which, id, row);
}

/* rows as int64, each -1 or a row of the index or set */
static PyArrayObject *rows_get(uint32_t count, const char *noun, int which, PyObject *obj)
{
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
            PyErr_Format(PyExc_IndexError, "row %lld (item %zd) is out of range: the %s has %u %s (-1 means no hit)",
                         (long long)v, (Py_ssize_t)i, noun, count,
                         which == PEFA_IDS_QUERIES ? "training queries" : "passages");
            Py_CLEAR(r);
        }
    }
    return r;
}

int pefapy_ids_begin(uint32_t count, const char *noun, int which, PyObject *rows, pefapy_ids_job *j)
{
    memset(j, 0, sizeof *j);
    j->which = which;
    if (!(j->rows = rows_get(count, noun, which, rows))) return -1;
    j->n = (size_t)PyArray_SIZE(j->rows);
    if ((j->off = (size_t *)PyMem_RawMalloc((j->n + 1) * sizeof *j->off)) != NULL) return 0;
    PyErr_NoMemory();
    Py_CLEAR(j->rows);
    return -1;
}

int pefapy_ids_run(const pefapy_idsrc *src, pefapy_ids_job *j)
{
    const int64_t *rows = (const int64_t *)PyArray_DATA(j->rows);
    j->off[0] = 0;
    for (size_t i = 0; i < j->n; i++) {
        size_t len = 0;
        if (j->cap - j->used < PEFA_MAX_ID_BYTES + 1) {
            size_t nc = 2 * j->cap + PEFA_MAX_ID_BYTES + 1;
            char *nb = (char *)PyMem_RawRealloc(j->buf, nc);
            if (!nb) return j->rc = PEFA_ERR_NOMEM;
            j->buf = nb;
            j->cap = nc;
        }
        if (rows[i] >= 0 && (j->rc = id_of(src, j->which, (uint32_t)rows[i], j->buf + j->used, j->cap - j->used, &len))) {
            snprintf(j->err, sizeof j->err, "%s", pefa_last_error_detail());
            return j->rc;
        }
        j->used += len;
        j->off[i + 1] = j->used;
    }
    return 0;
}

/* ids as a numpy str array shaped like rows (a str for a 0-d rows) */
static PyObject *ids_array(PyArrayObject *rows, const char *buf, const size_t *off, size_t n)
{
    PyObject **u = (PyObject **)PyMem_Calloc(n + 1, sizeof *u), *out = NULL;
    Py_ssize_t maxlen = 1;
    for (size_t i = 0; u && i < n; i++) {
        if (!(u[i] = PyUnicode_DecodeUTF8(buf + off[i], (Py_ssize_t)(off[i + 1] - off[i]), "surrogateescape")))
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

PyObject *pefapy_ids_end(pefapy_ids_job *j, int ok)
{
    PyObject *out = NULL;
    if (ok && j->rc) pefapy_raise(j->rc, j->err);
    else if (ok) out = ids_array(j->rows, j->buf, j->off, j->n);
    PyMem_RawFree(j->buf);
    PyMem_RawFree(j->off);
    Py_XDECREF(j->rows);
    memset(j, 0, sizeof *j);
    return out;
}

/* ---- rows of ids ------------------------------------------------------------------------ */
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

int pefapy_rows_begin(int which, PyObject *seq, pefapy_rows_job *j)
{
    Py_ssize_t bad;
    memset(j, 0, sizeof *j);
    j->which = which;
    j->failed = -1;
    if (!(j->ids = PySequence_Tuple(seq))) return -1;
    j->n = PyTuple_GET_SIZE(j->ids);
    if (!(j->p = (const char **)PyMem_Malloc((size_t)(j->n + 1) * sizeof *j->p))) {
        PyErr_NoMemory();
        goto fail;
    }
    if ((bad = ids_utf8(j->ids, j->p)) < 0) goto fail;
    if (bad < j->n) {
        snprintf(j->err, sizeof j->err, "%s id %s not found", which == PEFA_IDS_QUERIES ? "query" : "passage",
                 j->p[bad] && *j->p[bad] ? "with a NUL character" : "'' (empty)");
        raise_missing(PyTuple_GET_ITEM(j->ids, bad), j->err);
        goto fail;
    }
    if ((j->out = PyArray_SimpleNew(1, &j->n, NPY_INT64)) != NULL) return 0;
fail:
    pefapy_rows_end(j, 0);
    return -1;
}

int pefapy_rows_run(const pefapy_idsrc *src, pefapy_rows_job *j)
{
    int64_t *out = (int64_t *)PyArray_DATA((PyArrayObject *)j->out);
    for (Py_ssize_t i = 0; i < j->n; i++) {
        uint32_t row;
        if ((j->rc = row_of(src, j->which, j->p[i], &row)) != 0) {
            j->failed = i;
            snprintf(j->err, sizeof j->err, "%s", pefa_last_error_detail());
            return j->rc;
        }
        out[i] = row;
    }
    return 0;
}

PyObject *pefapy_rows_end(pefapy_rows_job *j, int ok)
{
    PyObject *out = NULL;
    if (ok && j->rc == PEFA_ERR_NOT_FOUND) raise_missing(PyTuple_GET_ITEM(j->ids, j->failed), j->err);
    else if (ok && j->rc) pefapy_raise(j->rc, j->err);
    else if (ok) Py_XINCREF(out = j->out);
    Py_XDECREF(j->out);
    PyMem_Free(j->p);
    Py_XDECREF(j->ids);
    memset(j, 0, sizeof *j);
    return out;
}

/* ---- info ----------------------------------------------------------------------------------- */
PyObject *pefapy_info_dict(const pefa_model_info *m)
{
    static const char *const modes[] = {"erm", "xs", "xl"};
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
