/*
 * params.h - internal: query parameters with every default filled in and
 * every value checked, once per call (params.c).
 */
#ifndef PEFA_PARAMS_H
#define PEFA_PARAMS_H

#include "pefa.h"
#include "pefa/model.h"

typedef struct {
    int mode;            /* PEFA_MODE_ERM / XS / XL, never DEFAULT */
    uint32_t k, ef, knn, topk_p;
    float lambda;        /* XS: the lambda to score with; XL: weight of <q,p> */
    int xs_rescore;      /* XS: lambda differs from the build's: re-score with z */
    float knn_div;       /* XL: w_i = <q,q_i> / knn_div (v0: min(k, n_q); v1: 1) */
    int xl_scoring;
    int exact;
} pefa_qp;

/* Resolves p (NULL = every default) against model m. INVALID_ARG names the
 * field out of range or the sections a mode lacks; XL on one shard of a set
 * is refused (it needs the whole set). */
int pefa__qp_resolve(const pefa_model *m, const pefa_query_params *p, pefa_qp *out);
/* the public form of resolved parameters (p: what the caller asked) */
void pefa__qp_fill(const pefa_qp *r, const pefa_query_params *p, pefa_query_params *out);
/* the same for a set, m being its shard 0 (set_search.c) */
int pefa__qp_resolve_set(const pefa_model *m, const pefa_query_params *p, pefa_qp *out);

#endif
