/*
 * hnsw_search.c - in-place HNSW search over the arrays described in hnsw.h,
 * and exact (brute force) top-k.
 *
 * Level 0 is the classic two-heap beam search: a min-heap of candidates to
 * expand and a max-heap of the best beam = max(ef, k) results; neighbour
 * vectors are prefetched before their distances are computed.
 * Distance is d = -<q, x>; smaller is better.
 *
 * Robustness: the view may come from an unverified (damaged) file.  Every
 * adjacency count is clamped to its block size, neighbour ids >= n are
 * skipped, upper blocks are found by binary search and bounds-checked
 * against upper_adj_len, greedy descent moves only on strict improvement and
 * every node enters the level-0 heaps at most once, so search terminates and
 * never reads outside the arrays.
 */
#include "hnsw/hnsw.h"
#include "hnsw/heap.h"
#include "kernels/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float d;
    uint32_t id;
    uint32_t checked;
} pool_ent;

typedef hnsw_cand hent;

struct hnsw_scratch {
    uint16_t *tags;     /* visited tags, one per node */
    size_t tags_cap;
    uint16_t epoch;
    pool_ent *pool;     /* exact search: bounded heap of the best k */
    size_t pool_cap;
    hent *cand;         /* min-heap of candidates to expand */
    size_t cand_cap;
    hent *res;          /* max-heap of the best beam results */
    size_t res_cap;
    int8_t *qcode;      /* the query's int8 codes (views with codes) */
    size_t qcode_cap;
};

hnsw_scratch *pefa__hnsw_scratch_new(void)
{
    return calloc(1, sizeof(hnsw_scratch));
}

void pefa__hnsw_scratch_free(hnsw_scratch *s)
{
    if (!s)
        return;
    free(s->tags);
    free(s->pool);
    free(s->cand);
    free(s->res);
    free(s->qcode);
    free(s);
}

/* Prepares the visited set for n nodes and returns the epoch to mark with. */
static int scratch_visit_begin(hnsw_scratch *s, uint32_t n, uint16_t *epoch)
{
    if (s->tags_cap < n) {
        size_t cap = s->tags_cap ? s->tags_cap : 1024;
        while (cap < n)
            cap *= 2;
        uint16_t *t = calloc(cap, sizeof *t);
        if (!t)
            return PEFA_ERR_NOMEM;
        free(s->tags);
        s->tags = t;
        s->tags_cap = cap;
        s->epoch = 0;
    }
    s->epoch++;
    if (s->epoch == 0) {
        memset(s->tags, 0, s->tags_cap * sizeof *s->tags);
        s->epoch = 1;
    }
    *epoch = s->epoch;
    return 0;
}

static int scratch_pool(hnsw_scratch *s, size_t need)
{
    if (s->pool_cap >= need)
        return 0;
    size_t cap = s->pool_cap ? s->pool_cap : 64;
    while (cap < need)
        cap *= 2;
    pool_ent *p = realloc(s->pool, cap * sizeof *p);
    if (!p)
        return PEFA_ERR_NOMEM;
    s->pool = p;
    s->pool_cap = cap;
    return 0;
}

static int grow_heap(hent **h, size_t *cap, size_t need)
{
    if (*cap >= need)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    hent *p = realloc(*h, c * sizeof *p);
    if (!p)
        return PEFA_ERR_NOMEM;
    *h = p;
    *cap = c;
    return 0;
}

/* bytes per value of a row type the kernels handle (f32, f16), else 0 */
static size_t elem_size(int elem)
{
    return elem == PEFA_TYPE_F32 || elem == PEFA_TYPE_F16 ? pefa_type_size((uint8_t)elem) : 0;
}

static inline const void *row(const hnsw_view *v, uint32_t id)
{
    return (const char *)v->vecs + (size_t)id * v->vec_stride;
}

static inline void prefetch_bytes(const void *row, size_t bytes)
{
    const char *p = row;
    for (size_t o = 0; o < bytes; o += 64)
        __builtin_prefetch(p + o, 0, 3);
}

/* Level-lev adjacency block of node id (lev >= 1), or NULL when the node has
 * no (valid) block at that level.  *cnt gets the clamped count. */
static const uint32_t *upper_block(const hnsw_view *v, uint32_t id, uint32_t lev, uint32_t *cnt)
{
    uint32_t lo = 0, hi = v->n_upper;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (v->upper_ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo >= v->n_upper || v->upper_ids[lo] != id)
        return NULL;
    uint64_t beg = v->upper_offs[lo], end = v->upper_offs[lo + 1];
    uint64_t bs = (uint64_t)v->M + 1;
    if (end < beg || end > v->upper_adj_len)
        return NULL;
    uint64_t levels = (end - beg) / bs;
    if (lev > levels)
        return NULL;
    const uint32_t *b = v->upper_adj + beg + (uint64_t)(lev - 1) * bs;
    uint32_t c = b[0];
    *cnt = c < v->M ? c : v->M;
    return b + 1;
}

