/*
 * build.c - embeddings + relevance pairs in, one index file out.
 *
 * pefa_build is a list of stages over one context (build_private.h):
 *   args     the caller's structs copied, defaults, ranges, the shard
 *   y        Y as CSR from the triplets, duplicates summed
 *   open     the writer on "<out>.tmp.XXXXXX" (and the id map's name)
 *   rows     P and Q read, checked, L2-normalised and written  (build_rows.c)
 *   z        z_j = normalise(sum_i Y_ij q_i) written, |S_j| kept
 *   tune     leave-one-out over the written P, Q, Z (when asked)
 *   e        e_j = lam p_j + (1-lam) z_j written
 *   graphs   HNSW over P, E and Q read back from the file; int8 codes
 *   tables   XS_NORMS and Y
 *   idmap    the id map "<out>.<uuid>.ids", synced, its digest into META
 *   commit   META, then the atomic rename: the one commit point
 * The rows are streamed (docs/architecture.md, Build pipeline, has the
 * memory formula). Nothing new is left at the output path or beside it unless
 * every stage succeeded; the caller's arrays are only read; no other file
 * is removed.
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
#include "idmap/idmap.h"
#include "pefa/build_private.h"
#include "pefa/tune.h"

#define DEFAULT_LAMBDA 0.5f
#define DEFAULT_M 32u
#define DEFAULT_EFC 500u
#define DEFAULT_SEED 42u

double pefa__build_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void pefa__build_progress(const build_ctx *c, const char *stage, uint64_t done, uint64_t total)
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
    RETURN_ERROR_IF(p->vector_type != PEFA_TYPE_F32 && p->vector_type != PEFA_TYPE_F16 && p->vector_type != PEFA_TYPE_I8,
                    PEFA_ERR_INVALID_ARG, "pefa_build: vector type must be f32, f16 or i8");
    RETURN_ERROR_IF(p->y_codec > PEFA_CODEC_ZSTD, PEFA_ERR_INVALID_ARG, "pefa_build: unknown Y codec %u", p->y_codec);
    RETURN_ERROR_IF(p->set & ~(PEFA_SET_LAMBDA | PEFA_SET_SEED), PEFA_ERR_INVALID_ARG,
                    "pefa_build: unknown set bits 0x%x", p->set);
    RETURN_ERROR_IF(p->similarity > PEFA_SIMILARITY_IP, PEFA_ERR_INVALID_ARG,
                    "pefa_build: unknown similarity %u (0 cosine, 1 ip)", p->similarity);
    RETURN_ERROR_IF(p->similarity == PEFA_SIMILARITY_IP && (p->tune || p->shard_count > 1), PEFA_ERR_INVALID_ARG,
                    "pefa_build: metric ip with %s is not supported yet (cosine only)",
                    p->tune ? "tuning" : "shards");
    RETURN_ERROR_IF(p->threads > PEFA_MAX_THREADS, PEFA_ERR_INVALID_ARG, "pefa_build: %u threads (at most %u)",
                    p->threads, PEFA_MAX_THREADS);
    RETURN_ERROR_IF(p->tune_metric && !pefa_metric_name(p->tune_metric), PEFA_ERR_INVALID_ARG,
                    "pefa_build: unknown tuning metric %d", p->tune_metric);
    RETURN_ERROR_IF(p->tune_label_check < 0 || p->tune_label_check > PEFA_LABEL_CHECK_OFF, PEFA_ERR_INVALID_ARG,
                    "pefa_build: unknown tune_label_check %d (0 default, 1 on, 2 off)", p->tune_label_check);
    return 0;
}

/* [S1] shard i of count holds global passage rows [n*i/count, n*(i+1)/count) */
static int shard_range(build_ctx *c)
{
    uint32_t cnt = c->p.shard_count > 1 ? c->p.shard_count : 1, i = c->p.shard_index;
    c->n_total = c->n_p;
    c->store_q = c->has_q && i == 0;
    RETURN_ERROR_IF(i >= cnt || cnt > c->n_total, PEFA_ERR_INVALID_ARG,
                    "pefa_build: shard %u of %u (there are %u passages)", i, cnt, c->n_total);
    RETURN_ERROR_IF(cnt > 1 && c->p.tune, PEFA_ERR_INVALID_ARG,
                    "pefa_build: a shard is not tuned on its own, and tuning a shard set is not supported yet");
    c->p_from = (uint32_t)((uint64_t)c->n_total * i / cnt);
    c->n_p = (uint32_t)((uint64_t)c->n_total * (i + 1) / cnt) - c->p_from;
    c->src_p.step = c->in.passages_stride ? (size_t)c->in.passages_stride
                                          : (size_t)c->dim * pefa_type_size(c->in.passages_type);
    c->src_p = (build_src){(const char *)c->in.passages + (size_t)c->p_from * c->src_p.step, c->in.passages_type,
                           c->src_p.step, c->in.passages_name, c->p_from};
    c->src_q = (build_src){(const char *)c->in.queries, c->in.queries_type,
                           c->in.queries_stride ? (size_t)c->in.queries_stride
                                                : (size_t)c->dim * pefa_type_size(c->in.queries_type),
                           c->in.queries_name, 0};
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
    FORWARD_IF_ERROR(pefa__output_path_ok(out)); /* before the lock file is made beside it */
    c->out = out;
    pefa__abi_in(&c->in, sizeof c->in, in, PEFA_V1_BUILD_INPUT);
    pefa__abi_in(&c->p, sizeof c->p, pp, PEFA_V1_BUILD_PARAMS);
    if (!(c->p.set & PEFA_SET_LAMBDA)) c->p.lambda = DEFAULT_LAMBDA;
    if (!(c->p.set & PEFA_SET_SEED)) c->p.seed = DEFAULT_SEED;
    if (!c->p.M) c->p.M = DEFAULT_M;
    if (!c->p.ef_construction) c->p.ef_construction = DEFAULT_EFC;
    if (!c->p.vector_type) c->p.vector_type = PEFA_TYPE_F32;
    c->rows_type = c->p.vector_type == PEFA_TYPE_F32 ? PEFA_TYPE_F32 : PEFA_TYPE_F16;
    if (!c->in.passages_type) c->in.passages_type = PEFA_TYPE_F32;
    if (!c->in.queries_type) c->in.queries_type = PEFA_TYPE_F32;
    if (!c->in.passages_name) c->in.passages_name = "passages";
    if (!c->in.queries_name) c->in.queries_name = "training queries";
    FORWARD_IF_ERROR(check_params(&c->p));
    c->threads = c->p.threads ? c->p.threads : cpus < 1 ? 1u : cpus > 256 ? 256u : (uint32_t)cpus;
    c->ip = c->p.similarity == PEFA_SIMILARITY_IP;
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
    RETURN_ERROR_IF(c->p.tune && (!c->has_q || !i->n_pairs), PEFA_ERR_INVALID_ARG,
                    "pefa_build: tuning needs training queries and relevance pairs");
    FORWARD_IF_ERROR(check_ids(i->passage_ids, c->n_p, "passage"));
    FORWARD_IF_ERROR(check_ids(i->query_ids, c->n_q, "training query"));
    FORWARD_IF_ERROR(shard_range(c));
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
    double t = pefa__build_now();
    if (c->has_q) {
        FORWARD_IF_ERROR(check_pair_values(c->in.pairs, c->in.n_pairs));
        FORWARD_IF_ERROR(pefa__ycsr_from_pairs(c->in.pairs, c->in.n_pairs, c->n_q, c->n_total, &c->y));
        c->st.nnz = c->y.nnz;
    }
    c->st.seconds_y = pefa__build_now() - t;
    return 0;
}

