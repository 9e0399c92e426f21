/*
 * search.c - ERM, PEFA-XS and PEFA-XL queries over a mapped index, and
 * explanations of XL scores.
 *
 *   ERM  f(q, p_j) = <q, p_j>                          one MIPS search over P
 *   XS   f(q, p_j) = <q, e_j>                          one MIPS search over E
 *   XL   f(q, p_j) = lam <q, p_j> + (1-lam) sum_{i in NN(q,Q;k)} w_i Y_ij
 *
 * XL candidates are the top max(topk_p, k) passages by ERM union every
 * passage in the Y rows of the k neighbours. With exact scoring (default)
 * every candidate gets its true <q, p_j>; sparse-add reproduces the authors'
 * scripts (a kNN-only candidate gets ERM score 0). No step costs O(index
 * size) unless exact search is asked for.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "kernels/dist.h"
#include "pefa/params.h"
#include "pefa/search_private.h"
#include "pefa/ycsr.h"

static int grow(void **p, uint64_t *cap, uint64_t need, size_t elsize)
{
    void *np;
    uint64_t nc;
    if (need <= *cap) return 0;
    nc = need < 64 ? 64 : need + need / 2;
    np = realloc(*p, (size_t)nc * elsize);
    if (!np) return pefa__set_error(PEFA_ERR_NOMEM, "search: out of memory");
    *p = np;
    *cap = nc;
    return 0;
}

/* grows two parallel u32-indexed arrays to hold need entries */
static int grow2(void **a, void **b, uint32_t *cap, uint64_t need, size_t ea, size_t eb)
{
    uint64_t c1 = *cap, c2 = *cap;
    RETURN_ERROR_IF(need > UINT32_MAX, PEFA_ERR_INVALID_ARG, "search: %llu results asked", (unsigned long long)need);
    FORWARD_IF_ERROR(grow(a, &c1, need, ea));
    FORWARD_IF_ERROR(grow(b, &c2, need, eb));
    *cap = (uint32_t)(c1 < c2 ? c1 : c2);
    return 0;
}

int pefa__searcher_new(pefa_index *ix, pefa_model *m, pefa_searcher **out)
{
    pefa_searcher *s = (pefa_searcher *)calloc(1, sizeof *s);
    *out = NULL;
    RETURN_ERROR_IF(!s, PEFA_ERR_NOMEM, "%s: out of memory", m->path);
    s->ix = ix;
    s->m = m;
    s->dot = pefa__dot_kernel(m->elem);
    s->hs = pefa__hnsw_scratch_new();
    s->q = (float *)calloc((size_t)m->info.dim + 1, sizeof(float)); /* q[dim] stays 0 */
    if (!s->hs || !s->q || !s->dot) {
        pefa_searcher_free(s);
        return pefa__set_error(PEFA_ERR_NOMEM, "%s: out of memory", m->path);
    }
    *out = s;
    return 0;
}

int pefa_searcher_new(pefa_index *ix, pefa_searcher **out)
{
    pefa_model *m = NULL;
    *out = NULL;
    FORWARD_IF_ERROR(pefa__model_get(ix, &m));
    return pefa__searcher_new(ix, m, out);
}

void pefa_searcher_free(pefa_searcher *s)
{
    if (!s) return;
    pefa__hnsw_scratch_free(s->hs);
    free(s->q);
    free(s->ids);
    free(s->scores);
    free(s->nids);
    free(s->nsims);
    free(s->cand);
    free(s->rowcols);
    free(s->rowvals);
    free(s->cbuf);
    free(s);
}

int pefa__hit_row_cmp(const void *a, const void *b)
{
    const pefa_hit *x = (const pefa_hit *)a, *y = (const pefa_hit *)b;
    return x->row < y->row ? -1 : x->row > y->row;
}

static int better(const pefa_hit *x, const pefa_hit *y)
{
    return x->score > y->score || (x->score == y->score && x->row < y->row);
}

static int hit_cmp(const void *a, const void *b)
{
    const pefa_hit *x = (const pefa_hit *)a, *y = (const pefa_hit *)b;
    return better(x, y) ? -1 : better(y, x);
}

static const void *row_ptr(const pefa_searcher *s, const void *base, uint32_t r)
{
    return (const char *)base + (size_t)r * s->m->stride;
}

