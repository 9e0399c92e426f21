/*
 * set_search.c - searching a shard set (pefa.h section 4c): the shards'
 * answers merged exactly.
 *
 *   ERM, XS  each shard's top k (rows made global), the best k of them
 *   XL       shard 0: the k nearest training queries and their votes
 *            K_j (Y's columns are global rows); every shard: its top
 *            topk_p by <q, p>; the best topk_p of those are the ERM
 *            candidates, as one index would find them; every candidate
 *            scored lam <q, p_j> + (1-lam) K_j, kNN-only ones with their
 *            true <q, p_j> from the shard holding them.
 * In exact mode this is the unsharded index's computation, step for step.
 * A batch runs queries in parallel, each thread with a searcher per shard.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "pefa/set_private.h"
#include "pefa/search_private.h"

/* one thread's searchers (one per shard) and merge buffers */
typedef struct {
    pefa_set *set;
    pefa_searcher **s;
    pefa_hit *buf, *knn;
    uint64_t cap, kcap;
} set_worker;

static int grow_hits(pefa_hit **p, uint64_t *cap, uint64_t need)
{
    pefa_hit *np;
    if (need <= *cap) return 0;
    np = (pefa_hit *)realloc(*p, (size_t)(need + need / 2 + 64) * sizeof *np);
    RETURN_ERROR_IF(!np, PEFA_ERR_NOMEM, "set search: out of memory");
    *p = np;
    *cap = need + need / 2 + 64;
    return 0;
}

static int worker_init(set_worker *w, pefa_set *set)
{
    memset(w, 0, sizeof *w);
    w->set = set;
    w->s = (pefa_searcher **)calloc(set->n, sizeof *w->s);
    RETURN_ERROR_IF(!w->s, PEFA_ERR_NOMEM, "set search: out of memory");
    for (uint32_t i = 0; i < set->n; i++) FORWARD_IF_ERROR(pefa__pool_take(set->ix[i], set->m[i], &w->s[i]));
    return 0;
}

static void worker_done(set_worker *w)
{
    for (uint32_t i = 0; w->s && i < w->set->n; i++)
        if (w->s[i]) pefa__pool_give(w->set->m[i], w->s[i]);
    free(w->s);
    free(w->buf);
    free(w->knn);
}

/* ERM / XS: every shard's top k, rows made global, the best k */
static int set_top(set_worker *w, const pefa_qp *r, pefa_hit *hits, uint32_t *n_hits)
{
    uint64_t n = 0;
    FORWARD_IF_ERROR(grow_hits(&w->buf, &w->cap, (uint64_t)w->set->n * r->k));
    for (uint32_t i = 0; i < w->set->n; i++) {
        uint32_t got;
        FORWARD_IF_ERROR(pefa__sq_top(w->s[i], r, w->buf + n, &got));
        for (uint32_t h = 0; h < got; h++) w->buf[n + h].row += w->set->from[i];
        n += got;
    }
    pefa__emit(w->buf, n, r->k, hits, n_hits);
    return 0;
}

/* appends shard i's s->ids[0..got), made global, to w->buf[*n..) */
static int append_shard_ids(set_worker *w, uint32_t i, int got, uint64_t *n)
{
    if (got < 0) return got;
    FORWARD_IF_ERROR(grow_hits(&w->buf, &w->cap, *n + (uint64_t)got + 1));
    for (int e = 0; e < got; e++) w->buf[(*n)++] = (pefa_hit){w->s[i]->ids[e] + w->set->from[i], 0};
    return 0;
}

/* XS (not exact): search.c's search_xs over the set: shard 0's training
 * queries name candidates anywhere, every shard adds its two beams, and
 * each candidate is scored by the shard holding it */
static int set_xs(set_worker *w, const pefa_qp *r, pefa_hit *hits, uint32_t *n_hits)
{
    uint64_t n = 0, u;
    FORWARD_IF_ERROR(pefa__sq_xs_knn_rows(w->s[0], &n));
    FORWARD_IF_ERROR(grow_hits(&w->buf, &w->cap, n + 1));
    memcpy(w->buf, w->s[0]->cand, (size_t)n * sizeof(pefa_hit));
    for (uint32_t i = 0; i < w->set->n; i++) {
        FORWARD_IF_ERROR(append_shard_ids(w, i, pefa__sq_xs_beam(w->s[i], r, 0), &n));
        FORWARD_IF_ERROR(append_shard_ids(w, i, pefa__sq_xs_beam(w->s[i], r, 1), &n));
    }
    u = pefa__hits_unique_rows(w->buf, n);
    for (uint64_t e = 0; e < u; e++) {
        uint32_t row = w->buf[e].row, i = pefa__set_shard_of(w->set, row);
        w->buf[e].score = pefa__sq_xs_score(w->s[i], r, row - w->set->from[i]);
    }
    pefa__emit(w->buf, u, r->k, hits, n_hits);
    return 0;
}

