/*
 * hnsw_build.c - HNSW construction (Malkov & Yashunin), inner-product metric.
 *
 * - Levels are drawn up front, per node id, from a seeded splitmix64 stream:
 *   level = floor(-ln(U) / ln(M)).  Since every level is known before the
 *   first insertion, the final arrays (l0, upper_ids, upper_offs, upper_adj)
 *   are allocated in their hnsw.h layout and filled in place; no packing.
 * - Node 0 is inserted first, then 1..n-1 are taken from an atomic counter by
 *   the worker threads (threads = 1 gives a deterministic graph for a seed).
 * - Each node's adjacency (all levels) is guarded by its own mutex; readers
 *   copy a list under the lock.  The entry point / max level are guarded by a
 *   global lock, held for the whole insertion of a node that raises max level.
 * - New links are chosen with the neighbour-selection heuristic (a candidate is
 *   kept only if it is closer to the base than to every kept neighbour);
 *   M at every level for the new node; an overfull neighbour list (M on upper
 *   levels, M0 on level 0) is re-pruned with the same heuristic.
 *
 * Distance is d(a, b) = -<a, b>; smaller is better.
 */
#include "hnsw/hnsw.h"

#include "common/error.h"
#include "hnsw/heap.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef hnsw_cand cand;

typedef struct {
    /* input */
    const void *vecs;
    uint32_t n, dim;
    size_t stride;
    size_t row_bytes;    /* bytes of one row (prefetching) */
    int elem;
    pefa_dot_fn dot;
    uint32_t M, M0, ef;
    /* graph */
    uint8_t *level;
    uint32_t *uidx;      /* node -> index into upper_ids/upper_offs (or UINT32_MAX) */
    uint32_t *l0;
    uint32_t *upper_ids;
    uint64_t *upper_offs;
    uint32_t *upper_adj;
    uint32_t n_upper;
    uint64_t upper_len;
    pthread_mutex_t *locks;
    uint32_t nlocks;
    int have_glocks;
    /* entry point */
    pthread_mutex_t ep_lock;
    uint32_t entry;
    uint32_t max_level;
    /* work distribution / progress */
    atomic_uint_fast32_t next;
    atomic_uint_fast64_t done;
    uint64_t report_step;
    hnsw_progress_fn progress;
    void *progress_ctx;
    pthread_mutex_t progress_lock;
} bctx;

typedef struct {
    bctx *b;
    uint16_t *tags;
    uint16_t epoch;
    cand *pool;      /* ef + 1: result max-heap, then sorted results */
    cand *cand;      /* candidate min-heap (grows) */
    size_t cand_cap;
    uint32_t *nbuf;  /* M0 + 1 */
    cand *pr;        /* M0 + 1 : prune candidates */
    uint32_t *sel;   /* M0 + 1 */
    float *qbuf;     /* dim: query as f32 (f16 rows) */
    float *cbuf;     /* dim: candidate as f32 (f16 rows) */
} worker;

static inline const void *brow(const bctx *b, uint32_t id)
{
    return (const char *)b->vecs + (size_t)id * b->stride;
}

/* row id as f32 (converted into buf for f16 rows) */
static inline const float *brow_f32(const bctx *b, uint32_t id, float *buf)
{
    if (b->elem == PEFA_TYPE_F32)
        return (const float *)brow(b, id);
    pefa_f16_to_f32((const uint16_t *)brow(b, id), buf, b->dim);
    return buf;
}

/* the whole row id into the cache (its first line is asked for earlier) */
static inline void prefetch_row(const bctx *b, uint32_t id)
{
    const char *p = (const char *)brow(b, id);
    for (size_t o = 64; o < b->row_bytes; o += 64)
        __builtin_prefetch(p + o, 0, 3);
}

/* adjacency block {count, nbrs...} of node id at level lev */
static inline uint32_t *block(const bctx *b, uint32_t id, uint32_t lev)
{
    if (lev == 0)
        return b->l0 + (size_t)id * (b->M0 + 1);
    return b->upper_adj + b->upper_offs[b->uidx[id]] + (uint64_t)(lev - 1) * (b->M + 1);
}

/* copies the list of id at lev into out under the node lock; returns count */
static inline uint32_t read_list(const bctx *b, uint32_t id, uint32_t lev, uint32_t *out)
{
    uint32_t cap = lev ? b->M : b->M0;
    const uint32_t *blk = block(b, id, lev);
    pthread_mutex_lock(&b->locks[id]);
    uint32_t c = blk[0];
    if (c > cap)
        c = cap;
    memcpy(out, blk + 1, c * sizeof *out);
    pthread_mutex_unlock(&b->locks[id]);
    return c;
}

