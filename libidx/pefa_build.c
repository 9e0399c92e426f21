/*
 * pefa_build.c - embeddings + relevance pairs in, one index file out.
 *
 * Stages: normalise rows -> Y (CSR) -> z_j = normalise(sum_i Y_ij q_i) and
 * e_j = lam p_j + (1-lam) z_j -> HNSW graphs over P, E and Q -> write the
 * sections -> id map -> atomic commit. Nothing appears at the output path
 * unless every stage succeeded.
 */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dist.h"
#include "error_private.h"
#include "graph_store.h"
#include "hnsw.h"
#include "idmap.h"
#include "ycsr.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint32_t n_threads(uint32_t want)
{
    long n = want ? (long)want : sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : n > 256 ? 256u : (uint32_t)n;
}

/* normalises rows in place; BAD_INPUT names the first non-finite value */
static int normalise_rows(float *x, uint32_t rows, uint32_t dim, const char *what, uint64_t *zeros)
{
    *zeros = 0;
    for (uint32_t r = 0; r < rows; r++) {
        float *v = x + (size_t)r * dim;
        double s = 0;
        for (uint32_t c = 0; c < dim; c++) {
            RETURN_ERROR_IF(!isfinite(v[c]), PEFA_ERR_BAD_INPUT, "%s: row %u column %u is %s", what, r, c,
                            isnan(v[c]) ? "NaN" : "infinite");
            s += (double)v[c] * v[c];
        }
        if (s == 0) {
            (*zeros)++;
            continue;
        }
        s = 1.0 / sqrt(s);
        for (uint32_t c = 0; c < dim; c++) v[c] = (float)(v[c] * s);
    }
    return 0;
}

/* ---- z and e, in parallel over passages ---------------------------------- */
typedef struct {
    const ycsr *yt;          /* Y^T: row j lists (query i, Y_ij) */
    const float *P, *Q;
    float *Z, *E;
    uint32_t dim, from, to;
    float lam;
    uint64_t empty;
} xs_job;

static void *xs_worker(void *arg)
{
    xs_job *j = (xs_job *)arg;
    for (uint32_t p = j->from; p < j->to; p++) {
        float *z = j->Z + (size_t)p * j->dim, *e = j->E + (size_t)p * (j->dim + 1);
        const float *pv = j->P + (size_t)p * j->dim;
        double s = 0;
        memset(z, 0, j->dim * sizeof(float));
        for (uint64_t k = j->yt->rowptr[p]; k < j->yt->rowptr[p + 1]; k++) {
            const float *q = j->Q + (size_t)j->yt->cols[k] * j->dim;
            float y = j->yt->vals[k];
            for (uint32_t c = 0; c < j->dim; c++) z[c] += y * q[c];
        }
        for (uint32_t c = 0; c < j->dim; c++) s += (double)z[c] * z[c];
        if (s > 0) {
            s = 1.0 / sqrt(s);
            for (uint32_t c = 0; c < j->dim; c++) z[c] = (float)(z[c] * s);
        } else {
            j->empty++;
            memset(z, 0, j->dim * sizeof(float));
        }
        /* e_j, then the column that makes the row unit-norm (|e_j| <= 1: a
         * convex mix of unit or zero vectors): <(q,0), e'_j> = <q, e_j>, and
         * the XS graph searches unit vectors, like the passage graph */
        s = 0;
        for (uint32_t c = 0; c < j->dim; c++) {
            e[c] = j->lam * pv[c] + (1 - j->lam) * z[c];
            s += (double)e[c] * e[c];
        }
        e[j->dim] = s < 1 ? (float)sqrt(1 - s) : 0.0f;
    }
    return NULL;
}

static int compute_xs(const ycsr *y, const float *P, const float *Q, uint32_t n_p, uint32_t dim, float lam,
                      uint32_t threads, float *Z, float *E, uint64_t *empty)
{
    ycsr yt;
    xs_job jobs[256];
    pthread_t tid[256];
    uint8_t started[256] = {0};
    uint32_t t, nt = threads < 256 ? threads : 256;
    FORWARD_IF_ERROR(ycsr_transpose(y, &yt));
    if (nt > n_p) nt = n_p;
    for (t = 0; t < nt; t++)
        jobs[t] = (xs_job){&yt, P, Q, Z, E, dim, (uint32_t)((uint64_t)n_p * t / nt),
                           (uint32_t)((uint64_t)n_p * (t + 1) / nt), lam, 0};
    for (t = 1; t < nt; t++) started[t] = pthread_create(&tid[t], NULL, xs_worker, &jobs[t]) == 0;
    xs_worker(&jobs[0]);
    *empty = jobs[0].empty;
    for (t = 1; t < nt; t++) {
        if (started[t]) pthread_join(tid[t], NULL);
        else xs_worker(&jobs[t]); /* could not start a thread: do it here */
        *empty += jobs[t].empty;
    }
    ycsr_free(&yt);
    return 0;
}

