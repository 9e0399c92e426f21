/*
 * build.c - embeddings + relevance pairs in, one index file out.
 *
 * pefa_build is a list of stages over one context:
 *   rows     the caller's rows (f32/f16, any stride) read, checked and
 *            L2-normalised into the library's own f32 buffers
 *   y        Y as CSR from the triplets, duplicates summed
 *   xs       z_j = normalise(sum_i Y_ij q_i), e_j = lam p_j + (1-lam) z_j
 *   storage  rows converted to the stored type (f16) when asked
 *   graphs   HNSW over P, E and Q
 *   write    sections streamed to "<out>.tmp.XXXXXX"
 *   idmap    the id map "<out>.<uuid>.ids", synced, its digest into META
 *   commit   META, then the atomic rename: the one commit point
 * Nothing new is left at the output path or beside it unless every stage
 * succeeded; the caller's arrays are only read; no other file is removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/abi.h"
#include "common/error.h"
#include "container/container.h"
#include "hnsw/hnsw.h"
#include "idmap/idmap.h"
#include "pefa/graph_store.h"
#include "pefa/ycsr.h"

#define DEFAULT_LAMBDA 0.5f
#define DEFAULT_M 32u
#define DEFAULT_EFC 500u
#define DEFAULT_SEED 42u

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} strbuf;

typedef struct {
    const char *out;
    pefa_build_input in;
    pefa_build_params p;
    pefa_build_stats st;
    uint32_t n_p, n_q, dim, threads;
    int has_q;
    float *P, *Q, *Z, *E;      /* f32 rows (owned): unit rows under cosine, as given under ip */
    float xs_scale;            /* ip: E rows are e_j / xs_scale (format [X1]); cosine: 1 */
    void *P16, *Q16, *Z16, *E16; /* f16 storage, when asked */
    const void *Pv, *Qv, *Zv, *Ev; /* what is stored and graphed */
    ycsr y;
    hnsw_graph gp, gq, gx;
    pefa_writer *w;
    strbuf meta;
    char *idpath;              /* "<out>.<uuid>.ids" when ids are given */
    char *lockpath;            /* "<out>.lock", held from start to commit [I5] */
    int lockfd;
    int committed;             /* the index was renamed into place */
    const char *stage;         /* for graph progress */
} build_ctx;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void progress(const build_ctx *c, const char *stage, uint64_t done, uint64_t total)
{
    if (c->p.progress) c->p.progress(c->p.progress_ctx, stage, done, total);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (b->oom) return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        n = vsnprintf(b->buf ? b->buf + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) break;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = (b->cap + (size_t)n + 1) * 2;
        char *nb = (char *)realloc(b->buf, nc);
        if (!nb) break;
        b->buf = nb;
        b->cap = nc;
    }
    b->oom = 1;
}

/* ---- arguments ------------------------------------------------------------------ */
static int check_rows(const void *rows, uint8_t type, uint64_t stride, uint32_t dim, const char *what)
{
    RETURN_ERROR_IF(!rows, PEFA_ERR_INVALID_ARG, "pefa_build: no %s", what);
    RETURN_ERROR_IF(type != PEFA_TYPE_F32 && type != PEFA_TYPE_F16, PEFA_ERR_INVALID_ARG,
                    "pefa_build: %s: row type %s (f32 or f16)", what, pefa_type_name(type));
    RETURN_ERROR_IF(stride && stride < (uint64_t)dim * pefa_type_size(type), PEFA_ERR_INVALID_ARG,
                    "pefa_build: %s: row stride %llu is shorter than a row", what, (unsigned long long)stride);
    return 0;
}