/* top-n of a vector set (rows of `cols` columns, `stride` bytes apart):
 * graph or brute force. s->q holds the query and a trailing 0, so it serves
 * the XS rows' extra column too. Returns the count or an error. */
static int search_set(pefa_searcher *s, const hnsw_view *g, int has_graph, const void *vecs, uint32_t rows,
                      uint32_t cols, size_t stride, uint32_t n, uint32_t ef, int exact)
{
    int got;
    uint32_t beam = ef > n ? ef : n;
    FORWARD_IF_ERROR(grow2((void **)&s->ids, (void **)&s->scores, &s->cap, n ? n : 1, 4, 4));
    /* a beam this wide over a set this small visits most of it anyway, at
     * several times the cost of one pass of dot products: scan it (exactly) */
    if (exact || !has_graph || (uint64_t)rows <= 4 * (uint64_t)beam)
        got = pefa__exact_search(vecs, rows, cols, stride, s->m->elem, s->q, n, s->hs, s->ids, s->scores);
    else
        got = pefa__hnsw_search(g, s->q, n, ef, s->hs, s->ids, s->scores);
    /* never silently fewer than asked: a graph that reaches fewer than n
     * nodes (badly connected, or damaged) is replaced by a scan */
    if (got >= 0 && (uint32_t)got < n && (uint32_t)got < rows && !exact && has_graph)
        got = pefa__exact_search(vecs, rows, cols, stride, s->m->elem, s->q, n, s->hs, s->ids, s->scores);
    if (got < 0) return pefa__set_error(got, "%s: vector search failed: %s", s->m->path, pefa_strerror(got));
    return got;
}

