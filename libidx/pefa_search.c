/*
 * pefa_search.c - ERM, PEFA-XS and PEFA-XL queries over a mapped index.
 *
 *   ERM  f(q, p_j) = <q, p_j>                          one MIPS search over P
 *   XS   f(q, p_j) = <q, e_j>                          one MIPS search over E
 *   XL   f(q, p_j) = lam <q, p_j> + (1-lam) sum_{i in NN(q,Q;k)} w_i Y_ij
 *
 * XL candidates are the top topk_p passages by ERM union every passage in the
 * Y rows of the k neighbours. With exact scoring (default) every candidate
 * gets its true <q, p_j>; sparse-add reproduces the authors' scripts (a
 * kNN-only candidate gets ERM score 0). No step costs O(index size) unless
 * params.exact asks for brute force.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "error_private.h"
#include "model.h"
#include "ycsr.h"

struct pefa_searcher {
    pefa_index *ix;
    const pefa_model *m;
    hnsw_scratch *hs;
    pefa_dot_fn dot;
    float *q;                /* normalised query */
    /* growable buffers */
    uint32_t *ids;
    float *scores;
    uint32_t cap;
    uint32_t *nids;          /* kNN neighbours */
    float *nsims;
    uint32_t ncap;
    pefa_hit *cand;          /* XL candidates */
    uint64_t ccap;
    uint32_t *rowcols;       /* one decoded Y row */
    float *rowvals;
    uint32_t rcap;
};

static int grow(void **p, uint64_t *cap, uint64_t need, size_t elsize)
{
    void *np;
    uint64_t nc;
    if (need <= *cap) return 0;
    nc = need < 64 ? 64 : need + need / 2;
    np = realloc(*p, (size_t)nc * elsize);
    if (!np) return pefa_set_error(PEFA_ERR_NOMEM, "search: out of memory");
    *p = np;
    *cap = nc;
    return 0;
}

static int grow32(void **a, void **b, uint32_t *cap, uint64_t need, size_t ea, size_t eb)
{
    uint64_t c1 = *cap, c2 = *cap;
    if (need > UINT32_MAX) return pefa_set_error(PEFA_ERR_INVALID_ARG, "search: %llu results asked", (unsigned long long)need);
    FORWARD_IF_ERROR(grow(a, &c1, need, ea));
    FORWARD_IF_ERROR(grow(b, &c2, need, eb));
    *cap = (uint32_t)(c1 < c2 ? c1 : c2);
    return 0;
}

int pefa_searcher_new(pefa_index *ix, pefa_searcher **out)
{
    pefa_searcher *s;
    const pefa_model *m;
    *out = NULL;
    FORWARD_IF_ERROR(pefa_model_get(ix, &m));
    s = (pefa_searcher *)calloc(1, sizeof *s);
    RETURN_ERROR_IF(!s, PEFA_ERR_NOMEM, "%s: out of memory", pefa_index_path(ix));
    s->ix = ix;
    s->m = m;
    s->dot = pefa_dot_kernel(m->elem);
    s->hs = hnsw_scratch_new();
    s->q = (float *)calloc((size_t)m->info.dim + 1, sizeof(float)); /* q[dim] stays 0 */
    if (!s->hs || !s->q || !s->dot) {
        pefa_searcher_free(s);
        return pefa_set_error(PEFA_ERR_NOMEM, "%s: out of memory", pefa_index_path(ix));
    }
    *out = s;
    return 0;
}

void pefa_searcher_free(pefa_searcher *s)
{
    if (!s) return;
    hnsw_scratch_free(s->hs);
    free(s->q);
    free(s->ids);
    free(s->scores);
    free(s->nids);
    free(s->nsims);
    free(s->cand);
    free(s->rowcols);
    free(s->rowvals);
    free(s);
}