static void next_epoch(worker *w)
{
    w->epoch++;
    if (w->epoch == 0) {
        memset(w->tags, 0, (size_t)w->b->n * sizeof *w->tags);
        w->epoch = 1;
    }
}

/* Beam search at level lev from (ep, epd).  The results are left in w->pool
 * sorted by distance (closest first); returns their count. */
static size_t search_level(worker *w, const float *qv, uint32_t ep, float epd, uint32_t lev, size_t ef)
{
    bctx *b = w->b;
    next_epoch(w);
    uint16_t epoch = w->epoch;
    cand *res = w->pool, *cq = w->cand;
    size_t nres = 0, ncand = 0;
    minh_push(cq, &ncand, epd, ep);
    maxh_push(res, &nres, epd, ep);
    w->tags[ep] = epoch;
    while (ncand) {
        cand c = cq[0];
        if (nres >= ef && c.d > res[0].d)
            break;
        minh_pop(cq, &ncand);
        uint32_t cnt = read_list(b, c.id, lev, w->nbuf), m = 0;
        /* the unvisited neighbours first (their first lines prefetched), then
         * their distances, each next row prefetched whole (as search.c) */
        for (uint32_t j = 0; j < cnt; j++) {
            uint32_t x = w->nbuf[j];
            if (w->tags[x] == epoch)
                continue;
            w->tags[x] = epoch;
            w->nbuf[m++] = x;
            __builtin_prefetch(brow(b, x), 0, 3);
        }
        for (uint32_t j = 0; j < m; j++) {
            uint32_t x = w->nbuf[j];
            if (j + 1 < m)
                prefetch_row(b, w->nbuf[j + 1]);
            float d = -b->dot(qv, brow(b, x), b->dim);
            if (nres < ef || d < res[0].d) {
                if (ncand == w->cand_cap) {
                    cand *nc = realloc(w->cand, 2 * w->cand_cap * sizeof *nc);
                    if (!nc)
                        continue; /* out of memory: drop the candidate */
                    w->cand = cq = nc;
                    w->cand_cap *= 2;
                }
                minh_push(cq, &ncand, d, x);
                maxh_push(res, &nres, d, x);
                if (nres > ef)
                    maxh_pop(res, &nres);
            }
        }
    }
    /* heap -> ascending array in place: pop the max into the tail */
    size_t len = nres;
    while (nres > 1) {
        cand top = res[0];
        maxh_pop(res, &nres);
        res[nres] = top;
    }
    return len;
}

/* rows x and y hold the same vector (the heuristic's tie: a duplicate of a
 * kept neighbour adds no direction) */
static int same_row(const bctx *b, uint32_t x, uint32_t y)
{
    return memcmp(brow(b, x), brow(b, y), (size_t)b->dim * (b->elem == PEFA_TYPE_F32 ? 4u : 2u)) == 0;
}

/* Heuristic selection from c[0..nc) (sorted by distance to the base, closest
 * first): keep c if it is closer to the base than to every kept one.
 * Writes up to m ids into out; returns the count. */
static uint32_t select_heuristic(worker *w, const cand *c, size_t nc, uint32_t m, uint32_t *out)
{
    bctx *b = w->b;
    uint32_t ns = 0;
    for (size_t i = 0; i < nc && ns < m; i++) {
        const float *cv = brow_f32(b, c[i].id, w->cbuf);
        int good = 1;
        for (uint32_t s = 0; s < ns; s++) {
            float ds = -b->dot(cv, brow(b, out[s]), b->dim);
            if (ds < c[i].d || (ds == c[i].d && same_row(b, c[i].id, out[s]))) {
                good = 0;
                break;
            }
        }
        if (good)
            out[ns++] = c[i].id;
    }
    return ns;
}