static int check_view(const hnsw_view *v)
{
    size_t es = elem_size(v->elem);
    if (!es || v->dim == 0)
        return PEFA_ERR_INVALID_ARG;
    if (v->n == 0)
        return 0;
    if (!v->vecs || !v->l0 || v->vec_stride < (size_t)v->dim * es)
        return PEFA_ERR_INVALID_ARG;
    if (v->n_upper && (!v->upper_ids || !v->upper_offs))
        return PEFA_ERR_INVALID_ARG;
    if (v->upper_adj_len && !v->upper_adj)
        return PEFA_ERR_INVALID_ARG;
    if ((v->l0_stride && v->l0_stride < (size_t)v->M0 + 1) || (v->code_stride && v->code_stride < v->dim) ||
        (v->codes && !v->code_scales))
        return PEFA_ERR_INVALID_ARG;
    return 0;
}

#define CHUNK 64

/* what a search scores rows with: full rows, or the rows' int8 codes */
typedef struct {
    const hnsw_view *v;
    const float *q;
    pefa_dot_fn dot;
    pefa_dot_i8_fn dot8;   /* non-NULL: score on codes */
    const int8_t *qv;
    int32_t qsum;
    float qt;
    size_t row_bytes;      /* bytes a score reads (for prefetching) */
    size_t code_stride;
    size_t l0_stride;
    hnsw_pagemap *pm;      /* cold caches: read-ahead requests, or NULL */
    size_t *asked;         /* pages this search asked for */
} scorer;

/* asks for the pages of [p, p + bytes) ahead of reading them (pagemap.h) */
static inline void ahead(const scorer *sc, const void *p, size_t bytes)
{
    if (sc->pm) *sc->asked += pefa__pagemap_want(sc->pm, p, bytes);
}

static int scorer_init(scorer *sc, const hnsw_view *v, const float *q, hnsw_scratch *s)
{
    memset(sc, 0, sizeof *sc);
    sc->v = v;
    sc->q = q;
    sc->dot = pefa__dot_kernel(v->elem);
    sc->row_bytes = (size_t)v->dim * elem_size(v->elem);
    sc->l0_stride = v->l0_stride ? v->l0_stride : (size_t)v->M0 + 1;
    sc->code_stride = v->code_stride ? v->code_stride : v->dim;
    if (!sc->dot) return PEFA_ERR_INVALID_ARG;
    if (!v->codes) return 0;
    if (s->qcode_cap < v->dim) {
        int8_t *p = realloc(s->qcode, v->dim);
        if (!p) return PEFA_ERR_NOMEM;
        s->qcode = p;
        s->qcode_cap = v->dim;
    }
    pefa__quant_query(q, v->code_scales, v->dim, s->qcode, &sc->qsum, &sc->qt);
    sc->dot8 = pefa__dot_i8_kernel();
    sc->qv = s->qcode;
    sc->row_bytes = v->dim;
    return 0;
}

/* the traversal's distance of node id: minus the (approximate) inner product */
static inline float dist(const scorer *sc, uint32_t id)
{
    const hnsw_view *v = sc->v;
    if (sc->dot8) return -sc->qt * (float)sc->dot8(sc->qv, sc->qsum, v->codes + (size_t)id * sc->code_stride, v->dim);
    return -sc->dot(sc->q, row(v, id), v->dim);
}

static inline const void *scored_row(const scorer *sc, uint32_t id)
{
    return sc->dot8 ? (const void *)(sc->v->codes + (size_t)id * sc->code_stride) : row(sc->v, id);
}

/* Greedy descent from the entry point through the upper levels; returns the
 * level-0 start node and its distance in *d. Moves only on strict
 * improvement, so it ends on any (even cyclic) graph. */
