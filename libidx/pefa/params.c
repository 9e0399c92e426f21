/* params.c - query parameters: defaults, ranges, what a mode needs and uses.
 * Every refusal reads "<field>: <problem>", the field named as in
 * pefa_query_params (pefa-serve's JSON fields carry the same names). */
#include <math.h>
#include <string.h>

#include "common/abi.h"
#include "common/error.h"
#include "pefa/params.h"

#define QUERY_SET_BITS (PEFA_SET_LAMBDA | PEFA_SET_KNN_NORM | PEFA_SET_XL_SCORING)

static const char *mode_name(int mode)
{
    return mode == PEFA_MODE_XS ? "xs" : mode == PEFA_MODE_XL ? "xl" : "erm";
}

static int check_ranges(const pefa_query_params *q)
{
    RETURN_ERROR_IF(q->mode < PEFA_MODE_DEFAULT || q->mode > PEFA_MODE_XL, PEFA_ERR_INVALID_ARG,
                    "mode: %d is not a mode (PEFA_MODE_*)", q->mode);
    RETURN_ERROR_IF(q->k > PEFA_MAX_K, PEFA_ERR_INVALID_ARG, "k: %u is over %u", q->k, PEFA_MAX_K);
    RETURN_ERROR_IF((q->set & PEFA_SET_LAMBDA) && !(q->lambda >= 0 && q->lambda <= 1), PEFA_ERR_INVALID_ARG,
                    "lambda: %g is outside [0, 1]", (double)q->lambda);
    RETURN_ERROR_IF(q->knn_norm != PEFA_KNN_V0 && q->knn_norm != PEFA_KNN_V1, PEFA_ERR_INVALID_ARG,
                    "knn_norm: %d is not PEFA_KNN_V0 or V1", q->knn_norm);
    RETURN_ERROR_IF(q->xl_scoring != PEFA_XL_EXACT && q->xl_scoring != PEFA_XL_SPARSE_ADD, PEFA_ERR_INVALID_ARG,
                    "xl_scoring: %d is not PEFA_XL_EXACT or SPARSE_ADD", q->xl_scoring);
    RETURN_ERROR_IF(q->set & ~QUERY_SET_BITS, PEFA_ERR_INVALID_ARG, "set: unknown bits 0x%x", q->set & ~QUERY_SET_BITS);
    return 0;
}

/* A parameter the mode does not use is the caller's mistake, not a no-op:
 * XL uses lambda, knn, topk_p, knn_norm and xl_scoring; XS lambda only (a
 * lambda other than the build's re-scores with z); ERM none of them. A field
 * is given when it is not 0, or when its PEFA_SET_* bit is set. */
static int check_used(const pefa_query_params *q, int mode, int defaulted)
{
    const char *field = NULL;
    if (mode == PEFA_MODE_XL) return 0;
    if (mode == PEFA_MODE_ERM && (q->set & PEFA_SET_LAMBDA)) field = "lambda";
    else if (q->knn) field = "knn";
    else if (q->topk_p) field = "topk_p";
    else if (q->knn_norm || (q->set & PEFA_SET_KNN_NORM)) field = "knn_norm";
    else if (q->xl_scoring || (q->set & PEFA_SET_XL_SCORING)) field = "xl_scoring";
    if (!field) return 0;
    RETURN_ERROR_IF(defaulted, PEFA_ERR_INVALID_ARG,
                    "%s: mode %s, the index's default, does not use it (give mode %s)", field, mode_name(mode),
                    field[0] == 'l' ? "xs or xl" : "xl");
    return pefa__set_error(PEFA_ERR_INVALID_ARG, "%s: mode %s does not use it (%s)", field, mode_name(mode),
                           field[0] == 'l' ? "xs and xl do" : "only xl does");
}

/* the sections the mode reads */
static int check_mode(const pefa_model *m, const pefa_qp *r)
{
    RETURN_ERROR_IF(r->mode != PEFA_MODE_ERM && !m->E, PEFA_ERR_INVALID_ARG,
                    "mode: PEFA-%s needs training queries; %s was built without them",
                    r->mode == PEFA_MODE_XS ? "XS" : "XL", m->path);
    RETURN_ERROR_IF(r->mode == PEFA_MODE_XS && r->xs_rescore && !m->Z, PEFA_ERR_INVALID_ARG,
                    "lambda: PEFA-XS with %g (the build's is %g) needs the z vectors, which %s lacks",
                    (double)r->lambda, (double)m->info.xs_lambda, m->path);
    RETURN_ERROR_IF(r->mode == PEFA_MODE_XL && (!m->Q || !m->y_rowptr), PEFA_ERR_INVALID_ARG,
                    "mode: PEFA-XL needs training queries and their relevance matrix; %s has none", m->path);
    return 0;
}

