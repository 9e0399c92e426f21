/*
 * test_api.c - the promises of API v1 (pefa.h, "Conventions"): a zero-filled
 * or NULL params struct means every default; the library reads and writes
 * only the size the caller's struct says; batch search equals one-by-one
 * search on any number of threads; the caller's arrays are never written;
 * f16 or strided input rows build the same index as packed f32 ones; META
 * lookups tell absent from broken.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <xxhash.h>

#include "pefa.h"
#include "util/input.h"

#define NP 2000
#define NQ 200
#define DIM 100
#define NT 50 /* test queries */

static float *g_P, *g_Q;
static pefa_pair g_pairs[NQ * 2];
static char g_dir[64], g_path[128];

static float *load(const char *name, uint64_t rows)
{
    char path[512], err[512];
    tin_matrix m;
    float *x = malloc(rows * DIM * sizeof(float));
    snprintf(path, sizeof path, "%s/%s", PEFA_TEST_DATA, name);
    if (tin_matrix_open(path, &m, err, sizeof err)) fail_msg("%s", err);
    for (uint64_t i = 0; i < rows; i++) assert_int_equal(tin_matrix_row(&m, i, x + i * DIM, path, err, sizeof err), 0);
    tin_matrix_close(&m);
    return x;
}

static void input(pefa_build_input *in)
{
    memset(in, 0, sizeof *in);
    in->passages = g_P;
    in->n_passages = NP;
    in->dim = DIM;
    in->queries = g_Q;
    in->n_queries = NQ;
    in->pairs = g_pairs;
    in->n_pairs = NQ * 2;
}

static void params(pefa_build_params *p)
{
    memset(p, 0, sizeof *p);
    p->M = 8;
    p->ef_construction = 40;
    p->threads = 1;
}

static int setup(void **state)
{
    pefa_build_input in;
    pefa_build_params p;
    (void)state;
    g_P = load("glove-5k-base.npy", NP);
    g_Q = load("glove-5k-queries.npy", NQ);
    for (uint32_t i = 0; i < NQ; i++) {
        g_pairs[2 * i] = (pefa_pair){i, (i * 13) % NP, 1};
        g_pairs[2 * i + 1] = (pefa_pair){i, (i * 31 + 7) % NP, 2};
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/pefa-test-api-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_path, sizeof g_path, "%s/a.pefa", g_dir);
    input(&in);
    params(&p);
    if (pefa_build(g_path, &in, &p, NULL)) fail_msg("%s", pefa_last_error_detail());
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    assert_int_equal(system(cmd), 0);
    free(g_P);
    free(g_Q);
    return 0;
}

/* ---- params ------------------------------------------------------------------ */
static void search(pefa_index *ix, const pefa_query_params *p, pefa_hit *hits, uint32_t *n)
{
    pefa_searcher *s;
    assert_int_equal(pefa_searcher_new(ix, &s), 0);
    if (pefa_search(s, g_Q, p, hits, n)) fail_msg("%s", pefa_last_error_detail());
    pefa_searcher_free(s);
}