static uint32_t descend(const scorer *sc, float *d)
{
    const hnsw_view *v = sc->v;
    uint32_t cur = v->entry < v->n ? v->entry : 0;
    float curd = dist(sc, cur);
    uint32_t top = v->n_upper == 0 ? 0 : v->max_level < PEFA_HNSW_MAX_LEVEL ? v->max_level : PEFA_HNSW_MAX_LEVEL;
    for (uint32_t lev = top; lev >= 1; lev--) {
        for (;;) {
            uint32_t cnt = 0, best = cur;
            float bestd = curd;
            const uint32_t *nb = upper_block(v, cur, lev, &cnt);
            if (!nb)
                break;
            for (uint32_t j = 0; sc->pm && j < cnt; j++)
                if (nb[j] < v->n) ahead(sc, scored_row(sc, nb[j]), sc->row_bytes);
            for (uint32_t j = 0; j < cnt; j++) {
                if (nb[j] >= v->n)
                    continue;
                float dd = dist(sc, nb[j]);
                if (dd < bestd) {
                    bestd = dd;
                    best = nb[j];
                }
            }
            if (best == cur)
                break;
            cur = best;
            curd = bestd;
        }
    }
    *d = curd;
    return cur;
}

/* Expands node c on level 0: unvisited neighbours are scored (prefetched a
 * chunk ahead) and enter both heaps when they beat the worst of the beam. */
static int expand(const scorer *sc, hnsw_scratch *s, uint16_t epoch, uint32_t c, size_t beam, size_t *ncand,
                  size_t *nres)
{
    const hnsw_view *v = sc->v;
    const uint32_t *blk = v->l0 + (size_t)c * sc->l0_stride, *nb = blk + 1;
    uint32_t cnt = blk[0] > v->M0 ? v->M0 : blk[0], todo[CHUNK];
    int rc;
    for (uint32_t j0 = 0; j0 < cnt; j0 += CHUNK) {
        uint32_t jn = cnt - j0 < CHUNK ? cnt - j0 : CHUNK, m = 0;
        for (uint32_t j = 0; j < jn; j++) {
            uint32_t x = nb[j0 + j];
            if (x >= v->n || s->tags[x] == epoch)
                continue;
            s->tags[x] = epoch;
            todo[m++] = x;
            __builtin_prefetch(scored_row(sc, x), 0, 3);
        }
        for (uint32_t j = 0; sc->pm && j < m; j++)
            ahead(sc, scored_row(sc, todo[j]), sc->row_bytes);
        if (*ncand + m > s->cand_cap && (rc = grow_heap(&s->cand, &s->cand_cap, *ncand + m)) != 0)
            return rc;
        for (uint32_t j = 0; j < m; j++) {
            if (j + 1 < m)
                prefetch_bytes(scored_row(sc, todo[j + 1]), sc->row_bytes);
            float d = dist(sc, todo[j]);
            if (*nres < beam || d < s->res[0].d) {
                minh_push(s->cand, ncand, d, todo[j]);
                maxh_push(s->res, nres, d, todo[j]);
                if (sc->pm) /* it may be expanded: its adjacency block too */
                    ahead(sc, v->l0 + (size_t)todo[j] * sc->l0_stride, (v->M0 + 1) * sizeof(uint32_t));
                if (*nres > beam)
                    maxh_pop(s->res, nres);
            }
        }
    }
    return 0;
}

/* the beam found on codes, re-scored from the full rows (exact scores) */
static int rerank(const scorer *sc, hnsw_scratch *s, size_t *nres)
{
    size_t n = *nres;
    int rc = grow_heap(&s->cand, &s->cand_cap, n);
    if (rc)
        return rc;
    for (size_t i = 0; sc->pm && i < n; i++)
        ahead(sc, row(sc->v, s->res[i].id), (size_t)sc->v->dim * elem_size(sc->v->elem));
    for (size_t i = 0; i < n; i++) {
        s->cand[i].id = s->res[i].id;
        s->cand[i].d = -sc->dot(sc->q, row(sc->v, s->res[i].id), sc->v->dim);
    }
    *nres = 0;
    for (size_t i = 0; i < n; i++)
        maxh_push(s->res, nres, s->cand[i].d, s->cand[i].id);
    return 0;
}

/* the best k of the result heap, best first, into ids/scores */
static size_t take_results(hnsw_scratch *s, size_t nres, uint32_t k, uint32_t *ids, float *scores)
{
    while (nres > k)
        maxh_pop(s->res, &nres);
    size_t out = nres;
    for (size_t r = out; r-- > 0;) {
        ids[r] = s->res[0].id;
        scores[r] = -s->res[0].d;
        maxh_pop(s->res, &nres);
    }
    return out;
}

