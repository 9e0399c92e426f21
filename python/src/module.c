/*
 * module.c - the extension module pefa._pefa: errors, argument helpers,
 * constants. The Python package (python/pefa/__init__.py) wraps it.
 */
#define PEFAPY_IMPORT_ARRAY
#include "pefapy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- errors ------------------------------------------------------------------ */
static PyObject *err_base, *err_file, *err_input, *err_notfound, *err_state, *err_nomem;

static const char *err_name(int code)
{
    switch (code) {
#define PEFAPY_X_NAME(name, num, msg) \
    case -(num): return #name;
        PEFA_ERROR_LIST(PEFAPY_X_NAME)
#undef PEFAPY_X_NAME
    }
    return "UNKNOWN";
}

static PyObject *err_class(int code)
{
    switch (code) {
    case PEFA_ERR_NOMEM: return err_nomem;
    case PEFA_ERR_INVALID_ARG:
    case PEFA_ERR_BAD_INPUT: return err_input;
    case PEFA_ERR_NOT_FOUND: return err_notfound;
    case PEFA_ERR_STATE: return err_state;
    case PEFA_ERR_IO:
    case PEFA_ERR_NOT_PEFA:
    case PEFA_ERR_VERSION:
    case PEFA_ERR_TRUNCATED:
    case PEFA_ERR_CORRUPT:
    case PEFA_ERR_CHECKSUM:
    case PEFA_ERR_MISMATCH: return err_file;
    }
    return err_base;
}

PyObject *pefapy_error_new(int code, const char *detail)
{
    const char *d = detail && *detail ? detail : pefa_strerror(code);
    PyObject *msg = PyUnicode_FromFormat("%s [%s]", d, err_name(code));
    PyObject *exc = msg ? PyObject_CallOneArg(err_class(code), msg) : NULL;
    PyObject *c = PyLong_FromLong(code), *name = PyUnicode_FromString(err_name(code));
    PyObject *det = PyUnicode_DecodeUTF8(d, (Py_ssize_t)strlen(d), "replace");
    if (exc && c && name && det &&
        (PyObject_SetAttrString(exc, "code", c) || PyObject_SetAttrString(exc, "name", name) ||
         PyObject_SetAttrString(exc, "detail", det)))
        Py_CLEAR(exc);
    if (!(c && name && det)) Py_CLEAR(exc);
    Py_XDECREF(msg);
    Py_XDECREF(c);
    Py_XDECREF(name);
    Py_XDECREF(det);
    return exc;
}

PyObject *pefapy_raise_closed(PyObject *path, const char *what)
{
    const char *p = path ? PyUnicode_AsUTF8(path) : NULL;
    char err[600];
    PyErr_Clear();
    if (p) snprintf(err, sizeof err, "%s: the %s is closed", p, what);
    else snprintf(err, sizeof err, "the %s: the %s is closed", what, what);
    return pefapy_raise(PEFA_ERR_STATE, err);
}

PyObject *pefapy_raise(int code, const char *detail)
{
    PyObject *exc = pefapy_error_new(code, detail);
    if (exc) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

PyObject *pefapy_raise_last(int code)
{
    return pefapy_raise(code, pefa_last_error_detail());
}

PyObject *pefapy_input_error(const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return pefapy_raise(PEFA_ERR_INVALID_ARG, buf);
}

/* ---- arguments ------------------------------------------------------------------ */
/* the index of keyword key in names: by identity with the interned names
 * first (call sites pass interned keywords), then by value; n if unknown */
static int keyword_index(PyObject *key, const char *const *names, PyObject **interned, int n)
{
    int i = 0;
    while (i < n && key != interned[i]) i++;
    if (i < n) return i;
    for (i = 0; i < n && PyUnicode_CompareWithASCIIString(key, names[i]) != 0; i++) {
    }
    return i;
}

int pefapy_parse(const char *fn, const char *const *names, PyObject **interned, int n, PyObject *const *args,
                 Py_ssize_t nargs, PyObject *kwnames, PyObject **out)
{
    Py_ssize_t nk = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (int i = 0; i < n; i++) out[i] = NULL;
    if (nargs > n) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", fn, n, nargs);
        return -1;
    }
    for (int i = 0; nk && !interned[n - 1] && i < n; i++)
        if (!interned[i] && !(interned[i] = PyUnicode_InternFromString(names[i]))) return -1;
    for (Py_ssize_t i = 0; i < nargs; i++) out[i] = args[i];
    for (Py_ssize_t j = 0; j < nk; j++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, j);
        int i = keyword_index(key, names, interned, n);
        if (i == n) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fn, key);
            return -1;
        }
        if (out[i]) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fn, names[i]);
            return -1;
        }
        out[i] = args[nargs + j];
    }
    return 0;
}

