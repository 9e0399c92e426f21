/*
 * build_rows.c - the build stages that stream rows into sections.
 *
 * No stage holds a whole vector set in memory: the caller's rows are read
 * block by block, normalised on the fly and written; the stages that need
 * a written set again (graphs, codes, tuning) map it back from the
 * temporary file and unmap it when done. What stays resident is one block
 * buffer, one graph while it is built, and O(n) scalars (scales, |S_j|, Y).
 *
 *   rows    P and Q: checked (no NaN/inf; under ip a squared norm that is a
 *           float32, values that fit f16 storage), 1/|row| kept, written
 *   z       z_j = normalise(S_j), S_j = sum_i Y_ij q_i, in parallel per block
 *   e       e_j = lam p_j + (1-lam) z_j and its unit column (z recomputed:
 *           O(nnz d), cheaper than keeping Z); under ip e_j / max|e| first,
 *           which takes one pass more
 *   graphs  per target: map the rows, build, write the graph, the codes
 */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "kernels/quant.h"
#include "pefa/build_private.h"
#include "pefa/graph_store.h"

/* rows per block for rows of cols f32 values */
static uint32_t block_rows(uint32_t cols)
{
    uint32_t b = BUILD_BLOCK_BYTES / (cols * (uint32_t)sizeof(float));
    return b ? b : 1;
}

/* row r of src as f32 into v (no scaling) */
static void src_row(const build_src *s, uint32_t r, uint32_t dim, float *v)
{
    const char *row = s->rows + (size_t)r * s->step;
    if (s->type == PEFA_TYPE_F16) pefa_f16_to_f32((const uint16_t *)(const void *)row, v, dim);
    else memcpy(v, row, (size_t)dim * sizeof(float));
}

/* row r of src, normalised with its kept scale (bit-identical every time) */
static void unit_row(const build_src *s, const double *scale, uint32_t r, uint32_t dim, float *v)
{
    src_row(s, r, dim, v);
    for (uint32_t k = 0; k < dim; k++) v[k] = (float)(v[k] * scale[r]);
}

/* under ip a row is used as given: an inner product with it must stay a
 * float32, and a stored f16 row must hold its values (cosine: unit rows,
 * normalised in double, always fit) */
static int check_ip_row(const build_src *s, uint32_t r, const float *x, uint32_t dim, double sum, int f16)
{
    RETURN_ERROR_IF(sum > FLT_MAX, PEFA_ERR_BAD_INPUT,
                    "%s: row %u has a squared norm of %.3g, over the float32 maximum %.3g: under the ip metric its "
                    "scores would overflow to infinity (scale the rows down, or use cosine)",
                    s->name, s->first + r, sum, (double)FLT_MAX);
    for (uint32_t k = 0; k < dim && f16; k++)
        RETURN_ERROR_IF(fabsf(x[k]) > 65504.0f, PEFA_ERR_BAD_INPUT,
                        "%s: row %u column %u is %g, beyond float16 (65504): under the ip metric rows are stored "
                        "as given (use f32 storage, or scale the rows down)",
                        s->name, s->first + r, k, (double)x[k]);
    return 0;
}

/* rows [from, from + n) of src into v, checked; scale[r] = 1/|row| or 0
 * (cosine), 1 (ip; f16: stored as f16) */
static int check_rows_block(const build_src *s, uint32_t from, uint32_t n, uint32_t dim, int ip, int f16, float *v,
                            double *scale, uint64_t *zeros)
{
    for (uint32_t r = from; r < from + n; r++) {
        float *x = v + (size_t)(r - from) * dim;
        double sum = 0;
        src_row(s, r, dim, x);
        for (uint32_t k = 0; k < dim; k++) {
            RETURN_ERROR_IF(!isfinite(x[k]), PEFA_ERR_BAD_INPUT, "%s: row %u column %u is %s", s->name, s->first + r, k,
                            isnan(x[k]) ? "NaN" : "infinite");
            sum += (double)x[k] * x[k]; /* in double: no f32 value overflows it */
        }
        if (ip) FORWARD_IF_ERROR(check_ip_row(s, r, x, dim, sum, f16));
        scale[r] = ip ? 1.0 : sum > 0 ? 1.0 / sqrt(sum) : 0.0; /* ip: rows as given */
        *zeros += sum == 0;
        for (uint32_t k = 0; k < dim; k++) x[k] = (float)(x[k] * scale[r]);
    }
    return 0;
}

/* n f32 rows of cols values appended to the open section as the stored type */
static int write_block(build_ctx *c, const float *v, uint32_t n, uint32_t cols, uint16_t *h)
{
    size_t cnt = (size_t)n * cols;
    if (c->rows_type != PEFA_TYPE_F16) return pefa_writer_write(c->w, v, cnt * sizeof(float));
    pefa_f32_to_f16(v, h, cnt);
    return pefa_writer_write(c->w, h, cnt * sizeof(uint16_t));
}