int pefa__hnsw_search(const hnsw_view *v, const float *q, uint32_t k, uint32_t ef, hnsw_scratch *s, uint32_t *ids,
                      float *scores)
{
    if (!v || !q || !s || (k && (!ids || !scores)))
        return PEFA_ERR_INVALID_ARG;
    int rc = check_view(v);
    if (rc)
        return rc;
    if (k == 0 || v->n == 0)
        return 0;
    scorer sc;
    size_t asked = 0;
    if ((rc = scorer_init(&sc, v, q, s)) != 0)
        return rc;
    sc.pm = pefa__pagemap_begin(v->pages);
    sc.asked = &asked;
    float curd;
    uint32_t cur = descend(&sc, &curd);
    size_t beam = ef > k ? ef : k, nres = 0, ncand = 0;
    uint16_t epoch;
    if (beam > v->n)
        beam = v->n;
    if ((rc = scratch_visit_begin(s, v->n, &epoch)) != 0 || (rc = grow_heap(&s->res, &s->res_cap, beam + 1)) != 0 ||
        (rc = grow_heap(&s->cand, &s->cand_cap, 64)) != 0)
        return rc;
    minh_push(s->cand, &ncand, curd, cur);
    maxh_push(s->res, &nres, curd, cur);
    s->tags[cur] = epoch;
    while (ncand) {
        hent c = s->cand[0];
        if (nres >= beam && c.d > s->res[0].d)
            break;
        minh_pop(s->cand, &ncand);
        if (ncand)
            __builtin_prefetch(v->l0 + (size_t)s->cand[0].id * sc.l0_stride, 0, 3);
        if ((rc = expand(&sc, s, epoch, c.id, beam, &ncand, &nres)) != 0)
            return rc;
    }
    if (sc.dot8 && (rc = rerank(&sc, s, &nres)) != 0)
        return rc;
    pefa__pagemap_end(sc.pm, asked);
    return (int)take_results(s, nres, k, ids, scores);
}

/* ---- exact search ------------------------------------------------------------ */

/* a is worse than b: lower score, or equal score and larger id */
static inline int worse(float sa, uint32_t ia, float sb, uint32_t ib)
{
    return sa < sb || (sa == sb && ia > ib);
}

int pefa__exact_search(const void *vecs, uint32_t n, uint32_t dim, size_t vec_stride, int elem,
                 const float *q, uint32_t k, hnsw_scratch *s, uint32_t *ids, float *scores)
{
    size_t es = elem_size(elem);
    if (!q || !s || !es || dim == 0 || (k && (!ids || !scores)))
        return PEFA_ERR_INVALID_ARG;
    if (n && (!vecs || vec_stride < (size_t)dim * es))
        return PEFA_ERR_INVALID_ARG;
    if (k == 0 || n == 0)
        return 0;
    pefa_dot_fn dot = pefa__dot_kernel(elem);
    size_t kk = k < n ? k : n;
    int rc = scratch_pool(s, kk);
    if (rc)
        return rc;
    /* min-heap on (score, -id): root is the worst kept result */
    pool_ent *h = s->pool;
    size_t len = 0;
    for (uint32_t id = 0; id < n; id++) {
        float sc = dot(q, (const char *)vecs + (size_t)id * vec_stride, dim);
        if (sc != sc)
            sc = -INFINITY; /* NaN ranks last */
        size_t pos;
        if (len < kk) {
            pos = len++;
            while (pos > 0) {
                size_t par = (pos - 1) / 2;
                if (!worse(sc, id, h[par].d, h[par].id))
                    break;
                h[pos] = h[par];
                pos = par;
            }
        } else {
            if (!worse(h[0].d, h[0].id, sc, id))
                continue;
            pos = 0;
            for (;;) {
                size_t l = 2 * pos + 1, r = l + 1, w = pos;
                float wd = sc;
                uint32_t wi = id;
                if (l < len && worse(h[l].d, h[l].id, wd, wi)) {
                    w = l;
                    wd = h[l].d;
                    wi = h[l].id;
                }
                if (r < len && worse(h[r].d, h[r].id, wd, wi))
                    w = r;
                if (w == pos)
                    break;
                h[pos] = h[w];
                pos = w;
            }
        }
        h[pos].d = sc;
        h[pos].id = id;
    }
    /* pop worst-first into the tail of the output */
    for (size_t r = len; r-- > 0;) {
        ids[r] = h[0].id;
        scores[r] = h[0].d;
        pool_ent last = h[--len];
        size_t pos = 0;
        for (;;) {
            size_t l = 2 * pos + 1, rr = l + 1, w = pos;
            float wd = last.d;
            uint32_t wi = last.id;
            if (l < len && worse(h[l].d, h[l].id, wd, wi)) {
                w = l;
                wd = h[l].d;
                wi = h[l].id;
            }
            if (rr < len && worse(h[rr].d, h[rr].id, wd, wi))
                w = rr;
            if (w == pos)
                break;
            h[pos] = h[w];
            pos = w;
        }
        if (len)
            h[pos] = last;
    }
    return (int)kk;
}
