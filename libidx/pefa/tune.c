/*
 * tune.c - leave-one-out tuning (pefa.h section 4b): sample the tuning
 * queries, score them held out under every setting on worker threads
 * (tune_eval.c), average duplicate groups, bootstrap the gains over ERM,
 * check that the labels follow the text (ERM on own vs other tuning
 * queries' labels), choose. Also pefa_tune, the same on an opened index.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/abi.h"
#include "common/error.h"
#include "container/container.h"
#include "kernels/dist.h"
#include "pefa/model.h"
#include "pefa/tune.h"
#include "pefa/ycsr.h"

#define TUNE_BLOCK_BYTES (64u << 20) /* per thread: <q, .> of a block of queries */
#define TUNE_MAX_BLOCK 8u

void pefa__tune_setting(uint32_t g, pefa_tune_setting *out)
{
    static const uint32_t ks[TUNE_XL_KS] = {4, 8, 16, 32, 64};
    memset(out, 0, sizeof *out);
    if (g == 0) {
        out->mode = PEFA_MODE_ERM;
        out->lambda = 1;
    } else if (g <= TUNE_XS_N) {
        out->mode = PEFA_MODE_XS;
        out->lambda = (float)(g - 1) / 10.0f;
    } else {
        g -= 1 + TUNE_XS_N;
        out->mode = PEFA_MODE_XL;
        out->lambda = (float)(g % TUNE_XL_LAMBDAS) / 10.0f;
        out->knn = ks[g / TUNE_XL_LAMBDAS];
    }
}

const char *pefa_metric_name(int metric)
{
    switch (metric) {
    case PEFA_METRIC_RECALL100: return "recall@100";
    case PEFA_METRIC_RECALL10: return "recall@10";
    case PEFA_METRIC_NDCG10: return "ndcg@10";
    default: return NULL;
    }
}