static int begin_vectors(build_ctx *c, uint32_t target, uint32_t rows, uint32_t cols, int required)
{
    pefa_section_info d;
    memset(&d, 0, sizeof d);
    d.kind = PEFA_KIND_VECTORS;
    d.target = target;
    d.flags = required ? PEFA_SECTION_REQUIRED : 0;
    d.elem = c->rows_type;
    d.ndim = 2;
    d.shape[0] = rows;
    d.shape[1] = cols;
    return pefa_writer_begin(c->w, &d);
}

/* one input read, checked and normalised; written as target when target != 0 */
static int stream_rows(build_ctx *c, const build_src *s, uint32_t n, double *scale, uint64_t *zeros, uint32_t target,
                       int required)
{
    uint32_t b = block_rows(c->dim);
    float *v = (float *)malloc((size_t)b * c->dim * sizeof(float));
    uint16_t *h = (uint16_t *)malloc((size_t)b * c->dim * sizeof(uint16_t));
    int rc = v && h ? 0 : pefa__set_error(PEFA_ERR_NOMEM, "pefa_build: out of memory for a row block");
    if (!rc && target) rc = begin_vectors(c, target, n, c->dim, required);
    for (uint32_t r = 0; r < n && !rc; r += b) {
        uint32_t k = n - r < b ? n - r : b;
        rc = check_rows_block(s, r, k, c->dim, c->ip, c->rows_type == PEFA_TYPE_F16, v, scale, zeros);
        if (!rc && target) rc = write_block(c, v, k, c->dim, h);
    }
    if (!rc && target) rc = pefa_writer_end(c->w);
    free(v);
    free(h);
    return rc;
}

int pefa__build_rows(build_ctx *c)
{
    double t = pefa__build_now();
    c->ps = (double *)malloc((size_t)c->n_p * sizeof(double));
    c->qs = c->has_q ? (double *)malloc((size_t)c->n_q * sizeof(double)) : NULL;
    RETURN_ERROR_IF(!c->ps || (c->has_q && !c->qs), PEFA_ERR_NOMEM, "pefa_build: out of memory for %u + %u rows",
                    c->n_p, c->n_q);
    pefa__build_progress(c, "passages", 0, c->n_p);
    FORWARD_IF_ERROR(stream_rows(c, &c->src_p, c->n_p, c->ps, &c->st.zero_passages, PEFA_TARGET_PASSAGES, 1));
    if (c->has_q)
        FORWARD_IF_ERROR(stream_rows(c, &c->src_q, c->n_q, c->qs, &c->st.zero_queries,
                                     c->store_q ? PEFA_TARGET_QUERIES : 0, 0));
    c->st.seconds_normalise = pefa__build_now() - t;
    return 0;
}

/* ---- z and e, in parallel over the passages of a block ----------------------------- */
typedef struct {
    const build_ctx *c;
    uint32_t from, to;   /* local passages */
    int e;               /* 0: write z rows (dim), 1: e rows (dim + 1) */
    float *out;          /* row p - block start */
    uint32_t block;      /* first passage of the block */
    float *tmp;          /* dim floats */
    uint64_t empty;
} z_job;

/* z_p (f32: unit, or under ip the Y-weighted mean; 0 without training
 * queries) into z; |S_p| returned */
static double z_row(const build_ctx *c, uint32_t p, float *z, float *tmp)
{
    const ycsr *yt = &c->yt;
    double s = 0, wsum = 0;
    memset(z, 0, c->dim * sizeof(float));
    for (uint64_t k = yt->rowptr[c->p_from + p]; k < yt->rowptr[c->p_from + p + 1]; k++) {
        unit_row(&c->src_q, c->qs, yt->cols[k], c->dim, tmp);
        for (uint32_t d = 0; d < c->dim; d++) z[d] += yt->vals[k] * tmp[d];
        wsum += yt->vals[k];
    }
    for (uint32_t d = 0; d < c->dim; d++) s += (double)z[d] * z[d];
    if (s > 0 && c->ip) { /* the mean training query, in the encoder's units */
        for (uint32_t d = 0; d < c->dim; d++) z[d] = (float)(z[d] / wsum);
    } else if (s > 0) {
        double inv = 1.0 / sqrt(s);
        for (uint32_t d = 0; d < c->dim; d++) z[d] = (float)(z[d] * inv);
    } else {
        memset(z, 0, c->dim * sizeof(float));
    }
    return sqrt(s);
}

/* e = lam p + (1-lam) z, then the column that makes the row unit-norm
 * (|e| <= 1: a convex mix of unit or zero vectors) */
