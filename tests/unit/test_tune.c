/*
 * test_tune.c - leave-one-out tuning (libidx/pefa/tune*.c) against a
 * brute-force "rebuild the model without query i (and its duplicates)"
 * written here, on real GloVe rows (tests/data) with planted duplicates:
 *   - XS: <q_i, z_j> with z_j recomputed from scratch equals the O(d)
 *     leave-one-out from the stored |S_j| to 1e-5;
 *   - XL: the neighbours exclude i's duplicate group;
 *   - the metric of every grid setting equals the brute-force one;
 *   - the label check's per-query figures (own recall@100, weights summed
 *     over the ERM top 100) equal a brute-force ERM ranking's;
 * and end to end: an index whose training queries cannot help tunes to ERM
 * (and fails the label check; with the check off the grid alone chooses),
 * planted labels pass it,
 * pefa_tune on a tuned index reports the recorded choice, explicit query
 * parameters win over the tuned ones, a format 1.0 index is refused.
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

#include "pefa.h"
#include "pefa/tune.h"
#include "util/input.h"

#define NP 2000
#define NQ0 200 /* distinct training queries */
#define NDUP 20 /* copies of queries 0..19 */
#define NQ (NQ0 + NDUP)
#define DIM 100

static float *g_P, *g_Q, *g_Z, g_S[NP];
static uint64_t g_rp[NQ + 1];
static uint32_t g_col[NQ * 3];
static float g_val[NQ * 3];
static char g_dir[64];

static double dotd(const float *a, const float *b)
{
    double s = 0;
    for (int c = 0; c < DIM; c++) s += (double)a[c] * b[c];
    return s;
}

static float *load(const char *name, uint32_t rows, uint32_t alloc)
{
    char path[512], err[512];
    tin_matrix m;
    float *x = calloc((size_t)alloc * DIM, sizeof(float));
    snprintf(path, sizeof path, "%s/%s", PEFA_TEST_DATA, name);
    if (tin_matrix_open(path, &m, err, sizeof err)) fail_msg("%s", err);
    for (uint32_t i = 0; i < rows; i++) assert_int_equal(tin_matrix_row(&m, i, x + (size_t)i * DIM, path, err, sizeof err), 0);
    tin_matrix_close(&m);
    for (uint32_t i = 0; i < rows; i++) { /* unit rows, as the build stores them */
        double n = sqrt(dotd(x + (size_t)i * DIM, x + (size_t)i * DIM));
        for (int c = 0; c < DIM; c++) x[(size_t)i * DIM + c] = (float)(x[(size_t)i * DIM + c] / n);
    }
    return x;
}

/* S_j = sum over l not in skip of Y_lj q_l (skip: NULL or a flag per query) */
static void s_vector(uint32_t j, const uint8_t *skip, double *out)
{
    memset(out, 0, DIM * sizeof *out);
    for (uint32_t l = 0; l < NQ; l++) {
        if (skip && skip[l]) continue;
        for (uint64_t e = g_rp[l]; e < g_rp[l + 1]; e++)
            if (g_col[e] == j)
                for (int c = 0; c < DIM; c++) out[c] += g_val[e] * g_Q[(size_t)l * DIM + c];
    }
}

/* Y: query i -> its nearest passage (value 2) and two others (1); the
 * copies of queries 0..9 keep their original's row, those of 10..19 point
 * elsewhere */
static void make_y(void)
{
    uint32_t e = 0;
    for (uint32_t i = 0; i < NQ; i++) {
        uint32_t src = i < NQ0 ? i : i - NQ0, best = 0;
        double bs = -2;
        for (uint32_t j = 0; j < NP; j++) {
            double s = dotd(g_Q + (size_t)src * DIM, g_P + (size_t)j * DIM);
            if (s > bs) bs = s, best = j;
        }
        g_rp[i] = e;
        if (i >= NQ0 && src >= 10) best = (best + 777) % NP;
        g_col[e] = best, g_val[e++] = 2;
        g_col[e] = (best + 1 + src * 13) % NP, g_val[e++] = 1;
        g_col[e] = (best + 2 + src * 29) % NP, g_val[e++] = 1;
        /* columns sorted within the row, as CSR rows are */
        for (uint32_t a = g_rp[i]; a < e; a++)
            for (uint32_t b = a + 1; b < e; b++)
                if (g_col[b] < g_col[a]) {
                    uint32_t tc = g_col[a];
                    float tv = g_val[a];
                    g_col[a] = g_col[b], g_val[a] = g_val[b];
                    g_col[b] = tc, g_val[b] = tv;
                }
    }
    g_rp[NQ] = e;
}