static int cand_cmp(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    if (a->d < b->d)
        return -1;
    if (a->d > b->d)
        return 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* adds q to the level-lev list of e, re-pruning the list if it is full */
static void link_back(worker *w, uint32_t e, uint32_t q, uint32_t lev)
{
    bctx *b = w->b;
    uint32_t cap = lev ? b->M : b->M0;
    uint32_t *blk = block(b, e, lev);
    pthread_mutex_lock(&b->locks[e]);
    uint32_t c = blk[0];
    if (c > cap)
        c = cap;
    for (uint32_t j = 0; j < c; j++) {
        if (blk[1 + j] == q) {
            pthread_mutex_unlock(&b->locks[e]);
            return;
        }
    }
    if (c < cap) {
        blk[1 + c] = q;
        blk[0] = c + 1;
        pthread_mutex_unlock(&b->locks[e]);
        return;
    }
    /* full: re-select among existing + q, measured from e.  For f16 rows e
     * is converted into the second half of qbuf (the first half holds the
     * vector being inserted; cbuf is used by select_heuristic). */
    const float *ev;
    if (b->elem == PEFA_TYPE_F32) {
        ev = (const float *)brow(b, e);
    } else {
        pefa_f16_to_f32((const uint16_t *)brow(b, e), w->qbuf + b->dim, b->dim);
        ev = w->qbuf + b->dim;
    }
    size_t nc = 0;
    for (uint32_t j = 0; j < c; j++) {
        uint32_t x = blk[1 + j];
        w->pr[nc].id = x;
        w->pr[nc].d = -b->dot(ev, brow(b, x), b->dim);
        nc++;
    }
    w->pr[nc].id = q;
    w->pr[nc].d = -b->dot(ev, brow(b, q), b->dim);
    nc++;
    qsort(w->pr, nc, sizeof *w->pr, cand_cmp);
    uint32_t ns = select_heuristic(w, w->pr, nc, cap, w->sel);
    memcpy(blk + 1, w->sel, ns * sizeof *w->sel);
    for (uint32_t j = ns; j < cap; j++)
        blk[1 + j] = 0;
    blk[0] = ns;
    pthread_mutex_unlock(&b->locks[e]);
}

static void insert_node(worker *w, uint32_t q)
{
    bctx *b = w->b;
    const float *qv = brow_f32(b, q, w->qbuf);
    uint32_t lq = b->level[q];

    pthread_mutex_lock(&b->ep_lock);
    uint32_t maxl = b->max_level, ep = b->entry;
    int hold = lq > maxl;
    if (!hold)
        pthread_mutex_unlock(&b->ep_lock);

    float epd = -b->dot(qv, brow(b, ep), b->dim);
    /* greedy descent above lq */
    for (uint32_t lev = maxl; lev > lq; lev--) {
        int changed = 1;
        while (changed) {
            changed = 0;
            uint32_t cnt = read_list(b, ep, lev, w->nbuf);
            for (uint32_t j = 0; j < cnt; j++) {
                uint32_t x = w->nbuf[j];
                float d = -b->dot(qv, brow(b, x), b->dim);
                if (d < epd) {
                    epd = d;
                    ep = x;
                    changed = 1;
                }
            }
        }
    }
    uint32_t top = lq < maxl ? lq : maxl;
    for (uint32_t lev = top + 1; lev-- > 0;) {
        size_t len = search_level(w, qv, ep, epd, lev, b->ef);
        uint32_t ns = select_heuristic(w, w->pool, len, b->M, w->sel);
        /* next level starts from the closest candidate found */
        ep = w->pool[0].id;
        epd = w->pool[0].d;
        uint32_t *blk = block(b, q, lev);
        pthread_mutex_lock(&b->locks[q]);
        memcpy(blk + 1, w->sel, ns * sizeof *w->sel);
        blk[0] = ns;
        pthread_mutex_unlock(&b->locks[q]);
        /* w->sel is reused by link_back's pruning: keep a copy in nbuf */
        memcpy(w->nbuf, w->sel, ns * sizeof *w->sel);
        for (uint32_t j = 0; j < ns; j++)
            link_back(w, w->nbuf[j], q, lev);
    }
    if (hold) {
        b->entry = q;
        b->max_level = lq;
        pthread_mutex_unlock(&b->ep_lock);
    }
}

static void report(bctx *b)
{
    uint64_t d = atomic_fetch_add(&b->done, 1) + 1;
    if (!b->progress)
        return;
    if (d % b->report_step == 0 || d == b->n) {
        pthread_mutex_lock(&b->progress_lock);
        b->progress(b->progress_ctx, d, b->n);
        pthread_mutex_unlock(&b->progress_lock);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    bctx *b = w->b;
    for (;;) {
        uint32_t q = (uint32_t)atomic_fetch_add(&b->next, 1);
        if (q >= b->n)
            break;
        insert_node(w, q);
        report(b);
    }
    return NULL;
}

static void worker_free(worker *w)
{
    free(w->tags);
    free(w->pool);
    free(w->cand);
    free(w->nbuf);
    free(w->pr);
    free(w->sel);
    free(w->qbuf);
    free(w->cbuf);
}

static int worker_init(worker *w, bctx *b)
{
    memset(w, 0, sizeof *w);
    w->b = b;
    size_t mm = (size_t)b->M0 + 1;
    w->tags = calloc(b->n, sizeof *w->tags);
    w->pool = malloc(((size_t)b->ef + 1) * sizeof *w->pool);
    w->cand_cap = 4 * (size_t)b->ef + 64;
    w->cand = malloc(w->cand_cap * sizeof *w->cand);
    w->nbuf = malloc(mm * sizeof *w->nbuf);
    w->pr = malloc(mm * sizeof *w->pr);
    w->sel = malloc(mm * sizeof *w->sel);
    w->qbuf = malloc(2 * (size_t)b->dim * sizeof *w->qbuf);
    w->cbuf = malloc((size_t)b->dim * sizeof *w->cbuf);
    if (!w->tags || !w->pool || !w->cand || !w->nbuf || !w->pr || !w->sel || !w->qbuf || !w->cbuf) {
        worker_free(w);
        return PEFA_ERR_NOMEM;
    }
    return 0;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void pefa__hnsw_graph_free(hnsw_graph *g)
{
    if (!g)
        return;
    free(g->l0);
    free(g->upper_ids);
    free(g->upper_offs);
    free(g->upper_adj);
    memset(g, 0, sizeof *g);
}

/* Levels, drawn up front in node-id order from the seed:
 * level = floor(-ln(U) / ln(M)), capped at PEFA_HNSW_MAX_LEVEL. */
static void draw_levels(bctx *b, uint64_t seed)
{
    uint64_t st = seed;
    double mult = 1.0 / log((double)b->M);
    for (uint32_t i = 0; i < b->n; i++) {
        double u = (double)(splitmix64(&st) >> 11) * (1.0 / 9007199254740992.0);
        if (u <= 0.0)
            u = 1.0 / 9007199254740992.0;
        double lv = floor(-log(u) * mult);
        b->level[i] = (uint8_t)(lv > PEFA_HNSW_MAX_LEVEL ? PEFA_HNSW_MAX_LEVEL : lv);
        if (b->level[i])
            b->n_upper++;
    }
}

/* The final arrays in their hnsw.h layout, sized from the drawn levels. */
static int alloc_layout(bctx *b)
{
    uint32_t n = b->n, k = 0;
    uint64_t off = 0;
    b->l0 = calloc((size_t)n * (b->M0 + 1) + 1, sizeof *b->l0);
    b->upper_ids = malloc(((size_t)b->n_upper + 1) * sizeof *b->upper_ids);
    b->upper_offs = malloc(((size_t)b->n_upper + 1) * sizeof *b->upper_offs);
    if (!b->l0 || !b->upper_ids || !b->upper_offs)
        return PEFA_ERR_NOMEM;
    for (uint32_t i = 0; i < n; i++) {
        if (b->level[i]) {
            b->upper_ids[k] = i;
            b->upper_offs[k] = off;
            b->uidx[i] = k;
            off += (uint64_t)b->level[i] * (b->M + 1);
            k++;
        } else {
            b->uidx[i] = UINT32_MAX;
        }
    }
    b->upper_offs[k] = off;
    b->upper_len = off;
    b->upper_adj = calloc(b->upper_len + 1, sizeof *b->upper_adj);
    return b->upper_adj ? 0 : PEFA_ERR_NOMEM;
}

/* Inserts node 0 as the entry point, then 1..n-1 from `threads` workers
 * (the calling thread is one of them). */
static int run_workers(bctx *b, uint32_t threads)
{
    worker *ws = calloc(threads, sizeof *ws);
    pthread_t *tids = calloc(threads, sizeof *tids);
    uint32_t ninit = 0, started = 1;
    int rc = PEFA_ERR_NOMEM;
    if (!ws || !tids)
        goto out;
    for (; ninit < threads; ninit++)
        if (worker_init(&ws[ninit], b) != 0)
            goto out;
    b->entry = 0;
    b->max_level = b->level[0];
    atomic_store(&b->next, 1);
    report(b);
    for (; started < threads; started++)
        if (pthread_create(&tids[started], NULL, worker_main, &ws[started]) != 0)
            break; /* fewer threads: the others take the work */
    worker_main(&ws[0]);
    for (uint32_t i = 1; i < started; i++)
        pthread_join(tids[i], NULL);
    rc = 0;
out:
    for (uint32_t i = 0; i < ninit; i++)
        worker_free(&ws[i]);
    free(ws);
    free(tids);
    return rc;
}

static int init_locks(bctx *b)
{
    b->locks = malloc((size_t)b->n * sizeof *b->locks);
    if (!b->locks)
        return PEFA_ERR_NOMEM;
    for (; b->nlocks < b->n; b->nlocks++)
        pthread_mutex_init(&b->locks[b->nlocks], NULL);
    pthread_mutex_init(&b->ep_lock, NULL);
    pthread_mutex_init(&b->progress_lock, NULL);
    b->have_glocks = 1;
    return 0;
}

static void bctx_free(bctx *b)
{
    for (uint32_t i = 0; i < b->nlocks; i++)
        pthread_mutex_destroy(&b->locks[i]);
    if (b->have_glocks) {
        pthread_mutex_destroy(&b->ep_lock);
        pthread_mutex_destroy(&b->progress_lock);
    }
    free(b->locks);
    free(b->level);
    free(b->uidx);
    free(b->l0);
    free(b->upper_ids);
    free(b->upper_offs);
    free(b->upper_adj);
    free(b);
}

/* moves the arrays of b into g and fills its view */
static void export_graph(bctx *b, hnsw_graph *g)
{
    hnsw_view *v = &g->view;
    g->l0 = b->l0;
    g->upper_ids = b->upper_ids;
    g->upper_offs = b->upper_offs;
    g->upper_adj = b->upper_adj;
    b->l0 = NULL;
    b->upper_ids = NULL;
    b->upper_offs = NULL;
    b->upper_adj = NULL;
    v->n = b->n;
    v->dim = b->dim;
    v->M = b->M;
    v->M0 = b->M0;
    v->max_level = b->max_level;
    v->entry = b->entry;
    v->vecs = b->vecs;
    v->vec_stride = b->stride;
    v->elem = b->elem;
    v->l0 = g->l0;
    v->n_upper = b->n_upper;
    v->upper_ids = g->upper_ids;
    v->upper_offs = g->upper_offs;
    v->upper_adj = g->upper_adj;
    v->upper_adj_len = b->upper_len;
}

static uint32_t build_threads(uint32_t want, uint32_t n)
{
    long c = want ? (long)want : sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t t = c < 1 ? 1u : c > (long)PEFA_MAX_THREADS ? PEFA_MAX_THREADS : (uint32_t)c;
    return n && t > n ? n : t;
}

static bctx *bctx_new(const void *vecs, uint32_t n, uint32_t dim, size_t vec_stride, int elem,
                      const hnsw_build_params *p)
{
    bctx *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->vecs = vecs;
    b->n = n;
    b->dim = dim;
    b->stride = vec_stride;
    b->elem = elem;
    b->row_bytes = (size_t)dim * (elem == PEFA_TYPE_F32 ? 4u : 2u);
    b->dot = pefa__dot_kernel(elem);
    b->M = p->M ? p->M : 16;
    b->M0 = 2 * b->M;
    b->ef = p->ef_construction > b->M ? p->ef_construction : b->M;
    b->progress = p->progress;
    b->progress_ctx = p->progress_ctx;
    b->report_step = n >= 100 ? n / 100 : 1;
    b->level = malloc(n ? n : 1);
    b->uidx = malloc((n ? n : 1) * sizeof *b->uidx);
    if (!b->level || !b->uidx) {
        bctx_free(b);
        return NULL;
    }
    return b;
}

int pefa__hnsw_build(const void *vecs, uint32_t n, uint32_t dim, size_t vec_stride, int elem,
                     const hnsw_build_params *p, hnsw_graph *g)
{
    size_t es = elem == PEFA_TYPE_F32 || elem == PEFA_TYPE_F16 ? pefa_type_size((uint8_t)elem) : 0;
    bctx *b;
    int rc;
    memset(g, 0, sizeof *g);
    if (!es || dim == 0 || (n && (!vecs || vec_stride < (size_t)dim * es)) || !p)
        return pefa__set_error(PEFA_ERR_INVALID_ARG, "hnsw: bad vectors (type %d, dim %u)", elem, dim);
    if ((p->M && (p->M < 2 || p->M > PEFA_MAX_M)) || p->ef_construction > (1u << 24))
        return pefa__set_error(PEFA_ERR_INVALID_ARG, "hnsw: M %u or ef_construction %u out of range", p->M,
                               p->ef_construction);
    if (!(b = bctx_new(vecs, n, dim, vec_stride, elem, p)))
        return pefa__set_error(PEFA_ERR_NOMEM, "hnsw: out of memory for %u nodes", n);
    draw_levels(b, p->seed);
    rc = alloc_layout(b);
    if (!rc && n > 0 && !(rc = init_locks(b)))
        rc = run_workers(b, build_threads(p->threads, n));
    if (!rc)
        export_graph(b, g);
    bctx_free(b);
    return rc ? pefa__set_error(rc, "hnsw: out of memory building a graph over %u nodes", n) : 0;
}