static void e_row(const build_ctx *c, uint32_t p, const float *z, float *e)
{
    float lam = c->p.lambda;
    double s = 0;
    unit_row(&c->src_p, c->ps, p, c->dim, e);
    for (uint32_t d = 0; d < c->dim; d++) {
        e[d] = lam * e[d] + (1 - lam) * z[d];
        if (c->ip) e[d] = e[d] / c->xs_scale; /* [X1] every |e_j| <= 1 under ip too */
        s += (double)e[d] * e[d];
    }
    e[c->dim] = s < 1 ? (float)sqrt(1 - s) : 0.0f;
}

static void *z_worker(void *arg)
{
    z_job *j = (z_job *)arg;
    const build_ctx *c = j->c;
    uint32_t cols = c->dim + (j->e ? 1 : 0);
    float *z = j->tmp + c->dim;
    for (uint32_t p = j->from; p < j->to; p++) {
        float *o = j->out + (size_t)(p - j->block) * cols;
        double s = z_row(c, p, j->e ? z : o, j->tmp);
        if (j->e) e_row(c, p, z, o);
        else c->S[p] = (float)s;
        j->empty += s == 0;
    }
    return NULL;
}

/* rows [from, from + n) in parallel into out; counts z = 0 rows */
static uint64_t zblock(build_ctx *c, uint32_t from, uint32_t n, int e, float *out, float *tmp)
{
    z_job jobs[PEFA_MAX_THREADS];
    pthread_t tid[PEFA_MAX_THREADS];
    uint8_t started[PEFA_MAX_THREADS] = {0};
    uint32_t nt = c->threads < n ? c->threads : n;
    uint64_t empty = 0;
    for (uint32_t k = 0; k < nt; k++)
        jobs[k] = (z_job){c, from + (uint32_t)((uint64_t)n * k / nt), from + (uint32_t)((uint64_t)n * (k + 1) / nt),
                          e, out, from, tmp + (size_t)k * 2 * c->dim, 0};
    for (uint32_t k = 1; k < nt; k++) started[k] = pthread_create(&tid[k], NULL, z_worker, &jobs[k]) == 0;
    z_worker(&jobs[0]);
    for (uint32_t k = 0; k < nt; k++) {
        if (k > 0 && started[k]) pthread_join(tid[k], NULL);
        else if (k > 0) z_worker(&jobs[k]); /* could not start a thread: do it here */
        empty += jobs[k].empty;
    }
    return empty;
}

/* the largest |e_j|^2 (first dim columns) of n rows */
static double max_norm2(const float *v, uint32_t n, uint32_t dim)
{
    double mx = 0;
    for (uint32_t r = 0; r < n; r++) {
        double s = 0;
        for (uint32_t d = 0; d < dim; d++) s += (double)v[(size_t)r * (dim + 1) + d] * v[(size_t)r * (dim + 1) + d];
        if (s > mx) mx = s;
    }
    return mx;
}

/* the XS_Z (e = 0) or XS (e = 1) section, block by block; e = 2 writes
 * nothing and finds the ip scale instead (*empty: the largest |e_j|^2) */
static int stream_xs(build_ctx *c, int e, uint64_t *empty)
{
    uint32_t cols = c->dim + (e ? 1 : 0), b = block_rows(cols);
    float *v = (float *)malloc((size_t)b * cols * sizeof(float));
    uint16_t *h = (uint16_t *)malloc((size_t)b * cols * sizeof(uint16_t));
    float *tmp = (float *)malloc((size_t)PEFA_MAX_THREADS * 2 * c->dim * sizeof(float));
    int rc = v && h && tmp ? 0 : pefa__set_error(PEFA_ERR_NOMEM, "pefa_build: out of memory for a row block");
    double mx = 0;
    if (!rc && e < 2) rc = begin_vectors(c, e ? PEFA_TARGET_XS : PEFA_TARGET_XS_Z, c->n_p, cols, 0);
    for (uint32_t r = 0; r < c->n_p && !rc; r += b) {
        uint32_t k = c->n_p - r < b ? c->n_p - r : b;
        uint64_t n0 = zblock(c, r, k, e != 0, v, tmp);
        if (e == 2) {
            double m = max_norm2(v, k, c->dim);
            mx = m > mx ? m : mx;
            continue;
        }
        *empty += n0;
        rc = write_block(c, v, k, cols, h);
        pefa__build_progress(c, e ? "xs vectors" : "z vectors", r + k, c->n_p);
    }
    if (!rc && e < 2) rc = pefa_writer_end(c->w);
    if (e == 2) c->xs_scale = mx > 0 ? (float)sqrt(mx) : 1.0f;
    free(v);
    free(h);
    free(tmp);
    return rc;
}