int pefa_metric_parse(const char *name)
{
    for (int m = PEFA_METRIC_RECALL100; m <= PEFA_METRIC_NDCG10; m++)
        if (name && strcmp(name, pefa_metric_name(m)) == 0) return m;
    return pefa__set_error(PEFA_ERR_INVALID_ARG, "metric '%s' is not recall@100, recall@10 or ndcg@10",
                           name ? name : "(null)");
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* up to n training queries with a relevant passage, drawn with the seed
 * (partial Fisher-Yates), in row order; *n gets how many */
static uint32_t *sample(const pefa_tune_data *d, uint32_t *n, uint64_t seed)
{
    uint32_t *rows = (uint32_t *)malloc((d->n_q ? d->n_q : 1) * sizeof *rows), m = 0;
    if (!rows) return NULL;
    for (uint32_t i = 0; i < d->n_q; i++)
        for (uint64_t e = d->yrp[i]; e < d->yrp[i + 1]; e++)
            if (d->yval[e] > 0) {
                rows[m++] = i;
                break;
            }
    if (*n > m) *n = m;
    for (uint32_t k = 0; k < *n && *n < m; k++) {
        uint32_t r = k + (uint32_t)(splitmix64(&seed) % (m - k)), t = rows[k];
        rows[k] = rows[r];
        rows[r] = t;
    }
    qsort(rows, *n, sizeof *rows, u32_cmp);
    return rows;
}

/* ---- the held-out scores, on threads ------------------------------------------------ */
typedef struct {
    const pefa_tune_data *d;
    const pefa_tune_params *p;
    const uint32_t *rows;
    uint32_t n, block;
    float *metric;                /* n x TUNE_GRID */
    uint32_t *group;              /* n */
    const double *lw;             /* the label check: per passage, sum of 1/|rel_l| over tuning queries l */
    double *label;                /* n x 2: own recall@100, sum of lw over the ERM top 100 */
    atomic_uint next, done;
    pthread_mutex_t progress_lock;
    int rc;
} tune_run;

/* <q_b, x> for the block's queries and every row of a set (each row read once) */
static void dots(const pefa_tune_data *d, const float *qs, uint32_t nb, const void *set, uint32_t rows, float *out)
{
    pefa_dot_fn dot = pefa__dot_kernel(d->elem);
    for (uint32_t j = 0; j < rows; j++) {
        const void *x = (const char *)set + (size_t)j * d->stride;
        for (uint32_t b = 0; b < nb; b++) out[(size_t)b * rows + j] = dot(qs + (size_t)b * d->dim, x, d->dim);
    }
}

/* queries [from, from + nb) of the sample */
static int run_block(tune_run *r, tune_scratch *sc, float *qs, float *buf, uint32_t from, uint32_t nb)
{
    const pefa_tune_data *d = r->d;
    float *s = buf, *t = s + (size_t)nb * d->n_p, *u = t + (size_t)nb * d->n_p;
    for (uint32_t b = 0; b < nb; b++) {
        const char *q = (const char *)d->Q + (size_t)r->rows[from + b] * d->stride;
        if (d->elem == PEFA_TYPE_F32) memcpy(qs + (size_t)b * d->dim, q, d->dim * sizeof(float));
        else pefa_f16_to_f32((const uint16_t *)(const void *)q, qs + (size_t)b * d->dim, d->dim);
    }
    dots(d, qs, nb, d->P, d->n_p, s);
    dots(d, qs, nb, d->Z, d->n_p, t);
    dots(d, qs, nb, d->Q, d->n_q, u);
    for (uint32_t b = 0; b < nb; b++) {
        FORWARD_IF_ERROR(pefa__tune_eval(d, sc, r->rows[from + b], r->p->metric, s + (size_t)b * d->n_p,
                                         t + (size_t)b * d->n_p, u + (size_t)b * d->n_q,
                                         r->metric + (size_t)(from + b) * TUNE_GRID, &r->group[from + b]));
        pefa__tune_label(sc, r->lw, &r->label[2 * (size_t)(from + b)], &r->label[2 * (size_t)(from + b) + 1]);
    }
    return 0;
}

static void progress(tune_run *r, uint32_t nb)
{
    uint32_t done = atomic_fetch_add(&r->done, nb) + nb;
    if (!r->p->progress) return;
    pthread_mutex_lock(&r->progress_lock);
    r->p->progress(r->p->progress_ctx, "tuning", done, r->n);
    pthread_mutex_unlock(&r->progress_lock);
}

static void *tune_worker(void *arg)
{
    tune_run *r = (tune_run *)arg;
    const pefa_tune_data *d = r->d;
    tune_scratch *sc = pefa__tune_scratch_new(d);
    float *qs = (float *)malloc((size_t)r->block * d->dim * sizeof(float));
    float *buf = (float *)malloc((size_t)r->block * (2 * (size_t)d->n_p + d->n_q) * sizeof(float));
    int rc = sc && qs && buf ? 0 : PEFA_ERR_NOMEM;
    for (;;) {
        uint32_t from = atomic_fetch_add(&r->next, r->block);
        if (rc || from >= r->n) break;
        uint32_t nb = r->n - from < r->block ? r->n - from : r->block;
        rc = run_block(r, sc, qs, buf, from, nb);
        progress(r, nb);
    }
    if (rc) r->rc = rc; /* any thread's failure fails the run */
    pefa__tune_scratch_free(sc);
    free(qs);
    free(buf);
    return NULL;
}

static int run_threads(tune_run *r)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t nt = r->p->threads ? r->p->threads : cpus < 1 ? 1u : (uint32_t)cpus, started = 1;
    pthread_t tid[PEFA_MAX_THREADS];
    if (nt > PEFA_MAX_THREADS) nt = PEFA_MAX_THREADS;
    if (nt > r->n / r->block + 1) nt = r->n / r->block + 1;
    for (; started < nt; started++)
        if (pthread_create(&tid[started], NULL, tune_worker, r)) break; /* fewer threads take the work */
    tune_worker(r);
    for (uint32_t t = 1; t < started; t++) pthread_join(tid[t], NULL);
    return r->rc ? pefa__set_error(r->rc, "tuning: out of memory") : 0;
}