static void test_zero_params_are_defaults(void **state)
{
    pefa_index *ix;
    pefa_query_params zero, expl = PEFA_QUERY_PARAMS_INIT, r;
    pefa_hit a[PEFA_DEFAULT_K], b[PEFA_DEFAULT_K], c[PEFA_DEFAULT_K];
    uint32_t na, nb, nc;
    (void)state;
    memset(&zero, 0, sizeof zero);
    expl.mode = PEFA_MODE_ERM;
    expl.k = PEFA_DEFAULT_K;
    expl.ef = PEFA_DEFAULT_EF;
    assert_int_equal(pefa_index_open(g_path, &ix), 0);
    search(ix, &zero, a, &na);
    search(ix, &expl, b, &nb);
    search(ix, NULL, c, &nc);
    assert_int_equal(na, PEFA_DEFAULT_K);
    assert_int_equal(nb, na);
    assert_int_equal(nc, na);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_equal(a, c, sizeof a);
    /* resolve says what 0 means, mode by mode */
    memset(&r, 0, sizeof r);
    assert_int_equal(pefa_query_params_resolve(ix, &zero, &r), 0);
    assert_int_equal(r.mode, PEFA_MODE_ERM);
    assert_int_equal(r.k, PEFA_DEFAULT_K);
    assert_int_equal(r.ef, PEFA_DEFAULT_EF);
    zero.mode = PEFA_MODE_XL;
    assert_int_equal(pefa_query_params_resolve(ix, &zero, &r), 0);
    assert_true(r.set & PEFA_SET_LAMBDA);
    assert_float_equal(r.lambda, PEFA_DEFAULT_XL_LAMBDA, 0);
    assert_int_equal(r.knn, PEFA_DEFAULT_KNN);
    assert_int_equal(r.topk_p, PEFA_DEFAULT_TOPK_P);
    zero.mode = PEFA_MODE_XS;
    assert_int_equal(pefa_query_params_resolve(ix, &zero, &r), 0);
    assert_float_equal(r.lambda, 0.5f, 0); /* the build's */
    zero.k = 2000; /* XL takes at least k ERM candidates */
    zero.mode = PEFA_MODE_XL;
    assert_int_equal(pefa_query_params_resolve(ix, &zero, &r), 0);
    assert_int_equal(r.topk_p, 2000);
    /* lambda 0 is a value, not "unset", once its bit is set */
    zero.set = PEFA_SET_LAMBDA;
    zero.lambda = 0;
    assert_int_equal(pefa_query_params_resolve(ix, &zero, &r), 0);
    assert_float_equal(r.lambda, 0, 0);
    zero.set = 0x80;
    assert_int_equal(pefa_query_params_resolve(ix, &zero, &r), PEFA_ERR_INVALID_ARG);
    pefa_index_close(ix);
}

/* the field of pefa_query_params named `name` given, with a value the modes that use it accept */
static void give(pefa_query_params *p, const char *name)
{
    if (!strcmp(name, "lambda")) p->set |= PEFA_SET_LAMBDA, p->lambda = 0.5f; /* XS: the build's, no z needed */
    else if (!strcmp(name, "knn")) p->knn = 8;
    else if (!strcmp(name, "topk_p")) p->topk_p = 50;
    else if (!strcmp(name, "knn_norm")) p->knn_norm = PEFA_KNN_V1;
    else if (!strcmp(name, "knn_norm=v0")) p->set |= PEFA_SET_KNN_NORM, p->knn_norm = PEFA_KNN_V0;
    else if (!strcmp(name, "xl_scoring")) p->xl_scoring = PEFA_XL_SPARSE_ADD;
    else if (!strcmp(name, "xl_scoring=exact")) p->set |= PEFA_SET_XL_SCORING, p->xl_scoring = PEFA_XL_EXACT;
}

/* A parameter the mode does not use is refused, naming it, in the resolve
 * step every front end goes through: ERM uses none of lambda, knn, topk_p,
 * knn_norm, xl_scoring; XS uses lambda only; XL all of them. */
