/* request.c - POST /search bodies -> validated queries (request.h). */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pefa.h"
#include "serve/request.h"
#include "util/cli.h"

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int refuse(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return SRV_BAD_REQUEST;
}

/* a field name fit for a message: printable ASCII, at most 40 bytes */
static void printable(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 4 < cap && o < 40; s++) out[o++] = (*s >= 0x20 && *s < 0x7F) ? *s : '?';
    if (*s) out[o++] = '.', out[o++] = '.', out[o++] = '.';
    out[o] = 0;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

typedef struct {
    const srv_limits *lim;
    uint32_t dim;
    srv_request *rq;
    const json_t *vector, *vectors;
    char *err;
    size_t errlen;
} parse_ctx;

/* a JSON number that is a finite float32 */
static int get_float(parse_ctx *c, const json_t *v, const char *name, float *out)
{
    double d;
    if (!json_is_number(v)) return refuse(c->err, c->errlen, "%s: expected a number, got %s", name, type_name(v));
    d = json_number_value(v);
    /* jansson refuses overflowing literals; 1e300 is a double but no float32 */
    if (!(fabs(d) <= FLT_MAX)) return refuse(c->err, c->errlen, "%s: %g is not a finite float32", name, d);
    *out = (float)d;
    return 0;
}

static int get_uint(parse_ctx *c, const json_t *v, const char *name, uint32_t hi, const char *limit, uint32_t *out)
{
    json_int_t i;
    if (!json_is_integer(v)) return refuse(c->err, c->errlen, "%s: expected an integer, got %s", name, type_name(v));
    i = json_integer_value(v);
    if (i < 1) return refuse(c->err, c->errlen, "%s: %lld is not positive", name, (long long)i);
    if (i > (json_int_t)hi) return refuse(c->err, c->errlen, "%s: %lld is over %s %u", name, (long long)i, limit, hi);
    *out = (uint32_t)i;
    return 0;
}

static int get_choice(parse_ctx *c, const json_t *v, const char *name, const char *const *names, int n, int *out)
{
    const char *s;
    char shown[64];
    if (!json_is_string(v)) return refuse(c->err, c->errlen, "%s: expected a string, got %s", name, type_name(v));
    s = json_string_value(v);
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0 && strlen(names[i]) == json_string_length(v)) return *out = i, 0;
    printable(s, shown, sizeof shown);
    return refuse(c->err, c->errlen, "%s: '%s' is not one of %s, %s%s%s", name, shown, names[0], names[1],
                  n > 2 ? ", " : "", n > 2 ? names[2] : "");
}

static int get_bool(parse_ctx *c, const json_t *v, const char *name, int *out)
{
    if (!json_is_boolean(v)) return refuse(c->err, c->errlen, "%s: expected true or false, got %s", name, type_name(v));
    *out = json_is_true(v);
    return 0;
}

/* one query row: an array of dim numbers, named e.g. "vectors[2]" */
static int get_row(parse_ctx *c, const json_t *v, const char *name, float *out)
{
    char elem[48];
    if (!json_is_array(v)) return refuse(c->err, c->errlen, "%s: expected an array of numbers, got %s", name, type_name(v));
    if (json_array_size(v) != c->dim)
        return refuse(c->err, c->errlen, "%s: %zu values, the index has dimension %u", name, json_array_size(v), c->dim);
    for (uint32_t j = 0; j < c->dim; j++) {
        snprintf(elem, sizeof elem, "%s[%u]", name, j);
        if (get_float(c, json_array_get(v, j), elem, &out[j])) return SRV_BAD_REQUEST;
    }
    return 0;
}

static int get_rows(parse_ctx *c)
{
    srv_request *rq = c->rq;
    char name[32];
    if (c->vector && c->vectors) return refuse(c->err, c->errlen, "vectors: give \"vector\" or \"vectors\", not both");
    if (!c->vector && !c->vectors) return refuse(c->err, c->errlen, "vector: missing (give \"vector\" or \"vectors\")");
    if (c->vectors && !json_is_array(c->vectors))
        return refuse(c->err, c->errlen, "vectors: expected an array of arrays, got %s", type_name(c->vectors));
    rq->batch = c->vectors != NULL;
    rq->n = rq->batch ? (uint32_t)(json_array_size(c->vectors) < UINT32_MAX ? json_array_size(c->vectors) : UINT32_MAX) : 1;
    if (rq->n == 0) return refuse(c->err, c->errlen, "vectors: empty");
    if (rq->n > c->lim->max_batch)
        return refuse(c->err, c->errlen, "vectors: %u queries, over --max-batch %u", rq->n, c->lim->max_batch);
    if (!(rq->q = (float *)malloc((size_t)rq->n * c->dim * sizeof(float) + 1)))
        return refuse(c->err, c->errlen, "vectors: out of memory");
    if (!rq->batch) return get_row(c, c->vector, "vector", rq->q);
    for (uint32_t i = 0; i < rq->n; i++) {
        snprintf(name, sizeof name, "vectors[%u]", i);
        if (get_row(c, json_array_get(c->vectors, i), name, rq->q + (size_t)i * c->dim)) return SRV_BAD_REQUEST;
    }
    return 0;
}

