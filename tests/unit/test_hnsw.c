/*
 * test_hnsw.c - dot kernels, f16 conversion, HNSW build/search (recall against
 * exact search on a real GloVe subset), thread determinism, damaged graphs.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "container/container.h"
#include "hnsw/pagemap.h"
#include "kernels/dist.h"
#include "pefa/graph_store.h"
#include "hnsw/hnsw.h"
#include "kernels/quant.h"
#include "pefa.h"

/* ---- helpers ------------------------------------------------------------------ */

typedef struct {
    float *data;
    size_t rows, cols;
} fmat;

/* minimal .npy reader: little-endian float32, C order, 2-D */
static int load_npy_f32(const char *path, fmat *m)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    unsigned char pre[10];
    char hdr[4096];
    int rc = -1;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] != 1)
        goto out;
    size_t hl = (size_t)pre[8] | ((size_t)pre[9] << 8);
    if (hl >= sizeof hdr || fread(hdr, 1, hl, f) != hl)
        goto out;
    hdr[hl] = 0;
    const char *sh = strstr(hdr, "'shape': (");
    if (!strstr(hdr, "'<f4'") || strstr(hdr, "'fortran_order': True") || !sh ||
        sscanf(sh, "'shape': (%zu, %zu)", &m->rows, &m->cols) != 2)
        goto out;
    m->data = malloc(m->rows * m->cols * sizeof(float) + 1);
    if (!m->data || fread(m->data, sizeof(float), m->rows * m->cols, f) != m->rows * m->cols)
        goto out;
    rc = 0;
out:
    fclose(f);
    if (rc) {
        free(m->data);
        m->data = NULL;
    }
    return rc;
}