int pefapy_u32(PyObject *o, const char *name, uint32_t lo, uint32_t hi, uint32_t *v)
{
    long long x;
    int overflow;
    if (!o || o == Py_None) return 0;
    if (PyBool_Check(o) || !PyIndex_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %s", name, Py_TYPE(o)->tp_name);
        return -1;
    }
    o = PyNumber_Index(o);
    if (!o) return -1;
    x = PyLong_AsLongLongAndOverflow(o, &overflow);
    Py_DECREF(o);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (overflow) {
        pefapy_input_error("%s is out of range [%u, %u]", name, lo, hi);
        return -1;
    }
    if (x < (long long)lo || x > (long long)hi) {
        pefapy_input_error("%s = %lld is out of range [%u, %u]", name, x, lo, hi);
        return -1;
    }
    *v = (uint32_t)x;
    return 0;
}

int pefapy_choice(PyObject *o, const char *name, const char *const *names, int n, int *v)
{
    char list[200] = "";
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str, not %s", name, Py_TYPE(o)->tp_name);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (PyUnicode_CompareWithASCIIString(o, names[i]) == 0) {
            *v = i;
            return 0;
        }
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s'%s'", i ? ", " : "", names[i]);
    }
    if (PyErr_Occurred()) return -1;
    {
        PyObject *r = PyObject_Repr(o);
        const char *rs = r ? PyUnicode_AsUTF8(r) : NULL;
        if (rs) pefapy_input_error("%s %.200s is not one of %s", name, rs, list);
        Py_XDECREF(r);
    }
    return -1;
}

/* ---- the module -------------------------------------------------------------------- */
static PyObject *kernel_name(PyObject *self, PyObject *unused)
{
    return PyUnicode_FromString(pefa_kernel_name());
}

static PyMethodDef module_methods[] = {
    {"kernel_name", kernel_name, METH_NOARGS,
     "kernel_name() -> str: the inner-product kernels in use ('avx512', 'avx2' or 'scalar')."},
    {"_build", (PyCFunction)(void (*)(void))pefapy_build, METH_VARARGS | METH_KEYWORDS,
     "_build(out, passages, ...) -> dict: the C half of pefa.build (use that)."},
    {"_output_check", pefapy_output_check, METH_VARARGS,
     "_output_check(out, force): pefa_output_check, pefa.build's first step (use that)."},
    {"_merge_pairs", pefapy_merge_pairs, METH_O,
     "_merge_pairs(pairs) -> (kept, left_out): pefa_pairs_merge in place (pefa.build's qrels rule)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "pefa._pefa",
                                        "libidx bound to Python: see the package pefa.", -1, module_methods,
                                        NULL, NULL, NULL, NULL};

static int load_errors(void)
{
    PyObject *m = PyImport_ImportModule("pefa._errors");
    if (!m) return -1;
    err_base = PyObject_GetAttrString(m, "Error");
    err_file = PyObject_GetAttrString(m, "FileError");
    err_input = PyObject_GetAttrString(m, "InputError");
    err_notfound = PyObject_GetAttrString(m, "NotFoundError");
    err_state = PyObject_GetAttrString(m, "StateError");
    err_nomem = PyObject_GetAttrString(m, "NoMemoryError");
    Py_DECREF(m);
    return err_base && err_file && err_input && err_notfound && err_state && err_nomem ? 0 : -1;
}

static int add_constants(PyObject *m)
{
#define PEFAPY_X_CONST(name, num, msg) \
    if (PyModule_AddIntConstant(m, "ERR_" #name, -(num))) return -1;
    PEFA_ERROR_LIST(PEFAPY_X_CONST)
#undef PEFAPY_X_CONST
    if (PyModule_AddIntConstant(m, "MAX_K", PEFA_MAX_K) || PyModule_AddIntConstant(m, "MAX_THREADS", PEFA_MAX_THREADS) ||
        PyModule_AddIntConstant(m, "IDS_PASSAGES", PEFA_IDS_PASSAGES) ||
        PyModule_AddIntConstant(m, "IDS_QUERIES", PEFA_IDS_QUERIES) ||
        PyModule_AddIntConstant(m, "LABEL_CHECK_ON", PEFA_LABEL_CHECK_ON) ||
        PyModule_AddIntConstant(m, "LABEL_CHECK_OFF", PEFA_LABEL_CHECK_OFF) ||
        PyModule_AddStringConstant(m, "library_version", pefa_version_string()))
        return -1;
    return 0;
}

PyMODINIT_FUNC PyInit__pefa(void);
PyMODINIT_FUNC PyInit__pefa(void)
{
    PyObject *m;
    import_array();
    if (load_errors() || PyType_Ready(&pefapy_IndexType) || PyType_Ready(&pefapy_ViewOwnerType) ||
        PyType_Ready(&pefapy_SetType))
        return NULL;
    if (!(m = PyModule_Create(&module_def))) return NULL;
    Py_INCREF(&pefapy_IndexType);
    if (PyModule_AddObject(m, "Index", (PyObject *)&pefapy_IndexType)) {
        Py_DECREF(&pefapy_IndexType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&pefapy_SetType);
    if (PyModule_AddObject(m, "Set", (PyObject *)&pefapy_SetType)) {
        Py_DECREF(&pefapy_SetType);
        Py_DECREF(m);
        return NULL;
    }
    if (add_constants(m)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