int pefa__build_z(build_ctx *c)
{
    double t = pefa__build_now();
    if (!c->has_q) return 0;
    c->S = (float *)malloc((size_t)c->n_p * sizeof(float));
    RETURN_ERROR_IF(!c->S, PEFA_ERR_NOMEM, "pefa_build: out of memory for the XS norms");
    FORWARD_IF_ERROR(pefa__ycsr_transpose(&c->y, &c->yt));
    FORWARD_IF_ERROR(stream_xs(c, 0, &c->st.passages_without_queries));
    c->st.seconds_xs += pefa__build_now() - t;
    return 0;
}

int pefa__build_e(build_ctx *c)
{
    double t = pefa__build_now();
    uint64_t empty = 0;
    if (!c->has_q) return 0;
    if (c->ip) FORWARD_IF_ERROR(stream_xs(c, 2, &empty)); /* the scale first: a pass more under ip */
    FORWARD_IF_ERROR(stream_xs(c, 1, &empty));
    c->st.seconds_xs += pefa__build_now() - t;
    return 0;
}

/* ---- graphs and codes, one target at a time ---------------------------------------- */
static void graph_progress(void *ctx, uint64_t done, uint64_t total)
{
    const build_ctx *c = (const build_ctx *)ctx;
    pefa__build_progress(c, c->stage, done, total);
}

/* [Q1] CODES and CODE_SCALES of n stored rows, quantised block by block */
static int write_codes(build_ctx *c, uint32_t target, const void *rows, uint32_t n, uint32_t cols)
{
    size_t es = pefa_type_size(c->rows_type), b = BUILD_BLOCK_BYTES / cols;
    float *scales = (float *)malloc(cols * sizeof(float));
    int8_t *codes = (int8_t *)malloc(b * cols);
    pefa_section_info d;
    int rc = scales && codes ? 0 : pefa__set_error(PEFA_ERR_NOMEM, "pefa_build: out of memory for int8 codes");
    memset(&d, 0, sizeof d);
    d.kind = PEFA_KIND_CODES;
    d.target = target;
    d.elem = PEFA_TYPE_I8;
    d.ndim = 2;
    d.shape[0] = n;
    d.shape[1] = cols;
    if (!rc) pefa__quant_scales(rows, c->rows_type, cols * es, n, cols, scales);
    if (!rc) rc = pefa_writer_begin(c->w, &d);
    for (uint32_t r = 0; r < n && !rc; r += (uint32_t)b) {
        uint32_t k = n - r < b ? n - r : (uint32_t)b;
        pefa__quant_rows((const char *)rows + (size_t)r * cols * es, c->rows_type, cols * es, k, cols, scales, codes);
        rc = pefa_writer_write(c->w, codes, (size_t)k * cols);
    }
    if (!rc) rc = pefa_writer_end(c->w);
    d.kind = PEFA_KIND_CODE_SCALES;
    d.elem = PEFA_TYPE_F32;
    d.ndim = 1;
    d.shape[0] = cols;
    d.shape[1] = 0;
    if (!rc) rc = pefa_writer_add(c->w, &d, scales, cols * sizeof(float));
    free(scales);
    free(codes);
    return rc;
}

/* the graph (and codes) of one written vector set */
static int graph_of(build_ctx *c, const char *stage, uint32_t target, uint32_t n, uint32_t cols)
{
    size_t es = pefa_type_size(c->rows_type);
    hnsw_build_params hp = {c->p.M, c->p.ef_construction, c->p.seed, c->threads, graph_progress, c};
    hnsw_graph g;
    pefa__wmap m;
    int rc;
    memset(&g, 0, sizeof g);
    FORWARD_IF_ERROR(pefa__writer_map(c->w, PEFA_KIND_VECTORS, target, &m));
    c->stage = stage;
    rc = pefa__hnsw_build(m.data, n, cols, (size_t)cols * es, c->rows_type, &hp, &g);
    if (!rc) rc = pefa__graph_store_write(c->w, target, &g, c->p.ef_construction, c->p.seed);
    pefa__hnsw_graph_free(&g);
    if (!rc && c->p.vector_type == PEFA_TYPE_I8) rc = write_codes(c, target, m.data, n, cols);
    pefa__writer_unmap(&m);
    return rc;
}

int pefa__build_graphs(build_ctx *c)
{
    double t = pefa__build_now();
    if (c->p.no_graphs) return 0; /* codes serve the graphs only */
    FORWARD_IF_ERROR(graph_of(c, "graph over passages", PEFA_TARGET_PASSAGES, c->n_p, c->dim));
    if (c->has_q) FORWARD_IF_ERROR(graph_of(c, "graph over xs vectors", PEFA_TARGET_XS, c->n_p, c->dim + 1));
    if (c->store_q) FORWARD_IF_ERROR(graph_of(c, "graph over training queries", PEFA_TARGET_QUERIES, c->n_q, c->dim));
    c->st.seconds_graphs = pefa__build_now() - t;
    return 0;
}