/* ---- writing ----------------------------------------------------------------- */
typedef struct {
    pefa_progress_fn fn;
    void *ctx;
    const char *stage;
} progress_ad;

static void graph_progress(void *ctx, uint64_t done, uint64_t total)
{
    progress_ad *a = (progress_ad *)ctx;
    if (a->fn) a->fn(a->ctx, a->stage, done, total);
}

static int write_vectors(pefa_writer *w, uint32_t target, const void *data, uint32_t rows, uint32_t dim, uint8_t elem,
                         int required)
{
    pefa_section_info d;
    memset(&d, 0, sizeof d);
    d.kind = PEFA_KIND_VECTORS;
    d.target = target;
    d.flags = required ? PEFA_SECTION_REQUIRED : 0;
    d.elem = elem;
    d.ndim = 2;
    d.shape[0] = rows;
    d.shape[1] = dim;
    return pefa_writer_add(w, &d, data, (size_t)rows * dim * pefa_type_size(elem));
}

static int meta_ok(const char *k, const char *v)
{
    size_t n = strlen(k);
    if (n == 0 || n > 128 || strchr(v, '\n')) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return 0;
    }
    return 1;
}

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} strbuf;

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
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        {
            size_t nc = (b->cap + (size_t)n + 1) * 2;
            char *nb = (char *)realloc(b->buf, nc);
            if (!nb) {
                b->oom = 1;
                return;
            }
            b->buf = nb;
            b->cap = nc;
        }
    }
}

/* removes "<out>.<other uuid>.ids" left by earlier builds */
static void remove_stale_idmaps(const char *out, const char *keep)
{
    const char *slash = strrchr(out, '/');
    const char *base = slash ? slash + 1 : out;
    const char *keep_base = strrchr(keep, '/') ? strrchr(keep, '/') + 1 : keep;
    char dir[4096];
    size_t bl = strlen(base);
    DIR *d;
    struct dirent *e;
    if (slash) {
        size_t n = (size_t)(slash - out);
        if (n >= sizeof dir) return;
        memcpy(dir, out, n ? n : 1);
        dir[n ? n : 1] = 0;
    } else {
        strcpy(dir, ".");
    }
    if (!(d = opendir(dir))) return;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        size_t l = strlen(nm);
        if (l == bl + 1 + 32 + 4 && strncmp(nm, base, bl) == 0 && nm[bl] == '.' && strcmp(nm + l - 4, ".ids") == 0 &&
            strcmp(nm, keep_base) != 0 && strspn(nm + bl + 1, "0123456789abcdef") == 32) {
            char full[8192];
            snprintf(full, sizeof full, "%s/%s", dir, nm);
            unlink(full);
        }
    }
    closedir(d);
}