/* XL: the top topk_p by <q, p> over every shard into w->buf[0..*n) */
static int set_erm_candidates(set_worker *w, const pefa_qp *r, uint64_t *n)
{
    uint64_t all = 0;
    uint32_t keep;
    FORWARD_IF_ERROR(grow_hits(&w->buf, &w->cap, (uint64_t)w->set->n * r->topk_p + 1));
    for (uint32_t i = 0; i < w->set->n; i++) {
        int got = pefa__sq_erm(w->s[i], r->topk_p, r->ef, r->exact);
        if (got < 0) return got;
        for (int e = 0; e < got; e++)
            w->buf[all++] = (pefa_hit){w->s[i]->ids[e] + w->set->from[i], w->s[i]->scores[e]};
    }
    pefa__emit(w->buf, all, r->topk_p, w->buf, &keep); /* sorted in place: the best first */
    *n = keep;
    return 0;
}

/* XL over the set (search.c's search_xl, its steps spread over the shards) */
static int set_xl(set_worker *w, const pefa_qp *r, pefa_hit *hits, uint32_t *n_hits)
{
    uint64_t nk, ne, nc = 0;
    pefa_hit *out;
    uint8_t *seen;
    FORWARD_IF_ERROR(pefa__sq_knn(w->s[0], r, &nk));
    FORWARD_IF_ERROR(grow_hits(&w->knn, &w->kcap, nk + 1));
    memcpy(w->knn, w->s[0]->cand, (size_t)nk * sizeof(pefa_hit));
    FORWARD_IF_ERROR(set_erm_candidates(w, r, &ne));
    FORWARD_IF_ERROR(grow_hits(&w->buf, &w->cap, 2 * (ne + nk) + nk + 1));
    out = w->buf + ne;
    seen = (uint8_t *)(out + ne + nk);
    memset(seen, 0, (size_t)nk);
    for (uint64_t e = 0; e < ne; e++) {
        pefa_hit key = {w->buf[e].row, 0};
        pefa_hit *f = nk ? (pefa_hit *)bsearch(&key, w->knn, (size_t)nk, sizeof(pefa_hit), pefa__hit_row_cmp) : NULL;
        out[nc].row = w->buf[e].row;
        out[nc].score = r->lambda * w->buf[e].score + (f ? (1 - r->lambda) * f->score : 0.0f);
        if (f) seen[f - w->knn] = 1;
        nc++;
    }
    for (uint64_t a = 0; a < nk; a++) { /* kNN-only candidates, scored by the shard holding them */
        uint32_t row = w->knn[a].row, i = pefa__set_shard_of(w->set, row);
        float erm;
        if (seen[a]) continue;
        erm = r->xl_scoring == PEFA_XL_EXACT ? pefa__sq_dot_p(w->s[i], row - w->set->from[i]) : 0.0f;
        out[nc].row = row;
        out[nc].score = r->lambda * erm + (1 - r->lambda) * w->knn[a].score;
        nc++;
    }
    pefa__emit(out, nc, r->k, hits, n_hits);
    return 0;
}

static int set_query(set_worker *w, const float *q, const pefa_qp *r, pefa_hit *hits, uint32_t *n_hits)
{
    *n_hits = 0;
    for (uint32_t i = 0; i < w->set->n; i++) FORWARD_IF_ERROR(pefa__sq_prepare(w->s[i], q));
    if (r->mode == PEFA_MODE_XL) return set_xl(w, r, hits, n_hits);
    if (r->mode == PEFA_MODE_XS && !r->exact) return set_xs(w, r, hits, n_hits);
    return set_top(w, r, hits, n_hits);
}

/* the parameters, resolved against shard 0, checked against every shard */
static int set_resolve(pefa_set *s, const pefa_query_params *p, pefa_qp *r)
{
    FORWARD_IF_ERROR(pefa__qp_resolve_set(s->m[0], p, r));
    for (uint32_t i = 1; i < s->n; i++) {
        pefa_qp other;
        if (r->mode == PEFA_MODE_XL) break; /* XL reads shard 0's queries and every shard's P */
        FORWARD_IF_ERROR(pefa__qp_resolve_set(s->m[i], p, &other));
    }
    return 0;
}