static void test_unused_params_refused(void **state)
{
    static const char *const fields[] = {"lambda", "knn", "topk_p", "knn_norm", "knn_norm=v0", "xl_scoring",
                                         "xl_scoring=exact"};
    static const int modes[] = {PEFA_MODE_ERM, PEFA_MODE_XS, PEFA_MODE_XL, PEFA_MODE_DEFAULT};
    pefa_index *ix;
    pefa_searcher *s;
    pefa_hit hits[PEFA_DEFAULT_K];
    uint32_t n;
    (void)state;
    assert_int_equal(pefa_index_open(g_path, &ix), 0);
    assert_int_equal(pefa_searcher_new(ix, &s), 0);
    for (size_t mi = 0; mi < sizeof modes / sizeof *modes; mi++)
        for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
            pefa_query_params p = PEFA_QUERY_PARAMS_INIT, r = PEFA_QUERY_PARAMS_INIT, again = PEFA_QUERY_PARAMS_INIT;
            int mode = modes[mi], used = mode == PEFA_MODE_XL || (mode == PEFA_MODE_XS && f == 0);
            char name[32];
            int rc;
            p.mode = mode;
            give(&p, fields[f]);
            snprintf(name, sizeof name, "%.*s: ", (int)strcspn(fields[f], "="), fields[f]);
            rc = pefa_query_params_resolve(ix, &p, &r);
            print_message("mode %d, %s: %s\n", mode, fields[f], rc ? pefa_last_error_detail() : "used");
            if (used) {
                assert_int_equal(rc, 0);
                /* what resolve returns resolves again to itself */
                if (pefa_query_params_resolve(ix, &r, &again)) fail_msg("%s", pefa_last_error_detail());
                assert_memory_equal(&r, &again, sizeof r);
                continue;
            }
            assert_int_equal(rc, PEFA_ERR_INVALID_ARG);
            assert_int_equal(strncmp(pefa_last_error_detail(), name, strlen(name)), 0);
            assert_non_null(strstr(pefa_last_error_detail(), mode == PEFA_MODE_DEFAULT ? "erm, the index's default"
                                                                                       : "does not use it"));
            /* searches go through the same step */
            assert_int_equal(pefa_search(s, g_Q, &p, hits, &n), PEFA_ERR_INVALID_ARG);
            assert_int_equal(pefa_search_batch(ix, g_Q, 1, 0, &p, 1, hits, &n), PEFA_ERR_INVALID_ARG);
        }
    /* a resolved ERM or XS setting carries no XL field: it resolves again */
    for (size_t mi = 0; mi < sizeof modes / sizeof *modes; mi++) {
        pefa_query_params p = PEFA_QUERY_PARAMS_INIT, r = PEFA_QUERY_PARAMS_INIT, again = PEFA_QUERY_PARAMS_INIT;
        p.mode = modes[mi];
        assert_int_equal(pefa_query_params_resolve(ix, &p, &r), 0);
        assert_int_equal(pefa_query_params_resolve(ix, &r, &again), 0);
        assert_memory_equal(&r, &again, sizeof r);
    }
    pefa_searcher_free(s);
    pefa_index_close(ix);
}

/* a caller compiled against a header whose struct was 8 bytes long: the
 * library reads those 8 bytes only (ASan watches the exact-size buffers) */
static void test_short_structs(void **state)
{
    pefa_index *ix;
    pefa_hit a[PEFA_DEFAULT_K], b[PEFA_DEFAULT_K];
    uint32_t na, nb;
    uint32_t *qp = malloc(8), *mi = malloc(8);
    pefa_model_info full = PEFA_MODEL_INFO_INIT;
    (void)state;
    qp[0] = 8;  /* size */
    qp[1] = 0;  /* set */
    mi[0] = 8;  /* size */
    mi[1] = 0xdeadbeef;
    assert_int_equal(pefa_index_open(g_path, &ix), 0);
    search(ix, (const pefa_query_params *)(void *)qp, a, &na);
    search(ix, NULL, b, &nb);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(pefa_model_describe(ix, (pefa_model_info *)(void *)mi), 0);
    assert_int_equal(mi[0], 8);
    assert_int_equal(mi[1], NP); /* n_passages, the first field after size */
    assert_int_equal(pefa_model_describe(ix, &full), 0);
    assert_int_equal(full.n_queries, NQ);
    assert_int_equal(full.dim, DIM);
    free(qp);
    free(mi);
    pefa_index_close(ix);
}