static uint64_t rng_state = 0x1234567u;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float rndf(void) /* [-1, 1) */
{
    return (float)((double)(rnd() >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

static double dot_ref(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* GloVe subset shared by several tests */
static fmat g_base, g_queries;

static int load_glove(void **state)
{
    (void)state;
    if (load_npy_f32(PEFA_TEST_DATA "/glove-5k-base.npy", &g_base) != 0 ||
        load_npy_f32(PEFA_TEST_DATA "/glove-5k-queries.npy", &g_queries) != 0) {
        fprintf(stderr, "cannot load " PEFA_TEST_DATA "/glove-5k-{base,queries}.npy\n");
        return -1;
    }
    if (g_base.cols != g_queries.cols)
        return -1;
    return 0;
}

static int free_glove(void **state)
{
    (void)state;
    free(g_base.data);
    free(g_queries.data);
    return 0;
}

/* ---- kernels ------------------------------------------------------------------ */

static void test_kernels_agree(void **state)
{
    (void)state;
    static const size_t dims[] = {1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 100, 129, 300};
    pefa_dot_fn f32 = pefa__dot_kernel(PEFA_TYPE_F32);
    pefa_dot_fn f16 = pefa__dot_kernel(PEFA_TYPE_F16);
    assert_non_null(f32);
    assert_non_null(f16);
    assert_null(pefa__dot_kernel(PEFA_TYPE_I8));
    const char *name = pefa_kernel_name();
    assert_true(!strcmp(name, "avx512-vnni") || !strcmp(name, "avx512") || !strcmp(name, "avx2") ||
                !strcmp(name, "scalar"));
    float *a = malloc(301 * sizeof *a), *b = malloc(301 * sizeof *b), *bh = malloc(301 * sizeof *bh);
    uint16_t *h = malloc(302 * sizeof *h);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(bh);
    assert_non_null(h);
    for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++) {
        size_t d = dims[t];
        for (int rep = 0; rep < 20; rep++) {
            for (size_t i = 0; i < d; i++) {
                a[i] = rndf();
                b[i] = rndf();
            }
            double ref = dot_ref(a, b, d);
            double mag = 0;
            for (size_t i = 0; i < d; i++)
                mag += fabs((double)a[i] * b[i]);
            float got = f32(a, b, d);
            assert_true(fabs(got - ref) <= 1e-4 * mag + 1e-6);
            /* unaligned f16 row (odd offset in u16 units) */
            pefa_f32_to_f16(b, h + 1, d);
            pefa_f16_to_f32(h + 1, bh, d);
            double refh = dot_ref(a, bh, d);
            float goth = f16(a, h + 1, d);
            assert_true(fabs(goth - refh) <= 1e-4 * mag + 1e-6);
            /* unaligned f32 row */
            memmove(b + 1, b, d * sizeof *b);
            assert_true(fabs(f32(a, b + 1, d) - ref) <= 1e-4 * mag + 1e-6);
        }
    }
    free(a);
    free(b);
    free(bh);
    free(h);
}

/* Dispatched kernels vs the scalar path, switched with pefa_kernel_select()
 * (every set this CPU runs is compared with the scalar one). */
static const size_t ref_dims[] = {1, 7, 100, 129};
#define REF_REPS 8
#define REF_N (2 * 4 * REF_REPS)

static void ref_inputs(size_t t, int rep, float *a, float *b, uint16_t *h)
{
    uint64_t st = 1000u * t + (uint64_t)rep;
    for (size_t i = 0; i < ref_dims[t]; i++) {
        uint64_t z = (st += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z ^= z >> 27;
        a[i] = (float)((z & 0xffff) / 32768.0 - 1.0);
        b[i] = (float)(((z >> 16) & 0xffff) / 32768.0 - 1.0);
    }
    pefa_f32_to_f16(b, h, ref_dims[t]);
}

static void ref_values(float *out)
{
    float a[129], b[129];
    uint16_t h[129];
    pefa_dot_fn f32 = pefa__dot_kernel(PEFA_TYPE_F32), f16 = pefa__dot_kernel(PEFA_TYPE_F16);
    size_t o = 0;
    for (size_t t = 0; t < 4; t++)
        for (int rep = 0; rep < REF_REPS; rep++) {
            ref_inputs(t, rep, a, b, h);
            out[o++] = f32(a, b, ref_dims[t]);
            out[o++] = f16(a, h, ref_dims[t]);
        }
}

static void test_kernels_vs_scalar(void **state)
{
    (void)state;
    static const char *sets[] = {"avx2", "avx512", "avx512-vnni"};
    float ref[REF_N], v[REF_N];
    assert_int_equal(pefa_kernel_select("scalar"), 0);
    assert_string_equal(pefa_kernel_name(), "scalar");
    ref_values(ref);
    for (size_t k = 0; k < 3; k++) {
        if (pefa_kernel_select(sets[k]) != 0) continue; /* this CPU lacks it */
        assert_string_equal(pefa_kernel_name(), sets[k]);
        ref_values(v);
        for (size_t i = 0; i < REF_N; i++)
            assert_true(fabsf(v[i] - ref[i]) <= 1e-4f * fmaxf(1.0f, fabsf(ref[i])));
    }
    assert_int_equal(pefa_kernel_select("nonsense"), PEFA_ERR_INVALID_ARG);
    assert_int_equal(pefa_kernel_select("auto"), 0);
}

/* int8 codes: every kernel set gives the exact integer <v, c> (any length,
 * extreme values, unaligned rows), and coded scores track the f32 ones */
static void test_i8_kernels(void **state)
{
    static const char *sets[] = {"scalar", "avx2", "avx512", "avx512-vnni"};
    int8_t v[300], c[301];
    (void)state;
    for (size_t k = 0; k < 4; k++) {
        if (pefa_kernel_select(sets[k]) != 0) continue;
        pefa_dot_i8_fn dot8 = pefa__dot_i8_kernel();
        for (size_t d = 1; d <= 300; d += (d < 70 ? 1 : 37))
            for (int rep = 0; rep < 4; rep++) {
                int32_t want = 0, qsum = 0;
                for (size_t i = 0; i < d; i++) {
                    v[i] = (int8_t)(rep == 0 ? 127 : rep == 1 ? -127 : (int)(rndf() * 127));
                    c[i + 1] = (int8_t)(rep == 0 ? -127 : (int)(rndf() * 127));
                    want += (int32_t)v[i] * c[i + 1];
                    qsum += v[i];
                }
                if (dot8(v, qsum, c + 1, d) != want)
                    fail_msg("kernel %s dim %zu: %d, want %d", sets[k], d, dot8(v, qsum, c + 1, d), want);
            }
    }
    assert_int_equal(pefa_kernel_select("auto"), 0);
    /* quantised scores: within 2% of the f32 inner product on GloVe rows */
    size_t d = g_base.cols;
    float *scales = malloc(d * sizeof *scales);
    int8_t *codes = malloc(200 * d), qv[128];
    int32_t qsum;
    float t;
    pefa__quant_scales(g_base.data, PEFA_TYPE_F32, d * sizeof(float), 200, (uint32_t)d, scales);
    pefa__quant_rows(g_base.data, PEFA_TYPE_F32, d * sizeof(float), 200, (uint32_t)d, scales, codes);
    for (size_t i = 0; i < 200; i++) {
        const float *q = g_queries.data + (i % g_queries.rows) * d;
        pefa__quant_query(q, scales, (uint32_t)d, qv, &qsum, &t);
        double exact = dot_ref(q, g_base.data + i * d, d);
        double approx = t * pefa__dot_i8_kernel()(qv, qsum, codes + i * d, d);
        assert_true(fabs(approx - exact) < 0.02 * 4.0); /* |q||x| <= 4 on these rows */
    }
    free(scales);
    free(codes);
}

/* dispatched f32 kernel vs a double-precision reference on real GloVe rows */
static void test_kernels_glove(void **state)
{
    (void)state;
    pefa_dot_fn f32 = pefa__dot_kernel(PEFA_TYPE_F32);
    size_t d = g_base.cols;
    for (size_t i = 0; i < 200; i++) {
        const float *q = g_queries.data + (i % g_queries.rows) * d;
        const float *x = g_base.data + (i * 7 % g_base.rows) * d;
        double ref = dot_ref(q, x, d);
        assert_true(fabs(f32(q, x, d) - ref) <= 1e-4 * fmax(1.0, fabs(ref)));
    }
}

static float h2f(uint16_t h)
{
    float f;
    pefa_f16_to_f32(&h, &f, 1);
    return f;
}

static uint16_t f2h(float f)
{
    uint16_t h;
    pefa_f32_to_f16(&f, &h, 1);
    return h;
}

static void test_f16(void **state)
{
    (void)state;
    /* every finite half round-trips exactly; bulk (SIMD) and single agree */
    static uint16_t all[65536];
    static float allf[65536];
    static uint16_t back[65536];
    for (uint32_t i = 0; i < 65536; i++)
        all[i] = (uint16_t)i;
    pefa_f16_to_f32(all, allf, 65536);
    pefa_f32_to_f16(allf, back, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        if ((i & 0x7c00u) == 0x7c00u && (i & 0x3ffu)) { /* NaN: stays NaN */
            assert_true(allf[i] != allf[i]);
            assert_true((back[i] & 0x7c00u) == 0x7c00u && (back[i] & 0x3ffu));
            continue;
        }
        assert_int_equal(back[i], i);
        assert_int_equal(f2h(h2f((uint16_t)i)), i);
        if (i < 0x7c00u)
            assert_true(allf[i] >= 0.0f);
    }
    assert_true(h2f(0x3c00) == 1.0f);
    assert_true(h2f(0xc000) == -2.0f);
    assert_true(h2f(0x7bff) == 65504.0f);
    assert_true(h2f(0x0001) == ldexpf(1.0f, -24));
    assert_int_equal(f2h(65520.0f), 0x7c00);          /* overflow -> inf */
    assert_int_equal(f2h(65519.0f), 0x7bff);
    assert_int_equal(f2h(1.0f + ldexpf(1.0f, -11)), 0x3c00); /* tie -> even */
    assert_int_equal(f2h(1.0f + 3 * ldexpf(1.0f, -11)), 0x3c02);
    assert_int_equal(f2h(ldexpf(1.0f, -25)), 0x0000); /* tie -> even (0) */
    assert_int_equal(f2h(ldexpf(3.0f, -25)), 0x0002);
    assert_int_equal(f2h(-0.0f), 0x8000);
    assert_int_equal(f2h(INFINITY), 0x7c00);
    assert_int_equal(f2h(-INFINITY), 0xfc00);
    /* random floats: error within half an ulp of f16 */
    for (int i = 0; i < 100000; i++) {
        float x = rndf() * 100.0f;
        float y = h2f(f2h(x));
        assert_true(fabsf(x - y) <= fabsf(x) * (1.0f / 2048.0f) + 1e-7f);
    }
    /* bulk with odd lengths equals per-element */
    float src[37];
    uint16_t hb[37];
    for (int i = 0; i < 37; i++)
        src[i] = rndf();
    pefa_f32_to_f16(src, hb, 37);
    for (int i = 0; i < 37; i++)
        assert_int_equal(hb[i], f2h(src[i]));
}

/* ---- build + search ----------------------------------------------------------- */

#define K 10

static double recall_vs_exact(const hnsw_view *v, const float *qs, size_t nq, uint32_t ef)
{
    hnsw_scratch *s = pefa__hnsw_scratch_new();
    assert_non_null(s);
    uint32_t ids[K], eids[K];
    float sc[K], esc[K];
    size_t hits = 0;
    for (size_t i = 0; i < nq; i++) {
        const float *q = qs + i * v->dim;
        int r = pefa__hnsw_search(v, q, K, ef, s, ids, sc);
        assert_int_equal(r, K);
        for (int j = 1; j < r; j++)
            assert_true(sc[j - 1] >= sc[j]);
        int e = pefa__exact_search(v->vecs, v->n, v->dim, v->vec_stride, v->elem, q, K, s, eids, esc);
        assert_int_equal(e, K);
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K; b++)
                if (ids[a] == eids[b]) {
                    hits++;
                    break;
                }
    }
    pefa__hnsw_scratch_free(s);
    return (double)hits / (double)(nq * K);
}

static void check_layout(const hnsw_graph *g)
{
    const hnsw_view *v = &g->view;
    assert_int_equal(v->M0, 2 * v->M);
    assert_true(v->entry < v->n);
    for (uint32_t i = 0; i < v->n; i++) {
        const uint32_t *b = v->l0 + (size_t)i * (v->M0 + 1);
        assert_true(b[0] <= v->M0);
        if (v->n > 1)
            assert_true(b[0] >= 1);
        for (uint32_t j = 0; j < b[0]; j++) {
            assert_true(b[1 + j] < v->n);
            assert_true(b[1 + j] != i);
        }
    }
    assert_int_equal(v->upper_offs[0], 0);
    uint32_t maxl = 0;
    for (uint32_t u = 0; u < v->n_upper; u++) {
        if (u)
            assert_true(v->upper_ids[u] > v->upper_ids[u - 1]);
        uint64_t len = v->upper_offs[u + 1] - v->upper_offs[u];
        assert_true(len > 0 && len % (v->M + 1) == 0);
        uint32_t lv = (uint32_t)(len / (v->M + 1));
        if (lv > maxl)
            maxl = lv;
        for (uint32_t l = 0; l < lv; l++) {
            const uint32_t *b = v->upper_adj + v->upper_offs[u] + (uint64_t)l * (v->M + 1);
            assert_true(b[0] <= v->M);
        }
    }
    assert_int_equal(v->upper_offs[v->n_upper], v->upper_adj_len);
    assert_int_equal(maxl, v->max_level);
}

static void test_recall_glove(void **state)
{
    (void)state;
    hnsw_build_params p = {16, 100, 42, 2, NULL, NULL};
    hnsw_graph g;
    assert_int_equal(pefa__hnsw_build(g_base.data, (uint32_t)g_base.rows, (uint32_t)g_base.cols,
                                g_base.cols * sizeof(float), PEFA_TYPE_F32, &p, &g), 0);
    check_layout(&g);
    double r = recall_vs_exact(&g.view, g_queries.data, g_queries.rows, 80);
    fprintf(stderr, "recall@10 (f32, M=16, efC=100, ef=80) = %.4f\n", r);
    assert_true(r >= 0.95);
    pefa__hnsw_graph_free(&g);
}

static void test_recall_glove_f16(void **state)
{
    (void)state;
    size_t n = g_base.rows, d = g_base.cols;
    uint16_t *h = malloc(n * d * sizeof *h);
    assert_non_null(h);
    pefa_f32_to_f16(g_base.data, h, n * d);
    hnsw_build_params p = {16, 100, 7, 2, NULL, NULL};
    hnsw_graph g;
    assert_int_equal(pefa__hnsw_build(h, (uint32_t)n, (uint32_t)d, d * 2, PEFA_TYPE_F16, &p, &g), 0);
    check_layout(&g);
    double r = recall_vs_exact(&g.view, g_queries.data, g_queries.rows, 80);
    fprintf(stderr, "recall@10 (f16, M=16, efC=100, ef=80) = %.4f\n", r);
    assert_true(r >= 0.95);
    pefa__hnsw_graph_free(&g);
    free(h);
}

/* non-unit rows (true MIPS): scale rows by varying norms */
static void test_recall_mips(void **state)
{
    (void)state;
    size_t n = 3000, d = g_base.cols;
    float *x = malloc(n * d * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) {
        float s = 0.5f + (float)(rnd() % 1000) / 1000.0f;
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = g_base.data[i * d + j] * s;
    }
    hnsw_build_params p = {16, 200, 3, 2, NULL, NULL};
    hnsw_graph g;
    assert_int_equal(pefa__hnsw_build(x, (uint32_t)n, (uint32_t)d, d * sizeof(float), PEFA_TYPE_F32, &p, &g), 0);
    check_layout(&g);
    double r = recall_vs_exact(&g.view, g_queries.data, 100, 64);
    fprintf(stderr, "recall@10 (MIPS non-unit rows, ef=64) = %.4f\n", r);
    assert_true(r >= 0.90);
    pefa__hnsw_graph_free(&g);
    free(x);
}

/* Many identical rows (empty or boilerplate documents) must not take the
 * graph over: a duplicate of a kept neighbour adds no direction and is left
 * out of a list (build.c same_row). Without that rule the copies filled each
 * other's lists and recall@10 fell to ~0.7 at any ef. */
static void test_recall_duplicates(void **state)
{
    (void)state;
    size_t uniq = 1000, copies = 3000, n = uniq + copies, d = g_base.cols;
    float *x = malloc(n * d * sizeof *x);
    assert_non_null(x);
    memcpy(x, g_base.data, uniq * d * sizeof *x);
    for (size_t i = uniq; i < n; i++)
        memcpy(x + i * d, g_base.data + uniq * d, d * sizeof *x);
    hnsw_build_params p = {16, 200, 3, 1, NULL, NULL}; /* one thread: the same graph every run */
    hnsw_graph g;
    assert_int_equal(pefa__hnsw_build(x, (uint32_t)n, (uint32_t)d, d * sizeof(float), PEFA_TYPE_F32, &p, &g), 0);
    check_layout(&g);
    double r10 = recall_vs_exact(&g.view, g_queries.data, 100, 10), r64 = recall_vs_exact(&g.view, g_queries.data, 100, 64);
    fprintf(stderr, "recall@10 (1000 rows + 3000 copies of one row) ef=10: %.4f ef=64: %.4f\n", r10, r64);
    assert_true(r10 >= 0.80); /* ~0.73 without the rule */
    assert_true(r64 >= 0.97); /* ~0.85 without it */
    pefa__hnsw_graph_free(&g);
    free(x);
}

static int progress_calls;
static uint64_t progress_last;
static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx;
    progress_calls++;
    assert_true(done <= total);
    if (done > progress_last)
        progress_last = done;
}

static void test_build_deterministic(void **state)
{
    (void)state;
    uint32_t n = 1500, d = (uint32_t)g_base.cols;
    hnsw_build_params p = {8, 40, 1234, 1, on_progress, NULL};
    hnsw_graph a, b;
    progress_calls = 0;
    progress_last = 0;
    assert_int_equal(pefa__hnsw_build(g_base.data, n, d, d * sizeof(float), PEFA_TYPE_F32, &p, &a), 0);
    assert_true(progress_calls >= 50 && progress_calls <= 200);
    assert_int_equal(progress_last, n);
    p.progress = NULL;
    assert_int_equal(pefa__hnsw_build(g_base.data, n, d, d * sizeof(float), PEFA_TYPE_F32, &p, &b), 0);
    assert_int_equal(a.view.entry, b.view.entry);
    assert_int_equal(a.view.max_level, b.view.max_level);
    assert_int_equal(a.view.n_upper, b.view.n_upper);
    assert_int_equal(a.view.upper_adj_len, b.view.upper_adj_len);
    assert_memory_equal(a.l0, b.l0, (size_t)n * (a.view.M0 + 1) * sizeof(uint32_t));
    assert_memory_equal(a.upper_ids, b.upper_ids, a.view.n_upper * sizeof(uint32_t));
    assert_memory_equal(a.upper_offs, b.upper_offs, (a.view.n_upper + 1) * sizeof(uint64_t));
    assert_memory_equal(a.upper_adj, b.upper_adj, a.view.upper_adj_len * sizeof(uint32_t));
    /* levels depend only on the seed, not on threads */
    hnsw_graph c;
    p.threads = 2;
    assert_int_equal(pefa__hnsw_build(g_base.data, n, d, d * sizeof(float), PEFA_TYPE_F32, &p, &c), 0);
    assert_int_equal(c.view.n_upper, a.view.n_upper);
    assert_memory_equal(c.upper_ids, a.upper_ids, a.view.n_upper * sizeof(uint32_t));
    assert_memory_equal(c.upper_offs, a.upper_offs, (a.view.n_upper + 1) * sizeof(uint64_t));
    check_layout(&c);
    pefa__hnsw_graph_free(&a);
    pefa__hnsw_graph_free(&b);
    pefa__hnsw_graph_free(&c);
}

/* ---- concurrent search -------------------------------------------------------- */

typedef struct {
    const hnsw_view *v;
    const float *qs;
    size_t nq;
    uint32_t *ids;
    float *scores;
    int rc;
} search_job;

static void *search_thread(void *arg)
{
    search_job *j = arg;
    hnsw_scratch *s = pefa__hnsw_scratch_new();
    j->rc = s ? 0 : -1;
    for (size_t i = 0; s && i < j->nq; i++) {
        int r = pefa__hnsw_search(j->v, j->qs + i * j->v->dim, K, 40, s, j->ids + i * K, j->scores + i * K);
        if (r != K)
            j->rc = -1;
    }
    pefa__hnsw_scratch_free(s);
    return NULL;
}

/* ---- save / map round trip ------------------------------------------------ */
/* A graph written through the container and searched in place from the
 * mapped file answers exactly as the in-memory graph it was written from. */
/* [C1] read-ahead requests (hnsw/pagemap.h): each page is asked for once,
 * answers are the same with the map, and the map settles when searches stop
 * finding pages to ask for */
static void pagemap_checks(pefa_index *ix, const hnsw_view *mem, hnsw_view *mapped)
{
    const void *base;
    size_t len, nq = g_queries.rows, rounds = 0;
    hnsw_pagemap *pm;
    hnsw_scratch *sc = pefa__hnsw_scratch_new();
    uint32_t ids[K], ids2[K];
    float sc1[K], sc2[K];
    pefa__index_map(ix, &base, &len);
    assert_true(len < PEFA_PAGEMAP_SMALL);
    assert_null(pefa__pagemap_open(base, len)); /* small: asked for whole, no map */
    pm = pefa__pagemap_new(base, len);
    assert_non_null(pm);
    assert_int_equal(pefa__pagemap_want(NULL, base, 4096), 0);
    assert_int_equal(pefa__pagemap_want(pm, (const char *)base + len, 1), 0); /* outside */
    assert_int_equal(pefa__pagemap_want(pm, base, 1), 1);
    assert_int_equal(pefa__pagemap_want(pm, base, 1), 0); /* once */
    mapped->pages = pm;
    /* a search asks for what it reads; answers equal the in-memory graph's */
    while (!atomic_load(&pm->settled)) {
        for (size_t i = 0; i < nq; i++) {
            const float *q = g_queries.data + i * g_queries.cols;
            int a = pefa__hnsw_search(mem, q, K, 64, sc, ids, sc1), b = pefa__hnsw_search(mapped, q, K, 64, sc, ids2, sc2);
            assert_int_equal(a, b);
            assert_memory_equal(ids, ids2, (size_t)a * sizeof *ids);
            assert_memory_equal(sc1, sc2, (size_t)a * sizeof *sc1);
            for (int j = 0; rounds == 0 && i == 0 && j < a; j++) /* the hits' rows were asked for */
                assert_int_equal(pefa__pagemap_want(pm, (const char *)mapped->vecs + ids2[j] * mapped->vec_stride, 4), 0);
        }
        rounds++;
        assert_true(rounds * nq <= 4 * PEFA_PAGEMAP_WINDOW + nq);
    }
    assert_null(pefa__pagemap_begin(pm));
    mapped->pages = NULL;
    pefa__pagemap_free(pm);
    pefa__hnsw_scratch_free(sc);
}

static void test_save_map_roundtrip(void **state)
{
    (void)state;
    uint32_t n = 3000, d = (uint32_t)g_base.cols;
    size_t nq = g_queries.rows;
    hnsw_build_params p = {12, 60, 7, 2, NULL, NULL};
    hnsw_graph g;
    char dir[] = "/tmp/pefa-test-hnsw-XXXXXX", path[64], cmd[96];
    pefa_writer *w;
    pefa_index *ix;
    pefa_section_info d_vec;
    const void *vecs;
    uint64_t len;
    hnsw_view mapped;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/g.pefa", dir);
    assert_int_equal(pefa__hnsw_build(g_base.data, n, d, d * sizeof(float), PEFA_TYPE_F32, &p, &g), 0);
    assert_int_equal(pefa_writer_open(path, &w), 0);
    memset(&d_vec, 0, sizeof d_vec);
    d_vec.kind = PEFA_KIND_VECTORS;
    d_vec.target = PEFA_TARGET_PASSAGES;
    d_vec.elem = PEFA_TYPE_F32;
    d_vec.ndim = 2;
    d_vec.shape[0] = n;
    d_vec.shape[1] = d;
    assert_int_equal(pefa_writer_add(w, &d_vec, g_base.data, (size_t)n * d * sizeof(float)), 0);
    assert_int_equal(pefa__graph_store_write(w, PEFA_TARGET_PASSAGES, &g, 60, 7), 0);
    assert_int_equal(pefa_writer_commit(w), 0);
    assert_int_equal(pefa_index_open(path, &ix), 0);
    assert_int_equal(pefa_index_section_data(ix, (uint32_t)pefa_index_find(ix, PEFA_KIND_VECTORS, PEFA_TARGET_PASSAGES),
                                             &vecs, &len), 0);
    assert_true(vecs != (const void *)g_base.data); /* really the mapping */
    assert_int_equal(pefa__graph_store_view(ix, PEFA_TARGET_PASSAGES, vecs, n, d, d * sizeof(float), PEFA_TYPE_F32, &mapped), 0);
    assert_int_equal(mapped.entry, g.view.entry);
    assert_int_equal(mapped.max_level, g.view.max_level);
    {
        search_job a = {&g.view, g_queries.data, nq, calloc(nq * K, sizeof(uint32_t)), calloc(nq * K, sizeof(float)), 0};
        search_job b = {&mapped, g_queries.data, nq, calloc(nq * K, sizeof(uint32_t)), calloc(nq * K, sizeof(float)), 0};
        search_thread(&a);
        search_thread(&b);
        assert_int_equal(a.rc, 0);
        assert_int_equal(b.rc, 0);
        assert_memory_equal(a.ids, b.ids, nq * K * sizeof(uint32_t));
        assert_memory_equal(a.scores, b.scores, nq * K * sizeof(float));
        free(a.ids);
        free(a.scores);
        free(b.ids);
        free(b.scores);
    }
    pagemap_checks(ix, &g.view, &mapped);
    pefa_index_close(ix);
    pefa__hnsw_graph_free(&g);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_threads_same_results(void **state)
{
    (void)state;
    uint32_t n = 2000, d = (uint32_t)g_base.cols;
    size_t nq = g_queries.rows;
    hnsw_build_params p = {12, 60, 5, 2, NULL, NULL};
    hnsw_graph g;
    assert_int_equal(pefa__hnsw_build(g_base.data, n, d, d * sizeof(float), PEFA_TYPE_F32, &p, &g), 0);
    uint32_t *ids1 = calloc(nq * K, sizeof *ids1);
    float *sc1 = calloc(nq * K, sizeof *sc1);
    assert_non_null(ids1);
    assert_non_null(sc1);
    search_job one = {&g.view, g_queries.data, nq, ids1, sc1, 0};
    search_thread(&one);
    assert_int_equal(one.rc, 0);
    enum { T = 3 };
    pthread_t th[T];
    search_job jobs[T];
    for (int t = 0; t < T; t++) {
        jobs[t] = (search_job){&g.view, g_queries.data, nq, calloc(nq * K, sizeof(uint32_t)),
                               calloc(nq * K, sizeof(float)), 0};
        assert_non_null(jobs[t].ids);
        assert_non_null(jobs[t].scores);
        assert_int_equal(pthread_create(&th[t], NULL, search_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(jobs[t].rc, 0);
        assert_memory_equal(jobs[t].ids, ids1, nq * K * sizeof *ids1);
        assert_memory_equal(jobs[t].scores, sc1, nq * K * sizeof *sc1);
        free(jobs[t].ids);
        free(jobs[t].scores);
    }
    free(ids1);
    free(sc1);
    pefa__hnsw_graph_free(&g);
}

/* ---- exact search and edge cases ------------------------------------------------ */

static void test_exact_ties_and_args(void **state)
{
    (void)state;
    /* rows with equal scores: ties by smaller id */
    float rows[6 * 2] = {1, 0, 0, 1, 1, 0, 2, 0, 1, 0, -1, 0};
    float q[2] = {1, 0};
    uint32_t ids[6];
    float sc[6];
    hnsw_scratch *s = pefa__hnsw_scratch_new();
    assert_non_null(s);
    int r = pefa__exact_search(rows, 6, 2, 2 * sizeof(float), PEFA_TYPE_F32, q, 4, s, ids, sc);
    assert_int_equal(r, 4);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 0);
    assert_int_equal(ids[2], 2);
    assert_int_equal(ids[3], 4);
    r = pefa__exact_search(rows, 6, 2, 2 * sizeof(float), PEFA_TYPE_F32, q, 100, s, ids, sc);
    assert_int_equal(r, 6);
    assert_int_equal(ids[4], 1);
    assert_int_equal(ids[5], 5);
    assert_int_equal(pefa__exact_search(rows, 6, 2, 4, PEFA_TYPE_F32, q, 4, s, ids, sc), PEFA_ERR_INVALID_ARG);
    assert_int_equal(pefa__exact_search(rows, 6, 2, 8, PEFA_TYPE_I8, q, 4, s, ids, sc), PEFA_ERR_INVALID_ARG);
    assert_int_equal(pefa__exact_search(rows, 6, 2, 8, PEFA_TYPE_F32, q, 0, s, ids, sc), 0);

    /* tiny graphs: n = 0, 1, 2 */
    hnsw_graph g;
    hnsw_build_params p = {4, 10, 1, 1, NULL, NULL};
    assert_int_equal(pefa__hnsw_build(rows, 0, 2, 8, PEFA_TYPE_F32, &p, &g), 0);
    assert_int_equal(pefa__hnsw_search(&g.view, q, 3, 10, s, ids, sc), 0);
    pefa__hnsw_graph_free(&g);
    assert_int_equal(pefa__hnsw_build(rows, 1, 2, 8, PEFA_TYPE_F32, &p, &g), 0);
    assert_int_equal(pefa__hnsw_search(&g.view, q, 3, 10, s, ids, sc), 1);
    assert_int_equal(ids[0], 0);
    pefa__hnsw_graph_free(&g);
    assert_int_equal(pefa__hnsw_build(rows, 6, 2, 8, PEFA_TYPE_F32, &p, &g), 0);
    assert_int_equal(pefa__hnsw_search(&g.view, q, 10, 1, s, ids, sc), 6);
    assert_true(sc[0] == 2.0f);
    pefa__hnsw_graph_free(&g);
    /* invalid arguments */
    hnsw_build_params bad = {1, 10, 1, 1, NULL, NULL};
    assert_int_equal(pefa__hnsw_build(rows, 6, 2, 8, PEFA_TYPE_F32, &bad, &g), PEFA_ERR_INVALID_ARG);
    assert_int_equal(pefa__hnsw_build(rows, 6, 2, 4, PEFA_TYPE_F32, &p, &g), PEFA_ERR_INVALID_ARG);
    assert_int_equal(pefa__hnsw_build(NULL, 6, 2, 8, PEFA_TYPE_F32, &p, &g), PEFA_ERR_INVALID_ARG);
    assert_int_equal(pefa__hnsw_build(rows, 6, 2, 8, PEFA_TYPE_U32, &p, &g), PEFA_ERR_INVALID_ARG);
    assert_null(g.l0);
    assert_int_equal(pefa__hnsw_search(NULL, q, 3, 10, s, ids, sc), PEFA_ERR_INVALID_ARG);
    pefa__hnsw_scratch_free(s);
}

/* ---- damaged graphs --------------------------------------------------------------- */

static void test_damaged_graph(void **state)
{
    (void)state;
    uint32_t n = 800, d = (uint32_t)g_base.cols;
    hnsw_build_params p = {8, 40, 9, 1, NULL, NULL};
    hnsw_graph g;
    assert_int_equal(pefa__hnsw_build(g_base.data, n, d, d * sizeof(float), PEFA_TYPE_F32, &p, &g), 0);
    size_t l0_len = (size_t)n * (g.view.M0 + 1);
    uint32_t *l0 = malloc(l0_len * sizeof *l0);
    uint32_t *uids = malloc((g.view.n_upper + 1) * sizeof *uids);
    uint64_t *uoffs = malloc((g.view.n_upper + 1) * sizeof *uoffs);
    uint32_t *uadj = malloc((g.view.upper_adj_len + 1) * sizeof *uadj);
    assert_non_null(l0);
    assert_non_null(uids);
    assert_non_null(uoffs);
    assert_non_null(uadj);
    hnsw_scratch *s = pefa__hnsw_scratch_new();
    assert_non_null(s);
    uint32_t ids[K];
    float sc[K];
    for (int round = 0; round < 60; round++) {
        memcpy(l0, g.l0, l0_len * sizeof *l0);
        memcpy(uids, g.upper_ids, g.view.n_upper * sizeof *uids);
        memcpy(uoffs, g.upper_offs, (g.view.n_upper + 1) * sizeof *uoffs);
        memcpy(uadj, g.upper_adj, g.view.upper_adj_len * sizeof *uadj);
        hnsw_view v = g.view;
        v.l0 = l0;
        v.upper_ids = uids;
        v.upper_offs = uoffs;
        v.upper_adj = uadj;
        int mode = round % 6;
        size_t nflip = 1 + rnd() % 200;
        for (size_t f = 0; f < nflip; f++) {
            uint32_t val;
            switch (rnd() % 4) {
            case 0: val = (uint32_t)rnd(); break;           /* garbage */
            case 1: val = 0xffffffffu; break;                /* huge count / id */
            case 2: val = n + (uint32_t)(rnd() % 5); break;  /* id just out of range */
            default: val = (uint32_t)(rnd() % n); break;     /* plausible id */
            }
            if (mode == 0 || mode == 5)
                l0[rnd() % l0_len] = val;
            if ((mode == 1 || mode == 5) && v.upper_adj_len)
                uadj[rnd() % v.upper_adj_len] = val;
            if ((mode == 2 || mode == 5) && v.n_upper)
                uids[rnd() % v.n_upper] = val;
            if ((mode == 3 || mode == 5) && v.n_upper)
                uoffs[rnd() % (v.n_upper + 1)] = rnd() % 2 ? rnd() : (uint64_t)val;
        }
        if (mode == 4) {
            /* all counts huge, every slot garbage */
            for (size_t i = 0; i < l0_len; i++)
                l0[i] = (uint32_t)rnd();
            for (uint64_t i = 0; i < v.upper_adj_len; i++)
                uadj[i] = (uint32_t)rnd();
        }
        if (round % 5 == 0)
            v.entry = (uint32_t)rnd();          /* bad entry */
        if (round % 7 == 0)
            v.max_level = (uint32_t)rnd();      /* absurd level */
        for (size_t qi = 0; qi < 20; qi++) {
            int r = pefa__hnsw_search(&v, g_queries.data + qi * d, K, 32, s, ids, sc);
            assert_true(r >= 1 && r <= K);
            for (int j = 0; j < r; j++)
                assert_true(ids[j] < n);
        }
    }
    pefa__hnsw_scratch_free(s);
    free(l0);
    free(uids);
    free(uoffs);
    free(uadj);
    pefa__hnsw_graph_free(&g);
}

int main(void)
{
    const struct CMUnitTest basic[] = {
        cmocka_unit_test(test_kernels_agree),
        cmocka_unit_test(test_kernels_vs_scalar),
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_exact_ties_and_args),
    };
    const struct CMUnitTest glove[] = {
        cmocka_unit_test(test_kernels_glove),
        cmocka_unit_test(test_i8_kernels),
        cmocka_unit_test(test_recall_glove),
        cmocka_unit_test(test_recall_glove_f16),
        cmocka_unit_test(test_recall_mips),
        cmocka_unit_test(test_recall_duplicates),
        cmocka_unit_test(test_build_deterministic),
        cmocka_unit_test(test_threads_same_results),
        cmocka_unit_test(test_save_map_roundtrip),
        cmocka_unit_test(test_damaged_graph),
    };
    fprintf(stderr, "dot kernel: %s\n", pefa_kernel_name());
    int fails = cmocka_run_group_tests_name("hnsw_basic", basic, NULL, NULL);
    fails += cmocka_run_group_tests_name("hnsw_glove", glove, load_glove, free_glove);
    return fails ? 1 : 0;
}