int pefa_set_query_params_resolve(pefa_set *s, const pefa_query_params *p, pefa_query_params *out)
{
    pefa_qp r;
    FORWARD_IF_ERROR(set_resolve(s, p, &r));
    pefa__qp_fill(&r, p, out);
    return 0;
}

/* ---- batch ---------------------------------------------------------------------------- */
typedef struct {
    pefa_set *set;
    const pefa_qp *r;
    const float *queries;
    uint64_t stride, from, to;
    pefa_hit *hits;
    uint32_t *n_hits;
    int rc;
    uint64_t failed;
    char err[512];
} set_job;

static void *set_batch_worker(void *arg)
{
    set_job *j = (set_job *)arg;
    set_worker w;
    j->rc = worker_init(&w, j->set);
    for (uint64_t i = j->from; i < j->to && !j->rc; i++)
        if ((j->rc = set_query(&w, j->queries + i * j->stride, j->r, j->hits + i * j->r->k, &j->n_hits[i])) != 0)
            j->failed = i;
    if (j->rc) snprintf(j->err, sizeof j->err, "%s", pefa_last_error_detail());
    worker_done(&w);
    return NULL;
}

int pefa_set_search_batch(pefa_set *s, const float *queries, uint64_t n, uint64_t stride, const pefa_query_params *p,
                          uint32_t threads, pefa_hit *hits, uint32_t *n_hits)
{
    /* sysconf reads /sys on every call (~6 us): only when asked for all CPUs */
    long cpus = threads ? (long)threads : sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t nt = cpus < 1 ? 1u : cpus > (long)PEFA_MAX_THREADS ? PEFA_MAX_THREADS : (uint32_t)cpus;
    set_job *jobs;
    pthread_t *tid;
    uint8_t *started;
    pefa_qp r;
    int rc = 0;
    FORWARD_IF_ERROR(set_resolve(s, p, &r));
    RETURN_ERROR_IF(n && (!queries || !hits || !n_hits), PEFA_ERR_INVALID_ARG, "search batch: NULL array");
    if (nt > n) nt = n ? (uint32_t)n : 1;
    jobs = (set_job *)calloc(nt, sizeof *jobs);
    tid = (pthread_t *)calloc(nt, sizeof *tid);
    started = (uint8_t *)calloc(nt, 1);
    if (!jobs || !tid || !started) {
        free(jobs);
        free(tid);
        free(started);
        return pefa__set_error(PEFA_ERR_NOMEM, "search batch: out of memory");
    }
    for (uint32_t t = 0; t < nt; t++)
        jobs[t] = (set_job){s, &r, queries, stride ? stride : s->m[0]->info.dim, n * t / nt, n * (t + 1) / nt,
                            hits, n_hits, 0, 0, ""};
    for (uint32_t t = 1; t < nt; t++) started[t] = pthread_create(&tid[t], NULL, set_batch_worker, &jobs[t]) == 0;
    set_batch_worker(&jobs[0]);
    for (uint32_t t = 1; t < nt; t++) {
        if (started[t]) pthread_join(tid[t], NULL);
        else set_batch_worker(&jobs[t]); /* no thread for it: do its share here */
    }
    for (uint32_t t = 0; t < nt && !rc; t++)
        if (jobs[t].rc)
            rc = pefa__set_error(jobs[t].rc, "query %llu: %s", (unsigned long long)jobs[t].failed, jobs[t].err);
    free(jobs);
    free(tid);
    free(started);
    return rc;
}

int pefa_set_explain(pefa_set *s, const float *q, const pefa_query_params *p, const uint32_t *passage_rows,
                     uint32_t n_rows, pefa_contrib *out, uint32_t cap, uint32_t *n_out)
{
    pefa_searcher *s0;
    int rc;
    /* the votes live in shard 0 (training queries, Y with global columns) */
    for (uint32_t k = 0; k < n_rows; k++)
        RETURN_ERROR_IF(passage_rows[k] >= s->n_total, PEFA_ERR_INVALID_ARG,
                        "explain: passage row %u out of range (%u passages)", passage_rows[k], s->n_total);
    FORWARD_IF_ERROR(pefa__pool_take(s->ix[0], s->m[0], &s0));
    rc = pefa__explain_rows(s0, q, p, passage_rows, n_rows, out, cap, n_out, s->n_total);
    pefa__pool_give(s->m[0], s0);
    return rc;
}