/* ---- tuning ------------------------------------------------------------------------- */
static void tune_meta(build_ctx *c, const pefa_tune_report *r)
{
    static const char *const modes[] = {"", "erm", "xs", "xl"};
    const pefa_tune_setting *w = &r->settings[r->chosen], *erm = &r->settings[0];
    strbuf *m = &c->meta_tune;
    sb_printf(m, "tune.mode=%s\ntune.lambda=%g\n", modes[w->mode], (double)w->lambda);
    if (w->mode == PEFA_MODE_XL) sb_printf(m, "tune.knn=%u\n", w->knn);
    sb_printf(m, "tune.metric=%s\ntune.grid=%u\ntune.queries=%u\ntune.groups=%u\ntune.seed=%llu\n",
              pefa_metric_name(r->metric), r->n_settings, r->n_queries, r->n_groups, (unsigned long long)r->seed);
    sb_printf(m, "tune.score=%.6f\ntune.score_erm=%.6f\ntune.delta_lo=%.6f\ntune.seconds=%.3f\n", w->score,
              erm->score, w->delta_lo, r->seconds);
    sb_printf(m, "tune.label_check=%s\ntune.label_passed=%d\ntune.label_own=%.6f\ntune.label_other=%.6f\n",
              r->label_check == PEFA_LABEL_CHECK_OFF ? "off" : "on", r->label_passed, r->label_own, r->label_other);
    sb_printf(m, "tune.label_delta_lo=%.6f\n", r->label_delta_lo);
}