int pefa_build(const char *out_path, const pefa_build_input *in, const pefa_build_params *pp, pefa_build_stats *st)
{
    pefa_build_params p = PEFA_BUILD_PARAMS_INIT;
    pefa_build_stats stats;
    uint32_t dim, n_p, n_q, threads;
    int has_q, rc = 0;
    ycsr y;
    float *Z = NULL, *E = NULL;
    void *P16 = NULL, *Q16 = NULL, *E16 = NULL, *Z16 = NULL;
    const void *Pv, *Qv, *Ev, *Zv;
    hnsw_graph gp, gq, gx;
    pefa_writer *w = NULL;
    strbuf meta = {0};
    char idpath[4200] = "";
    double t0 = now_s(), t;
    progress_ad ad;

    memset(&stats, 0, sizeof stats);
    memset(&y, 0, sizeof y);
    memset(&gp, 0, sizeof gp);
    memset(&gq, 0, sizeof gq);
    memset(&gx, 0, sizeof gx);
    if (pp) p = *pp;
    RETURN_ERROR_IF(!out_path || !in || !in->passages, PEFA_ERR_INVALID_ARG, "pefa_build: missing output or passages");
    dim = in->dim;
    n_p = in->n_passages;
    n_q = in->queries ? in->n_queries : 0;
    has_q = n_q > 0;
    RETURN_ERROR_IF(n_p == 0, PEFA_ERR_INVALID_ARG, "pefa_build: no passages");
    RETURN_ERROR_IF(dim == 0 || dim > 65536, PEFA_ERR_INVALID_ARG, "pefa_build: dimension %u (1..65536)", dim);
    RETURN_ERROR_IF(!(p.lambda >= 0 && p.lambda <= 1), PEFA_ERR_INVALID_ARG, "pefa_build: lambda %g outside [0, 1]",
                    (double)p.lambda);
    RETURN_ERROR_IF(p.M < 2 || p.M > 2048 || p.ef_construction == 0, PEFA_ERR_INVALID_ARG,
                    "pefa_build: M must be 2..2048 and ef_construction >= 1");
    RETURN_ERROR_IF(p.vector_type != PEFA_TYPE_F32 && p.vector_type != PEFA_TYPE_F16, PEFA_ERR_INVALID_ARG,
                    "pefa_build: vector type must be f32 or f16");
    RETURN_ERROR_IF(p.y_codec > PEFA_CODEC_ZSTD, PEFA_ERR_INVALID_ARG, "pefa_build: unknown codec");
    RETURN_ERROR_IF(in->n_pairs && !has_q, PEFA_ERR_INVALID_ARG, "pefa_build: relevance pairs without training queries");
    for (uint32_t i = 0; i < in->n_meta; i++)
        RETURN_ERROR_IF(!meta_ok(in->meta_keys[i], in->meta_values[i]), PEFA_ERR_INVALID_ARG,
                        "pefa_build: metadata key '%s' or its value is not allowed", in->meta_keys[i]);
    threads = n_threads(p.threads);
    ad.fn = p.progress;
    ad.ctx = p.progress_ctx;

    /* 1. normalise */
    t = now_s();
    FORWARD_IF_ERROR(normalise_rows(in->passages, n_p, dim, "passages", &stats.zero_passages));
    if (has_q) FORWARD_IF_ERROR(normalise_rows(in->queries, n_q, dim, "training queries", &stats.zero_queries));
    stats.seconds_normalise = now_s() - t;

    /* 2. Y */
    t = now_s();
    if (has_q) {
        FORWARD_IF_ERROR(ycsr_from_pairs(in->pairs, in->n_pairs, n_q, n_p, &y));
        stats.nnz = y.nnz;
    }
    stats.seconds_y = now_s() - t;

    /* 3. XS vectors */
    t = now_s();
    if (has_q) {
        Z = (float *)malloc((size_t)n_p * dim * sizeof(float));
        E = (float *)malloc((size_t)n_p * (dim + 1) * sizeof(float));
        if (!Z || !E) {
            rc = pefa_set_error(PEFA_ERR_NOMEM, "pefa_build: out of memory for the XS vectors");
            goto out;
        }
        if (p.progress) p.progress(p.progress_ctx, "xs vectors", 0, n_p);
        if ((rc = compute_xs(&y, in->passages, in->queries, n_p, dim, p.lambda, threads, Z, E,
                             &stats.passages_without_queries)))
            goto out;
        if (p.progress) p.progress(p.progress_ctx, "xs vectors", n_p, n_p);
    }
    stats.seconds_xs = now_s() - t;

    /* storage type: f16 rows are converted once; graphs are built over what is stored */
    Pv = in->passages;
    Qv = in->queries;
    Ev = E;
    Zv = Z;
    if (p.vector_type == PEFA_TYPE_F16) {
        size_t np = (size_t)n_p * dim, nq = (size_t)n_q * dim;
        P16 = malloc(np * 2);
        Q16 = has_q ? malloc(nq * 2) : NULL;
        E16 = has_q ? malloc((size_t)n_p * (dim + 1) * 2) : NULL;
        Z16 = has_q ? malloc(np * 2) : NULL;
        if (!P16 || (has_q && (!Q16 || !E16 || !Z16))) {
            rc = pefa_set_error(PEFA_ERR_NOMEM, "pefa_build: out of memory for f16 vectors");
            goto out;
        }
        pefa_f32_to_f16(in->passages, (uint16_t *)P16, np);
        if (has_q) {
            pefa_f32_to_f16(in->queries, (uint16_t *)Q16, nq);
            pefa_f32_to_f16(E, (uint16_t *)E16, (size_t)n_p * (dim + 1));
            pefa_f32_to_f16(Z, (uint16_t *)Z16, np);
        }
        Pv = P16;
        Qv = Q16;
        Ev = E16;
        Zv = Z16;
    }

    /* 4. graphs */
    t = now_s();
    if (!p.no_graphs) {
        size_t stride = (size_t)dim * pefa_type_size(p.vector_type);
        hnsw_build_params hp;
        hp.M = p.M;
        hp.ef_construction = p.ef_construction;
        hp.seed = p.seed;
        hp.threads = threads;
        hp.progress = graph_progress;
        hp.progress_ctx = &ad;
        ad.stage = "graph over passages";
        rc = hnsw_build(Pv, n_p, dim, stride, p.vector_type, &hp, &gp);
        if (!rc && has_q) {
            ad.stage = "graph over xs vectors";
            rc = hnsw_build(Ev, n_p, dim + 1, stride + pefa_type_size(p.vector_type), p.vector_type, &hp, &gx);
        }
        if (!rc && has_q) {
            ad.stage = "graph over training queries";
            rc = hnsw_build(Qv, n_q, dim, stride, p.vector_type, &hp, &gq);
        }
        if (rc) {
            rc = pefa_set_error(rc == -1 ? PEFA_ERR_NOMEM : PEFA_ERR_INVALID_ARG, "pefa_build: graph build failed");
            goto out;
        }
    }
    stats.seconds_graphs = now_s() - t;

    /* 5. write */
    t = now_s();
    if ((rc = pefa_writer_open(out_path, &w))) goto out;
    pefa_writer_uuid(w, stats.uuid);
    if (in->passage_ids || in->query_ids) idmap_file_name(out_path, stats.uuid, idpath, sizeof idpath);
    {
        time_t now = time(NULL);
        struct tm tmv;
        char iso[32];
        gmtime_r(&now, &tmv);
        strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tmv);
        sb_printf(&meta, "pefa.n_passages=%u\npefa.n_queries=%u\npefa.dim=%u\npefa.nnz=%llu\n", n_p, n_q, dim,
                  (unsigned long long)stats.nnz);
        sb_printf(&meta, "pefa.metric=ip\npefa.normalise=l2\npefa.vector_type=%s\n", pefa_type_name(p.vector_type));
        if (has_q) sb_printf(&meta, "pefa.xs_lambda=%.9g\n", (double)p.lambda);
        if (!p.no_graphs)
            sb_printf(&meta, "hnsw.M=%u\nhnsw.ef_construction=%u\nhnsw.seed=%llu\n", p.M, p.ef_construction,
                      (unsigned long long)p.seed);
        sb_printf(&meta, "pefa.y_codec=%s\nbuild.threads=%u\nbuild.library=pefa %s\nbuild.created_utc=%s\n",
                  pefa_codec_name(p.y_codec), threads, pefa_version_string(), iso);
        if (idpath[0]) sb_printf(&meta, "idmap.file=%s\n", strrchr(idpath, '/') ? strrchr(idpath, '/') + 1 : idpath);
        for (uint32_t i = 0; i < in->n_meta; i++) sb_printf(&meta, "%s=%s\n", in->meta_keys[i], in->meta_values[i]);
        if (meta.oom) {
            rc = pefa_set_error(PEFA_ERR_NOMEM, "pefa_build: out of memory");
            goto out;
        }
    }
    if (p.progress) p.progress(p.progress_ctx, "writing", 0, 1);
    if ((rc = write_vectors(w, PEFA_TARGET_PASSAGES, Pv, n_p, dim, p.vector_type, 1))) goto out;
    if (has_q) {
        uint64_t *rp = NULL, rows_len = 0;
        uint8_t *rows = NULL;
        pefa_section_info d;
        if ((rc = write_vectors(w, PEFA_TARGET_QUERIES, Qv, n_q, dim, p.vector_type, 0)) ||
            (rc = write_vectors(w, PEFA_TARGET_XS, Ev, n_p, dim + 1, p.vector_type, 0)) ||
            (rc = write_vectors(w, PEFA_TARGET_XS_Z, Zv, n_p, dim, p.vector_type, 0)))
            goto out;
        if ((rc = ycsr_encode(&y, &rp, &rows, &rows_len))) goto out;
        memset(&d, 0, sizeof d);
        d.kind = PEFA_KIND_Y_ROWPTR;
        d.elem = PEFA_TYPE_U64;
        d.ndim = 1;
        d.shape[0] = (uint64_t)n_q + 1;
        rc = pefa_writer_add(w, &d, rp, ((size_t)n_q + 1) * 8);
        if (!rc) {
            memset(&d, 0, sizeof d);
            d.kind = PEFA_KIND_Y_ROWS;
            d.elem = PEFA_TYPE_BYTES;
            d.codec = p.y_codec;
            rc = pefa_writer_add(w, &d, rows, (size_t)rows_len);
        }
        free(rp);
        free(rows);
        if (rc) goto out;
    }
    if (!p.no_graphs) {
        if ((rc = graph_store_write(w, PEFA_TARGET_PASSAGES, &gp, p.ef_construction, p.seed))) goto out;
        if (has_q && ((rc = graph_store_write(w, PEFA_TARGET_XS, &gx, p.ef_construction, p.seed)) ||
                      (rc = graph_store_write(w, PEFA_TARGET_QUERIES, &gq, p.ef_construction, p.seed))))
            goto out;
    }
    /* 6. id map first (named by this file's UUID), then the index: the commit point */
    if (idpath[0]) {
        static const char *const none[1] = {NULL};
        char **rowids = NULL;
        const char *const *pids = in->passage_ids, *const *qids = in->query_ids;
        /* a side without ids gets row numbers as ids */
        if (!pids || (has_q && !qids)) {
            uint32_t n = !pids ? n_p : n_q;
            rowids = (char **)calloc(n ? n : 1, sizeof(char *));
            if (!rowids) {
                rc = pefa_set_error(PEFA_ERR_NOMEM, "pefa_build: out of memory");
                goto out;
            }
            for (uint32_t i = 0; i < n && !rc; i++) {
                rowids[i] = (char *)malloc(12);
                if (!rowids[i]) rc = pefa_set_error(PEFA_ERR_NOMEM, "pefa_build: out of memory");
                else snprintf(rowids[i], 12, "%u", i);
            }
            if (!pids) pids = (const char *const *)rowids;
            else qids = (const char *const *)rowids;
        }
        if (!rc) rc = idmap_write(idpath, stats.uuid, pids, n_p, has_q ? qids : none, has_q ? n_q : 0, &stats.idmap_bytes);
        if (rowids) {
            uint32_t n = !in->passage_ids ? n_p : n_q;
            for (uint32_t i = 0; i < n; i++) free(rowids[i]);
            free(rowids);
        }
        if (rc) goto out;
        {
            /* bind the id map's exact bytes to this index: LMDB trusts its
             * file, so verify checks them before anything else reads it */
            uint64_t bytes, digest;
            if (idmap_digest(idpath, &bytes, &digest)) {
                rc = pefa_set_error(PEFA_ERR_IO, "%s: cannot read back the id map", idpath);
                goto out;
            }
            sb_printf(&meta, "idmap.bytes=%llu\nidmap.xxh3=%016llx\n", (unsigned long long)bytes,
                      (unsigned long long)digest);
            if (meta.oom) {
                rc = pefa_set_error(PEFA_ERR_NOMEM, "pefa_build: out of memory");
                goto out;
            }
        }
    }
    /* META last: it records the id map's digest */
    {
        pefa_section_info d;
        memset(&d, 0, sizeof d);
        d.kind = PEFA_KIND_META;
        d.flags = PEFA_SECTION_REQUIRED;
        d.elem = PEFA_TYPE_BYTES;
        if ((rc = pefa_writer_add(w, &d, meta.buf, meta.len))) goto out;
    }
    rc = pefa_writer_commit(w);
    w = NULL;
    if (rc) {
        if (idpath[0]) unlink(idpath);
        goto out;
    }
    if (idpath[0]) remove_stale_idmaps(out_path, idpath);
    stats.seconds_write = now_s() - t;
    {
        FILE *f = fopen(out_path, "rb");
        if (f) {
            fseek(f, 0, SEEK_END);
            stats.file_bytes = (uint64_t)ftell(f);
            fclose(f);
        }
    }
    if (p.progress) p.progress(p.progress_ctx, "writing", 1, 1);
out:
    if (w) pefa_writer_abort(w);
    if (rc && idpath[0]) unlink(idpath);
    ycsr_free(&y);
    free(Z);
    free(E);
    free(P16);
    free(Q16);
    free(E16);
    free(Z16);
    free(meta.buf);
    hnsw_graph_free(&gp);
    hnsw_graph_free(&gq);
    hnsw_graph_free(&gx);
    stats.seconds_total = now_s() - t0;
    if (st) *st = stats;
    return rc;
}
