/*
 * batch.c - pefa_search_batch: n queries on up to `threads` threads, with
 * searchers lent from a pool kept in the model, so a warm batch of one
 * allocates nothing.
 */
#include <pthread.h>
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

typedef struct {
    pefa_index *ix;
    pefa_model *m;
    const pefa_qp *r;
    const float *queries;
    uint64_t stride, from, to;
    pefa_hit *hits;
    uint32_t *n_hits;
    int rc;
    uint64_t failed;          /* the query that failed */
    char err[512];            /* its detail (the thread-local one dies with the thread) */
} batch_job;

static void *batch_worker(void *arg)
{
    batch_job *j = (batch_job *)arg;
    pefa_searcher *s;
    if ((j->rc = pefa__pool_take(j->ix, j->m, &s)) != 0) {
        j->failed = j->from;
        snprintf(j->err, sizeof j->err, "%s", pefa_last_error_detail());
        return NULL;
    }
    for (uint64_t i = j->from; i < j->to; i++) {
        j->rc = pefa__search_resolved(s, j->queries + i * j->stride, j->r, j->hits + i * j->r->k, &j->n_hits[i]);
        if (j->rc) {
            j->failed = i;
            snprintf(j->err, sizeof j->err, "%s", pefa_last_error_detail());
            break;
        }
    }
    pefa__pool_give(j->m, s);
    return NULL;
}

static uint32_t batch_threads(uint32_t want, uint64_t n)
{
    long c = want ? (long)want : sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t t = c < 1 ? 1u : c > (long)PEFA_MAX_THREADS ? PEFA_MAX_THREADS : (uint32_t)c;
    return n < t ? (uint32_t)(n ? n : 1) : t;
}

/* the first failing job (in query order) names its query */
static int batch_result(const batch_job *jobs, uint32_t nt)
{
    for (uint32_t t = 0; t < nt; t++)
        if (jobs[t].rc) return pefa__set_error(jobs[t].rc, "query %llu: %s", (unsigned long long)jobs[t].failed,
                                               jobs[t].err);
    return 0;
}

/* runs the jobs: jobs[0] on the calling thread, the others on new threads */
static void batch_run(batch_job *jobs, uint32_t nt)
{
    pthread_t *tid = nt > 1 ? (pthread_t *)calloc(nt, sizeof *tid) : NULL;
    uint8_t *started = nt > 1 ? (uint8_t *)calloc(nt, 1) : NULL;
    for (uint32_t t = 1; t < nt && tid && started; t++)
        started[t] = pthread_create(&tid[t], NULL, batch_worker, &jobs[t]) == 0;
    batch_worker(&jobs[0]);
    for (uint32_t t = 1; t < nt; t++) {
        if (started && started[t]) pthread_join(tid[t], NULL);
        else batch_worker(&jobs[t]); /* no thread for it: do its share here */
    }
    free(tid);
    free(started);
}

int pefa_search_batch(pefa_index *ix, const float *queries, uint64_t n, uint64_t stride, const pefa_query_params *p,
                      uint32_t threads, pefa_hit *hits, uint32_t *n_hits)
{
    pefa_model *m = NULL;
    pefa_qp r;
    batch_job one, *jobs;
    uint32_t nt;
    int rc;
    FORWARD_IF_ERROR(pefa__model_get(ix, &m));
    FORWARD_IF_ERROR(pefa__qp_resolve(m, p, &r));
    RETURN_ERROR_IF(n && (!queries || !hits || !n_hits), PEFA_ERR_INVALID_ARG, "search batch: NULL array");
    nt = batch_threads(threads, n);
    jobs = nt == 1 ? &one : (batch_job *)calloc(nt, sizeof *jobs);
    RETURN_ERROR_IF(!jobs, PEFA_ERR_NOMEM, "search batch: out of memory");
    for (uint32_t t = 0; t < nt; t++)
        jobs[t] = (batch_job){ix, m, &r, queries, stride ? stride : m->info.dim, n * t / nt, n * (t + 1) / nt,
                              hits, n_hits, 0, 0, ""};
    batch_run(jobs, nt);
    rc = batch_result(jobs, nt);
    if (jobs != &one) free(jobs);
    return rc;
}