int pefa__qp_resolve(const pefa_model *m, const pefa_query_params *p, pefa_qp *r)
{
    FORWARD_IF_ERROR(pefa__qp_resolve_set(m, p, r));
    RETURN_ERROR_IF(r->mode == PEFA_MODE_XL && m->shard_count > 1, PEFA_ERR_INVALID_ARG,
                    "mode: PEFA-XL scores passages of every shard; %s is shard %u of a set of %u: query the set",
                    m->path, m->shard_index, m->shard_count);
    return 0;
}

int pefa__qp_resolve_set(const pefa_model *m, const pefa_query_params *p, pefa_qp *r)
{
    const pefa_model_info *in = &m->info;
    pefa_query_params q;
    int tuned;
    pefa__abi_in(&q, sizeof q, p, PEFA_V1_QUERY_PARAMS);
    FORWARD_IF_ERROR(check_ranges(&q));
    memset(r, 0, sizeof *r);
    r->mode = q.mode == PEFA_MODE_DEFAULT ? in->default_mode : q.mode;
    FORWARD_IF_ERROR(check_used(&q, r->mode, q.mode == PEFA_MODE_DEFAULT));
    /* the tuned lambda and k come with the tuned mode; explicit values win */
    tuned = in->tuned && r->mode == in->default_mode;
    r->k = q.k ? q.k : PEFA_DEFAULT_K;
    r->ef = q.ef ? q.ef : PEFA_DEFAULT_EF;
    r->knn = q.knn ? q.knn : tuned && in->default_knn ? in->default_knn : PEFA_DEFAULT_KNN;
    /* XL scores top-k from its candidates: at least k of them come from ERM */
    r->topk_p = q.topk_p ? q.topk_p : PEFA_DEFAULT_TOPK_P;
    if (r->mode == PEFA_MODE_XL && r->topk_p < r->k) r->topk_p = r->k;
    if (q.set & PEFA_SET_LAMBDA) r->lambda = q.lambda;
    else if (tuned && r->mode != PEFA_MODE_ERM) r->lambda = in->default_lambda;
    else r->lambda = r->mode == PEFA_MODE_XS ? in->xs_lambda : PEFA_DEFAULT_XL_LAMBDA;
    r->xs_rescore = r->mode == PEFA_MODE_XS && fabsf(r->lambda - m->info.xs_lambda) >= 1e-7f;
    r->knn_div = q.knn_norm == PEFA_KNN_V1 ? 1.0f
                 : (float)(r->knn < m->info.n_queries ? r->knn : (m->info.n_queries ? m->info.n_queries : 1));
    r->xl_scoring = q.xl_scoring;
    r->exact = q.exact != 0;
    return check_mode(m, r);
}

int pefa_query_params_resolve(pefa_index *ix, const pefa_query_params *p, pefa_query_params *out)
{
    pefa_model *m = NULL;
    pefa_qp r;
    FORWARD_IF_ERROR(pefa__model_get(ix, &m));
    FORWARD_IF_ERROR(pefa__qp_resolve(m, p, &r));
    pefa__qp_fill(&r, p, out);
    return 0;
}

/* the fields the mode uses, filled; those it does not use, 0 and unset (so
 * that what resolve returns resolves again to itself) */
void pefa__qp_fill(const pefa_qp *r, const pefa_query_params *p, pefa_query_params *out)
{
    pefa_query_params q;
    pefa__abi_in(&q, sizeof q, p, PEFA_V1_QUERY_PARAMS);
    q.size = sizeof q;
    q.mode = r->mode;
    q.k = r->k;
    q.ef = r->ef;
    q.exact = r->exact;
    if (r->mode == PEFA_MODE_XL) {
        q.knn = r->knn;
        q.topk_p = r->topk_p;
    }
    if (r->mode != PEFA_MODE_ERM) {
        q.lambda = r->lambda;
        q.set |= PEFA_SET_LAMBDA;
    }
    pefa__abi_out(out, &q, PEFA_V1_QUERY_PARAMS, sizeof q);
}