/* [T1] leave-one-out over the stored rows; an XS winner sets the XS lambda */
static int stage_tune(build_ctx *c)
{
    pefa_tune_params tp = PEFA_TUNE_PARAMS_INIT;
    pefa_tune_report *r;
    pefa__wmap m[3];
    int rc = 0;
    if (!c->p.tune) return 0;
    tp.n_queries = c->p.tune_queries ? c->p.tune_queries : PEFA_TUNE_DEFAULT_QUERIES;
    tp.metric = c->p.tune_metric ? c->p.tune_metric : PEFA_METRIC_RECALL100;
    tp.seed = c->p.seed;
    tp.label_check = c->p.tune_label_check ? c->p.tune_label_check : PEFA_LABEL_CHECK_ON;
    tp.threads = c->threads;
    tp.progress = c->p.progress;
    tp.progress_ctx = c->p.progress_ctx;
    memset(m, 0, sizeof m);
    rc = pefa__writer_map(c->w, PEFA_KIND_VECTORS, PEFA_TARGET_PASSAGES, &m[0]);
    if (!rc) rc = pefa__writer_map(c->w, PEFA_KIND_VECTORS, PEFA_TARGET_QUERIES, &m[1]);
    if (!rc) rc = pefa__writer_map(c->w, PEFA_KIND_VECTORS, PEFA_TARGET_XS_Z, &m[2]);
    if (!rc) {
        pefa_tune_data d = {c->n_p, c->n_q, c->dim, c->rows_type, (size_t)c->dim * pefa_type_size(c->rows_type),
                            m[0].data, m[1].data, m[2].data, c->S, c->y.rowptr, c->y.cols, c->y.vals};
        rc = pefa__tune_run(&d, &tp, &r);
    }
    for (int k = 0; k < 3; k++) pefa__writer_unmap(&m[k]);
    FORWARD_IF_ERROR(rc);
    if (r->settings[r->chosen].mode == PEFA_MODE_XS) c->p.lambda = r->settings[r->chosen].lambda;
    tune_meta(c, r);
    c->st.seconds_tune = r->seconds;
    pefa_tune_report_free(r);
    return 0;
}

/* ---- writing --------------------------------------------------------------------- */
/* [X2] |S_j| per passage, f32 whatever the vector type (leave-one-out XS) */
static int write_norms(build_ctx *c)
{
    pefa_section_info d;
    memset(&d, 0, sizeof d);
    d.kind = PEFA_KIND_XS_NORMS;
    d.elem = PEFA_TYPE_F32;
    d.ndim = 1;
    d.shape[0] = c->n_p;
    return pefa_writer_add(c->w, &d, c->S, (size_t)c->n_p * sizeof(float));
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
    sb_printf(m, "pefa.n_passages=%u\npefa.n_queries=%u\npefa.dim=%u\npefa.nnz=%llu\n", c->n_p,
              c->store_q ? c->n_q : 0, c->dim, (unsigned long long)c->st.nnz);
    if (c->p.shard_count > 1) /* [S1] */
        sb_printf(m, "shard.index=%u\nshard.count=%u\nshard.rows_from=%u\nshard.rows_total=%u\n", c->p.shard_index,
                  c->p.shard_count, c->p_from, c->n_total);
    sb_printf(m, "pefa.metric=%s\npefa.normalise=%s\npefa.vector_type=%s\n", c->ip ? "ip" : "cosine",
              c->ip ? "none" : "l2", pefa_type_name(c->rows_type));
    if (c->p.vector_type == PEFA_TYPE_I8 && !c->p.no_graphs) sb_printf(m, "pefa.codes=i8\n");
    if (c->has_q) sb_printf(m, "pefa.xs_lambda=%.9g\n", (double)c->p.lambda);
    if (c->has_q && c->ip) sb_printf(m, "pefa.xs_scale=%.9g\n", (double)c->xs_scale);
    if (!c->p.no_graphs)
        sb_printf(m, "hnsw.M=%u\nhnsw.ef_construction=%u\nhnsw.seed=%llu\n", c->p.M, c->p.ef_construction,
                  (unsigned long long)c->p.seed);
    sb_printf(m, "pefa.y_codec=%s\nbuild.threads=%u\nbuild.seed=%llu\nbuild.library=pefa %s\nbuild.created_utc=%s\n",
              pefa_codec_name(c->p.y_codec), c->threads, (unsigned long long)c->p.seed, pefa_version_string(), iso);
    if (c->meta_tune.len) sb_printf(m, "%s", c->meta_tune.buf);
    if (c->idpath) sb_printf(m, "idmap.file=%s\n", strrchr(c->idpath, '/') ? strrchr(c->idpath, '/') + 1 : c->idpath);
    for (uint32_t i = 0; i < c->in.n_meta; i++) sb_printf(m, "%s=%s\n", c->in.meta_keys[i], c->in.meta_values[i]);
}

