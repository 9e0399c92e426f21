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

/* ---- types ------------------------------------------------------------------------ */
extern PyTypeObject pefapy_IndexType;
extern PyTypeObject pefapy_ViewOwnerType;
PyObject *pefapy_build(PyObject *self, PyObject *args, PyObject *kw);
PyObject *pefapy_output_check(PyObject *self, PyObject *args);
PyObject *pefapy_merge_pairs(PyObject *self, PyObject *arr);

#endif