static int hit_cmp(const void *a, const void *b)
{
    const pefa_hit *x = (const pefa_hit *)a, *y = (const pefa_hit *)b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static int row_cmp(const void *a, const void *b)
{
    const pefa_hit *x = (const pefa_hit *)a, *y = (const pefa_hit *)b;
    return x->row < y->row ? -1 : x->row > y->row;
}

static const void *row_ptr(const pefa_searcher *s, const void *base, uint32_t r)
{
    return (const char *)base + (size_t)r * s->m->stride;
}

/* top-n of a vector set (rows of `cols` columns, `stride` bytes apart):
 * graph or brute force. s->q holds the query and a trailing 0, so it serves
 * the XS rows' extra column too. */
static int search_set(pefa_searcher *s, const hnsw_view *g, int has_graph, const void *vecs, uint32_t rows,
                      uint32_t cols, size_t stride, uint32_t n, uint32_t ef, int exact, uint32_t **ids, float **scores)
{
    int got;
    uint32_t beam = ef > n ? ef : n;
    FORWARD_IF_ERROR(grow32((void **)&s->ids, (void **)&s->scores, &s->cap, n ? n : 1, 4, 4));
    /* a beam this wide over a set this small visits most of it anyway, at
     * several times the cost of one pass of dot products: scan it (exactly) */
    if (exact || !has_graph || (uint64_t)rows <= 4 * (uint64_t)beam)
        got = exact_search(vecs, rows, cols, stride, s->m->elem, s->q, n, s->hs, s->ids, s->scores);
    else
        got = hnsw_search(g, s->q, n, ef, s->hs, s->ids, s->scores);
    if (got < 0)
        return pefa_set_error(got == -1 ? PEFA_ERR_NOMEM : PEFA_ERR_INVALID_ARG, "%s: vector search failed",
                              pefa_index_path(s->ix));
    *ids = s->ids;
    *scores = s->scores;
    return got;
}

static int prepare_query(pefa_searcher *s, const float *q)
{
    double norm = 0;
    uint32_t d = s->m->info.dim;
    for (uint32_t i = 0; i < d; i++) {
        RETURN_ERROR_IF(!isfinite(q[i]), PEFA_ERR_INVALID_ARG, "query value %u is not finite", i);
        norm += (double)q[i] * q[i];
    }
    norm = sqrt(norm);
    for (uint32_t i = 0; i < d; i++) s->q[i] = norm > 0 ? (float)(q[i] / norm) : 0.0f;
    return 0;
}

static int better(const pefa_hit *x, const pefa_hit *y)
{
    return x->score > y->score || (x->score == y->score && x->row < y->row);
}

/* moves the k best of c[0..n) to the front: quickselect with a Lomuto
 * partition, so every round places its pivot and shrinks the range */
static void select_top(pefa_hit *c, uint64_t n, uint64_t k)
{
    uint64_t lo = 0, hi = n; /* the k-th best lies in [lo, hi) */
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2, store = lo, i;
        pefa_hit t = c[mid];
        c[mid] = c[hi - 1];
        c[hi - 1] = t;
        for (i = lo; i < hi - 1; i++)
            if (better(&c[i], &c[hi - 1])) {
                t = c[i];
                c[i] = c[store];
                c[store] = t;
                store++;
            }
        t = c[store];
        c[store] = c[hi - 1];
        c[hi - 1] = t;
        if (store == k - 1 || store == k) return;
        if (store > k) hi = store;
        else lo = store + 1;
    }
}

/* best k of c[0..nc), sorted, into hits */
static int emit(pefa_searcher *s, pefa_hit *c, uint64_t nc, uint32_t k, pefa_hit *hits, uint32_t *n_hits)
{
    uint32_t n = (uint32_t)(nc < k ? nc : k);
    (void)s;
    if (nc > k) select_top(c, nc, k);
    qsort(c, n, sizeof *c, hit_cmp);
    memcpy(hits, c, n * sizeof *hits);
    *n_hits = n;
    return 0;
}

