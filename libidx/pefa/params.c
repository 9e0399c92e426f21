/* params.c - query parameters: defaults, ranges, what a mode needs. */
#include <math.h>
#include <string.h>

#include "common/abi.h"
#include "common/error.h"
#include "pefa/params.h"

static int check_ranges(const pefa_query_params *q)
{
    RETURN_ERROR_IF(q->mode < PEFA_MODE_DEFAULT || q->mode > PEFA_MODE_XL, PEFA_ERR_INVALID_ARG,
                    "query parameters: unknown mode %d", q->mode);
    RETURN_ERROR_IF(q->k > PEFA_MAX_K, PEFA_ERR_INVALID_ARG, "query parameters: k %u is over %u", q->k, PEFA_MAX_K);
    RETURN_ERROR_IF((q->set & PEFA_SET_LAMBDA) && !(q->lambda >= 0 && q->lambda <= 1), PEFA_ERR_INVALID_ARG,
                    "query parameters: lambda %g is outside [0, 1]", (double)q->lambda);
    RETURN_ERROR_IF(q->knn_norm != PEFA_KNN_V0 && q->knn_norm != PEFA_KNN_V1, PEFA_ERR_INVALID_ARG,
                    "query parameters: unknown knn_norm %d", q->knn_norm);
    RETURN_ERROR_IF(q->xl_scoring != PEFA_XL_EXACT && q->xl_scoring != PEFA_XL_SPARSE_ADD, PEFA_ERR_INVALID_ARG,
                    "query parameters: unknown xl_scoring %d", q->xl_scoring);
    RETURN_ERROR_IF(q->set & ~PEFA_SET_LAMBDA, PEFA_ERR_INVALID_ARG, "query parameters: unknown set bits 0x%x",
                    q->set);
    return 0;
}

/* the sections the mode reads */
static int check_mode(const pefa_model *m, const pefa_qp *r)
{
    RETURN_ERROR_IF(r->mode != PEFA_MODE_ERM && !m->E, PEFA_ERR_INVALID_ARG,
                    "%s: PEFA-%s needs training queries; this index was built without them", m->path,
                    r->mode == PEFA_MODE_XS ? "XS" : "XL");
    RETURN_ERROR_IF(r->mode == PEFA_MODE_XS && r->xs_rescore && !m->Z, PEFA_ERR_INVALID_ARG,
                    "%s: PEFA-XS with lambda %g (the build's is %g) needs the z vectors, which this index lacks",
                    m->path, (double)r->lambda, (double)m->info.xs_lambda);
    RETURN_ERROR_IF(r->mode == PEFA_MODE_XL && (!m->Q || !m->y_rowptr), PEFA_ERR_INVALID_ARG,
                    "%s: PEFA-XL needs training queries and their relevance matrix; this index has none", m->path);
    return 0;
}

int pefa__qp_resolve(const pefa_model *m, const pefa_query_params *p, pefa_qp *r)
{
    FORWARD_IF_ERROR(pefa__qp_resolve_set(m, p, r));
    RETURN_ERROR_IF(r->mode == PEFA_MODE_XL && m->shard_count > 1, PEFA_ERR_INVALID_ARG,
                    "%s: shard %u of a set of %u: PEFA-XL scores passages of every shard, query the set", m->path,
                    m->shard_index, m->shard_count);
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

void pefa__qp_fill(const pefa_qp *r, const pefa_query_params *p, pefa_query_params *out)
{
    pefa_query_params q;
    pefa__abi_in(&q, sizeof q, p, PEFA_V1_QUERY_PARAMS);
    q.size = sizeof q;
    q.mode = r->mode;
    q.k = r->k;
    q.ef = r->ef;
    q.knn = r->knn;
    q.topk_p = r->topk_p;
    q.lambda = r->lambda;
    q.set |= PEFA_SET_LAMBDA;
    q.exact = r->exact;
    pefa__abi_out(out, &q, PEFA_V1_QUERY_PARAMS, sizeof q);
}
