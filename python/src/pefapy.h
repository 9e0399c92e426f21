/*
 * pefapy.h - internal to the Python extension pefa._pefa (python/src/):
 * what module.c (errors, arguments), index.c (pefa.Index) and build.c
 * (pefa.build) share. The extension uses the public API (pefa.h) only.
 */
#ifndef PEFAPY_H
#define PEFAPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL pefapy_ARRAY_API
#ifndef PEFAPY_IMPORT_ARRAY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "pefa.h"

/* ---- errors (module.c) ----------------------------------------------------------
 * The exception classes live in pefa/_errors.py; pefapy_raise picks the one
 * for a library code (FileError, InputError, NotFoundError, StateError,
 * NoMemoryError, all subclasses of pefa.Error) and sets .code, .name and
 * .detail. Each returns NULL, to be returned by the caller. */
PyObject *pefapy_raise(int code, const char *detail);
/* StateError "<path>: the <what> is closed" (path a str or NULL; one that is
 * not UTF-8 is named "the <what>") */
PyObject *pefapy_raise_closed(PyObject *path, const char *what);
/* code with the calling thread's pefa_last_error_detail() */
PyObject *pefapy_raise_last(int code);
/* an InputError (ValueError) with code INVALID_ARG found by the binding */
PyObject *pefapy_input_error(const char *fmt, ...);
/* the exception object pefapy_raise would raise, not raised (new reference) */
PyObject *pefapy_error_new(int code, const char *detail);

/* ---- arguments (module.c) -------------------------------------------------------
 * Vectorcall-style parsing: out[i] receives the i-th positional argument or
 * the keyword names[i] (NULL when not given). interned: n slots, filled on
 * first use with the names as interned str (a call site's static array).
 * TypeError for too many positionals, unknown or repeated keywords. */
int pefapy_parse(const char *fn, const char *const *names, PyObject **interned, int n, PyObject *const *args,
                 Py_ssize_t nargs, PyObject *kwnames, PyObject **out);
/* an int argument in [lo, hi] (None or NULL leaves *v); TypeError if not an
 * int, InputError naming the argument if out of range */
int pefapy_u32(PyObject *o, const char *name, uint32_t lo, uint32_t hi, uint32_t *v);
/* one of names (by index) for a str argument; InputError listing them */
int pefapy_choice(PyObject *o, const char *name, const char *const *names, int n, int *v);

/* ---- searches and ids (query.c), shared by Index and Set ------------------------------
 * search(Q, k, mode, ef, lam, knn, topk_p, exact, threads, knn_norm,
 * xl_scoring): the keyword names in order (Index._time_c_loop adds single) */
enum {
    PEFAPY_A_Q, PEFAPY_A_K, PEFAPY_A_MODE, PEFAPY_A_EF, PEFAPY_A_LAM, PEFAPY_A_KNN, PEFAPY_A_TOPK, PEFAPY_A_EXACT,
    PEFAPY_A_THREADS, PEFAPY_A_NORM, PEFAPY_A_SCORING, PEFAPY_A_SINGLE, PEFAPY_A_N
};
extern const char *const pefapy_search_kw[PEFAPY_A_N];
/* the parsed arguments a[] into qp (k defaults to PEFA_DEFAULT_K) and threads */
int pefapy_search_params(PyObject **a, pefa_query_params *qp, uint32_t *threads);

/* Q as float32 rows: the caller's array when it is already float32 with unit
 * column stride and a positive row stride, else one copy. InputError for a
 * dtype, a number of dimensions or a row length (dim; the message says "the
 * <noun> has dimension") that does not fit. */
typedef struct {
    PyArrayObject *arr;  /* owned: the array read (the caller's or a float32 copy) */
    const float *data;
    uint64_t n, stride;  /* rows; floats from row to row */
    int one_d;
} pefapy_qblock;
int pefapy_qblock_get(uint32_t dim, const char *noun, PyObject *obj, pefapy_qblock *qb);

/* The result arrays of a search of qb for k hits: the library writes its
 * hits (n * k pefa_hit) into the rows array and n_hits into nh (both usable
 * without the GIL); finish splits them in place into (rows, scores) or, when
 * rc != 0, raises rc with err. finish and free release everything. */
typedef struct {
    PyArrayObject *rows, *scores;
    pefa_hit *hits;
    uint32_t *nh, one;
    uint64_t n;
    uint32_t k;
} pefapy_results;
int pefapy_results_new(const pefapy_qblock *qb, uint32_t k, pefapy_results *r);
PyObject *pefapy_results_finish(pefapy_results *r, int rc, const char *err);
void pefapy_results_free(pefapy_results *r);

/* where ids come from: an index's id map, or a set (pefa_set_id / _row) */
typedef struct {
    pefa_idmap *im;
    pefa_set *set;
} pefapy_idsrc;

/* ids of rows: begin (GIL) checks the rows (an int or array-like of ints,
 * each -1 or < count: IndexError naming the <noun> otherwise); run (no GIL)
 * looks them up; end (GIL) returns a str array of the rows' shape (a str for
 * an int), or raises what run met; end(j, 0) only frees. */
typedef struct {
    int which, rc;
    PyArrayObject *rows;
    size_t n, used, cap, *off; /* n + 1 offsets into buf */
    char *buf, err[600];
} pefapy_ids_job;
int pefapy_ids_begin(uint32_t count, const char *noun, int which, PyObject *rows, pefapy_ids_job *j);
int pefapy_ids_run(const pefapy_idsrc *src, pefapy_ids_job *j);
PyObject *pefapy_ids_end(pefapy_ids_job *j, int ok);

/* rows of ids (a sequence of str), the same way: an int64 array, or
 * NotFoundError (a KeyError with .key) for the first id missing */
typedef struct {
    int which, rc;
    PyObject *ids, *out;  /* a tuple of the ids; the int64 array */
    const char **p;       /* their UTF-8 (held by the str objects) */
    Py_ssize_t n, failed;
    char err[600];
} pefapy_rows_job;
int pefapy_rows_begin(int which, PyObject *ids, pefapy_rows_job *j);
int pefapy_rows_run(const pefapy_idsrc *src, pefapy_rows_job *j);
PyObject *pefapy_rows_end(pefapy_rows_job *j, int ok);

/* pefa_model_info as the dict Index.info and Set.info give */
PyObject *pefapy_info_dict(const pefa_model_info *m);

/* ---- types ------------------------------------------------------------------------ */
extern PyTypeObject pefapy_IndexType;
extern PyTypeObject pefapy_SetType;
extern PyTypeObject pefapy_ViewOwnerType;
PyObject *pefapy_build(PyObject *self, PyObject *args, PyObject *kw);
PyObject *pefapy_output_check(PyObject *self, PyObject *args);
PyObject *pefapy_merge_pairs(PyObject *self, PyObject *arr);

#endif