/* ERM / XS with the build lambda: one search */
static int search_one(pefa_searcher *s, const hnsw_view *g, int has_graph, const void *vecs, uint32_t cols,
                      size_t stride, const pefa_query_params *p, pefa_hit *hits, uint32_t *n_hits)
{
    uint32_t *ids;
    float *sc;
    int got = search_set(s, g, has_graph, vecs, s->m->info.n_passages, cols, stride, p->k, p->ef, p->exact, &ids, &sc);
    if (got < 0) return got;
    for (int i = 0; i < got; i++) {
        hits[i].row = ids[i];
        hits[i].score = sc[i];
    }
    *n_hits = (uint32_t)got;
    return 0;
}

/* XS with another lambda: lam <q,p_j> + (1-lam) <q,z_j> over all rows (exact)
 * or over the XS graph's beam (approximate), then re-ranked */
static int search_xs_relambda(pefa_searcher *s, const pefa_query_params *p, float lam, pefa_hit *hits, uint32_t *n_hits)
{
    const pefa_model *m = s->m;
    uint64_t n;
    uint32_t *ids = NULL;
    float *sc;
    RETURN_ERROR_IF(!m->Z, PEFA_ERR_INVALID_ARG, "%s: PEFA-XS with lambda %g needs the z vectors (built without them)",
                    pefa_index_path(s->ix), (double)lam);
    if (p->exact || !m->info.has_graph_xs) {
        n = m->info.n_passages;
    } else {
        uint32_t beam = p->ef > p->k ? p->ef : p->k;
        int got = search_set(s, &m->gx, 1, m->E, m->info.n_passages, m->info.dim + 1, m->stride_e, beam, beam, 0, &ids,
                             &sc);
        if (got < 0) return got;
        n = (uint64_t)got;
    }
    FORWARD_IF_ERROR(grow((void **)&s->cand, &s->ccap, n ? n : 1, sizeof(pefa_hit)));
    for (uint64_t i = 0; i < n; i++) {
        uint32_t r = ids ? ids[i] : (uint32_t)i;
        s->cand[i].row = r;
        s->cand[i].score = lam * s->dot(s->q, row_ptr(s, m->P, r), m->info.dim) +
                           (1 - lam) * s->dot(s->q, row_ptr(s, m->Z, r), m->info.dim);
    }
    return emit(s, s->cand, n, p->k, hits, n_hits);
}

/* the k training-query neighbours of q and their weights */
static int xl_neighbours(pefa_searcher *s, const pefa_query_params *p, uint32_t *nn)
{
    const pefa_model *m = s->m;
    uint32_t *ids;
    float *sc;
    int got;
    got = search_set(s, &m->gq, m->info.has_graph_queries, m->Q, m->info.n_queries, m->info.dim, m->stride, p->knn,
                     p->ef, p->exact, &ids, &sc);
    if (got < 0) return got;
    FORWARD_IF_ERROR(grow32((void **)&s->nids, (void **)&s->nsims, &s->ncap, (uint64_t)got + 1, 4, 4));
    memcpy(s->nids, ids, (size_t)got * 4);
    memcpy(s->nsims, sc, (size_t)got * 4);
    *nn = (uint32_t)got;
    return 0;
}

static int decode_row(pefa_searcher *s, uint32_t qi, uint32_t *cnt)
{
    const pefa_model *m = s->m;
    int64_t nnz = ycsr_decode_row(m->y_rowptr, m->info.n_queries, m->y_rows, m->y_rows_len, m->info.n_passages, qi,
                                  s->rowcols, s->rowvals, s->rcap);
    if (nnz > (int64_t)s->rcap) {
        FORWARD_IF_ERROR(grow32((void **)&s->rowcols, (void **)&s->rowvals, &s->rcap, (uint64_t)nnz, 4, 4));
        nnz = ycsr_decode_row(m->y_rowptr, m->info.n_queries, m->y_rows, m->y_rows_len, m->info.n_passages, qi,
                              s->rowcols, s->rowvals, s->rcap);
    }
    RETURN_ERROR_IF(nnz < 0, PEFA_ERR_CORRUPT, "%s: Y row %u is malformed", pefa_index_path(s->ix), qi);
    *cnt = (uint32_t)nnz;
    return 0;
}