/* one top-level field */
static int get_field(parse_ctx *c, const char *key, const json_t *v)
{
    static const char *const modes[] = {"erm", "xs", "xl"}, *const norms[] = {"v0", "v1"},
                             *const scorings[] = {"exact", "sparse-add"};
    pefa_query_params *qp = &c->rq->qp;
    char shown[64];
    int i, rc = 0;
    if (!strcmp(key, "vector")) c->vector = v;
    else if (!strcmp(key, "vectors")) c->vectors = v;
    else if (!strcmp(key, "k")) rc = get_uint(c, v, "k", c->lim->max_k, "--max-k", &qp->k);
    else if (!strcmp(key, "ef")) rc = get_uint(c, v, "ef", CLI_MAX_EF, "the limit", &qp->ef);
    else if (!strcmp(key, "knn")) rc = get_uint(c, v, "knn", CLI_MAX_KNN, "the limit", &qp->knn);
    else if (!strcmp(key, "topk_p")) rc = get_uint(c, v, "topk_p", CLI_MAX_TOPK_P, "the limit", &qp->topk_p);
    else if (!strcmp(key, "exact")) rc = get_bool(c, v, "exact", &qp->exact);
    else if (!strcmp(key, "explain")) rc = get_bool(c, v, "explain", &c->rq->explain);
    else if (!strcmp(key, "lambda")) {
        /* the range [0, 1] is the library's rule: it refuses, naming lambda */
        if (!(rc = get_float(c, v, "lambda", &qp->lambda))) qp->set |= PEFA_SET_LAMBDA;
    } else if (!strcmp(key, "mode")) {
        if (!(rc = get_choice(c, v, "mode", modes, 3, &i))) qp->mode = PEFA_MODE_ERM + i;
    } else if (!strcmp(key, "knn_norm")) {
        if (!(rc = get_choice(c, v, "knn_norm", norms, 2, &i))) qp->knn_norm = i, qp->set |= PEFA_SET_KNN_NORM;
    } else if (!strcmp(key, "xl_scoring")) {
        if (!(rc = get_choice(c, v, "xl_scoring", scorings, 2, &i))) qp->xl_scoring = i, qp->set |= PEFA_SET_XL_SCORING;
    } else {
        printable(key, shown, sizeof shown);
        rc = refuse(c->err, c->errlen, "%s: unknown field", shown);
    }
    return rc;
}

static int parse_object(parse_ctx *c, json_t *root)
{
    const char *key;
    json_t *v;
    size_t klen;
    if (!json_is_object(root)) return refuse(c->err, c->errlen, "body: expected a JSON object, got %s", type_name(root));
    json_object_keylen_foreach(root, key, klen, v)
    {
        if (strlen(key) != klen) return refuse(c->err, c->errlen, "body: a field name holds a NUL byte");
        if (get_field(c, key, v)) return SRV_BAD_REQUEST;
    }
    if (get_rows(c)) return SRV_BAD_REQUEST;
    if (c->rq->explain && c->rq->qp.mode && c->rq->qp.mode != PEFA_MODE_XL)
        return refuse(c->err, c->errlen, "explain: works with mode xl");
    return 0;
}

int srv_request_parse(const void *body, size_t len, uint32_t dim, const srv_limits *lim, srv_request *rq,
                      char *err, size_t errlen)
{
    json_error_t je;
    json_t *root;
    parse_ctx c;
    int rc;
    memset(rq, 0, sizeof *rq);
    rq->qp.size = sizeof rq->qp;
    memset(&c, 0, sizeof c);
    c.lim = lim;
    c.dim = dim;
    c.rq = rq;
    c.err = err;
    c.errlen = errlen;
    /* duplicate keys refused: {"k":1,"k":1000} must not depend on which wins */
    root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return refuse(err, errlen, "body: malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
    rc = parse_object(&c, root);
    json_decref(root);
    if (rc) srv_request_free(rq);
    return rc;
}

void srv_request_free(srv_request *rq)
{
    free(rq->q);
    rq->q = NULL;
    rq->n = 0;
}