/* ---- choosing --------------------------------------------------------------------- */
typedef struct {
    uint32_t group, row;
} by_group;

static int group_cmp(const void *a, const void *b)
{
    const by_group *x = (const by_group *)a, *y = (const by_group *)b;
    return x->group != y->group ? (x->group < y->group ? -1 : 1) : (x->row < y->row ? -1 : x->row > y->row);
}

/* the label check's per-passage weights: lw[j] = sum over the tuning queries
 * l with Y_lj > 0 of 1 / (l's relevant passages), so that sum_{j in a top
 * list} lw[j] is the sum of that list's recall over every tuning query's labels */
static double *label_weights(const pefa_tune_data *d, const uint32_t *rows, uint32_t n)
{
    double *lw = (double *)calloc(d->n_p ? d->n_p : 1, sizeof *lw);
    if (!lw) return NULL;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t l = rows[k], nrel = 0;
        for (uint64_t e = d->yrp[l]; e < d->yrp[l + 1]; e++) nrel += d->yval[e] > 0;
        for (uint64_t e = d->yrp[l]; e < d->yrp[l + 1]; e++)
            if (d->yval[e] > 0) lw[d->ycol[e]] += 1.0 / nrel;
    }
    return lw;
}

/* query k's label check figures: own, other (the mean over the n - 1 others) */
static void label_of(const tune_run *r, uint32_t k, double *own, double *other)
{
    *own = r->n > 1 ? r->label[2 * (size_t)k] : 0.0;
    *other = r->n > 1 ? (r->label[2 * (size_t)k + 1] - r->label[2 * (size_t)k]) / (r->n - 1) : 0.0;
}

/* duplicates count once: the rows of a group averaged (the grid into out,
 * own and other of the label check into lab); returns the group count */
static uint32_t merge_groups(const tune_run *r, float *out, double *lab)
{
    by_group *o = (by_group *)malloc((r->n ? r->n : 1) * sizeof *o);
    uint32_t ng = 0;
    if (!o) return UINT32_MAX;
    for (uint32_t k = 0; k < r->n; k++) o[k] = (by_group){r->group[k], k};
    qsort(o, r->n, sizeof *o, group_cmp);
    for (uint32_t a = 0, b; a < r->n; a = b, ng++) {
        for (b = a; b < r->n && o[b].group == o[a].group; b++) {}
        for (uint32_t g = 0; g < TUNE_GRID; g++) {
            double sum = 0;
            for (uint32_t k = a; k < b; k++) sum += r->metric[(size_t)o[k].row * TUNE_GRID + g];
            out[(size_t)ng * TUNE_GRID + g] = (float)(sum / (b - a));
        }
        lab[2 * (size_t)ng] = lab[2 * (size_t)ng + 1] = 0;
        for (uint32_t k = a; k < b; k++) {
            double own, other;
            label_of(r, o[k].row, &own, &other);
            lab[2 * (size_t)ng] += own / (b - a);
            lab[2 * (size_t)ng + 1] += other / (b - a);
        }
    }
    free(o);
    return ng;
}