/* the writer first: every later stage streams into it */
static int stage_open(build_ctx *c)
{
    FORWARD_IF_ERROR(pefa_writer_open(c->out, &c->w));
    pefa_writer_uuid(c->w, c->st.uuid);
    /* [H5] a reader that does not know the metric must refuse the file */
    if (c->ip) FORWARD_IF_ERROR(pefa__writer_set_flags(c->w, PEFA_FILE_FLAG_METRIC_IP));
    if (c->in.passage_ids || (c->store_q && c->in.query_ids)) {
        c->idpath = (char *)malloc(strlen(c->out) + 48);
        RETURN_ERROR_IF(!c->idpath, PEFA_ERR_NOMEM, "pefa_build: out of memory");
        pefa__idmap_file_name(c->out, c->st.uuid, c->idpath, strlen(c->out) + 48);
    }
    return 0;
}

/* the small sections, and META's text (tuned, id map named) */
static int stage_tables(build_ctx *c)
{
    double t = pefa__build_now();
    pefa__build_progress(c, "writing", 0, 1);
    if (c->has_q) FORWARD_IF_ERROR(write_norms(c));
    if (c->store_q) FORWARD_IF_ERROR(write_y(c));
    meta_text(c);
    c->st.seconds_write = pefa__build_now() - t;
    return 0;
}

/* ids "from".."from+n-1" (row numbers) for the side given without ids (the
 * id map holds both) */
static char **row_ids(uint32_t n, uint32_t from)
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
        snprintf(ids[i], 11, "%u", from + i);
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
    const char *const *pids = c->in.passage_ids ? c->in.passage_ids + c->p_from : NULL, *const *qids = c->in.query_ids;
    char **rows = NULL;
    uint64_t bytes, digest;
    int rc;
    if (!c->idpath) return 0;
    if (!pids || (c->store_q && !qids)) {
        rows = !pids ? row_ids(c->n_p, c->p_from) : row_ids(c->n_q, 0);
        RETURN_ERROR_IF(!rows, PEFA_ERR_NOMEM, "pefa_build: out of memory");
        if (!pids) pids = (const char *const *)rows;
        else qids = (const char *const *)rows;
    }
    rc = pefa__idmap_write(c->idpath, c->st.uuid, pids, c->n_p, c->store_q ? qids : NULL, c->store_q ? c->n_q : 0,
                           &c->st.idmap_bytes);
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
    double t;
    int rc;
    RETURN_ERROR_IF(c->meta.oom || c->meta_tune.oom, PEFA_ERR_NOMEM, "pefa_build: out of memory");
    memset(&d, 0, sizeof d);
    d.kind = PEFA_KIND_META;
    d.flags = PEFA_SECTION_REQUIRED;
    d.elem = PEFA_TYPE_BYTES;
    FORWARD_IF_ERROR(pefa_writer_add(w, &d, c->meta.buf, c->meta.len));
    c->w = NULL;
    t = pefa__build_now();
    rc = pefa__writer_commit(w, &c->committed);
    c->st.seconds_write += pefa__build_now() - t;
    if (c->committed && stat(c->out, &sb) == 0) c->st.file_bytes = (uint64_t)sb.st_size;
    pefa__build_progress(c, "writing", 1, 1);
    return rc;
}

static void ctx_free(build_ctx *c, int failed)
{
    if (c->w) pefa_writer_abort(c->w);
    if (failed && !c->committed && c->idpath) unlink(c->idpath);
    pefa__ycsr_free(&c->y);
    pefa__ycsr_free(&c->yt);
    free(c->ps);
    free(c->qs);
    free(c->S);
    free(c->meta.buf);
    free(c->meta_tune.buf);
    free(c->idpath);
    unlock(c);
}

int pefa_build(const char *out_path, const pefa_build_input *in, const pefa_build_params *p, pefa_build_stats *st)
{
    build_ctx c;
    double t0 = pefa__build_now();
    int rc;
    memset(&c, 0, sizeof c);
    c.lockfd = -1;
    c.xs_scale = 1.0f;
    rc = stage_args(&c, out_path, in, p);
    if (!rc) rc = stage_lock(&c);
    if (!rc) rc = stage_y(&c);
    if (!rc) rc = stage_open(&c);
    if (!rc) rc = pefa__build_rows(&c);
    if (!rc) rc = pefa__build_z(&c);
    if (!rc) rc = stage_tune(&c);
    if (!rc) rc = pefa__build_e(&c);
    if (!rc) rc = pefa__build_graphs(&c);
    if (!rc) rc = stage_tables(&c);
    if (!rc) rc = stage_idmap(&c);
    if (!rc) rc = stage_commit(&c);
    ctx_free(&c, rc != 0);
    c.st.seconds_total = pefa__build_now() - t0;
    if (st) pefa__abi_out(st, &c.st, PEFA_V1_BUILD_STATS, sizeof c.st);
    return rc;
}