/* ---- batch -------------------------------------------------------------------- */
static void test_batch_equals_single(void **state)
{
    static pefa_hit one[NT * 20], many[NT * 20];
    static float strided[NT * (DIM + 3)];
    uint32_t n1[NT], nm[NT];
    pefa_index *ix;
    pefa_searcher *s;
    (void)state;
    for (uint32_t i = 0; i < NT; i++) memcpy(strided + i * (DIM + 3), g_Q + i * DIM, DIM * sizeof(float));
    assert_int_equal(pefa_index_open(g_path, &ix), 0);
    assert_int_equal(pefa_searcher_new(ix, &s), 0);
    for (int mode = PEFA_MODE_ERM; mode <= PEFA_MODE_XL; mode++) {
        pefa_query_params p = PEFA_QUERY_PARAMS_INIT;
        p.mode = mode;
        p.k = 20;
        for (uint32_t i = 0; i < NT; i++) assert_int_equal(pefa_search(s, g_Q + i * DIM, &p, one + i * 20, &n1[i]), 0);
        for (uint32_t threads = 0; threads <= 3; threads++) {
            memset(many, 0, sizeof many);
            assert_int_equal(pefa_search_batch(ix, g_Q, NT, 0, &p, threads, many, nm), 0);
            assert_memory_equal(n1, nm, sizeof n1);
            assert_memory_equal(one, many, sizeof one);
        }
        memset(many, 0, sizeof many);
        assert_int_equal(pefa_search_batch(ix, strided, NT, DIM + 3, &p, 2, many, nm), 0);
        assert_memory_equal(one, many, sizeof one);
    }
    /* a bad row names its query; of two bad rows, the first, whichever thread met it */
    strided[7 * (DIM + 3) + 4] = NAN;
    assert_int_equal(pefa_search_batch(ix, strided, NT, DIM + 3, NULL, 2, many, nm), PEFA_ERR_INVALID_ARG);
    assert_non_null(strstr(pefa_last_error_detail(), "query 7:"));
    strided[(NT - 2) * (DIM + 3)] = NAN;
    for (uint32_t threads = 1; threads <= 4; threads++) {
        assert_int_equal(pefa_search_batch(ix, strided, NT, DIM + 3, NULL, threads, many, nm), PEFA_ERR_INVALID_ARG);
        assert_non_null(strstr(pefa_last_error_detail(), "query 7:"));
    }
    pefa_searcher_free(s);
    pefa_index_close(ix);
}

/* ---- build input ------------------------------------------------------------------ */
static uint64_t sum_of(const void *p, size_t n)
{
    return XXH3_64bits(p, n);
}

/* the searches of two indexes agree exactly */
static void same_answers(const char *a, const char *b)
{
    pefa_index *x, *y;
    static pefa_hit hx[NT * 10], hy[NT * 10];
    uint32_t nx[NT], ny[NT];
    pefa_query_params p = PEFA_QUERY_PARAMS_INIT;
    assert_int_equal(pefa_index_open(a, &x), 0);
    assert_int_equal(pefa_index_open(b, &y), 0);
    for (int mode = PEFA_MODE_ERM; mode <= PEFA_MODE_XL; mode++) {
        p.mode = mode;
        assert_int_equal(pefa_search_batch(x, g_Q, NT, 0, &p, 1, hx, nx), 0);
        assert_int_equal(pefa_search_batch(y, g_Q, NT, 0, &p, 1, hy, ny), 0);
        assert_memory_equal(hx, hy, sizeof hx);
    }
    pefa_index_close(x);
    pefa_index_close(y);
}

static void test_build_input_forms(void **state)
{
    pefa_build_input in;
    pefa_build_params p;
    char path[160], f16in[160];
    uint64_t before_p = sum_of(g_P, sizeof(float) * NP * DIM), before_q = sum_of(g_Q, sizeof(float) * NQ * DIM);
    uint16_t *P16 = malloc(sizeof(uint16_t) * NP * DIM);
    float *Pf = malloc(sizeof(float) * NP * DIM), *Ps = malloc(sizeof(float) * NP * (DIM + 5));
    (void)state;
    /* the build read the arrays and left them as they were */
    assert_int_equal(sum_of(g_P, sizeof(float) * NP * DIM), before_p);
    assert_int_equal(sum_of(g_Q, sizeof(float) * NQ * DIM), before_q);
    /* f16 rows, and the same values as packed f32, build the same index */
    pefa_f32_to_f16(g_P, P16, (size_t)NP * DIM);
    pefa_f16_to_f32(P16, Pf, (size_t)NP * DIM);
    input(&in);
    params(&p);
    in.passages = P16;
    in.passages_type = PEFA_TYPE_F16;
    snprintf(f16in, sizeof f16in, "%s/f16in.pefa", g_dir);
    assert_int_equal(pefa_build(f16in, &in, &p, NULL), 0);
    in.passages = Pf;
    in.passages_type = PEFA_TYPE_F32;
    snprintf(path, sizeof path, "%s/f32in.pefa", g_dir);
    assert_int_equal(pefa_build(path, &in, &p, NULL), 0);
    same_answers(path, f16in);
    /* strided rows (5 extra floats per row) build the same index as packed */
    for (uint32_t i = 0; i < NP; i++) memcpy(Ps + i * (DIM + 5), g_P + i * DIM, DIM * sizeof(float));
    in.passages = Ps;
    in.passages_stride = (DIM + 5) * sizeof(float);
    snprintf(path, sizeof path, "%s/strided.pefa", g_dir);
    assert_int_equal(pefa_build(path, &in, &p, NULL), 0);
    same_answers(path, g_path);
    /* a NaN: BAD_INPUT naming the row; the array is left as it was */
    Ps[17 * (DIM + 5) + 3] = NAN;
    before_p = sum_of(Ps, sizeof(float) * NP * (DIM + 5));
    assert_int_equal(pefa_build(path, &in, &p, NULL), PEFA_ERR_BAD_INPUT);
    assert_non_null(strstr(pefa_last_error_detail(), "row 17 column 3"));
    assert_int_equal(sum_of(Ps, sizeof(float) * NP * (DIM + 5)), before_p);
    /* a stride shorter than a row, an unknown type */
    in.passages_stride = DIM;
    assert_int_equal(pefa_build(path, &in, &p, NULL), PEFA_ERR_INVALID_ARG);
    in.passages_stride = 0;
    in.passages_type = PEFA_TYPE_I8;
    assert_int_equal(pefa_build(path, &in, &p, NULL), PEFA_ERR_INVALID_ARG);
    free(P16);
    free(Pf);
    free(Ps);
}

