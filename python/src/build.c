/*
 * build.c - the C half of pefa.build: arrays and ids prepared by
 * pefa/_build.py in, pefa_build with the GIL released, its statistics out.
 */
#include "pefapy.h"

#include <stdio.h>
#include <string.h>

/* a 2-D float32/float16 array read in place: rows `stride` bytes apart,
 * values packed within a row (pefa/_build.py copies anything else) */
static int matrix_arg(PyObject *o, const char *name, const void **data, uint8_t *type, uint64_t *stride,
                      uint32_t *rows, uint32_t *dim)
{
    PyArrayObject *a = (PyArrayObject *)o;
    int t;
    if (!PyArray_Check(o) || PyArray_NDIM(a) != 2) {
        pefapy_input_error("%s: expected a 2-D array (rows, dim)", name);
        return -1;
    }
    t = PyArray_TYPE(a);
    if ((t != NPY_FLOAT && t != NPY_HALF) || !PyArray_ISNOTSWAPPED(a) || !PyArray_ISALIGNED(a) ||
        (PyArray_DIM(a, 1) > 1 && PyArray_STRIDE(a, 1) != PyArray_ITEMSIZE(a)) ||
        (PyArray_DIM(a, 0) > 1 && PyArray_STRIDE(a, 0) <= 0)) {
        pefapy_input_error("%s: expected aligned native float32/float16 rows with packed columns", name);
        return -1;
    }
    if (PyArray_DIM(a, 0) > (npy_intp)UINT32_MAX || PyArray_DIM(a, 1) > (npy_intp)PEFA_MAX_DIM) {
        pefapy_input_error("%s: %zd x %zd is too large (at most 2^32-1 rows of %u values)", name,
                           (Py_ssize_t)PyArray_DIM(a, 0), (Py_ssize_t)PyArray_DIM(a, 1), PEFA_MAX_DIM);
        return -1;
    }
    *data = PyArray_DATA(a);
    *type = t == NPY_HALF ? PEFA_TYPE_F16 : PEFA_TYPE_F32;
    *stride = PyArray_DIM(a, 0) > 1 ? (uint64_t)PyArray_STRIDE(a, 0) : 0;
    *rows = (uint32_t)PyArray_DIM(a, 0);
    *dim = (uint32_t)PyArray_DIM(a, 1);
    return 0;
}

/* C strings of a tuple of bytes (pointers into the bytes objects), or NULL for None */
static int strings_arg(PyObject *o, const char *name, Py_ssize_t want, const char ***out)
{
    Py_ssize_t n;
    *out = NULL;
    if (o == Py_None) return 0;
    if (!PyTuple_Check(o) || (n = PyTuple_GET_SIZE(o)) != want) {
        pefapy_input_error("%s: expected a tuple of %zd bytes", name, want);
        return -1;
    }
    if (!(*out = (const char **)PyMem_Malloc((size_t)(n + 1) * sizeof **out))) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = PyTuple_GET_ITEM(o, i);
        if (!PyBytes_Check(b) || strlen(PyBytes_AS_STRING(b)) != (size_t)PyBytes_GET_SIZE(b)) {
            pefapy_input_error("%s[%zd]: expected bytes without NUL", name, i);
            PyMem_Free(*out);
            *out = NULL;
            return -1;
        }
        (*out)[i] = PyBytes_AS_STRING(b);
    }
    return 0;
}

static int pairs_arg(PyObject *o, const pefa_pair **pairs, uint64_t *n)
{
    PyArrayObject *a = (PyArrayObject *)o;
    *pairs = NULL;
    *n = 0;
    if (o == Py_None) return 0;
    if (!PyArray_Check(o) || PyArray_NDIM(a) != 1 || PyArray_ITEMSIZE(a) != (npy_intp)sizeof(pefa_pair) ||
        !PyArray_IS_C_CONTIGUOUS(a) || !PyArray_ISALIGNED(a)) {
        pefapy_input_error("pairs: expected a contiguous 1-D array of (u4 q, u4 p, f4 y) records");
        return -1;
    }
    *pairs = (const pefa_pair *)PyArray_DATA(a);
    *n = (uint64_t)PyArray_DIM(a, 0);
    return 0;
}

/* ---- progress: the caller's function, called with the GIL from the build's threads */
typedef struct {
    PyObject *fn;
    int failed;
} progress_ctx;

static void progress_cb(void *ctx, const char *stage, uint64_t done, uint64_t total)
{
    progress_ctx *p = (progress_ctx *)ctx;
    PyGILState_STATE g;
    PyObject *r;
    if (p->failed) return;
    g = PyGILState_Ensure();
    r = PyObject_CallFunction(p->fn, "sKK", stage, (unsigned long long)done, (unsigned long long)total);
    if (!r) { /* the build cannot be stopped: report once, call no more */
        p->failed = 1;
        PyErr_WriteUnraisable(p->fn);
    }
    Py_XDECREF(r);
    PyGILState_Release(g);
}