static int check_params(const pefa_build_params *p)
{
    RETURN_ERROR_IF(!(p->lambda >= 0 && p->lambda <= 1), PEFA_ERR_INVALID_ARG, "pefa_build: lambda %g outside [0, 1]",
                    (double)p->lambda);
    RETURN_ERROR_IF(p->M < 2 || p->M > PEFA_MAX_M, PEFA_ERR_INVALID_ARG, "pefa_build: M %u outside 2..%u", p->M,
                    PEFA_MAX_M);
    RETURN_ERROR_IF(p->ef_construction > (1u << 24), PEFA_ERR_INVALID_ARG, "pefa_build: ef_construction %u too large",
                    p->ef_construction);
    RETURN_ERROR_IF(p->vector_type != PEFA_TYPE_F32 && p->vector_type != PEFA_TYPE_F16, PEFA_ERR_INVALID_ARG,
                    "pefa_build: vector type must be f32 or f16");
    RETURN_ERROR_IF(p->y_codec > PEFA_CODEC_ZSTD, PEFA_ERR_INVALID_ARG, "pefa_build: unknown Y codec %u", p->y_codec);
    RETURN_ERROR_IF(p->set & ~(PEFA_SET_LAMBDA | PEFA_SET_SEED), PEFA_ERR_INVALID_ARG,
                    "pefa_build: unknown set bits 0x%x", p->set);
    RETURN_ERROR_IF(p->metric > PEFA_METRIC_IP, PEFA_ERR_INVALID_ARG, "pefa_build: unknown metric %u (0 cosine, 1 ip)",
                    p->metric);
    RETURN_ERROR_IF(p->threads > PEFA_MAX_THREADS, PEFA_ERR_INVALID_ARG, "pefa_build: %u threads (at most %u)",
                    p->threads, PEFA_MAX_THREADS);
    return 0;
}

/* [I6] every id, before the long stages (the id map writer checks again) */
static int check_ids(const char *const *ids, uint32_t n, const char *what)
{
    for (uint32_t r = 0; ids && r < n; r++) {
        if (pefa_id_check(ids[r], ids[r] ? strlen(ids[r]) : 0) != 0) {
            char detail[300];
            snprintf(detail, sizeof detail, "%s", pefa_last_error_detail());
            return pefa__set_error(PEFA_ERR_BAD_INPUT, "pefa_build: %s id of row %u (0-based) %s", what, r, detail);
        }
    }
    return 0;
}

/* copies the caller's structs (any size), fills defaults, checks ranges */
static int stage_args(build_ctx *c, const char *out, const pefa_build_input *in, const pefa_build_params *pp)
{
    const pefa_build_input *i = &c->in;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    RETURN_ERROR_IF(!out || !*out || !in, PEFA_ERR_INVALID_ARG, "pefa_build: missing output path or input");
    c->out = out;
    pefa__abi_in(&c->in, sizeof c->in, in, PEFA_V1_SIZE(pefa_build_input, queries_name));
    pefa__abi_in(&c->p, sizeof c->p, pp, PEFA_V1_SIZE(pefa_build_params, progress_ctx));
    if (!(c->p.set & PEFA_SET_LAMBDA)) c->p.lambda = DEFAULT_LAMBDA;
    if (!(c->p.set & PEFA_SET_SEED)) c->p.seed = DEFAULT_SEED;
    if (!c->p.M) c->p.M = DEFAULT_M;
    if (!c->p.ef_construction) c->p.ef_construction = DEFAULT_EFC;
    if (!c->p.vector_type) c->p.vector_type = PEFA_TYPE_F32;
    if (!c->in.passages_type) c->in.passages_type = PEFA_TYPE_F32;
    if (!c->in.queries_type) c->in.queries_type = PEFA_TYPE_F32;
    if (!c->in.passages_name) c->in.passages_name = "passages";
    if (!c->in.queries_name) c->in.queries_name = "training queries";
    FORWARD_IF_ERROR(check_params(&c->p));
    c->threads = c->p.threads ? c->p.threads : cpus < 1 ? 1u : cpus > 256 ? 256u : (uint32_t)cpus;
    c->dim = i->dim;
    c->n_p = i->n_passages;
    c->n_q = i->queries ? i->n_queries : 0;
    c->has_q = c->n_q > 0;
    RETURN_ERROR_IF(c->n_p == 0, PEFA_ERR_INVALID_ARG, "pefa_build: no passages");
    RETURN_ERROR_IF(c->dim == 0 || c->dim > PEFA_MAX_DIM, PEFA_ERR_INVALID_ARG, "pefa_build: dimension %u (1..%u)",
                    c->dim, PEFA_MAX_DIM);
    FORWARD_IF_ERROR(check_rows(i->passages, i->passages_type, i->passages_stride, c->dim, i->passages_name));
    if (c->has_q) FORWARD_IF_ERROR(check_rows(i->queries, i->queries_type, i->queries_stride, c->dim, i->queries_name));
    RETURN_ERROR_IF(i->n_pairs && (!c->has_q || !i->pairs), PEFA_ERR_INVALID_ARG,
                    "pefa_build: relevance pairs without training queries");
    FORWARD_IF_ERROR(check_ids(i->passage_ids, c->n_p, "passage"));
    FORWARD_IF_ERROR(check_ids(i->query_ids, c->n_q, "training query"));
    for (uint32_t k = 0; k < i->n_meta; k++)
        RETURN_ERROR_IF(!pefa__meta_key_ok(i->meta_keys[k], strlen(i->meta_keys[k])) ||
                            !pefa__meta_value_ok(i->meta_values[k]),
                        PEFA_ERR_INVALID_ARG, "pefa_build: metadata key '%s' or its value is not allowed",
                        i->meta_keys[k]);
    return 0;
}