static int float_cmp(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* means, deltas against ERM (setting 0), and the 5th percentile of each
 * delta over TUNE_BOOTSTRAP paired resamples of the groups */
static int bootstrap(const float *m, uint32_t ng, uint64_t seed, pefa_tune_setting *set)
{
    float *deltas = (float *)malloc((size_t)TUNE_GRID * TUNE_BOOTSTRAP * sizeof *deltas);
    double sum[TUNE_GRID];
    RETURN_ERROR_IF(!deltas, PEFA_ERR_NOMEM, "tuning: out of memory");
    for (uint32_t g = 0; g < TUNE_GRID; g++) {
        double s = 0;
        for (uint32_t k = 0; k < ng; k++) s += m[(size_t)k * TUNE_GRID + g];
        set[g].score = s / ng;
    }
    for (uint32_t b = 0; b < TUNE_BOOTSTRAP; b++) {
        memset(sum, 0, sizeof sum);
        for (uint32_t k = 0; k < ng; k++) {
            const float *row = m + (size_t)(splitmix64(&seed) % ng) * TUNE_GRID;
            for (uint32_t g = 0; g < TUNE_GRID; g++) sum[g] += row[g] - row[0];
        }
        for (uint32_t g = 0; g < TUNE_GRID; g++) deltas[(size_t)g * TUNE_BOOTSTRAP + b] = (float)(sum[g] / ng);
    }
    for (uint32_t g = 0; g < TUNE_GRID; g++) {
        qsort(deltas + (size_t)g * TUNE_BOOTSTRAP, TUNE_BOOTSTRAP, sizeof *deltas, float_cmp);
        set[g].delta = set[g].score - set[0].score;
        set[g].delta_lo = deltas[(size_t)g * TUNE_BOOTSTRAP + TUNE_BOOTSTRAP / 20];
    }
    free(deltas);
    return 0;
}

static int double_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* the label check: means of own and other over the groups, and the 5th
 * percentile of the mean of own - other over TUNE_BOOTSTRAP resamples of the
 * groups drawn from the stream seed + 2 (the grid's is seed) */
static int label_check(const double *lab, uint32_t ng, uint64_t seed, pefa_tune_report *rep)
{
    double *means = (double *)malloc(TUNE_BOOTSTRAP * sizeof *means), own = 0, other = 0;
    RETURN_ERROR_IF(!means, PEFA_ERR_NOMEM, "tuning: out of memory");
    for (uint32_t k = 0; k < ng; k++) own += lab[2 * (size_t)k], other += lab[2 * (size_t)k + 1];
    seed += 2;
    for (uint32_t b = 0; b < TUNE_BOOTSTRAP; b++) {
        double sum = 0;
        for (uint32_t k = 0; k < ng; k++) {
            const double *x = lab + 2 * (size_t)(splitmix64(&seed) % ng);
            sum += x[0] - x[1];
        }
        means[b] = sum / ng;
    }
    qsort(means, TUNE_BOOTSTRAP, sizeof *means, double_cmp);
    rep->label_own = own / ng;
    rep->label_other = other / ng;
    rep->label_delta_lo = means[TUNE_BOOTSTRAP / 20];
    rep->label_passed = rep->label_delta_lo > 0;
    free(means);
    return 0;
}

/* the best mean wins if its gain over ERM holds in 95% of the resamples */
static uint32_t choose(const pefa_tune_setting *set)
{
    uint32_t best = 0;
    for (uint32_t g = 1; g < TUNE_GRID; g++)
        if (set[g].score > set[best].score) best = g;
    return set[best].delta_lo > 0 ? best : 0;
}

static int report(const tune_run *r, uint64_t seed, pefa_tune_report **out)
{
    pefa_tune_report *rep = (pefa_tune_report *)calloc(1, sizeof *rep);
    float *merged = (float *)malloc((size_t)(r->n ? r->n : 1) * TUNE_GRID * sizeof *merged);
    double *lab = (double *)malloc((size_t)(r->n ? r->n : 1) * 2 * sizeof *lab);
    int rc = rep && merged && lab ? 0 : PEFA_ERR_NOMEM;
    if (!rc && !(rep->settings = (pefa_tune_setting *)calloc(TUNE_GRID, sizeof *rep->settings))) rc = PEFA_ERR_NOMEM;
    if (!rc && (rep->n_groups = merge_groups(r, merged, lab)) == UINT32_MAX) rc = PEFA_ERR_NOMEM;
    if (!rc) {
        for (uint32_t g = 0; g < TUNE_GRID; g++) pefa__tune_setting(g, &rep->settings[g]);
        rc = bootstrap(merged, rep->n_groups, seed, rep->settings);
    }
    if (!rc) rc = label_check(lab, rep->n_groups, seed, rep);
    free(merged);
    free(lab);
    if (rc) {
        pefa_tune_report_free(rep);
        return rc == PEFA_ERR_NOMEM ? pefa__set_error(rc, "tuning: out of memory") : rc;
    }
    rep->metric = r->p->metric;
    rep->n_queries = r->n;
    rep->seed = r->p->seed;
    rep->n_settings = TUNE_GRID;
    rep->chosen_margin = choose(rep->settings);
    rep->label_check = r->p->label_check == PEFA_LABEL_CHECK_OFF ? PEFA_LABEL_CHECK_OFF : PEFA_LABEL_CHECK_ON;
    rep->chosen = rep->label_check == PEFA_LABEL_CHECK_ON && !rep->label_passed ? 0 : rep->chosen_margin;
    *out = rep;
    return 0;
}

int pefa__tune_run(const pefa_tune_data *d, const pefa_tune_params *p, pefa_tune_report **out)
{
    struct timespec t0, t1;
    tune_run r;
    size_t per_query = (2 * (size_t)d->n_p + d->n_q) * sizeof(float);
    int rc;
    *out = NULL;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(&r, 0, sizeof r);
    r.d = d;
    r.p = p;
    r.n = p->n_queries;
    r.block = TUNE_BLOCK_BYTES / per_query < 1 ? 1 : TUNE_BLOCK_BYTES / per_query > TUNE_MAX_BLOCK
                                                        ? TUNE_MAX_BLOCK
                                                        : (uint32_t)(TUNE_BLOCK_BYTES / per_query);
    RETURN_ERROR_IF(!(r.rows = sample(d, &r.n, p->seed)), PEFA_ERR_NOMEM, "tuning: out of memory");
    if (r.n == 0) {
        free((void *)r.rows);
        return pefa__set_error(PEFA_ERR_INVALID_ARG, "tuning: no training query has a relevant passage (Y > 0)");
    }
    r.metric = (float *)malloc((size_t)r.n * TUNE_GRID * sizeof *r.metric);
    r.group = (uint32_t *)malloc((size_t)r.n * sizeof *r.group);
    r.label = (double *)malloc((size_t)r.n * 2 * sizeof *r.label);
    r.lw = label_weights(d, r.rows, r.n);
    pthread_mutex_init(&r.progress_lock, NULL);
    rc = r.metric && r.group && r.label && r.lw ? run_threads(&r)
                                                : pefa__set_error(PEFA_ERR_NOMEM, "tuning: out of memory");
    if (!rc) rc = report(&r, p->seed, out);
    pthread_mutex_destroy(&r.progress_lock);
    free((void *)r.rows);
    free(r.metric);
    free(r.group);
    free(r.label);
    free((void *)r.lw);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (*out) (*out)->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return rc;
}

void pefa_tune_report_free(pefa_tune_report *r)
{
    if (!r) return;
    free(r->settings);
    free(r);
}

/* ---- on an opened index ------------------------------------------------------------- */
/* the parameters with every 0 resolved; defaults from META (what the build used) */
static int tune_params(pefa_index *ix, const pefa_tune_params *in, pefa_tune_params *p)
{
    uint64_t v;
    const char *s;
    pefa__abi_in(p, sizeof *p, in, PEFA_V1_TUNE_PARAMS);
    RETURN_ERROR_IF(p->set & ~PEFA_SET_SEED, PEFA_ERR_INVALID_ARG, "tuning: unknown set bits 0x%x", p->set);
    RETURN_ERROR_IF(p->label_check < 0 || p->label_check > PEFA_LABEL_CHECK_OFF, PEFA_ERR_INVALID_ARG,
                    "tuning: unknown label_check %d (0 default, 1 on, 2 off)", p->label_check);
    if (!p->label_check && pefa_index_meta_get(ix, "tune.label_check", &s) == 0 && strcmp(s, "off") == 0)
        p->label_check = PEFA_LABEL_CHECK_OFF;
    if (!p->n_queries && pefa__meta_uint(ix, "tune.queries", UINT32_MAX, 0, &v) == 0 && v) p->n_queries = (uint32_t)v;
    if (!p->n_queries) p->n_queries = PEFA_TUNE_DEFAULT_QUERIES;
    if (!(p->set & PEFA_SET_SEED)) p->seed = pefa__meta_uint(ix, "build.seed", UINT64_MAX, 0, &v) == 0 ? v : 42;
    if (p->metric == PEFA_METRIC_DEFAULT && pefa_index_meta_get(ix, "tune.metric", &s) == 0)
        p->metric = pefa_metric_parse(s) > 0 ? pefa_metric_parse(s) : PEFA_METRIC_DEFAULT;
    if (p->metric == PEFA_METRIC_DEFAULT) p->metric = PEFA_METRIC_RECALL100;
    RETURN_ERROR_IF(!pefa_metric_name(p->metric), PEFA_ERR_INVALID_ARG, "tuning: unknown metric %d", p->metric);
    return 0;
}

/* Y of the index as CSR (decoded once) */
static int decode_y(const pefa_model *m, pefa_tune_data *d)
{
    uint64_t *rp = (uint64_t *)malloc(((size_t)m->info.n_queries + 1) * sizeof *rp);
    uint32_t *cols = (uint32_t *)malloc((m->info.nnz ? m->info.nnz : 1) * sizeof *cols);
    float *vals = (float *)malloc((m->info.nnz ? m->info.nnz : 1) * sizeof *vals);
    RETURN_ERROR_IF(!rp || !cols || !vals, PEFA_ERR_NOMEM, "tuning: out of memory for Y");
    d->yrp = rp;
    d->ycol = cols;
    d->yval = vals;
    rp[0] = 0;
    for (uint32_t i = 0; i < m->info.n_queries; i++) {
        uint64_t room = m->info.nnz - rp[i];
        int64_t k = pefa__ycsr_decode_row(m->y_rowptr, m->info.n_queries, m->y_rows, m->y_rows_len,
                                          m->y_cols, i, cols + rp[i], vals + rp[i],
                                          room > UINT32_MAX ? UINT32_MAX : (uint32_t)room);
        RETURN_ERROR_IF(k < 0 || (uint64_t)k > room, PEFA_ERR_CORRUPT, "%s: Y row %u is malformed or exceeds META nnz",
                        m->path, i);
        rp[i + 1] = rp[i] + (uint64_t)k;
    }
    return 0;
}

int pefa_tune(pefa_index *ix, const pefa_tune_params *in, pefa_tune_report **out)
{
    pefa_model *m = NULL;
    pefa_tune_params p;
    pefa_tune_data d;
    int rc;
    *out = NULL;
    FORWARD_IF_ERROR(pefa__model_get(ix, &m));
    RETURN_ERROR_IF(!m->Q || !m->y_rowptr || !m->Z, PEFA_ERR_INVALID_ARG,
                    "%s: tuning needs training queries and their relevance pairs; this index has none", m->path);
    RETURN_ERROR_IF(m->shard_count > 1, PEFA_ERR_INVALID_ARG, "%s: shard %u of a set: tune the set, not a shard",
                    m->path, m->shard_index);
    RETURN_ERROR_IF(!m->S, PEFA_ERR_VERSION,
                    "%s: format %s index without XS_NORMS (|S_j|): rebuild it with pefa %s to tune it", m->path, "1.0",
                    pefa_version_string());
    FORWARD_IF_ERROR(tune_params(ix, in, &p));
    d = (pefa_tune_data){m->info.n_passages, m->info.n_queries, m->info.dim, m->elem, m->stride, m->P, m->Q, m->Z,
                         m->S, NULL, NULL, NULL};
    rc = decode_y(m, &d);
    if (!rc) rc = pefa__tune_run(&d, &p, out);
    free((void *)d.yrp);
    free((void *)d.ycol);
    free((void *)d.yval);
    return rc;
}