static PyObject *stats_dict(const pefa_build_stats *st)
{
    char uuid[40];
    const uint8_t *u = st->uuid;
    snprintf(uuid, sizeof uuid, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
             u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
    return Py_BuildValue("{s:d,s:d,s:d,s:d,s:d,s:d,s:d,s:K,s:K,s:K,s:K,s:K,s:K,s:s}", "seconds_normalise",
                         st->seconds_normalise, "seconds_y", st->seconds_y, "seconds_xs", st->seconds_xs,
                         "seconds_tune", st->seconds_tune, "seconds_graphs", st->seconds_graphs, "seconds_write",
                         st->seconds_write, "seconds_total", st->seconds_total, "nnz", (unsigned long long)st->nnz, "zero_passages",
                         (unsigned long long)st->zero_passages, "zero_queries", (unsigned long long)st->zero_queries,
                         "passages_without_queries", (unsigned long long)st->passages_without_queries, "file_bytes",
                         (unsigned long long)st->file_bytes, "idmap_bytes", (unsigned long long)st->idmap_bytes,
                         "uuid", uuid);
}

typedef struct {
    PyObject *out, *passages, *queries, *pairs, *pids, *qids, *mkeys, *mvals, *lam, *seed, *progress;
    const char *vector_type, *y_codec, *pname, *qname, *tune_metric, *metric;
    unsigned int M, efc, threads, tune_queries;
    int no_graphs, tune, tune_label_check;
} build_args;

static int parse_build(PyObject *args, PyObject *kw, build_args *b)
{
    static char *kwlist[] = {"out",  "passages", "queries", "pairs", "passage_ids", "query_ids", "meta_keys",
                             "meta_values", "lam", "M", "ef_construction", "seed", "threads", "vector_type",
                             "y_codec", "no_graphs", "progress", "passages_name", "queries_name", "tune",
                             "tune_queries", "tune_metric", "tune_label_check", "metric", NULL};
    memset(b, 0, sizeof *b);
    return PyArg_ParseTupleAndKeywords(args, kw, "O&OOOOOOOOIIOIsspOzz|pIziz:_build", kwlist, PyUnicode_FSConverter,
                                       &b->out, &b->passages, &b->queries, &b->pairs, &b->pids, &b->qids,
                                       &b->mkeys, &b->mvals, &b->lam, &b->M, &b->efc, &b->seed, &b->threads,
                                       &b->vector_type, &b->y_codec, &b->no_graphs, &b->progress, &b->pname,
                                       &b->qname, &b->tune, &b->tune_queries, &b->tune_metric,
                                       &b->tune_label_check, &b->metric)
               ? 0
               : -1;
}

/* vector_type as pefa-build --vector-type: "f32", "f16", or "i8" (f16 rows plus
 * the int8 codes the graphs are searched on) */
static int vector_type_arg(const char *s, uint8_t *out)
{
    if (strcmp(s, "f32") == 0) *out = PEFA_TYPE_F32;
    else if (strcmp(s, "f16") == 0) *out = PEFA_TYPE_F16;
    else if (strcmp(s, "i8") == 0) *out = PEFA_TYPE_I8;
    else {
        pefapy_input_error("vector_type '%s' is not 'f32', 'f16' or 'i8'", s);
        return -1;
    }
    return 0;
}

/* tuning as pefa-build --tune, --tune-queries, --tune-metric, --tune-label-check:
 * the library checks the rest (training queries needed, no shards) */
static int tune_args(const build_args *b, pefa_build_params *p)
{
    p->tune = (uint8_t)(b->tune != 0);
    p->tune_queries = b->tune_queries;
    p->tune_label_check = b->tune_label_check;
    if (b->tune_metric && (p->tune_metric = pefa_metric_parse(b->tune_metric)) < 0) {
        pefapy_input_error("tune_metric '%s' is not 'recall@100', 'recall@10' or 'ndcg@10'", b->tune_metric);
        return -1;
    }
    return 0;
}

static int fill_params(const build_args *b, pefa_build_params *p, progress_ctx *pc)
{
    if (b->lam != Py_None) {
        double l = PyFloat_AsDouble(b->lam);
        if (l == -1.0 && PyErr_Occurred()) return -1;
        p->lambda = (float)l;
        p->set |= PEFA_SET_LAMBDA;
    }
    if (b->seed != Py_None) {
        unsigned long long s = PyLong_AsUnsignedLongLong(b->seed);
        if (s == (unsigned long long)-1 && PyErr_Occurred()) return -1;
        p->seed = s;
        p->set |= PEFA_SET_SEED;
    }
    p->M = b->M;
    p->ef_construction = b->efc;
    p->threads = b->threads;
    p->no_graphs = (uint8_t)(b->no_graphs != 0);
    if (vector_type_arg(b->vector_type, &p->vector_type) || tune_args(b, p)) return -1;
    if (b->metric && strcmp(b->metric, "cosine") && strcmp(b->metric, "ip")) { /* as pefa-build --metric */
        pefapy_input_error("metric '%s' is not 'cosine' or 'ip'", b->metric);
        return -1;
    }
    p->similarity = b->metric && strcmp(b->metric, "ip") == 0 ? PEFA_SIMILARITY_IP : PEFA_SIMILARITY_COSINE;
    if (strcmp(b->y_codec, "raw") && strcmp(b->y_codec, "zstd")) {
        pefapy_input_error("y_codec '%s' is not 'raw' or 'zstd'", b->y_codec);
        return -1;
    }
    p->y_codec = strcmp(b->y_codec, "zstd") == 0 ? PEFA_CODEC_ZSTD : PEFA_CODEC_RAW;
    if (b->progress != Py_None) {
        pc->fn = b->progress;
        p->progress = progress_cb;
        p->progress_ctx = pc;
    }
    return 0;
}

static int fill_input(const build_args *b, pefa_build_input *in)
{
    uint32_t qdim = 0;
    Py_ssize_t nmeta = b->mkeys == Py_None ? 0 : PyObject_Length(b->mkeys);
    if (nmeta < 0 || matrix_arg(b->passages, "passages", &in->passages, &in->passages_type, &in->passages_stride,
                                &in->n_passages, &in->dim))
        return -1;
    if (b->queries != Py_None) {
        if (matrix_arg(b->queries, "queries", &in->queries, &in->queries_type, &in->queries_stride, &in->n_queries,
                       &qdim))
            return -1;
        if (qdim != in->dim) {
            pefapy_input_error("queries: dimension %u differs from the passages' (%u)", qdim, in->dim);
            return -1;
        }
    }
    if (pairs_arg(b->pairs, &in->pairs, &in->n_pairs) ||
        strings_arg(b->pids, "passage_ids", in->n_passages, (const char ***)&in->passage_ids) ||
        strings_arg(b->qids, "query_ids", in->n_queries, (const char ***)&in->query_ids) ||
        strings_arg(b->mkeys, "meta_keys", nmeta, (const char ***)&in->meta_keys) ||
        strings_arg(b->mvals, "meta_values", nmeta, (const char ***)&in->meta_values))
        return -1;
    in->n_meta = (uint32_t)nmeta;
    in->passages_name = b->pname;
    in->queries_name = b->qname;
    return 0;
}

PyObject *pefapy_build(PyObject *self, PyObject *args, PyObject *kw)
{
    build_args b;
    pefa_build_input in = PEFA_BUILD_INPUT_INIT;
    pefa_build_params p = PEFA_BUILD_PARAMS_INIT;
    pefa_build_stats st = PEFA_BUILD_STATS_INIT;
    progress_ctx pc = {NULL, 0};
    PyObject *out = NULL;
    char err[600] = "";
    int rc;
    if (parse_build(args, kw, &b)) return NULL;
    if (fill_params(&b, &p, &pc) == 0 && fill_input(&b, &in) == 0) {
        Py_BEGIN_ALLOW_THREADS
        rc = pefa_build(PyBytes_AS_STRING(b.out), &in, &p, &st);
        if (rc) snprintf(err, sizeof err, "%s", pefa_last_error_detail());
        Py_END_ALLOW_THREADS
        out = rc ? pefapy_raise(rc, err) : stats_dict(&st);
    }
    PyMem_Free((void *)in.passage_ids);
    PyMem_Free((void *)in.query_ids);
    PyMem_Free((void *)in.meta_keys);
    PyMem_Free((void *)in.meta_values);
    Py_DECREF(b.out);
    return out;
}

/* pefa.build's first step: the library's rule for what may be at `out`
 * (pefa_output_check); force = replace a regular file that is not an index */
PyObject *pefapy_output_check(PyObject *self, PyObject *args)
{
    PyObject *bpath = NULL;
    int force = 0, rc;
    char err[700] = "";
    if (!PyArg_ParseTuple(args, "O&p:_output_check", PyUnicode_FSConverter, &bpath, &force)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = pefa_output_check(PyBytes_AS_STRING(bpath), force);
    if (rc)
        snprintf(err, sizeof err, "%s%s", pefa_last_error_detail(),
                 rc == PEFA_ERR_NOT_PEFA ? " (force=True replaces it)" : "");
    Py_END_ALLOW_THREADS
    Py_DECREF(bpath);
    if (rc) return pefapy_raise(rc, err);
    Py_RETURN_NONE;
}

/* pefa.build's qrels rule: the library's pefa_pairs_merge over the pairs array
 * _build.py made (sorted, duplicates summed, totals <= 0 left out, in place);
 * returns (kept, left_out) */
PyObject *pefapy_merge_pairs(PyObject *self, PyObject *arr)
{
    const pefa_pair *pairs;
    uint64_t n, out = 0;
    int rc;
    char err[600] = "";
    if (pairs_arg(arr, &pairs, &n)) return NULL;
    if (!pairs || !PyArray_ISWRITEABLE((PyArrayObject *)arr))
        return pefapy_input_error("pairs: expected a writeable array");
    Py_BEGIN_ALLOW_THREADS
    rc = pefa_pairs_merge((pefa_pair *)PyArray_DATA((PyArrayObject *)arr), &n, &out);
    if (rc) snprintf(err, sizeof err, "%s", pefa_last_error_detail());
    Py_END_ALLOW_THREADS
    if (rc) return pefapy_raise(rc, err);
    return Py_BuildValue("KK", (unsigned long long)n, (unsigned long long)out);
}