/* ---- META ------------------------------------------------------------------------- */
/* pefa_pairs_merge: the qrels rule (duplicates add up, totals <= 0 left out) */
static void test_pairs_merge(void **state)
{
    pefa_pair p[] = {{2, 1, 1.0f}, {0, 5, 0.0f}, {1, 3, -1.0f}, {2, 1, 0.5f}, {1, 4, 2.0f},
                     {1, 4, -2.0f}, {0, 2, -1.0f}, {0, 2, 3.0f}, {3, 0, 1.0f}};
    uint64_t n = sizeof p / sizeof p[0], out = 99;
    (void)state;
    assert_int_equal(pefa_pairs_merge(p, &n, &out), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out, 3); /* (0,5) 0, (1,3) -1, (1,4) 2-2 */
    assert_true(p[0].q == 0 && p[0].p == 2 && p[0].y == 2.0f);
    assert_true(p[1].q == 2 && p[1].p == 1 && p[1].y == 1.5f);
    assert_true(p[2].q == 3 && p[2].p == 0 && p[2].y == 1.0f);
    p[1].y = NAN;
    n = 3;
    assert_int_equal(pefa_pairs_merge(p, &n, NULL), PEFA_ERR_BAD_INPUT);
    assert_non_null(strstr(pefa_last_error_detail(), "relevance pair 1 (query row 2, passage row 1)"));
    n = 0;
    assert_int_equal(pefa_pairs_merge(NULL, &n, &out), 0);
    assert_int_equal(out, 0);
    assert_int_equal(pefa_pairs_merge(NULL, NULL, NULL), PEFA_ERR_INVALID_ARG);
}

static void test_meta_get_results(void **state)
{
    pefa_index *ix;
    const char *v = "x";
    (void)state;
    assert_int_equal(pefa_index_open(g_path, &ix), 0);
    assert_int_equal(pefa_index_meta_get(ix, "pefa.dim", &v), 0);
    assert_string_equal(v, "100");
    assert_int_equal(pefa_index_meta_get(ix, "no.such.key", &v), PEFA_ERR_NOT_FOUND);
    assert_null(v);
    assert_int_equal(pefa_index_find(ix, PEFA_KIND_VECTORS, 99), PEFA_ERR_NOT_FOUND);
    pefa_index_close(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_params_are_defaults), cmocka_unit_test(test_unused_params_refused),
        cmocka_unit_test(test_short_structs),
        cmocka_unit_test(test_batch_equals_single),      cmocka_unit_test(test_build_input_forms),
        cmocka_unit_test(test_meta_get_results),         cmocka_unit_test(test_pairs_merge),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
