/*
 * batch.c - pefa_search_batch: n queries on up to `threads` threads, which
 * take them in chunks from a shared counter, with searchers lent from a pool
 * kept in the model, so a warm batch of one allocates nothing.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "pefa/search_private.h"

int pefa__pool_take(pefa_index *ix, pefa_model *m, pefa_searcher **out)
{
    pthread_mutex_lock(&m->pool_lock);
    *out = m->pool_n ? m->pool[--m->pool_n] : NULL;
    pthread_mutex_unlock(&m->pool_lock);
    return *out ? 0 : pefa__searcher_new(ix, m, out);
}

void pefa__pool_give(pefa_model *m, pefa_searcher *s)
{
    pthread_mutex_lock(&m->pool_lock);
    if (m->pool_n == m->pool_cap) {
        uint32_t nc = m->pool_cap ? 2 * m->pool_cap : 8;
        pefa_searcher **np = (pefa_searcher **)realloc(m->pool, nc * sizeof *np);
        if (np) {
            m->pool = np;
            m->pool_cap = nc;
        }
    }
    if (m->pool_n < m->pool_cap) {
        m->pool[m->pool_n++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&m->pool_lock);
    pefa_searcher_free(s); /* no room to keep it */
}

void pefa__pool_free(pefa_model *m)
{
    for (uint32_t i = 0; i < m->pool_n; i++) pefa_searcher_free(m->pool[i]);
    free(m->pool);
    m->pool = NULL;
    m->pool_n = m->pool_cap = 0;
}

/* what the threads of one batch share: queries are taken in chunks from an
 * atomic counter, so a thread that the OS holds back (other processes, a
 * slow query) delays the batch by one chunk, not by its whole share */
typedef struct {
    pefa_index *ix;
    pefa_model *m;
    const pefa_qp *r;
    const float *queries;
    uint64_t stride, n, chunk;
    pefa_hit *hits;
    uint32_t *n_hits;
    atomic_uint_fast64_t next;  /* first query of the next chunk */
    atomic_int stop;            /* a query failed: take no more chunks */
} batch_shared;

typedef struct {
    batch_shared *b;
    int rc;
    uint64_t failed;          /* the query that failed */
    char err[512];            /* its detail (the thread-local one dies with the thread) */
} batch_job;

static void batch_fail(batch_job *j, uint64_t query)
{
    j->failed = query;
    snprintf(j->err, sizeof j->err, "%s", pefa_last_error_detail());
    atomic_store(&j->b->stop, 1);
}

/* A thread finishes every chunk it took, even after another failed: chunks
 * are taken in query order, so the lowest failing query is always found. */
static void *batch_worker(void *arg)
{
    batch_job *j = (batch_job *)arg;
    batch_shared *b = j->b;
    pefa_searcher *s;
    if ((j->rc = pefa__pool_take(b->ix, b->m, &s)) != 0) {
        batch_fail(j, atomic_load(&b->next));
        return NULL;
    }
    while (!j->rc && !atomic_load(&b->stop)) {
        uint64_t from = atomic_fetch_add(&b->next, b->chunk), to = from + b->chunk;
        if (from >= b->n) break;
        for (uint64_t i = from; i < to && i < b->n; i++) {
            j->rc = pefa__search_resolved(s, b->queries + i * b->stride, b->r, b->hits + i * b->r->k, &b->n_hits[i]);
            if (j->rc) {
                batch_fail(j, i);
                break;
            }
        }
    }
    pefa__pool_give(b->m, s);
    return NULL;
}

static uint32_t batch_threads(uint32_t want, uint64_t n)
{
    long c = want ? (long)want : sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t t = c < 1 ? 1u : c > (long)PEFA_MAX_THREADS ? PEFA_MAX_THREADS : (uint32_t)c;
    return n < t ? (uint32_t)(n ? n : 1) : t;
}

/* the lowest failing query is named */
static int batch_result(const batch_job *jobs, uint32_t nt)
{
    const batch_job *first = NULL;
    for (uint32_t t = 0; t < nt; t++)
        if (jobs[t].rc && (!first || jobs[t].failed < first->failed)) first = &jobs[t];
    return first ? pefa__set_error(first->rc, "query %llu: %s", (unsigned long long)first->failed, first->err) : 0;
}

/* runs the jobs: jobs[0] on the calling thread, the others on new threads
 * (a thread that cannot be started leaves its queries to the others) */
static void batch_run(batch_job *jobs, uint32_t nt)
{
    pthread_t *tid = nt > 1 ? (pthread_t *)calloc(nt, sizeof *tid) : NULL;
    uint8_t *started = nt > 1 ? (uint8_t *)calloc(nt, 1) : NULL;
    for (uint32_t t = 1; t < nt && tid && started; t++)
        started[t] = pthread_create(&tid[t], NULL, batch_worker, &jobs[t]) == 0;
    batch_worker(&jobs[0]);
    for (uint32_t t = 1; t < nt; t++)
        if (started && started[t]) pthread_join(tid[t], NULL);
    free(tid);
    free(started);
}

int pefa_search_batch(pefa_index *ix, const float *queries, uint64_t n, uint64_t stride, const pefa_query_params *p,
                      uint32_t threads, pefa_hit *hits, uint32_t *n_hits)
{
    batch_shared b;
    pefa_qp r;
    batch_job one, *jobs;
    uint32_t nt;
    int rc;
    memset(&b, 0, sizeof b);
    FORWARD_IF_ERROR(pefa__model_get(ix, &b.m));
    FORWARD_IF_ERROR(pefa__qp_resolve(b.m, p, &r));
    RETURN_ERROR_IF(n && (!queries || !hits || !n_hits), PEFA_ERR_INVALID_ARG, "search batch: NULL array");
    nt = batch_threads(threads, n);
    jobs = nt == 1 ? &one : (batch_job *)calloc(nt, sizeof *jobs);
    RETURN_ERROR_IF(!jobs, PEFA_ERR_NOMEM, "search batch: out of memory");
    b.ix = ix;
    b.r = &r;
    b.queries = queries;
    b.stride = stride ? stride : b.m->info.dim;
    b.n = n;
    b.chunk = n / ((uint64_t)nt * 8); /* about 8 chunks per thread, 1..64 queries each */
    b.chunk = b.chunk < 1 ? 1 : b.chunk > 64 ? 64 : b.chunk;
    b.hits = hits;
    b.n_hits = n_hits;
    atomic_init(&b.next, 0);
    atomic_init(&b.stop, 0);
    for (uint32_t t = 0; t < nt; t++) jobs[t] = (batch_job){&b, 0, 0, ""};
    batch_run(jobs, nt);
    rc = batch_result(jobs, nt);
    if (jobs != &one) free(jobs);
    return rc;
}