/* ---- lock [I5] ------------------------------------------------------------------- */
/* An exclusive flock on "<out>.lock" for the whole build, so that a second
 * build of the same output (or pefa-dump --gc in that directory) cannot run
 * while this one has an id map that no committed index names yet. The lock
 * file is removed, still locked, when the build ends; a lock taken on a file
 * that was removed meanwhile is retried on the new one. */
static int stage_lock(build_ctx *c)
{
    size_t n = strlen(c->out) + sizeof ".lock";
    c->lockfd = -1;
    RETURN_ERROR_IF(!(c->lockpath = (char *)malloc(n)), PEFA_ERR_NOMEM, "pefa_build: out of memory");
    snprintf(c->lockpath, n, "%s.lock", c->out);
    for (int tries = 0; tries < 100; tries++) {
        struct stat a, b;
        int fd = open(c->lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        RETURN_ERROR_IF(fd < 0, PEFA_ERR_IO, "%s: cannot create the build lock: %s", c->lockpath, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            close(fd);
            RETURN_ERROR_IF(e == EWOULDBLOCK, PEFA_ERR_STATE,
                            "%s: another build of this output (or pefa-dump --gc) is running: %s is locked; "
                            "try again when it has finished",
                            c->out, c->lockpath);
            return pefa__set_error(PEFA_ERR_IO, "%s: cannot lock: %s", c->lockpath, strerror(e));
        }
        if (fstat(fd, &a) == 0 && stat(c->lockpath, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            c->lockfd = fd;
            return 0;
        }
        close(fd); /* the file we locked was removed by the build that held it: lock the new one */
    }
    return pefa__set_error(PEFA_ERR_IO, "%s: the lock file keeps being replaced", c->lockpath);
}

static void unlock(build_ctx *c)
{
    if (c->lockfd >= 0) {
        unlink(c->lockpath);
        close(c->lockfd);
    }
    free(c->lockpath);
}

/* ---- rows ------------------------------------------------------------------------ */
/* rows of the caller (f32/f16, stride bytes apart) into dst as f32 rows,
 * unit rows when normalise; BAD_INPUT names the first value that is not finite */
static int read_rows(const void *src, uint8_t type, uint64_t stride, uint32_t rows, uint32_t dim, const char *what,
                     int normalise, float *dst, uint64_t *zeros)
{
    size_t step = stride ? (size_t)stride : (size_t)dim * pefa_type_size(type);
    *zeros = 0;
    for (uint32_t r = 0; r < rows; r++) {
        const char *row = (const char *)src + (size_t)r * step;
        float *v = dst + (size_t)r * dim;
        double s = 0;
        if (type == PEFA_TYPE_F16) pefa_f16_to_f32((const uint16_t *)(const void *)row, v, dim);
        else memcpy(v, row, (size_t)dim * sizeof(float));
        for (uint32_t k = 0; k < dim; k++) {
            RETURN_ERROR_IF(!isfinite(v[k]), PEFA_ERR_BAD_INPUT, "%s: row %u column %u is %s", what, r, k,
                            isnan(v[k]) ? "NaN" : "infinite");
            s += (double)v[k] * v[k];
        }
        if (s == 0) {
            (*zeros)++;
            continue;
        }
        if (!normalise) continue;
        s = 1.0 / sqrt(s);
        for (uint32_t k = 0; k < dim; k++) v[k] = (float)(v[k] * s);
    }
    return 0;
}

static int stage_rows(build_ctx *c)
{
    double t = now_s();
    const pefa_build_input *i = &c->in;
    c->P = (float *)malloc((size_t)c->n_p * c->dim * sizeof(float));
    c->Q = c->has_q ? (float *)malloc((size_t)c->n_q * c->dim * sizeof(float)) : NULL;
    RETURN_ERROR_IF(!c->P || (c->has_q && !c->Q), PEFA_ERR_NOMEM, "pefa_build: out of memory for %u + %u rows",
                    c->n_p, c->n_q);
    FORWARD_IF_ERROR(read_rows(i->passages, i->passages_type, i->passages_stride, c->n_p, c->dim, i->passages_name,
                               c->p.metric == PEFA_METRIC_COSINE, c->P, &c->st.zero_passages));
    if (c->has_q)
        FORWARD_IF_ERROR(read_rows(i->queries, i->queries_type, i->queries_stride, c->n_q, c->dim, i->queries_name,
                                   c->p.metric == PEFA_METRIC_COSINE, c->Q, &c->st.zero_queries));
    c->st.seconds_normalise = now_s() - t;
    return 0;
}

/* a relevance value is > 0: a pair that is not relevant is left out, never
 * given a weight that would push its passage down (format 12.3) */
static int check_pair_values(const pefa_pair *pairs, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        RETURN_ERROR_IF(!(pairs[i].y > 0), PEFA_ERR_BAD_INPUT,
                        "pefa_build: relevance pair %llu (query row %u, passage row %u) has value %g; values must be "
                        "> 0 (leave pairs that are not relevant out)",
                        (unsigned long long)i, pairs[i].q, pairs[i].p, (double)pairs[i].y);
    return 0;
}

static int stage_y(build_ctx *c)
{
    double t = now_s();
    if (c->has_q) {
        FORWARD_IF_ERROR(check_pair_values(c->in.pairs, c->in.n_pairs));
        FORWARD_IF_ERROR(pefa__ycsr_from_pairs(c->in.pairs, c->in.n_pairs, c->n_q, c->n_p, &c->y));
        c->st.nnz = c->y.nnz;
    }
    c->st.seconds_y = now_s() - t;
    return 0;
}

/* ---- XS vectors, in parallel over passages ------------------------------------- */
typedef struct {
    const ycsr *yt;          /* Y^T: row j lists (query i, Y_ij) */
    const float *P, *Q;
    float *Z, *E;
    uint32_t dim, from, to;
    float lam;
    int ip;                  /* metric ip: z_j is the Y-weighted mean, e_j is completed later */
    uint64_t empty;
} xs_job;

/* z_j = normalise(sum_i Y_ij q_i) (cosine) or sum_i Y_ij q_i / sum_i Y_ij
 * (ip: the mean training query of passage j, in the encoder's units);
 * 0 (and returns 0) when passage j has no training query or the sum is 0 */
static int xs_z(const xs_job *j, uint32_t p, float *z)
{
    double s = 0, wsum = 0;
    memset(z, 0, j->dim * sizeof(float));
    for (uint64_t k = j->yt->rowptr[p]; k < j->yt->rowptr[p + 1]; k++) {
        const float *q = j->Q + (size_t)j->yt->cols[k] * j->dim;
        float y = j->yt->vals[k];
        for (uint32_t d = 0; d < j->dim; d++) z[d] += y * q[d];
        wsum += y;
    }
    for (uint32_t d = 0; d < j->dim; d++) s += (double)z[d] * z[d];
    if (s > 0 && j->ip) {
        for (uint32_t d = 0; d < j->dim; d++) z[d] = (float)(z[d] / wsum);
        return 1;
    }
    if (s > 0) {
        s = 1.0 / sqrt(s);
        for (uint32_t d = 0; d < j->dim; d++) z[d] = (float)(z[d] * s);
        return 1;
    }
    memset(z, 0, j->dim * sizeof(float));
    return 0;
}

static void *xs_worker(void *arg)
{
    xs_job *j = (xs_job *)arg;
    for (uint32_t p = j->from; p < j->to; p++) {
        float *z = j->Z + (size_t)p * j->dim, *e = j->E + (size_t)p * (j->dim + 1);
        const float *pv = j->P + (size_t)p * j->dim;
        double s = 0;
        if (!xs_z(j, p, z)) j->empty++;
        /* e_j, then the column that makes the row unit-norm (|e_j| <= 1: a
         * convex mix of unit or zero vectors): <(q,0), e'_j> = <q, e_j>, and
         * the XS graph searches unit vectors, like the passage graph */
        for (uint32_t d = 0; d < j->dim; d++) {
            e[d] = j->lam * pv[d] + (1 - j->lam) * z[d];
            s += (double)e[d] * e[d];
        }
        if (!j->ip) e[j->dim] = s < 1 ? (float)sqrt(1 - s) : 0.0f;
    }
    return NULL;
}

/* ip: e_j have any norm; scaled by the largest so that every |e_j| <= 1,
 * then completed by the extra column like under cosine (format [X1]) */
static void xs_scale_ip(build_ctx *c)
{
    uint32_t cols = c->dim + 1;
    double mx = 0;
    for (uint32_t p = 0; p < c->n_p; p++) {
        const float *e = c->E + (size_t)p * cols;
        double s = 0;
        for (uint32_t d = 0; d < c->dim; d++) s += (double)e[d] * e[d];
        if (s > mx) mx = s;
    }
    c->xs_scale = mx > 0 ? (float)sqrt(mx) : 1.0f;
    for (uint32_t p = 0; p < c->n_p; p++) {
        float *e = c->E + (size_t)p * cols;
        double s = 0;
        for (uint32_t d = 0; d < c->dim; d++) {
            e[d] = e[d] / c->xs_scale;
            s += (double)e[d] * e[d];
        }
        e[c->dim] = s < 1 ? (float)sqrt(1 - s) : 0.0f;
    }
}

static int stage_xs(build_ctx *c)
{
    double t = now_s();
    ycsr yt;
    xs_job jobs[PEFA_MAX_THREADS];
    pthread_t tid[PEFA_MAX_THREADS];
    uint8_t started[PEFA_MAX_THREADS] = {0};
    uint32_t nt = c->threads < c->n_p ? c->threads : c->n_p;
    if (!c->has_q) return 0;
    c->Z = (float *)malloc((size_t)c->n_p * c->dim * sizeof(float));
    c->E = (float *)malloc((size_t)c->n_p * (c->dim + 1) * sizeof(float));
    RETURN_ERROR_IF(!c->Z || !c->E, PEFA_ERR_NOMEM, "pefa_build: out of memory for the XS vectors");
    FORWARD_IF_ERROR(pefa__ycsr_transpose(&c->y, &yt));
    progress(c, "xs vectors", 0, c->n_p);
    for (uint32_t k = 0; k < nt; k++)
        jobs[k] = (xs_job){&yt, c->P, c->Q, c->Z, c->E, c->dim, (uint32_t)((uint64_t)c->n_p * k / nt),
                           (uint32_t)((uint64_t)c->n_p * (k + 1) / nt), c->p.lambda,
                           c->p.metric == PEFA_METRIC_IP, 0};
    for (uint32_t k = 1; k < nt; k++) started[k] = pthread_create(&tid[k], NULL, xs_worker, &jobs[k]) == 0;
    xs_worker(&jobs[0]);
    for (uint32_t k = 0; k < nt; k++) {
        if (k > 0 && started[k]) pthread_join(tid[k], NULL);
        else if (k > 0) xs_worker(&jobs[k]); /* could not start a thread: do it here */
        c->st.passages_without_queries += jobs[k].empty;
    }
    pefa__ycsr_free(&yt);
    if (c->p.metric == PEFA_METRIC_IP) xs_scale_ip(c);
    progress(c, "xs vectors", c->n_p, c->n_p);
    c->st.seconds_xs = now_s() - t;
    return 0;
}

/* ---- storage and graphs ---------------------------------------------------------- */
static void *to_f16(const float *x, size_t n)
{
    uint16_t *h = x ? (uint16_t *)malloc(n * sizeof *h) : NULL;
    if (h) pefa_f32_to_f16(x, h, n);
    return h;
}

/* f16 rows are converted once; graphs are built over what is stored */
static int stage_storage(build_ctx *c)
{
    size_t np = (size_t)c->n_p * c->dim, nq = (size_t)c->n_q * c->dim;
    c->Pv = c->P;
    c->Qv = c->Q;
    c->Ev = c->E;
    c->Zv = c->Z;
    if (c->p.vector_type != PEFA_TYPE_F16) return 0;
    c->Pv = c->P16 = to_f16(c->P, np);
    c->Qv = c->Q16 = to_f16(c->Q, nq);
    c->Ev = c->E16 = to_f16(c->E, (size_t)c->n_p * (c->dim + 1));
    c->Zv = c->Z16 = to_f16(c->Z, np);
    RETURN_ERROR_IF(!c->P16 || (c->has_q && (!c->Q16 || !c->E16 || !c->Z16)), PEFA_ERR_NOMEM,
                    "pefa_build: out of memory for f16 vectors");
    return 0;
}

static void graph_progress(void *ctx, uint64_t done, uint64_t total)
{
    const build_ctx *c = (const build_ctx *)ctx;
    progress(c, c->stage, done, total);
}

static int build_graph(build_ctx *c, const char *stage, const void *v, uint32_t n, uint32_t cols, hnsw_graph *g)
{
    size_t es = pefa_type_size(c->p.vector_type);
    hnsw_build_params hp = {c->p.M, c->p.ef_construction, c->p.seed, c->threads, graph_progress, c};
    c->stage = stage;
    return pefa__hnsw_build(v, n, cols, (size_t)cols * es, c->p.vector_type, &hp, g);
}

static int stage_graphs(build_ctx *c)
{
    double t = now_s();
    if (c->p.no_graphs) return 0;
    FORWARD_IF_ERROR(build_graph(c, "graph over passages", c->Pv, c->n_p, c->dim, &c->gp));
    if (c->has_q) {
        FORWARD_IF_ERROR(build_graph(c, "graph over xs vectors", c->Ev, c->n_p, c->dim + 1, &c->gx));
        FORWARD_IF_ERROR(build_graph(c, "graph over training queries", c->Qv, c->n_q, c->dim, &c->gq));
    }
    c->st.seconds_graphs = now_s() - t;
    return 0;
}

/* ---- writing --------------------------------------------------------------------- */
static int write_vectors(build_ctx *c, uint32_t target, const void *data, uint32_t rows, uint32_t cols, int required)
{
    pefa_section_info d;
    memset(&d, 0, sizeof d);
    d.kind = PEFA_KIND_VECTORS;
    d.target = target;
    d.flags = required ? PEFA_SECTION_REQUIRED : 0;
    d.elem = c->p.vector_type;
    d.ndim = 2;
    d.shape[0] = rows;
    d.shape[1] = cols;
    return pefa_writer_add(c->w, &d, data, (size_t)rows * cols * pefa_type_size(c->p.vector_type));
}

static int write_y(build_ctx *c)
{
    uint64_t *rp = NULL, rows_len = 0;
    uint8_t *rows = NULL;
    pefa_section_info d;
    int rc;
    FORWARD_IF_ERROR(pefa__ycsr_encode(&c->y, &rp, &rows, &rows_len));
    memset(&d, 0, sizeof d);
    d.kind = PEFA_KIND_Y_ROWPTR;
    d.elem = PEFA_TYPE_U64;
    d.ndim = 1;
    d.shape[0] = (uint64_t)c->n_q + 1;
    rc = pefa_writer_add(c->w, &d, rp, ((size_t)c->n_q + 1) * 8);
    if (!rc) {
        memset(&d, 0, sizeof d);
        d.kind = PEFA_KIND_Y_ROWS;
        d.elem = PEFA_TYPE_BYTES;
        d.codec = c->p.y_codec;
        rc = pefa_writer_add(c->w, &d, rows, (size_t)rows_len);
    }
    free(rp);
    free(rows);
    return rc;
}

static void meta_text(build_ctx *c)
{
    char iso[32];
    time_t now = time(NULL);
    struct tm tmv;
    strbuf *m = &c->meta;
    gmtime_r(&now, &tmv);
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    sb_printf(m, "pefa.n_passages=%u\npefa.n_queries=%u\npefa.dim=%u\npefa.nnz=%llu\n", c->n_p, c->n_q, c->dim,
              (unsigned long long)c->st.nnz);
    sb_printf(m, "pefa.metric=%s\npefa.normalise=%s\npefa.vector_type=%s\n",
              c->p.metric == PEFA_METRIC_IP ? "ip" : "cosine", c->p.metric == PEFA_METRIC_IP ? "none" : "l2",
              pefa_type_name(c->p.vector_type));
    if (c->has_q) sb_printf(m, "pefa.xs_lambda=%.9g\n", (double)c->p.lambda);
    if (c->has_q && c->p.metric == PEFA_METRIC_IP) sb_printf(m, "pefa.xs_scale=%.9g\n", (double)c->xs_scale);
    if (!c->p.no_graphs)
        sb_printf(m, "hnsw.M=%u\nhnsw.ef_construction=%u\nhnsw.seed=%llu\n", c->p.M, c->p.ef_construction,
                  (unsigned long long)c->p.seed);
    sb_printf(m, "pefa.y_codec=%s\nbuild.threads=%u\nbuild.library=pefa %s\nbuild.created_utc=%s\n",
              pefa_codec_name(c->p.y_codec), c->threads, pefa_version_string(), iso);
    if (c->idpath) sb_printf(m, "idmap.file=%s\n", strrchr(c->idpath, '/') ? strrchr(c->idpath, '/') + 1 : c->idpath);
    for (uint32_t i = 0; i < c->in.n_meta; i++) sb_printf(m, "%s=%s\n", c->in.meta_keys[i], c->in.meta_values[i]);
}

static int stage_write(build_ctx *c)
{
    double t = now_s();
    progress(c, "writing", 0, 1);
    FORWARD_IF_ERROR(pefa_writer_open(c->out, &c->w));
    pefa_writer_uuid(c->w, c->st.uuid);
    /* [H5] a reader that does not know the metric must refuse the file */
    if (c->p.metric == PEFA_METRIC_IP) FORWARD_IF_ERROR(pefa__writer_set_flags(c->w, PEFA_FILE_FLAG_METRIC_IP));
    if (c->in.passage_ids || c->in.query_ids) {
        c->idpath = (char *)malloc(strlen(c->out) + 48);
        RETURN_ERROR_IF(!c->idpath, PEFA_ERR_NOMEM, "pefa_build: out of memory");
        pefa__idmap_file_name(c->out, c->st.uuid, c->idpath, strlen(c->out) + 48);
    }
    meta_text(c);
    FORWARD_IF_ERROR(write_vectors(c, PEFA_TARGET_PASSAGES, c->Pv, c->n_p, c->dim, 1));
    if (c->has_q) {
        FORWARD_IF_ERROR(write_vectors(c, PEFA_TARGET_QUERIES, c->Qv, c->n_q, c->dim, 0));
        FORWARD_IF_ERROR(write_vectors(c, PEFA_TARGET_XS, c->Ev, c->n_p, c->dim + 1, 0));
        FORWARD_IF_ERROR(write_vectors(c, PEFA_TARGET_XS_Z, c->Zv, c->n_p, c->dim, 0));
        FORWARD_IF_ERROR(write_y(c));
    }
    if (!c->p.no_graphs) {
        FORWARD_IF_ERROR(pefa__graph_store_write(c->w, PEFA_TARGET_PASSAGES, &c->gp, c->p.ef_construction, c->p.seed));
        if (c->has_q) {
            FORWARD_IF_ERROR(pefa__graph_store_write(c->w, PEFA_TARGET_XS, &c->gx, c->p.ef_construction, c->p.seed));
            FORWARD_IF_ERROR(pefa__graph_store_write(c->w, PEFA_TARGET_QUERIES, &c->gq, c->p.ef_construction, c->p.seed));
        }
    }
    c->st.seconds_write = now_s() - t;
    return 0;
}

/* ids "0".."n-1" for the side given without ids (the id map holds both) */
static char **row_ids(uint32_t n)
{
    char **ids = (char **)calloc(n ? n : 1, sizeof *ids);
    char *buf = (char *)malloc((size_t)(n ? n : 1) * 11);
    if (!ids || !buf) {
        free(ids);
        free(buf);
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = buf + (size_t)i * 11;
        snprintf(ids[i], 11, "%u", i);
    }
    return ids;
}

static void row_ids_free(char **ids)
{
    if (ids) free(ids[0]);
    free(ids);
}

/* [I4] the id map under its final name, then its size and digest into META */
static int stage_idmap(build_ctx *c)
{
    const char *const *pids = c->in.passage_ids, *const *qids = c->in.query_ids;
    char **rows = NULL;
    uint64_t bytes, digest;
    int rc;
    if (!c->idpath) return 0;
    if (!pids || (c->has_q && !qids)) {
        rows = row_ids(!pids ? c->n_p : c->n_q);
        RETURN_ERROR_IF(!rows, PEFA_ERR_NOMEM, "pefa_build: out of memory");
        if (!pids) pids = (const char *const *)rows;
        else qids = (const char *const *)rows;
    }
    rc = pefa__idmap_write(c->idpath, c->st.uuid, pids, c->n_p, c->has_q ? qids : NULL, c->n_q, &c->st.idmap_bytes);
    row_ids_free(rows);
    FORWARD_IF_ERROR(rc);
    FORWARD_IF_ERROR(pefa_file_digest(c->idpath, &bytes, &digest));
    sb_printf(&c->meta, "idmap.bytes=%llu\nidmap.xxh3=%016llx\n", (unsigned long long)bytes,
              (unsigned long long)digest);
    return 0;
}

/* META last (it records the id map's digest), then the commit */
static int stage_commit(build_ctx *c)
{
    pefa_section_info d;
    struct stat sb;
    pefa_writer *w = c->w;
    int rc;
    RETURN_ERROR_IF(c->meta.oom, PEFA_ERR_NOMEM, "pefa_build: out of memory");
    memset(&d, 0, sizeof d);
    d.kind = PEFA_KIND_META;
    d.flags = PEFA_SECTION_REQUIRED;
    d.elem = PEFA_TYPE_BYTES;
    FORWARD_IF_ERROR(pefa_writer_add(w, &d, c->meta.buf, c->meta.len));
    c->w = NULL;
    rc = pefa__writer_commit(w, &c->committed);
    if (c->committed && stat(c->out, &sb) == 0) c->st.file_bytes = (uint64_t)sb.st_size;
    progress(c, "writing", 1, 1);
    return rc;
}

static void ctx_free(build_ctx *c, int failed)
{
    if (c->w) pefa_writer_abort(c->w);
    if (failed && !c->committed && c->idpath) unlink(c->idpath);
    pefa__ycsr_free(&c->y);
    free(c->P);
    free(c->Q);
    free(c->Z);
    free(c->E);
    free(c->P16);
    free(c->Q16);
    free(c->Z16);
    free(c->E16);
    free(c->meta.buf);
    free(c->idpath);
    pefa__hnsw_graph_free(&c->gp);
    pefa__hnsw_graph_free(&c->gq);
    pefa__hnsw_graph_free(&c->gx);
    unlock(c);
}

int pefa_build(const char *out_path, const pefa_build_input *in, const pefa_build_params *p, pefa_build_stats *st)
{
    build_ctx c;
    double t0 = now_s();
    int rc;
    memset(&c, 0, sizeof c);
    c.lockfd = -1;
    c.xs_scale = 1.0f;
    rc = stage_args(&c, out_path, in, p);
    if (!rc) rc = stage_lock(&c);
    if (!rc) rc = stage_rows(&c);
    if (!rc) rc = stage_y(&c);
    if (!rc) rc = stage_xs(&c);
    if (!rc) rc = stage_storage(&c);
    if (!rc) rc = stage_graphs(&c);
    if (!rc) rc = stage_write(&c);
    if (!rc) rc = stage_idmap(&c);
    if (!rc) rc = stage_commit(&c);
    ctx_free(&c, rc != 0);
    c.st.seconds_total = now_s() - t0;
    if (st) pefa__abi_out(st, &c.st, PEFA_V1_SIZE(pefa_build_stats, uuid), sizeof c.st);
    return rc;
}