static int check_xl(const pefa_searcher *s)
{
    RETURN_ERROR_IF(!s->m->Q || !s->m->y_rowptr, PEFA_ERR_INVALID_ARG,
                    "%s: PEFA-XL needs training queries and their relevance matrix; this index has none",
                    pefa_index_path(s->ix));
    return 0;
}

static int search_xl(pefa_searcher *s, const pefa_query_params *p, float lam, pefa_hit *hits, uint32_t *n_hits)
{
    const pefa_model *m = s->m;
    uint32_t nn = 0, *ids;
    float *sc;
    uint64_t nk = 0, w, i, a, b, nc;
    int got;
    float knn_div = p->knn_norm == PEFA_KNN_V1 ? 1.0f : (float)(p->knn < s->m->info.n_queries ? p->knn : s->m->info.n_queries);
    FORWARD_IF_ERROR(check_xl(s));
    FORWARD_IF_ERROR(xl_neighbours(s, p, &nn));
    /* kNN part: s_j = sum_i w_i Y_ij over the neighbours' rows, as (row, s_j)
     * sorted by row in cand[0..nk) */
    for (i = 0; i < nn; i++) {
        uint32_t cnt;
        float wi = s->nsims[i] / knn_div;
        FORWARD_IF_ERROR(decode_row(s, s->nids[i], &cnt));
        FORWARD_IF_ERROR(grow((void **)&s->cand, &s->ccap, nk + cnt + 1, sizeof(pefa_hit)));
        for (uint32_t j = 0; j < cnt; j++) {
            s->cand[nk].row = s->rowcols[j];
            s->cand[nk].score = wi * s->rowvals[j];
            nk++;
        }
    }
    qsort(s->cand, (size_t)nk, sizeof(pefa_hit), row_cmp);
    for (w = 0, i = 0; i < nk; i++) {
        if (w > 0 && s->cand[w - 1].row == s->cand[i].row)
            s->cand[w - 1].score += s->cand[i].score;
        else
            s->cand[w++] = s->cand[i];
    }
    nk = w;
    /* ERM part: top topk_p by <q, p_j>. Each ERM hit looks itself up in the
     * (short, row-sorted) kNN list; kNN entries it finds are flagged by
     * negating their row's sign bit in a side array, and the rest are
     * kNN-only candidates. No sort of the ERM list is needed. */
    got = search_set(s, &m->gp, m->info.has_graph_passages, m->P, m->info.n_passages, m->info.dim, m->stride, p->topk_p,
                     p->ef, p->exact,
                     &ids, &sc);
    if (got < 0) return got;
    FORWARD_IF_ERROR(grow((void **)&s->cand, &s->ccap, 3 * nk + (uint64_t)got + 1, sizeof(pefa_hit)));
    {
        pefa_hit *K = s->cand, *out = s->cand + nk;
        uint8_t *seen = (uint8_t *)(s->cand + nk + got + nk); /* nk flags after the output area */
        nc = 0;
        memset(seen, 0, (size_t)nk);
        for (int e = 0; e < got; e++) {
            pefa_hit key = {ids[e], 0};
            pefa_hit *f = nk ? (pefa_hit *)bsearch(&key, K, (size_t)nk, sizeof(pefa_hit), row_cmp) : NULL;
            out[nc].row = ids[e];
            if (f) {
                out[nc].score = lam * sc[e] + (1 - lam) * f->score;
                seen[f - K] = 1;
            } else {
                out[nc].score = lam * sc[e];
            }
            nc++;
        }
        for (a = 0; a < nk; a++) {
            float erm;
            if (seen[a]) continue;
            erm = p->xl_scoring == PEFA_XL_EXACT ? s->dot(s->q, row_ptr(s, m->P, K[a].row), m->info.dim) : 0.0f;
            out[nc].row = K[a].row;
            out[nc].score = lam * erm + (1 - lam) * K[a].score;
            nc++;
        }
        (void)b;
        return emit(s, out, nc, p->k, hits, n_hits);
    }
}