static int setup(void **state)
{
    double v[DIM];
    (void)state;
    g_P = load("glove-5k-base.npy", NP, NP);
    g_Q = load("glove-5k-queries.npy", NQ0, NQ);
    memcpy(g_Q + (size_t)NQ0 * DIM, g_Q, (size_t)NDUP * DIM * sizeof(float));
    make_y();
    g_Z = calloc((size_t)NP * DIM, sizeof(float));
    for (uint32_t j = 0; j < NP; j++) {
        double n;
        s_vector(j, NULL, v);
        n = 0;
        for (int c = 0; c < DIM; c++) n += v[c] * v[c];
        g_S[j] = (float)sqrt(n);
        for (int c = 0; c < DIM && n > 0; c++) g_Z[(size_t)j * DIM + c] = (float)(v[c] / sqrt(n));
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/pefa-test-tune-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
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
    free(g_Z);
    return 0;
}

static pefa_tune_data data(void)
{
    pefa_tune_data d = {NP, NQ, DIM, PEFA_TYPE_F32, DIM * sizeof(float), g_P, g_Q, g_Z, g_S, g_rp, g_col, g_val};
    return d;
}

/* ---- brute force ------------------------------------------------------------------ */
typedef struct {
    float s[NP], t[NP], u[NQ]; /* <q_i, .> as the tuner is given them */
    float t_bf[NP];            /* <q_i, z_j> with z_j rebuilt without i's group */
    uint8_t skip[NQ];          /* i's group */
    uint32_t nbr[TUNE_MAX_K], n_nbr;
} held_out;

static int better_u(const held_out *h, uint32_t a, uint32_t b)
{
    return h->u[a] > h->u[b] || (h->u[a] == h->u[b] && a < b);
}

static int touched_by_group(const held_out *h, uint32_t j)
{
    for (uint32_t l = 0; l < NQ; l++)
        for (uint64_t e = g_rp[l]; h->skip[l] && e < g_rp[l + 1]; e++)
            if (g_col[e] == j) return 1;
    return 0;
}

static void hold_out(uint32_t i, held_out *h)
{
    double v[DIM];
    const float *q = g_Q + (size_t)i * DIM;
    for (uint32_t j = 0; j < NP; j++) {
        h->s[j] = (float)dotd(q, g_P + (size_t)j * DIM);
        h->t[j] = (float)dotd(q, g_Z + (size_t)j * DIM);
    }
    for (uint32_t l = 0; l < NQ; l++) {
        h->u[l] = (float)dotd(q, g_Q + (size_t)l * DIM);
        h->skip[l] = h->u[l] >= PEFA_TUNE_DUP_COSINE;
    }
    for (uint32_t j = 0; j < NP; j++) { /* z_j from scratch without the group */
        double n = 0, dq;
        h->t_bf[j] = h->t[j];
        if (!touched_by_group(h, j)) continue; /* the same z: keep the tuner's float */
        s_vector(j, h->skip, v);
        for (int c = 0; c < DIM; c++) n += v[c] * v[c];
        dq = 0;
        for (int c = 0; c < DIM; c++) dq += v[c] * q[c];
        h->t_bf[j] = n > 1e-12 ? (float)(dq / sqrt(n)) : 0.0f;
    }
    h->n_nbr = 0; /* the k nearest outside the group, by insertion */
    for (uint32_t l = 0; l < NQ; l++) {
        uint32_t pos;
        if (h->skip[l]) continue;
        pos = h->n_nbr < TUNE_MAX_K ? h->n_nbr++ : TUNE_MAX_K;
        if (pos == TUNE_MAX_K && !better_u(h, l, h->nbr[TUNE_MAX_K - 1])) continue;
        if (pos == TUNE_MAX_K) pos--;
        while (pos > 0 && better_u(h, l, h->nbr[pos - 1])) h->nbr[pos] = h->nbr[pos - 1], pos--;
        h->nbr[pos] = l;
    }
}

/* rank of row r among n scored rows (sc indexed by row, rows listed in idx) */
static uint32_t rank_of(const float *sc, const uint32_t *idx, uint32_t n, uint32_t r)
{
    uint32_t cnt = 0;
    for (uint32_t k = 0; k < n; k++)
        cnt += sc[idx[k]] > sc[r] || (sc[idx[k]] == sc[r] && idx[k] < r);
    return cnt;
}

static float recall100(const float *sc, const uint32_t *idx, uint32_t n, const uint8_t *in, uint32_t i)
{
    uint32_t hit = 0, rel = 0;
    for (uint64_t e = g_rp[i]; e < g_rp[i + 1]; e++) {
        rel++;
        if ((!in || in[g_col[e]]) && rank_of(sc, idx, n, g_col[e]) < 100) hit++;
    }
    return (float)hit / (float)rel;
}

/* recall@100 of every grid setting, from the brute-force model */
static void brute_metrics(uint32_t i, const held_out *h, float *out)
{
    static float sc[NP], acc[NP];
    static uint32_t all[NP], cand[NP], top[NP];
    static uint8_t in[NP];
    static const uint32_t ks[TUNE_XL_KS] = {4, 8, 16, 32, 64};
    uint32_t nc = 0;
    for (uint32_t j = 0; j < NP; j++) all[j] = top[j] = j;
    for (uint32_t a = 0; a < TUNE_XS_N; a++) {
        float lam = (float)a / 10.0f;
        for (uint32_t j = 0; j < NP; j++) sc[j] = lam * h->s[j] + (1 - lam) * h->t_bf[j];
        out[1 + a] = recall100(sc, all, NP, NULL, i);
    }
    out[0] = out[TUNE_XS_N];
    for (uint32_t j = 0; j < NP; j++) in[j] = rank_of(h->s, all, NP, j) < TUNE_CANDIDATES; /* ERM candidates */
    for (uint32_t kk = 0; kk < TUNE_XL_KS; kk++) {
        uint32_t k = ks[kk] < h->n_nbr ? ks[kk] : h->n_nbr;
        uint8_t knn[NP] = {0};
        memset(acc, 0, sizeof acc);
        for (uint32_t n = 0; n < k; n++)
            for (uint64_t e = g_rp[h->nbr[n]]; e < g_rp[h->nbr[n] + 1]; e++) {
                acc[g_col[e]] += h->u[h->nbr[n]] * g_val[e];
                knn[g_col[e]] = 1;
            }
        nc = 0;
        for (uint32_t j = 0; j < NP; j++)
            if (in[j] || knn[j]) cand[nc++] = j;
        for (uint32_t a = 0; a < TUNE_XL_LAMBDAS; a++) {
            float lam = (float)a / 10.0f;
            static uint8_t is_cand[NP];
            memset(is_cand, 0, sizeof is_cand);
            for (uint32_t c = 0; c < nc; c++) {
                uint32_t j = cand[c];
                sc[j] = lam * h->s[j] + (knn[j] ? (1 - lam) * acc[j] / (float)k : 0.0f);
                is_cand[j] = 1;
            }
            out[1 + TUNE_XS_N + kk * TUNE_XL_LAMBDAS + a] = recall100(sc, cand, nc, is_cand, i);
        }
    }
    (void)top;
}

/* the label check's figures of i (pefa__tune_label right after its eval)
 * against its ERM top 100 by brute force, with arbitrary passage weights */
static void check_label(uint32_t i, const held_out *h, tune_scratch *sc)
{
    static double w[NP];
    static uint32_t all[NP];
    double own, wsum, b_sum = 0;
    uint32_t hit = 0, nrel = 0;
    for (uint32_t j = 0; j < NP; j++) w[j] = 1.0 / (1 + j % 13), all[j] = j;
    pefa__tune_label(sc, w, &own, &wsum);
    for (uint32_t j = 0; j < NP; j++) {
        if (rank_of(h->s, all, NP, j) >= 100) continue;
        b_sum += w[j];
        for (uint64_t e = g_rp[i]; e < g_rp[i + 1]; e++) hit += g_col[e] == j;
    }
    nrel = (uint32_t)(g_rp[i + 1] - g_rp[i]);
    assert_float_equal(own, (double)hit / nrel, 1e-12);
    assert_float_equal(wsum, b_sum, 1e-9);
}

static void test_loo_matches_rebuild(void **state)
{
    static const uint32_t probe[] = {0, 5, 12, 57, 150, 199, NQ0 + 5, NQ0 + 15};
    static held_out h;
    pefa_tune_data d = data();
    tune_scratch *sc = pefa__tune_scratch_new(&d);
    float out[TUNE_GRID], bf[TUNE_GRID];
    uint32_t group, nbr[TUNE_MAX_K], n_nbr, checked = 0;
    (void)state;
    assert_non_null(sc);
    for (size_t p = 0; p < sizeof probe / sizeof probe[0]; p++) {
        uint32_t i = probe[p];
        hold_out(i, &h);
        /* XS: every passage a group member points to, z rebuilt from scratch */
        for (uint32_t l = 0; l < NQ; l++) {
            if (!h.skip[l]) continue;
            for (uint64_t e = g_rp[l]; e < g_rp[l + 1]; e++) {
                float t;
                assert_int_equal(pefa__tune_probe(&d, sc, i, h.u, g_col[e], &t, nbr, &n_nbr), 0);
                if (fabsf(t - h.t_bf[g_col[e]]) > 1e-5f)
                    fail_msg("query %u passage %u: leave-one-out <q,z> %.7f, rebuilt %.7f", i, g_col[e], t,
                             h.t_bf[g_col[e]]);
                checked++;
            }
        }
        /* XL: the neighbours skip the group (i itself and its copies) */
        assert_int_equal(n_nbr, h.n_nbr);
        assert_memory_equal(nbr, h.nbr, n_nbr * sizeof *nbr);
        for (uint32_t k = 0; k < n_nbr; k++) assert_true(h.u[nbr[k]] < PEFA_TUNE_DUP_COSINE);
        /* every setting's metric */
        assert_int_equal(pefa__tune_eval(&d, sc, i, PEFA_METRIC_RECALL100, h.s, h.t, h.u, out, &group), 0);
        brute_metrics(i, &h, bf);
        for (uint32_t g = 0; g < TUNE_GRID; g++)
            if (fabsf(out[g] - bf[g]) > 1e-6f) fail_msg("query %u setting %u: tuner %g, brute force %g", i, g, out[g], bf[g]);
        assert_int_equal(group, i >= NQ0 ? i - NQ0 : i); /* the group's smallest row */
        check_label(i, &h, sc);
    }
    print_message("%u held-out <q, z_j> checked against a rebuild\n", checked);
    assert_true(checked >= 8 * 3);
    pefa__tune_scratch_free(sc);
}

/* ---- end to end ------------------------------------------------------------------- */
static void build(const char *path, const pefa_pair *pairs, uint64_t n_pairs, int tune, int label_check)
{
    pefa_build_input in = PEFA_BUILD_INPUT_INIT;
    pefa_build_params p = PEFA_BUILD_PARAMS_INIT;
    in.passages = g_P;
    in.n_passages = NP;
    in.dim = DIM;
    in.queries = g_Q;
    in.n_queries = NQ;
    in.pairs = pairs;
    in.n_pairs = n_pairs;
    p.M = 8;
    p.ef_construction = 40;
    p.threads = 2;
    p.tune = (uint8_t)tune;
    p.tune_label_check = label_check;
    if (pefa_build(path, &in, &p, NULL)) fail_msg("%s", pefa_last_error_detail());
}

static const char *meta(pefa_index *ix, const char *key)
{
    const char *v;
    return pefa_index_meta_get(ix, key, &v) == 0 ? v : "";
}

/* training queries unrelated to the passages: nothing beats the encoder */
static void test_cannot_help_tunes_to_erm(void **state)
{
    static pefa_pair pairs[NQ * 3];
    char path[128];
    pefa_index *ix;
    pefa_model_info mi = PEFA_MODEL_INFO_INIT;
    pefa_tune_params tp = PEFA_TUNE_PARAMS_INIT;
    pefa_tune_report *r;
    uint64_t seed = 7;
    (void)state;
    for (uint32_t k = 0; k < NQ * 3; k++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        pairs[k] = (pefa_pair){k / 3, (uint32_t)((seed >> 33) % NP), 1};
    }
    snprintf(path, sizeof path, "%s/random.pefa", g_dir);
    build(path, pairs, NQ * 3, 1, 0);
    assert_int_equal(pefa_index_open(path, &ix), 0);
    print_message("random qrels: tuned to %s (LOO recall@100 %s vs ERM %s, 5%% gain %s)\n", meta(ix, "tune.mode"),
                  meta(ix, "tune.score"), meta(ix, "tune.score_erm"), meta(ix, "tune.delta_lo"));
    assert_string_equal(meta(ix, "tune.mode"), "erm");
    assert_int_equal(pefa_model_describe(ix, &mi), 0);
    assert_int_equal(mi.tuned, 1);
    assert_int_equal(mi.default_mode, PEFA_MODE_ERM);
    /* the label check: recorded; random labels are found by ERM no better
     * for their own query than for the others (fixed data: it fails) */
    print_message("random qrels: label check %s (own %s, other %s, 5%% %s)\n", meta(ix, "tune.label_check"),
                  meta(ix, "tune.label_own"), meta(ix, "tune.label_other"), meta(ix, "tune.label_delta_lo"));
    assert_string_equal(meta(ix, "tune.label_check"), "on");
    assert_string_equal(meta(ix, "tune.label_passed"), "0");
    tp.label_check = PEFA_LABEL_CHECK_OFF; /* off: the grid alone chooses */
    assert_int_equal(pefa_tune(ix, &tp, &r), 0);
    assert_int_equal(r->label_check, PEFA_LABEL_CHECK_OFF);
    assert_int_equal(r->label_passed, 0);
    assert_int_equal(r->chosen, r->chosen_margin);
    assert_float_equal(r->label_own, strtod(meta(ix, "tune.label_own"), NULL), 1e-6);
    assert_float_equal(r->label_other, strtod(meta(ix, "tune.label_other"), NULL), 1e-6);
    pefa_tune_report_free(r);
    pefa_index_close(ix);
}

static void test_tuned_defaults_and_overrides(void **state)
{
    static pefa_pair pairs[NQ * 3];
    char path[128];
    pefa_index *ix;
    pefa_tune_report *r;
    pefa_query_params p, out;
    pefa_model_info mi = PEFA_MODEL_INFO_INIT;
    const pefa_tune_setting *w;
    (void)state;
    for (uint32_t i = 0; i < NQ; i++)
        for (uint64_t e = g_rp[i]; e < g_rp[i + 1]; e++) pairs[e] = (pefa_pair){i, g_col[e], g_val[e]};
    snprintf(path, sizeof path, "%s/tuned.pefa", g_dir);
    build(path, pairs, g_rp[NQ], 1, 0);
    assert_int_equal(pefa_index_open(path, &ix), 0);
    assert_int_equal(pefa_model_describe(ix, &mi), 0);
    print_message("planted qrels: tuned to %s lambda %s k %s\n", meta(ix, "tune.mode"), meta(ix, "tune.lambda"),
                  meta(ix, "tune.knn"));
    assert_true(mi.tuned && mi.default_mode != PEFA_MODE_ERM);
    /* pefa_tune on the file reports what the build recorded */
    assert_int_equal(pefa_tune(ix, NULL, &r), 0);
    w = &r->settings[r->chosen];
    assert_int_equal(w->mode, mi.default_mode);
    assert_float_equal(w->lambda, mi.default_lambda, 1e-6);
    assert_int_equal(w->knn, mi.default_knn);
    assert_int_equal(r->n_queries, NQ);
    assert_int_equal(r->n_groups, NQ0); /* the copies count once */
    /* the labels follow the text: the check passes, and its own-label recall is ERM's */
    assert_int_equal(r->label_check, PEFA_LABEL_CHECK_ON);
    assert_int_equal(r->label_passed, 1);
    assert_int_equal(r->chosen, r->chosen_margin);
    assert_true(r->label_own > r->label_other && r->label_delta_lo > 0);
    assert_float_equal(r->label_own, r->settings[0].score, 1e-6);
    assert_string_equal(meta(ix, "tune.label_passed"), "1");
    pefa_tune_report_free(r);
    /* the default is the tuned setting; explicit values win */
    memset(&p, 0, sizeof p);
    memset(&out, 0, sizeof out);
    assert_int_equal(pefa_query_params_resolve(ix, &p, &out), 0);
    assert_int_equal(out.mode, mi.default_mode);
    assert_float_equal(out.lambda, mi.default_lambda, 0);
    p.mode = PEFA_MODE_XL;
    p.knn = 7;
    p.lambda = 0.65f;
    p.set = PEFA_SET_LAMBDA;
    assert_int_equal(pefa_query_params_resolve(ix, &p, &out), 0);
    assert_int_equal(out.knn, 7);
    assert_float_equal(out.lambda, 0.65f, 0);
    /* ERM uses neither knn nor lambda: given, they are refused, not ignored */
    p.mode = PEFA_MODE_ERM;
    assert_int_equal(pefa_query_params_resolve(ix, &p, &out), PEFA_ERR_INVALID_ARG);
    assert_string_equal(pefa_last_error_detail(), "lambda: mode erm does not use it (xs and xl do)");
    p.set = 0;
    assert_int_equal(pefa_query_params_resolve(ix, &p, &out), PEFA_ERR_INVALID_ARG);
    assert_string_equal(pefa_last_error_detail(), "knn: mode erm does not use it (only xl does)");
    p.knn = 0;
    assert_int_equal(pefa_query_params_resolve(ix, &p, &out), 0);
    assert_int_equal(out.mode, PEFA_MODE_ERM);
    pefa_index_close(ix);
}

static void test_refusals(void **state)
{
    char path[512];
    pefa_index *ix;
    pefa_tune_report *r;
    pefa_tune_params tp = PEFA_TUNE_PARAMS_INIT;
    pefa_build_input in = PEFA_BUILD_INPUT_INIT;
    pefa_build_params p = PEFA_BUILD_PARAMS_INIT;
    (void)state;
    /* a format 1.0 index has no |S_j| */
    snprintf(path, sizeof path, "%s/tests/golden/good/v1-pefa-full.pefa", PEFA_SOURCE_DIR);
    assert_int_equal(pefa_index_open(path, &ix), 0);
    assert_int_equal(pefa_tune(ix, NULL, &r), PEFA_ERR_VERSION);
    assert_non_null(strstr(pefa_last_error_detail(), "rebuild"));
    pefa_index_close(ix);
    /* tuning without training queries, an unknown metric */
    snprintf(path, sizeof path, "%s/none.pefa", g_dir);
    in.passages = g_P;
    in.n_passages = NP;
    in.dim = DIM;
    p.tune = 1;
    assert_int_equal(pefa_build(path, &in, &p, NULL), PEFA_ERR_INVALID_ARG);
    assert_non_null(strstr(pefa_last_error_detail(), "training queries"));
    assert_int_equal(access(path, F_OK), -1);
    p.tune_label_check = 7;
    assert_int_equal(pefa_build(path, &in, &p, NULL), PEFA_ERR_INVALID_ARG);
    assert_non_null(strstr(pefa_last_error_detail(), "tune_label_check"));
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/tuned.pefa", g_dir);
    assert_int_equal(pefa_index_open(path, &ix), 0);
    tp.metric = 9;
    assert_int_equal(pefa_tune(ix, &tp, &r), PEFA_ERR_INVALID_ARG);
    tp.metric = 0;
    tp.label_check = 3;
    assert_int_equal(pefa_tune(ix, &tp, &r), PEFA_ERR_INVALID_ARG);
    assert_non_null(strstr(pefa_last_error_detail(), "label_check"));
    assert_int_equal(pefa_metric_parse("map@5"), PEFA_ERR_INVALID_ARG);
    assert_int_equal(pefa_metric_parse("ndcg@10"), PEFA_METRIC_NDCG10);
    pefa_index_close(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loo_matches_rebuild),
        cmocka_unit_test(test_cannot_help_tunes_to_erm),
        cmocka_unit_test(test_tuned_defaults_and_overrides),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