/* the query into s->q: L2-normalised under cosine, as given under ip */
int pefa__sq_prepare(pefa_searcher *s, const float *q)
{
    double norm = 0;
    uint32_t d = s->m->info.dim;
    for (uint32_t i = 0; i < d; i++) {
        RETURN_ERROR_IF(!isfinite(q[i]), PEFA_ERR_INVALID_ARG, "query value %u is %s", i,
                        isnan(q[i]) ? "NaN" : "infinite");
        norm += (double)q[i] * q[i];
    }
    if (s->m->info.similarity == PEFA_SIMILARITY_IP) {
        /* as the build refuses such rows: <q,p> must stay a float32 */
        RETURN_ERROR_IF(norm > FLT_MAX, PEFA_ERR_INVALID_ARG,
                        "query squared norm %.3g is over the float32 maximum %.3g: under the ip metric its scores "
                        "would overflow to infinity",
                        norm, (double)FLT_MAX);
        memcpy(s->q, q, d * sizeof(float));
        return 0;
    }
    norm = sqrt(norm); /* in double: huge values normalise exactly */
    for (uint32_t i = 0; i < d; i++) s->q[i] = norm > 0 ? (float)(q[i] / norm) : 0.0f;
    return 0;
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
void pefa__emit(pefa_hit *c, uint64_t nc, uint32_t k, pefa_hit *hits, uint32_t *n_hits)
{
    uint32_t n = (uint32_t)(nc < k ? nc : k);
    if (nc > k) select_top(c, nc, k);
    qsort(c, n, sizeof *c, hit_cmp);
    memcpy(hits, c, n * sizeof *hits);
    *n_hits = n;
}

/* ERM, or XS with the build lambda: one search */
static int search_one(pefa_searcher *s, const pefa_qp *r, pefa_hit *hits, uint32_t *n_hits)
{
    const pefa_model *m = s->m;
    int xs = r->mode == PEFA_MODE_XS;
    int got = xs ? search_set(s, &m->gx, m->info.has_graph_xs, m->E, m->info.n_passages, m->info.dim + 1, m->stride_e,
                              r->k, r->ef, r->exact)
                 : search_set(s, &m->gp, m->info.has_graph_passages, m->P, m->info.n_passages, m->info.dim, m->stride,
                              r->k, r->ef, r->exact);
    if (got < 0) return got;
    for (int i = 0; i < got; i++) { /* XS rows are e_j / xs_scale ([X1]; 1 under cosine) */
        hits[i].row = s->ids[i];
        hits[i].score = xs && m->info.xs_scale != 1.0f ? s->scores[i] * m->info.xs_scale : s->scores[i];
    }
    /* equal scores by row, as every other path (and a shard set's merge) orders them */
    qsort(hits, (size_t)got, sizeof *hits, hit_cmp);
    *n_hits = (uint32_t)got;
    return 0;
}

/* exact XS with another lambda: lam <q,p_j> + (1-lam) <q,z_j> over all rows */
static int search_xs_relambda(pefa_searcher *s, const pefa_qp *r, pefa_hit *hits, uint32_t *n_hits)
{
    uint64_t n = s->m->info.n_passages;
    FORWARD_IF_ERROR(grow((void **)&s->cand, &s->ccap, n ? n : 1, sizeof(pefa_hit)));
    for (uint64_t i = 0; i < n; i++) s->cand[i] = (pefa_hit){(uint32_t)i, pefa__sq_xs_score(s, r, (uint32_t)i)};
    pefa__emit(s->cand, n, r->k, hits, n_hits);
    return 0;
}

/* the knn training-query neighbours of q (s->nids) and their similarities */
static int neighbours(pefa_searcher *s, uint32_t knn, uint32_t ef, int exact, uint32_t *nn)
{
    const pefa_model *m = s->m;
    int got = search_set(s, &m->gq, m->info.has_graph_queries, m->Q, m->info.n_queries, m->info.dim, m->stride, knn,
                         ef, exact);
    if (got < 0) return got;
    FORWARD_IF_ERROR(grow2((void **)&s->nids, (void **)&s->nsims, &s->ncap, (uint64_t)got + 1, 4, 4));
    memcpy(s->nids, s->ids, (size_t)got * 4);
    memcpy(s->nsims, s->scores, (size_t)got * 4);
    *nn = (uint32_t)got;
    return 0;
}

static int xl_neighbours(pefa_searcher *s, const pefa_qp *r, uint32_t *nn)
{
    return neighbours(s, r->knn, r->ef, r->exact, nn);
}

/* training query qi's Y row into s->rowcols / s->rowvals */
static int decode_row(pefa_searcher *s, uint32_t qi, uint32_t *cnt)
{
    const pefa_model *m = s->m;
    int64_t nnz = pefa__ycsr_decode_row(m->y_rowptr, m->info.n_queries, m->y_rows, m->y_rows_len, m->y_cols,
                                        qi, s->rowcols, s->rowvals, s->rcap);
    if (nnz > (int64_t)s->rcap) {
        FORWARD_IF_ERROR(grow2((void **)&s->rowcols, (void **)&s->rowvals, &s->rcap, (uint64_t)nnz, 4, 4));
        nnz = pefa__ycsr_decode_row(m->y_rowptr, m->info.n_queries, m->y_rows, m->y_rows_len, m->y_cols, qi,
                                    s->rowcols, s->rowvals, s->rcap);
    }
    RETURN_ERROR_IF(nnz < 0, PEFA_ERR_CORRUPT, "%s: Y row %u is malformed", m->path, qi);
    *cnt = (uint32_t)nnz;
    return 0;
}

/* kNN part: s_j = sum_i w_i Y_ij over the neighbours' rows, as (row, s_j)
 * sorted by row in s->cand[0..*nk) */
int pefa__sq_knn(pefa_searcher *s, const pefa_qp *r, uint64_t *nk)
{
    uint32_t nn = 0;
    uint64_t n = 0, w = 0;
    FORWARD_IF_ERROR(xl_neighbours(s, r, &nn));
    for (uint32_t i = 0; i < nn; i++) {
        uint32_t cnt;
        float wi = s->nsims[i] / r->knn_div;
        FORWARD_IF_ERROR(decode_row(s, s->nids[i], &cnt));
        FORWARD_IF_ERROR(grow((void **)&s->cand, &s->ccap, n + cnt + 1, sizeof(pefa_hit)));
        for (uint32_t j = 0; j < cnt; j++) {
            s->cand[n].row = s->rowcols[j];
            s->cand[n].score = wi * s->rowvals[j];
            n++;
        }
    }
    qsort(s->cand, (size_t)n, sizeof(pefa_hit), pefa__hit_row_cmp);
    for (uint64_t i = 0; i < n; i++) {
        if (w > 0 && s->cand[w - 1].row == s->cand[i].row) s->cand[w - 1].score += s->cand[i].score;
        else s->cand[w++] = s->cand[i];
    }
    *nk = w;
    return 0;
}

static int search_xl(pefa_searcher *s, const pefa_qp *r, pefa_hit *hits, uint32_t *n_hits)
{
    const pefa_model *m = s->m;
    uint64_t nk = 0, nc = 0;
    int got;
    pefa_hit *K, *out;
    uint8_t *seen;
    FORWARD_IF_ERROR(pefa__sq_knn(s, r, &nk));
    got = search_set(s, &m->gp, m->info.has_graph_passages, m->P, m->info.n_passages, m->info.dim, m->stride,
                     r->topk_p, r->ef, r->exact);
    if (got < 0) return got;
    /* layout in cand: the kNN list K[nk] (row-sorted), the output area
     * [got + nk], then one "seen by an ERM hit" flag per K entry */
    FORWARD_IF_ERROR(grow((void **)&s->cand, &s->ccap, 3 * nk + (uint64_t)got + 1, sizeof(pefa_hit)));
    K = s->cand;
    out = s->cand + nk;
    seen = (uint8_t *)(s->cand + nk + got + nk);
    memset(seen, 0, (size_t)nk);
    for (int e = 0; e < got; e++) {
        pefa_hit key = {s->ids[e], 0};
        pefa_hit *f = nk ? (pefa_hit *)bsearch(&key, K, (size_t)nk, sizeof(pefa_hit), pefa__hit_row_cmp) : NULL;
        out[nc].row = s->ids[e];
        out[nc].score = r->lambda * s->scores[e] + (f ? (1 - r->lambda) * f->score : 0.0f);
        if (f) seen[f - K] = 1;
        nc++;
    }
    for (uint64_t a = 0; a < nk; a++) { /* kNN-only candidates */
        float erm;
        if (seen[a]) continue;
        erm = r->xl_scoring == PEFA_XL_EXACT ? s->dot(s->q, row_ptr(s, m->P, K[a].row), m->info.dim) : 0.0f;
        out[nc].row = K[a].row;
        out[nc].score = r->lambda * erm + (1 - r->lambda) * K[a].score;
        nc++;
    }
    pefa__emit(out, nc, r->k, hits, n_hits);
    return 0;
}

/* ---- PEFA-XS over candidates (pefa.h, PEFA_XS_KNN) ------------------------- */
uint64_t pefa__hits_unique_rows(pefa_hit *c, uint64_t n)
{
    uint64_t w = 0;
    qsort(c, (size_t)n, sizeof *c, pefa__hit_row_cmp);
    for (uint64_t i = 0; i < n; i++)
        if (w == 0 || c[w - 1].row != c[i].row) c[w++] = c[i];
    return w;
}

int pefa__sq_xs_knn_rows(pefa_searcher *s, uint64_t *n)
{
    const pefa_model *m = s->m;
    uint32_t nn = 0;
    uint64_t c = 0;
    *n = 0;
    if (!m->Q || !m->y_rowptr || !m->info.n_queries) return 0;
    FORWARD_IF_ERROR(neighbours(s, PEFA_XS_KNN, PEFA_XS_KNN_EF, 0, &nn));
    for (uint32_t i = 0; i < nn; i++) {
        uint32_t cnt;
        FORWARD_IF_ERROR(decode_row(s, s->nids[i], &cnt));
        FORWARD_IF_ERROR(grow((void **)&s->cand, &s->ccap, c + cnt + 1, sizeof(pefa_hit)));
        for (uint32_t j = 0; j < cnt; j++) s->cand[c++] = (pefa_hit){s->rowcols[j], 0};
    }
    *n = pefa__hits_unique_rows(s->cand, c);
    return 0;
}

int pefa__sq_xs_beam(pefa_searcher *s, const pefa_qp *r, int passages)
{
    const pefa_model *m = s->m;
    uint32_t ef = passages ? r->ef / 3 : 2 * r->ef / 3; /* pefa.h: PEFA_XS_KNN */
    if (ef < r->k) ef = r->k;
    if (passages)
        return search_set(s, &m->gp, m->info.has_graph_passages, m->P, m->info.n_passages, m->info.dim, m->stride,
                          r->k, ef, 0);
    /* another lambda than the build's: the whole beam, re-scored */
    return search_set(s, &m->gx, m->info.has_graph_xs, m->E, m->info.n_passages, m->info.dim + 1, m->stride_e,
                      r->xs_rescore ? ef : r->k, ef, 0);
}

float pefa__sq_xs_score(const pefa_searcher *s, const pefa_qp *r, uint32_t row)
{
    const pefa_model *m = s->m;
    if (r->xs_rescore)
        return r->lambda * s->dot(s->q, row_ptr(s, m->P, row), m->info.dim) +
               (1 - r->lambda) * s->dot(s->q, row_ptr(s, m->Z, row), m->info.dim);
    return s->dot(s->q, (const char *)m->E + (size_t)row * m->stride_e, m->info.dim + 1) * m->info.xs_scale;
}

/* appends s->ids[0..got) to s->cand[*n..) */
static int append_ids(pefa_searcher *s, int got, uint64_t *n)
{
    if (got < 0) return got;
    FORWARD_IF_ERROR(grow((void **)&s->cand, &s->ccap, *n + (uint64_t)got + 1, sizeof(pefa_hit)));
    for (int i = 0; i < got; i++) s->cand[(*n)++] = (pefa_hit){s->ids[i], 0};
    return 0;
}

static int search_xs(pefa_searcher *s, const pefa_qp *r, pefa_hit *hits, uint32_t *n_hits)
{
    uint64_t n = 0;
    /* one shard of a set alone: its Y columns are the set's rows, not its own */
    if (s->m->shard_count <= 1) FORWARD_IF_ERROR(pefa__sq_xs_knn_rows(s, &n));
    FORWARD_IF_ERROR(append_ids(s, pefa__sq_xs_beam(s, r, 0), &n));
    FORWARD_IF_ERROR(append_ids(s, pefa__sq_xs_beam(s, r, 1), &n));
    n = pefa__hits_unique_rows(s->cand, n);
    for (uint64_t i = 0; i < n; i++) s->cand[i].score = pefa__sq_xs_score(s, r, s->cand[i].row);
    pefa__emit(s->cand, n, r->k, hits, n_hits);
    return 0;
}

int pefa__sq_top(pefa_searcher *s, const pefa_qp *r, pefa_hit *hits, uint32_t *n_hits)
{
    if (r->mode == PEFA_MODE_XS && !r->exact) return search_xs(s, r, hits, n_hits);
    if (r->mode == PEFA_MODE_XS && r->xs_rescore) return search_xs_relambda(s, r, hits, n_hits);
    return search_one(s, r, hits, n_hits);
}

int pefa__sq_erm(pefa_searcher *s, uint32_t n, uint32_t ef, int exact)
{
    const pefa_model *m = s->m;
    return search_set(s, &m->gp, m->info.has_graph_passages, m->P, m->info.n_passages, m->info.dim, m->stride, n, ef,
                      exact);
}

float pefa__sq_dot_p(const pefa_searcher *s, uint32_t row)
{
    return s->dot(s->q, row_ptr(s, s->m->P, row), s->m->info.dim);
}

int pefa__search_resolved(pefa_searcher *s, const float *q, const pefa_qp *r, pefa_hit *hits, uint32_t *n_hits)
{
    *n_hits = 0;
    FORWARD_IF_ERROR(pefa__sq_prepare(s, q));
    if (r->mode == PEFA_MODE_XL) return search_xl(s, r, hits, n_hits);
    return pefa__sq_top(s, r, hits, n_hits);
}

int pefa_search(pefa_searcher *s, const float *q, const pefa_query_params *p, pefa_hit *hits, uint32_t *n_hits)
{
    pefa_qp r;
    *n_hits = 0;
    FORWARD_IF_ERROR(pefa__qp_resolve(s->m, p, &r));
    return pefa__search_resolved(s, q, &r, hits, n_hits);
}

/* ---- explain ---------------------------------------------------------------- */
/* contributions are collected with the position of their passage in the
 * caller's list (in passage_row while collecting), then sorted by position and
 * by decreasing contribution */
static int contrib_cmp(const void *a, const void *b)
{
    const pefa_contrib *x = (const pefa_contrib *)a, *y = (const pefa_contrib *)b;
    if (x->passage_row != y->passage_row) return x->passage_row < y->passage_row ? -1 : 1;
    if (x->contribution != y->contribution) return x->contribution > y->contribution ? -1 : 1;
    return x->query_row < y->query_row ? -1 : x->query_row > y->query_row;
}

/* positions of the asked rows, sorted by row (for a binary search per Y entry) */
static int explain_order(pefa_searcher *s, const uint32_t *rows, uint32_t n_rows, uint32_t n_passages)
{
    FORWARD_IF_ERROR(grow((void **)&s->cand, &s->ccap, n_rows ? n_rows : 1, sizeof(pefa_hit)));
    for (uint32_t k = 0; k < n_rows; k++) {
        RETURN_ERROR_IF(rows[k] >= n_passages, PEFA_ERR_INVALID_ARG,
                        "explain: passage row %u out of range (%u passages)", rows[k], n_passages);
        s->cand[k].row = rows[k];
        memcpy(&s->cand[k].score, &k, sizeof k); /* the position rides in the score's bits */
    }
    qsort(s->cand, n_rows, sizeof(pefa_hit), pefa__hit_row_cmp);
    return 0;
}

/* neighbour i's Y row (decoded in s->rowcols/rowvals): one contribution per
 * entry whose passage was asked for (each position it was asked at) */
static int explain_row(pefa_searcher *s, const pefa_qp *r, uint32_t i, uint32_t cnt, uint32_t n_rows, uint64_t *n)
{
    for (uint32_t j = 0; j < cnt; j++) {
        pefa_hit key = {s->rowcols[j], 0}, *f;
        f = (pefa_hit *)bsearch(&key, s->cand, n_rows, sizeof(pefa_hit), pefa__hit_row_cmp);
        if (!f) continue;
        while (f > s->cand && f[-1].row == key.row) f--;
        for (; f < s->cand + n_rows && f->row == key.row; f++) {
            pefa_contrib *c;
            FORWARD_IF_ERROR(grow((void **)&s->cbuf, &s->cbcap, *n + 1, sizeof(pefa_contrib)));
            c = &s->cbuf[(*n)++];
            memcpy(&c->passage_row, &f->score, sizeof c->passage_row);
            c->query_row = s->nids[i];
            c->similarity = s->nsims[i];
            c->y = s->rowvals[j];
            c->contribution = (1 - r->lambda) * (s->nsims[i] / r->knn_div) * s->rowvals[j];
        }
    }
    return 0;
}

int pefa_explain(pefa_searcher *s, const float *q, const pefa_query_params *p, const uint32_t *rows,
                 uint32_t n_rows, pefa_contrib *out, uint32_t cap, uint32_t *n_out)
{
    pefa_qp r;
    *n_out = 0;
    FORWARD_IF_ERROR(pefa__qp_resolve(s->m, p, &r)); /* refuses a shard: its votes point into the others */
    return pefa__explain_rows(s, q, p, rows, n_rows, out, cap, n_out, s->m->info.n_passages);
}

int pefa__explain_rows(pefa_searcher *s, const float *q, const pefa_query_params *p, const uint32_t *rows,
                       uint32_t n_rows, pefa_contrib *out, uint32_t cap, uint32_t *n_out, uint32_t n_passages)
{
    pefa_qp r;
    uint32_t nn = 0;
    uint64_t n = 0;
    *n_out = 0;
    FORWARD_IF_ERROR(pefa__qp_resolve_set(s->m, p, &r));
    RETURN_ERROR_IF(r.mode != PEFA_MODE_XL, PEFA_ERR_INVALID_ARG, "explain: works with PEFA-XL only");
    FORWARD_IF_ERROR(pefa__sq_prepare(s, q));
    FORWARD_IF_ERROR(xl_neighbours(s, &r, &nn));
    FORWARD_IF_ERROR(explain_order(s, rows, n_rows, n_passages));
    for (uint32_t i = 0; i < nn; i++) {
        uint32_t cnt;
        FORWARD_IF_ERROR(decode_row(s, s->nids[i], &cnt));
        FORWARD_IF_ERROR(explain_row(s, &r, i, cnt, n_rows, &n));
    }
    qsort(s->cbuf, (size_t)n, sizeof *s->cbuf, contrib_cmp);
    for (uint64_t c = 0; c < n && c < cap; c++) {
        out[c] = s->cbuf[c];
        out[c].passage_row = rows[out[c].passage_row];
    }
    RETURN_ERROR_IF(n > UINT32_MAX, PEFA_ERR_NOMEM, "explain: %llu contributions", (unsigned long long)n);
    *n_out = (uint32_t)n;
    return 0;
}
