/*
 * request.h - pefa-serve: a POST /search body (JSON) -> a validated batch of
 * queries (prefix srv_). No HTTP here, so the fuzzer (tests/fuzz/
 * fuzz_request.c) calls it directly.
 *
 * Body: {"vector":[d numbers]} or {"vectors":[[d numbers],...]}, and
 * optionally "k", "mode" ("erm" | "xs" | "xl"), "ef", "lambda", "knn",
 * "topk_p", "knn_norm" ("v0" | "v1"), "xl_scoring" ("exact" | "sparse-add"),
 * "exact" (bool), "explain" (bool). Anything else is refused, naming the
 * field: a typo ("lamda") must not silently give the default.
 */
#ifndef PEFA_SERVE_REQUEST_H
#define PEFA_SERVE_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "pefa.h"

/* the server's limits (pefa-serve's options; defaults here, once) */
#define SRV_DEFAULT_MAX_BATCH 256u
#define SRV_DEFAULT_MAX_K 1000u
#define SRV_DEFAULT_MAX_BODY (8u << 20)
#define SRV_DEFAULT_TIMEOUT_MS 10000u

typedef struct {
    uint32_t max_batch; /* queries per request */
    uint32_t max_k;     /* hits per query (<= PEFA_MAX_K) */
} srv_limits;

typedef struct {
    pefa_query_params qp; /* the fields given; 0 = the library's default */
    int batch;            /* "vectors" was given: answer with "results" */
    int explain;
    uint32_t n;           /* queries */
    float *q;             /* n rows of dim floats, finite, malloc'd */
} srv_request;

/* HTTP status of a refused request (the only one this parser gives) */
#define SRV_BAD_REQUEST 400

/* Parses len bytes of body for an index of dimension dim. Returns 0, or
 * SRV_BAD_REQUEST with one line in err naming the field ("vector[3]: 1e+39 is
 * not a finite float32", "k: 5000 is over --max-k 1000", "lamda: unknown
 * field"). On failure rq holds nothing to free. */
int srv_request_parse(const void *body, size_t len, uint32_t dim, const srv_limits *lim, srv_request *rq,
                      char *err, size_t errlen);
void srv_request_free(srv_request *rq);

#endif