int pefa_search(pefa_searcher *s, const float *q, const pefa_query_params *p, pefa_hit *hits, uint32_t *n_hits)
{
    const pefa_model *m = s->m;
    float lam;
    *n_hits = 0;
    RETURN_ERROR_IF(!p || p->k == 0, PEFA_ERR_INVALID_ARG, "search: k must be at least 1");
    FORWARD_IF_ERROR(prepare_query(s, q));
    switch (p->mode) {
    case PEFA_MODE_ERM:
        return search_one(s, &m->gp, m->info.has_graph_passages, m->P, m->info.dim, m->stride, p, hits, n_hits);
    case PEFA_MODE_XS:
        RETURN_ERROR_IF(!m->E, PEFA_ERR_INVALID_ARG,
                        "%s: PEFA-XS needs training queries; this index was built without them",
                        pefa_index_path(s->ix));
        if (p->lambda < 0 || fabsf(p->lambda - m->info.xs_lambda) < 1e-7f)
            return search_one(s, &m->gx, m->info.has_graph_xs, m->E, m->info.dim + 1, m->stride_e, p, hits, n_hits);
        RETURN_ERROR_IF(p->lambda > 1, PEFA_ERR_INVALID_ARG, "search: lambda %g outside [0, 1]", (double)p->lambda);
        return search_xs_relambda(s, p, p->lambda, hits, n_hits);
    case PEFA_MODE_XL:
        lam = p->lambda < 0 ? 0.1f : p->lambda;
        RETURN_ERROR_IF(lam > 1, PEFA_ERR_INVALID_ARG, "search: lambda %g outside [0, 1]", (double)lam);
        RETURN_ERROR_IF(p->knn == 0, PEFA_ERR_INVALID_ARG, "search: knn must be at least 1");
        return search_xl(s, p, lam, hits, n_hits);
    default:
        return pefa_set_error(PEFA_ERR_INVALID_ARG, "search: unknown mode %d", p->mode);
    }
}

int pefa_explain(pefa_searcher *s, const float *q, const pefa_query_params *p, uint32_t passage_row,
                 pefa_contrib *out, uint32_t max, uint32_t *n)
{
    uint32_t nn = 0, found = 0;
    float lam = p->lambda < 0 ? 0.1f : p->lambda;
    float knn_div = p->knn_norm == PEFA_KNN_V1 ? 1.0f : (float)(p->knn < s->m->info.n_queries ? p->knn : s->m->info.n_queries);
    *n = 0;
    RETURN_ERROR_IF(p->knn == 0, PEFA_ERR_INVALID_ARG, "explain: knn must be at least 1");
    FORWARD_IF_ERROR(check_xl(s));
    RETURN_ERROR_IF(passage_row >= s->m->info.n_passages, PEFA_ERR_INVALID_ARG, "explain: passage row %u out of range",
                    passage_row);
    FORWARD_IF_ERROR(prepare_query(s, q));
    FORWARD_IF_ERROR(xl_neighbours(s, p, &nn));
    for (uint32_t i = 0; i < nn; i++) {
        uint32_t cnt;
        FORWARD_IF_ERROR(decode_row(s, s->nids[i], &cnt));
        for (uint32_t j = 0; j < cnt; j++)
            if (s->rowcols[j] == passage_row) {
                if (found < max) {
                    out[found].query_row = s->nids[i];
                    out[found].similarity = s->nsims[i];
                    out[found].y = s->rowvals[j];
                    out[found].contribution = (1 - lam) * (s->nsims[i] / knn_div) * s->rowvals[j];
                }
                found++;
            }
    }
    *n = found < max ? found : max;
    return 0;
}
