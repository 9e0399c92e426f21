/*
 * test_pefa.c - the PEFA layer through the public API, on the committed real
 * GloVe subset (tests/data): build, open, every mode against an independent
 * brute-force computation written here, threads, f16 and zstd options,
 * explain, id maps, verify; and the Y row codec against damaged bytes.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pefa.h"
#include "util/input.h"
#include "pefa/ycsr.h"
#include "test_util.h"

#define NP 5000
#define NQ 200
#define DIM 100

static float *g_P, *g_Q;      /* normalised copies */
static pefa_pair g_pairs[NQ * 3];
static char g_dir[256];
static char g_path[300];

static float *load(const char *name, uint64_t want_rows)
{
    char path[512], err[512];
    tin_matrix m;
    float *x;
    snprintf(path, sizeof path, "%s/%s", PEFA_TEST_DATA, name);
    if (tin_matrix_open(path, &m, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(m.rows, want_rows);
    assert_int_equal(m.dim, DIM);
    x = malloc(m.rows * DIM * sizeof(float));
    for (uint64_t i = 0; i < m.rows; i++) assert_int_equal(tin_matrix_row(&m, i, x + i * DIM, path, err, sizeof err), 0);
    tin_matrix_close(&m);
    return x;
}

static float dot(const float *a, const float *b)
{
    double s = 0;
    for (int i = 0; i < DIM; i++) s += (double)a[i] * b[i];
    return (float)s;
}

static void normalise(float *x, uint32_t n)
{
    for (uint32_t r = 0; r < n; r++) {
        double s = 0;
        for (int c = 0; c < DIM; c++) s += (double)x[r * DIM + c] * x[r * DIM + c];
        s = s > 0 ? 1 / sqrt(s) : 0;
        for (int c = 0; c < DIM; c++) x[r * DIM + c] = (float)(x[r * DIM + c] * s);
    }
}

/* builds an index at path from the test data; Y: query i -> 3 passages */
static void build(const char *path, uint8_t vtype, uint8_t ycodec, int with_ids)
{
    pefa_build_input in;
    pefa_build_params p = PEFA_BUILD_PARAMS_INIT;
    pefa_build_stats st;
    static char idbuf[NP + NQ][16];
    static const char *pids[NP], *qids[NQ];
    memset(&in, 0, sizeof in);
    in.passages = g_P; /* read, never written */
    in.queries = g_Q;
    in.n_passages = NP;
    in.n_queries = NQ;
    in.dim = DIM;
    in.pairs = g_pairs;
    in.n_pairs = NQ * 3;
    if (with_ids) {
        for (int i = 0; i < NP; i++) snprintf(idbuf[i], 16, "doc-%d", i), pids[i] = idbuf[i];
        for (int i = 0; i < NQ; i++) snprintf(idbuf[NP + i], 16, "q-%d", i), qids[i] = idbuf[NP + i];
        in.passage_ids = pids;
        in.query_ids = qids;
    }
    p.M = 16;
    p.ef_construction = 100;
    p.threads = 1; /* one thread: the same graph every run, so recall figures are fixed */
    p.lambda = 0.5f;
    p.set = PEFA_SET_LAMBDA;
    p.vector_type = vtype;
    p.y_codec = ycodec;
    st.size = sizeof st;
    if (pefa_build(path, &in, &p, &st) != 0) fail_msg("build: %s", pefa_last_error_detail());
    assert_int_equal(st.nnz, NQ * 3 - 1); /* one duplicate pair merged, see setup */
}

static int setup(void **state)
{
    uint32_t *gt;
    (void)state;
    g_P = load("glove-5k-base.npy", NP);
    g_Q = load("glove-5k-queries.npy", NQ);
    normalise(g_P, NP);
    normalise(g_Q, NQ);
    /* relevance: each training query -> its 3 exact nearest passages, plus a
     * duplicated pair (query 0 twice to the same passage: values add up) */
    gt = malloc(sizeof(uint32_t) * NQ * 3);
    for (int i = 0; i < NQ; i++) {
        float best[3] = {-2, -2, -2};
        uint32_t bi[3] = {0, 0, 0};
        for (uint32_t j = 0; j < NP; j++) {
            float s = dot(g_Q + i * DIM, g_P + j * DIM);
            for (int r = 0; r < 3; r++)
                if (s > best[r]) {
                    for (int t = 2; t > r; t--) best[t] = best[t - 1], bi[t] = bi[t - 1];
                    best[r] = s;
                    bi[r] = j;
                    break;
                }
        }
        for (int r = 0; r < 3; r++) {
            g_pairs[i * 3 + r].q = (uint32_t)i;
            g_pairs[i * 3 + r].p = bi[r];
            g_pairs[i * 3 + r].y = (float)(r + 1);
        }
    }
    g_pairs[2].p = g_pairs[1].p; /* duplicate: Y[0, p] = 2 + 3 */
    free(gt);
    snprintf(g_dir, sizeof g_dir, "/tmp/pefa-test-pefa-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_path, sizeof g_path, "%s/idx.pefa", g_dir);
    build(g_path, PEFA_TYPE_F32, PEFA_CODEC_RAW, 1);
    return 0;
}

static int teardown(void **state)
{
    char cmd[400];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    assert_int_equal(system(cmd), 0);
    free(g_P);
    free(g_Q);
    return 0;
}

/* ---- independent reference ------------------------------------------------ */
static float Y_at(uint32_t q, uint32_t p)
{
    float y = 0;
    for (int i = 0; i < NQ * 3; i++)
        if (g_pairs[i].q == q && g_pairs[i].p == p) y += g_pairs[i].y;
    return y;
}

static int by_score(const void *a, const void *b)
{
    const pefa_hit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

/* scores of every passage under mode for query q (exact XL semantics) */
static void ref_scores(int mode, const float *q, float lam, uint32_t knn, pefa_hit *out)
{
    for (uint32_t j = 0; j < NP; j++) {
        out[j].row = j;
        out[j].score = dot(q, g_P + j * DIM);
    }
    if (mode == PEFA_MODE_XS) {
        for (uint32_t j = 0; j < NP; j++) {
            float z[DIM] = {0};
            double n = 0;
            for (int i = 0; i < NQ * 3; i++)
                if (g_pairs[i].p == j)
                    for (int c = 0; c < DIM; c++) z[c] += g_pairs[i].y * g_Q[g_pairs[i].q * DIM + c];
            for (int c = 0; c < DIM; c++) n += (double)z[c] * z[c];
            for (int c = 0; c < DIM; c++) z[c] = n > 0 ? (float)(z[c] / sqrt(n)) : 0;
            out[j].score = lam * out[j].score + (1 - lam) * dot(q, z);
        }
    } else if (mode == PEFA_MODE_XL) {
        /* neighbours */
        pefa_hit nb[NQ];
        uint8_t cand[NP] = {0};
        pefa_hit erm[NP];
        float knn_s[NP] = {0};
        for (uint32_t i = 0; i < NQ; i++) nb[i].row = i, nb[i].score = dot(q, g_Q + i * DIM);
        qsort(nb, NQ, sizeof nb[0], by_score);
        memcpy(erm, out, sizeof erm);
        qsort(erm, NP, sizeof erm[0], by_score);
        for (int e = 0; e < 500; e++) cand[erm[e].row] = 1;
        for (uint32_t k = 0; k < knn; k++)
            for (uint32_t j = 0; j < NP; j++) {
                float y = Y_at(nb[k].row, j);
                if (y != 0) {
                    knn_s[j] += nb[k].score / (float)knn * y;
                    cand[j] = 1;
                }
            }
        for (uint32_t j = 0; j < NP; j++)
            out[j].score = cand[j] ? lam * out[j].score + (1 - lam) * knn_s[j] : -1e30f;
    }
    qsort(out, NP, sizeof out[0], by_score);
}

static void check_exact_mode(pefa_searcher *s, int mode, float lam, uint32_t knn)
{
    static pefa_hit ref[NP];
    pefa_hit hits[50];
    uint32_t n;
    pefa_query_params p = PEFA_QUERY_PARAMS_INIT;
    p.mode = mode;
    p.k = 50;
    p.exact = 1;
    if (lam >= 0) {
        p.lambda = lam;
        p.set = PEFA_SET_LAMBDA;
    }
    p.knn = knn;
    for (int qi = 0; qi < 20; qi++) {
        const float *q = g_Q + (qi * 7) * DIM;
        assert_int_equal(pefa_search(s, q, &p, hits, &n), 0);
        assert_int_equal(n, 50);
        ref_scores(mode, q, lam, knn, ref);
        for (uint32_t r = 0; r < n; r++) {
            if (fabsf(ref[r].score - hits[r].score) > 1e-5f)
                fail_msg("mode %d query %d rank %u: score %g, reference %g", mode, qi, r, hits[r].score, ref[r].score);
            if (ref[r].row != hits[r].row && fabsf(ref[r].score - (r + 1 < n ? ref[r + 1].score : 0)) > 1e-6f &&
                (r == 0 || fabsf(ref[r].score - ref[r - 1].score) > 1e-6f))
                fail_msg("mode %d query %d rank %u: row %u, reference %u", mode, qi, r, hits[r].row, ref[r].row);
        }
    }
}

static void test_exact_matches_reference(void **state)
{
    pefa_index *ix;
    pefa_searcher *s;
    (void)state;
    assert_int_equal(pefa_index_open(g_path, &ix), 0);
    assert_int_equal(pefa_searcher_new(ix, &s), 0);
    check_exact_mode(s, PEFA_MODE_ERM, -1, 0);
    check_exact_mode(s, PEFA_MODE_XS, 0.5f, 0);
    check_exact_mode(s, PEFA_MODE_XS, 0.2f, 0); /* re-scored with stored z */
    check_exact_mode(s, PEFA_MODE_XL, 0.1f, 16);
    check_exact_mode(s, PEFA_MODE_XL, 0.7f, 4);
    pefa_searcher_free(s);
    pefa_index_close(ix);
}

static double recall_vs_exact(pefa_index *ix, int mode, uint32_t k, uint32_t ef)
{
    pefa_searcher *s;
    pefa_hit a[100], b[100];
    uint32_t na, nb;
    double sum = 0;
    pefa_query_params p = PEFA_QUERY_PARAMS_INIT, pe;
    p.mode = mode;
    p.k = k;
    p.ef = ef;
    pe = p;
    pe.exact = 1;
    assert_int_equal(pefa_searcher_new(ix, &s), 0);
    for (int qi = 0; qi < NQ; qi++) {
        uint32_t hit = 0;
        assert_int_equal(pefa_search(s, g_Q + qi * DIM, &p, a, &na), 0);
        assert_int_equal(pefa_search(s, g_Q + qi * DIM, &pe, b, &nb), 0);
        for (uint32_t i = 0; i < na; i++)
            for (uint32_t j = 0; j < nb; j++)
                if (a[i].row == b[j].row) hit++;
        sum += (double)hit / nb;
    }
    pefa_searcher_free(s);
    return sum / NQ;
}

static void test_ann_fidelity(void **state)
{
    pefa_index *ix;
    (void)state;
    assert_int_equal(pefa_index_open(g_path, &ix), 0);
    for (int mode = PEFA_MODE_ERM; mode <= PEFA_MODE_XL; mode++) {
        double r = recall_vs_exact(ix, mode, 100, 300);
        print_message("mode %d: recall@100 of HNSW (default ef) against exact = %.4f\n", mode, r);
        /* GloVe with the test's cheap graphs (M 16, efC 100) is harder than
         * SciFact at the defaults, where tests/cli/test_pefa_exact.sh holds
         * every mode to >= 0.99. For XS this synthetic Y (3 passages per
         * training query) leaves only 597 of 5,000 rows with z != 0, a
         * weakly linked island in the XS graph: measured 0.974 / 0.980 /
         * 0.985 at ef 300 / 450 / 600 (XS costs 0.6x an ERM query), the same
         * in every build since the graphs are built with one thread */
        assert_true(r >= (mode == PEFA_MODE_XS ? 0.97 : 0.99));
    }
    print_message("xs at ef 450: %.4f, ef 600: %.4f\n", recall_vs_exact(ix, PEFA_MODE_XS, 100, 450),
                  recall_vs_exact(ix, PEFA_MODE_XS, 100, 600));
    pefa_index_close(ix);
}

typedef struct {
    pefa_index *ix;
    int mode;
    pefa_hit hits[NQ][20];
    int rc;
} thr;

static void *run_all(void *arg)
{
    thr *t = arg;
    pefa_searcher *s;
    uint32_t n;
    pefa_query_params p = PEFA_QUERY_PARAMS_INIT;
    p.mode = t->mode;
    p.k = 20;
    if ((t->rc = pefa_searcher_new(t->ix, &s))) return NULL;
    for (int qi = 0; qi < NQ && !t->rc; qi++) t->rc = pefa_search(s, g_Q + qi * DIM, &p, t->hits[qi], &n);
    pefa_searcher_free(s);
    return NULL;
}

static void test_threads_identical(void **state)
{
    pefa_index *ix;
    static thr one, many[4];
    pthread_t tid[4];
    (void)state;
    assert_int_equal(pefa_index_open(g_path, &ix), 0);
    for (int mode = PEFA_MODE_ERM; mode <= PEFA_MODE_XL; mode++) {
        one.ix = ix;
        one.mode = mode;
        run_all(&one);
        assert_int_equal(one.rc, 0);
        for (int t = 0; t < 4; t++) {
            many[t].ix = ix;
            many[t].mode = mode;
            assert_int_equal(pthread_create(&tid[t], NULL, run_all, &many[t]), 0);
        }
        for (int t = 0; t < 4; t++) {
            pthread_join(tid[t], NULL);
            assert_int_equal(many[t].rc, 0);
            assert_memory_equal(one.hits, many[t].hits, sizeof one.hits);
        }
    }
    pefa_index_close(ix);
}

static void test_f16_and_zstd(void **state)
{
    char p16[320], pz[320];
    pefa_index *a, *b, *c;
    pefa_searcher *sa, *sb, *sc;
    pefa_model_info mi;
    pefa_hit ha[100], hb[100], hc[100];
    uint32_t na, nb, nc;
    double overlap = 0;
    int bad;
    pefa_query_params p = PEFA_QUERY_PARAMS_INIT;
    (void)state;
    snprintf(p16, sizeof p16, "%s/f16.pefa", g_dir);
    snprintf(pz, sizeof pz, "%s/zstd.pefa", g_dir);
    build(p16, PEFA_TYPE_F16, PEFA_CODEC_RAW, 0);
    build(pz, PEFA_TYPE_F32, PEFA_CODEC_ZSTD, 0);
    assert_int_equal(pefa_index_open(g_path, &a), 0);
    assert_int_equal(pefa_index_open(p16, &b), 0);
    assert_int_equal(pefa_index_open(pz, &c), 0);
    assert_int_equal(pefa_index_verify(b, &bad), 0);
    assert_int_equal(pefa_verify(b, &bad), 0);
    assert_int_equal(pefa_index_verify(c, &bad), 0);
    assert_int_equal(pefa_verify(c, &bad), 0);
    mi.size = sizeof mi;
    assert_int_equal(pefa_model_describe(b, &mi), 0);
    assert_int_equal(mi.vector_type, PEFA_TYPE_F16);
    assert_int_equal(pefa_searcher_new(a, &sa), 0);
    assert_int_equal(pefa_searcher_new(b, &sb), 0);
    assert_int_equal(pefa_searcher_new(c, &sc), 0);
    p.mode = PEFA_MODE_XL;
    p.k = 100;
    p.exact = 1;
    for (int qi = 0; qi < 50; qi++) {
        assert_int_equal(pefa_search(sa, g_Q + qi * DIM, &p, ha, &na), 0);
        assert_int_equal(pefa_search(sb, g_Q + qi * DIM, &p, hb, &nb), 0);
        assert_int_equal(pefa_search(sc, g_Q + qi * DIM, &p, hc, &nc), 0);
        assert_memory_equal(ha, hc, sizeof(pefa_hit) * na); /* zstd Y: identical answers */
        for (uint32_t i = 0; i < na; i++)
            for (uint32_t j = 0; j < nb; j++)
                if (ha[i].row == hb[j].row) overlap += 1.0 / (50.0 * na);
    }
    assert_true(overlap >= 0.97); /* f16 storage changes scores by ~1e-3 only */
    pefa_searcher_free(sa);
    pefa_searcher_free(sb);
    pefa_searcher_free(sc);
    pefa_index_close(a);
    pefa_index_close(b);
    pefa_index_close(c);
}

/* int8 codes: the graphs walk on codes, and the answers carry the exact
 * scores of the f16 rows (the final beam is re-scored) */
static void test_i8_codes(void **state)
{
    char p8[320];
    pefa_index *a, *b;
    pefa_searcher *sa, *sb;
    pefa_model_info mi = PEFA_MODEL_INFO_INIT;
    pefa_hit ha[100], hb[100];
    uint32_t na, nb;
    double overlap = 0;
    int bad;
    pefa_query_params p = PEFA_QUERY_PARAMS_INIT;
    (void)state;
    snprintf(p8, sizeof p8, "%s/i8.pefa", g_dir);
    build(p8, PEFA_TYPE_I8, PEFA_CODEC_RAW, 0);
    assert_int_equal(pefa_index_open(g_path, &a), 0);
    assert_int_equal(pefa_index_open(p8, &b), 0);
    assert_int_equal(pefa_index_verify(b, &bad), 0);
    assert_int_equal(pefa_verify(b, &bad), 0);
    assert_int_equal(pefa_model_describe(b, &mi), 0);
    assert_int_equal(mi.vector_type, PEFA_TYPE_I8);
    assert_true(pefa_index_find(b, PEFA_KIND_CODES, PEFA_TARGET_PASSAGES) >= 0);
    assert_int_equal(pefa_searcher_new(a, &sa), 0);
    assert_int_equal(pefa_searcher_new(b, &sb), 0);
    for (int mode = PEFA_MODE_ERM; mode <= PEFA_MODE_XL; mode++) {
        p.mode = mode;
        p.k = 100;
        overlap = 0;
        for (int qi = 0; qi < 50; qi++) {
            assert_int_equal(pefa_search(sa, g_Q + qi * DIM, &p, ha, &na), 0);
            assert_int_equal(pefa_search(sb, g_Q + qi * DIM, &p, hb, &nb), 0);
            for (uint32_t i = 0; i < na; i++)
                for (uint32_t j = 0; j < nb; j++)
                    if (ha[i].row == hb[j].row) overlap += 1.0 / (50.0 * na);
            if (mode == PEFA_MODE_ERM) /* exact f16 scores: within f16 rounding of the f32 ones */
                for (uint32_t j = 0; j < nb; j++)
                    assert_true(fabsf(hb[j].score - dot(g_Q + qi * DIM, g_P + hb[j].row * DIM)) < 2e-3f);
        }
        print_message("mode %d: i8-coded graph answers overlap f32 by %.4f\n", mode, overlap);
        assert_true(overlap >= 0.97);
    }
    pefa_searcher_free(sa);
    pefa_searcher_free(sb);
    pefa_index_close(a);
    pefa_index_close(b);
}

static void test_explain_and_ids(void **state)
{
    pefa_index *ix;
    pefa_searcher *s;
    pefa_idmap *im;
    pefa_hit hits[10];
    pefa_contrib ct[64];
    uint32_t n, nc, n2, row, rows[10];
    size_t len;
    char id[64];
    int bad;
    pefa_query_params p = PEFA_QUERY_PARAMS_INIT;
    (void)state;
    assert_int_equal(pefa_index_open(g_path, &ix), 0);
    assert_int_equal(pefa_index_verify(ix, &bad), 0);
    assert_int_equal(pefa_verify(ix, &bad), 0);
    assert_int_equal(pefa_searcher_new(ix, &s), 0);
    p.mode = PEFA_MODE_XL;
    p.lambda = 0.3f;
    p.set = PEFA_SET_LAMBDA;
    p.knn = 8;
    p.exact = 1;
    assert_int_equal(pefa_search(s, g_Q, &p, hits, &n), 0);
    /* one call explains every hit: groups in the order asked, each summing
     * with the ERM part to the hit's score */
    for (uint32_t r = 0; r < n; r++) rows[r] = hits[r].row;
    assert_int_equal(pefa_explain(s, g_Q, &p, rows, n, ct, 64, &nc), 0);
    assert_true(nc <= 64);
    for (uint32_t r = 0, e = 0; r < n; r++) {
        float sum = 0, erm = dot(g_Q, g_P + hits[r].row * DIM);
        for (; e < nc && ct[e].passage_row == hits[r].row; e++) sum += ct[e].contribution;
        assert_float_equal(hits[r].score, 0.3f * erm + sum, 1e-5);
    }
    /* a buffer too small: the count says how many there are */
    assert_int_equal(pefa_explain(s, g_Q, &p, rows, n, ct, 1, &n2), 0);
    assert_int_equal(n2, nc);
    /* query 0 is its own nearest neighbour; Y[0, g_pairs[1].p] = 2 + 3 */
    assert_int_equal(pefa_explain(s, g_Q, &p, &g_pairs[1].p, 1, ct, 64, &nc), 0);
    assert_true(nc >= 1);
    assert_int_equal(ct[0].query_row, 0);
    assert_int_equal(ct[0].passage_row, g_pairs[1].p);
    assert_float_equal(ct[0].y, 5.0f, 0);
    rows[0] = NP;
    assert_int_equal(pefa_explain(s, g_Q, &p, rows, 1, ct, 64, &nc), PEFA_ERR_INVALID_ARG);
    p.mode = PEFA_MODE_ERM;
    assert_int_equal(pefa_explain(s, g_Q, &p, rows, 0, ct, 64, &nc), PEFA_ERR_INVALID_ARG);
    /* ids */
    assert_int_equal(pefa_idmap_open(ix, 0, &im), 0);
    assert_int_equal(pefa_idmap_count(im, PEFA_IDS_PASSAGES), NP);
    assert_int_equal(pefa_idmap_id(im, PEFA_IDS_PASSAGES, 4321, id, sizeof id, &len), 0);
    assert_string_equal(id, "doc-4321");
    assert_int_equal(len, 8);
    assert_int_equal(pefa_idmap_id(im, PEFA_IDS_QUERIES, 7, id, sizeof id, NULL), 0);
    assert_string_equal(id, "q-7");
    assert_int_equal(pefa_idmap_row(im, PEFA_IDS_PASSAGES, "doc-17", &row), 0);
    assert_int_equal(row, 17);
    assert_int_equal(pefa_idmap_row(im, PEFA_IDS_PASSAGES, "doc-99999", &row), PEFA_ERR_NOT_FOUND);
    assert_int_equal(pefa_idmap_id(im, PEFA_IDS_PASSAGES, NP, id, sizeof id, NULL), PEFA_ERR_NOT_FOUND);
    assert_int_equal(pefa_idmap_id(im, PEFA_IDS_PASSAGES, 1, id, 3, &len), PEFA_ERR_INVALID_ARG);
    assert_int_equal(len, 5); /* "doc-1" needs 6 bytes with its NUL */
    pefa_idmap_close(im);
    pefa_searcher_free(s);
    pefa_index_close(ix);
}

/* pefa_verify_flags: TRUSTED skips the id map's digest but not its size */
static void test_verify_trusted_idmap(void **state)
{
    char path[320], cmd[800];
    pefa_index *ix;
    int bad;
    (void)state;
    snprintf(path, sizeof path, "%s/trust.pefa", g_dir);
    build(path, PEFA_TYPE_F32, PEFA_CODEC_RAW, 1);
    assert_int_equal(pefa_index_open(path, &ix), 0);
    assert_int_equal(pefa_verify_flags(ix, 0, &bad), 0);
    assert_int_equal(pefa_verify_flags(ix, 0x80, &bad), PEFA_ERR_INVALID_ARG);
    /* one byte of the id map changed, same size */
    snprintf(cmd, sizeof cmd, "f=$(ls %s.*.ids) && printf 'Z' | dd of=$f bs=1 seek=100 conv=notrunc status=none", path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(pefa_verify(ix, &bad), PEFA_ERR_CHECKSUM);
    assert_int_equal(pefa_verify_flags(ix, PEFA_IDMAP_TRUSTED, &bad), 0);
    /* a shorter id map fails either way */
    snprintf(cmd, sizeof cmd, "f=$(ls %s.*.ids) && truncate -s -4096 $f", path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(pefa_verify_flags(ix, PEFA_IDMAP_TRUSTED, &bad), PEFA_ERR_CORRUPT);
    pefa_index_close(ix);
}

/* a rebuild never removes an id map: a copy of the replaced index still needs it */
static void test_rebuild_keeps_old_idmaps(void **state)
{
    char path[320], copy[320], cmd[800];
    pefa_index *ix;
    pefa_idmap *im;
    FILE *f;
    int n = 0;
    (void)state;
    snprintf(path, sizeof path, "%s/re.pefa", g_dir);
    snprintf(copy, sizeof copy, "%s/re.pefa.copy", g_dir);
    build(path, PEFA_TYPE_F32, PEFA_CODEC_RAW, 1);
    snprintf(cmd, sizeof cmd, "cp %s %s", path, copy);
    assert_int_equal(system(cmd), 0);
    build(path, PEFA_TYPE_F32, PEFA_CODEC_RAW, 1);
    snprintf(cmd, sizeof cmd, "ls %s/re.pefa.*.ids | wc -l", g_dir);
    f = popen(cmd, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%d", &n), 1);
    pclose(f);
    assert_int_equal(n, 2);
    for (int i = 0; i < 2; i++) { /* the new index and the copy of the old one */
        assert_int_equal(pefa_index_open(i ? copy : path, &ix), 0);
        assert_int_equal(pefa_idmap_open(ix, 0, &im), 0);
        pefa_idmap_close(im);
        pefa_index_close(ix);
    }
}

static void test_bad_arguments(void **state)
{
    pefa_index *ix;
    pefa_searcher *s;
    pefa_hit hits[10];
    uint32_t n;
    float q[DIM];
    pefa_query_params p = PEFA_QUERY_PARAMS_INIT;
    pefa_build_input in;
    (void)state;
    assert_int_equal(pefa_index_open(g_path, &ix), 0);
    assert_int_equal(pefa_searcher_new(ix, &s), 0);
    memcpy(q, g_Q, sizeof q);
    q[5] = NAN;
    assert_int_equal(pefa_search(s, q, &p, hits, &n), PEFA_ERR_INVALID_ARG);
    p.k = PEFA_MAX_K + 1;
    assert_int_equal(pefa_search(s, g_Q, &p, hits, &n), PEFA_ERR_INVALID_ARG);
    p.k = 0; /* 0: the default, 10 */
    assert_int_equal(pefa_search(s, g_Q, &p, hits, &n), 0);
    assert_int_equal(n, PEFA_DEFAULT_K);
    p.lambda = 1.5f;
    p.set = PEFA_SET_LAMBDA;
    assert_int_equal(pefa_search(s, g_Q, &p, hits, &n), PEFA_ERR_INVALID_ARG);
    p.set = 0;
    p.mode = 7;
    assert_int_equal(pefa_search(s, g_Q, &p, hits, &n), PEFA_ERR_INVALID_ARG);
    /* zero query: every score 0, still k hits */
    memset(q, 0, sizeof q);
    p.mode = PEFA_MODE_ERM;
    p.exact = 1;
    assert_int_equal(pefa_search(s, q, &p, hits, &n), 0);
    assert_int_equal(n, 10);
    assert_float_equal(hits[0].score, 0, 0);
    pefa_searcher_free(s);
    pefa_index_close(ix);
    /* build: pair out of range, NaN row */
    memset(&in, 0, sizeof in);
    float *P4 = malloc(sizeof(float) * 4 * DIM), *Q2 = malloc(sizeof(float) * 2 * DIM);
    memcpy(P4, g_P, sizeof(float) * 4 * DIM);
    memcpy(Q2, g_Q, sizeof(float) * 2 * DIM);
    in.passages = P4;
    in.queries = Q2;
    in.n_passages = 4;
    in.n_queries = 2;
    in.dim = DIM;
    {
        pefa_pair bad_pair = {1, 9, 1};
        char path[320];
        snprintf(path, sizeof path, "%s/bad.pefa", g_dir);
        in.pairs = &bad_pair;
        in.n_pairs = 1;
        assert_int_equal(pefa_build(path, &in, NULL, NULL), PEFA_ERR_BAD_INPUT);
        assert_non_null(strstr(pefa_last_error_detail(), "passage row 9"));
        assert_int_equal(access(path, F_OK), -1);
        bad_pair.p = 1;
        P4[2 * DIM + 3] = INFINITY;
        assert_int_equal(pefa_build(path, &in, NULL, NULL), PEFA_ERR_BAD_INPUT);
        assert_non_null(strstr(pefa_last_error_detail(), "row 2 column 3"));
        assert_int_equal(access(path, F_OK), -1);
    }
    free(P4);
    free(Q2);
}

/* [I6] one rule for ids: pefa_id_check, enforced by pefa_build before any
 * long stage; relevance values must be > 0 */
static void test_id_rule_and_pair_values(void **state)
{
    char path[320], big[600];
    static const char *pids[4] = {"d0", "d1", "d2", "d 3"};
    pefa_pair pair = {1, 2, -1};
    pefa_build_input in;
    (void)state;
    assert_int_equal(pefa_id_check("doc-1", 5), 0);
    assert_int_equal(pefa_id_check("caf\xc3\xa9", 5), 0);
    assert_int_equal(pefa_id_check("a b", 3), PEFA_ERR_BAD_INPUT);
    assert_non_null(strstr(pefa_last_error_detail(), "has a space at byte 1"));
    assert_int_equal(pefa_id_check("a\tb", 3), PEFA_ERR_BAD_INPUT);
    assert_int_equal(pefa_id_check("a\nb", 3), PEFA_ERR_BAD_INPUT);
    assert_int_equal(pefa_id_check("ab\0", 3), PEFA_ERR_BAD_INPUT);
    assert_int_equal(pefa_id_check("caf\xe9", 4), PEFA_ERR_BAD_INPUT);
    assert_non_null(strstr(pefa_last_error_detail(), "not valid UTF-8 at byte 3"));
    assert_int_equal(pefa_id_check("\xc0\xaf", 2), PEFA_ERR_BAD_INPUT); /* overlong '/' */
    assert_int_equal(pefa_id_check("", 0), PEFA_ERR_BAD_INPUT);
    memset(big, 'x', sizeof big);
    assert_int_equal(pefa_id_check(big, PEFA_MAX_ID_BYTES), 0);
    assert_int_equal(pefa_id_check(big, PEFA_MAX_ID_BYTES + 1), PEFA_ERR_BAD_INPUT);
    snprintf(path, sizeof path, "%s/ids.pefa", g_dir);
    memset(&in, 0, sizeof in);
    in.passages = g_P;
    in.n_passages = 4;
    in.dim = DIM;
    in.passage_ids = pids;
    assert_int_equal(pefa_build(path, &in, NULL, NULL), PEFA_ERR_BAD_INPUT);
    assert_non_null(strstr(pefa_last_error_detail(), "passage id of row 3 (0-based) has a space at byte 1"));
    assert_int_equal(tu_count_matching(g_dir, "ids.pefa"), 0); /* no index, id map, lock or temporary file */
    in.passage_ids = NULL;
    in.queries = g_Q;
    in.n_queries = 2;
    in.pairs = &pair;
    in.n_pairs = 1;
    assert_int_equal(pefa_build(path, &in, NULL, NULL), PEFA_ERR_BAD_INPUT);
    assert_non_null(strstr(pefa_last_error_detail(), "has value -1; values must be > 0"));
    pair.y = 0;
    assert_int_equal(pefa_build(path, &in, NULL, NULL), PEFA_ERR_BAD_INPUT);
    assert_int_equal(tu_count_matching(g_dir, "ids.pefa"), 0);
}

/* ---- the Y row codec ------------------------------------------------------ */
static void test_ycsr_roundtrip_and_damage(void **state)
{
    pefa_pair pairs[64];
    ycsr y;
    uint64_t *rp, len;
    uint8_t *rows;
    uint32_t cols[64];
    float vals[64];
    int n = 0;
    (void)state;
    /* row 0: all ones; row 1: integers incl. a duplicate; row 2: floats; row 3: empty; row 4: a big column */
    for (int j = 0; j < 5; j++) pairs[n++] = (pefa_pair){0, (uint32_t)(j * 3), 1};
    pairs[n++] = (pefa_pair){1, 7, 2};
    pairs[n++] = (pefa_pair){1, 7, 3};
    pairs[n++] = (pefa_pair){1, 2, 40};
    pairs[n++] = (pefa_pair){2, 5, 0.25f};
    pairs[n++] = (pefa_pair){2, 1, -1.5f};
    pairs[n++] = (pefa_pair){4, 999999, 1};
    assert_int_equal(pefa__ycsr_from_pairs(pairs, (uint64_t)n, 5, 1000000, &y), 0);
    assert_int_equal(y.nnz, (uint64_t)n - 1);
    assert_int_equal(pefa__ycsr_encode(&y, &rp, &rows, &len), 0);
    for (uint32_t i = 0; i < 5; i++) {
        int64_t k = pefa__ycsr_decode_row(rp, 5, rows, len, 1000000, i, cols, vals, 64);
        assert_int_equal(k, (int64_t)(y.rowptr[i + 1] - y.rowptr[i]));
        for (int64_t j = 0; j < k; j++) {
            assert_int_equal(cols[j], y.cols[y.rowptr[i] + (uint64_t)j]);
            assert_float_equal(vals[j], y.vals[y.rowptr[i] + (uint64_t)j], 0);
        }
    }
    assert_float_equal(vals[0], 1, 0);
    /* every single-byte change and every truncation: an error or a row whose
     * columns stay in range; never a read outside (ASan watches) */
    for (uint64_t b = 0; b < len; b++)
        for (int v = 0; v < 256; v += 17) {
            uint8_t *copy = malloc(len);
            memcpy(copy, rows, len);
            copy[b] = (uint8_t)v;
            for (uint32_t i = 0; i < 5; i++) {
                int64_t k = pefa__ycsr_decode_row(rp, 5, copy, len, 1000000, i, cols, vals, 64);
                for (int64_t j = 0; j < k && j < 64; j++) assert_true(cols[j] < 1000000);
            }
            free(copy);
        }
    for (uint64_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, rows, cut);
        for (uint32_t i = 0; i < 5; i++) {
            int64_t k = pefa__ycsr_decode_row(rp, 5, copy, cut, 1000000, i, cols, vals, 64);
            if (rp[i + 1] > cut) assert_true(k < 0);
        }
        free(copy);
    }
    /* a rowptr that decreases or points past the end */
    {
        uint64_t bad[6];
        memcpy(bad, rp, sizeof bad);
        bad[2] = bad[1] - 1;
        assert_true(pefa__ycsr_decode_row(bad, 5, rows, len, 1000000, 1, cols, vals, 64) < 0);
        bad[2] = len + 100;
        assert_true(pefa__ycsr_decode_row(bad, 5, rows, len, 1000000, 2, cols, vals, 64) < 0);
    }
    free(rp);
    free(rows);
    pefa__ycsr_free(&y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_matches_reference), cmocka_unit_test(test_ann_fidelity),
        cmocka_unit_test(test_threads_identical),       cmocka_unit_test(test_f16_and_zstd),
        cmocka_unit_test(test_i8_codes),                cmocka_unit_test(test_explain_and_ids),
        cmocka_unit_test(test_verify_trusted_idmap),    cmocka_unit_test(test_rebuild_keeps_old_idmaps),
        cmocka_unit_test(test_bad_arguments),           cmocka_unit_test(test_ycsr_roundtrip_and_damage),
        cmocka_unit_test(test_id_rule_and_pair_values),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
