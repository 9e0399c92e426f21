/*
 * xs_graph_bench.c - how to build the PEFA-XS graph so that HNSW search finds
 * the top inner products of e_j = lam p_j + (1-lam) z_j (issue 9, part 1).
 *
 *   xs_graph_bench INDEX TEST.npy [--lambda F] [-M N] [--efc N] [--threads N]
 *                  [--ef 100,300,1000] [--nq N] [--union MZ]
 *
 * Reads P and Z from a built index (VECTORS/passages, VECTORS/xs_z), forms
 * e_j in memory, computes the exact top-100 by <q, e_j> for the test
 * queries, then builds and searches each candidate graph, one thread:
 *   unit-completed  the format-1.0 XS graph: cosine graph over [e_j, sqrt(1-|e_j|^2)]
 *   raw-ip          graph built and searched by inner product over e_j
 *   dir-build       graph built over the directions e_j/|e_j|, searched by <q, e_j>
 *   erm             for reference: the passage graph, searched by <q, p_j>
 *   union (--union MZ, alone)  level 0 = the passage graph's neighbours plus up
 *                   to MZ neighbours from a graph over the z vectors, scored by <q, e_j>
 * and prints recall@100 against exact and microseconds per query.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hnsw/heap.h"
#include "hnsw/hnsw.h"
#include "kernels/dist.h"
#include "pefa.h"
#include "util/input.h"

#define K 100

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static const float *section(pefa_index *ix, uint32_t target, uint32_t *rows, uint32_t *cols)
{
    int i = pefa_index_find(ix, PEFA_KIND_VECTORS, target);
    pefa_section_info si;
    const void *p;
    uint64_t n;
    if (i < 0 || pefa_index_section_info(ix, (uint32_t)i, &si) || si.elem != PEFA_TYPE_F32 ||
        pefa_index_section_data(ix, (uint32_t)i, &p, &n)) {
        fprintf(stderr, "index lacks f32 VECTORS/%s\n", pefa_target_name(target));
        exit(1);
    }
    *rows = (uint32_t)si.shape[0];
    *cols = (uint32_t)si.shape[1];
    return (const float *)p;
}

typedef struct {
    const char *name;
    const float *build;   /* rows the graph is built over */
    uint32_t build_cols;
    const float *search;  /* rows the search scores (a query gets 0 in extra columns) */
    uint32_t search_cols;
} variant;

static double recall(const uint32_t *got, const uint32_t *want, uint32_t nq)
{
    double r = 0;
    for (uint32_t i = 0; i < nq; i++) {
        uint32_t hit = 0;
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K; b++)
                if (got[i * K + a] == want[i * K + b]) {
                    hit++;
                    break;
                }
        r += hit / (double)K;
    }
    return r / nq;
}

static void run(const variant *v, uint32_t n, const float *Qx, uint32_t nq, const uint32_t *truth, const uint32_t *efs,
                int nef, hnsw_build_params *bp)
{
    hnsw_graph g;
    hnsw_scratch *s = pefa__hnsw_scratch_new();
    uint32_t *got = malloc((size_t)nq * K * sizeof *got);
    float sc[K];
    double t0 = now_s();
    if (pefa__hnsw_build(v->build, n, v->build_cols, v->build_cols * sizeof(float), PEFA_TYPE_F32, bp, &g)) {
        fprintf(stderr, "%s: build failed: %s\n", v->name, pefa_last_error_detail());
        exit(1);
    }
    printf("%-16s build %.1f s\n", v->name, now_s() - t0);
    g.view.vecs = v->search; /* the same adjacency, scored over other rows */
    g.view.vec_stride = v->search_cols * sizeof(float);
    g.view.dim = v->search_cols;
    for (int e = 0; e < nef; e++) {
        double t = now_s();
        for (uint32_t i = 0; i < nq; i++)
            pefa__hnsw_search(&g.view, Qx + (size_t)i * (v->search_cols), K, efs[e], s, got + (size_t)i * K, sc);
        t = now_s() - t;
        printf("%-16s ef %5u  recall@100 %.4f  %7.1f us/query\n", v->name, efs[e], recall(got, truth, nq),
               1e6 * t / nq);
    }
    pefa__hnsw_graph_free(&g);
    pefa__hnsw_scratch_free(s);
    free(got);
}

/* exact top-K row ids of rows x (cols columns) by <q, x> */
static void exact(const float *x, uint32_t n, uint32_t cols, const float *Qx, uint32_t nq, uint32_t *out)
{
    hnsw_scratch *s = pefa__hnsw_scratch_new();
    float sc[K];
    for (uint32_t i = 0; i < nq; i++)
        pefa__exact_search(x, n, cols, cols * sizeof(float), PEFA_TYPE_F32, Qx + (size_t)i * cols, K, s, out + (size_t)i * K, sc);
    pefa__hnsw_scratch_free(s);
}

/* ---- the union graph: level 0 = P neighbours + (up to mz) z neighbours ---------- */
typedef struct {
    const hnsw_view *gp, *gz;
    const float *E;
    uint32_t d, mz;
} union_graph;

static uint32_t descend_p(const union_graph *u, const float *q, pefa_dot_fn dot, float *best)
{
    const hnsw_view *v = u->gp;
    uint32_t cur = v->entry;
    float cs = dot(q, u->E + (size_t)cur * u->d, u->d);
    for (uint32_t lev = v->max_level; lev >= 1; lev--) {
        for (int moved = 1; moved;) {
            moved = 0;
            for (uint32_t i = 0; i < v->n_upper; i++) { /* linear find is fine for an experiment: few upper nodes */
                if (v->upper_ids[i] != cur) continue;
                uint64_t beg = v->upper_offs[i], len = (v->upper_offs[i + 1] - beg) / (v->M + 1);
                if (lev > len) break;
                const uint32_t *b = v->upper_adj + beg + (uint64_t)(lev - 1) * (v->M + 1);
                for (uint32_t j = 0; j < b[0]; j++) {
                    float s = dot(q, u->E + (size_t)b[1 + j] * u->d, u->d);
                    if (s > cs) cs = s, cur = b[1 + j], moved = 1;
                }
                break;
            }
        }
    }
    *best = cs;
    return cur;
}

static void union_search(const union_graph *u, const float *q, uint32_t ef, uint16_t *tags, uint16_t epoch,
                         hnsw_cand *cand, hnsw_cand *res, uint32_t *out)
{
    pefa_dot_fn dot = pefa__dot_kernel(PEFA_TYPE_F32);
    size_t nc = 0, nr = 0;
    float s0;
    uint32_t e = descend_p(u, q, dot, &s0);
    minh_push(cand, &nc, -s0, e);
    maxh_push(res, &nr, -s0, e);
    tags[e] = epoch;
    while (nc) {
        hnsw_cand c = cand[0];
        if (nr >= ef && c.d > res[0].d) break;
        minh_pop(cand, &nc);
        for (int g = 0; g < 2; g++) {
            const hnsw_view *v = g ? u->gz : u->gp;
            const uint32_t *b = v->l0 + (size_t)c.id * (v->M0 + 1);
            uint32_t cnt = b[0] > v->M0 ? v->M0 : b[0];
            if (g && cnt > u->mz) cnt = u->mz;
            for (uint32_t j = 0; j < cnt; j++) {
                uint32_t x = b[1 + j];
                if (tags[x] == epoch) continue;
                tags[x] = epoch;
                float dd = -dot(q, u->E + (size_t)x * u->d, u->d);
                if (nr < ef || dd < res[0].d) {
                    minh_push(cand, &nc, dd, x);
                    maxh_push(res, &nr, dd, x);
                    if (nr > ef) maxh_pop(res, &nr);
                }
            }
        }
    }
    while (nr > K) maxh_pop(res, &nr);
    for (size_t r = nr; r-- > 0;) {
        out[r] = res[0].id;
        maxh_pop(res, &nr);
    }
}

static void run_union(const float *P, const float *Zr, const float *E, uint32_t n, uint32_t d, const float *Q,
                      uint32_t nq, const uint32_t *truth, const uint32_t *efs, int nef, hnsw_build_params *bp, uint32_t mz)
{
    hnsw_graph gp, gz;
    double t0 = now_s();
    uint16_t *tags = calloc(n, sizeof *tags), epoch = 0;
    hnsw_cand *cand = malloc((size_t)n * sizeof *cand), *res = malloc(20000 * sizeof *res);
    uint32_t *got = malloc((size_t)nq * K * sizeof *got);
    if (pefa__hnsw_build(P, n, d, d * sizeof(float), PEFA_TYPE_F32, bp, &gp) ||
        pefa__hnsw_build(Zr, n, d, d * sizeof(float), PEFA_TYPE_F32, bp, &gz))
        exit(1);
    printf("%-16s build %.1f s (P and z graphs)\n", "union", now_s() - t0);
    union_graph u = {&gp.view, &gz.view, E, d, mz};
    for (int e = 0; e < nef; e++) {
        double t = now_s();
        for (uint32_t i = 0; i < nq; i++) {
            if (++epoch == 0) memset(tags, 0, n * sizeof *tags), epoch = 1;
            union_search(&u, Q + (size_t)i * d, efs[e], tags, epoch, cand, res, got + (size_t)i * K);
        }
        t = now_s() - t;
        printf("union(mz %2u)     ef %5u  recall@100 %.4f  %7.1f us/query\n", mz, efs[e], recall(got, truth, nq),
               1e6 * t / nq);
    }
    pefa__hnsw_graph_free(&gp);
    pefa__hnsw_graph_free(&gz);
    free(tags);
    free(cand);
    free(res);
    free(got);
}

static uint32_t parse_list(const char *s, uint32_t *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        out[n++] = (uint32_t)strtoul(s, (char **)&s, 10);
        if (*s == ',') s++;
    }
    return (uint32_t)n;
}

static float *load_queries(const char *path, uint32_t dim, uint32_t *nq)
{
    tin_matrix m;
    char err[512];
    float *q;
    if (tin_matrix_open(path, &m, err, sizeof err)) fprintf(stderr, "%s\n", err), exit(1);
    if (m.dim != dim) fprintf(stderr, "%s: dim %u, index %u\n", path, m.dim, dim), exit(1);
    if (*nq == 0 || *nq > m.rows) *nq = (uint32_t)m.rows;
    q = malloc((size_t)*nq * dim * sizeof *q);
    for (uint32_t i = 0; i < *nq; i++) {
        float *r = q + (size_t)i * dim;
        double s = 0;
        if (tin_matrix_row(&m, i, r, path, err, sizeof err)) fprintf(stderr, "%s\n", err), exit(1);
        for (uint32_t c = 0; c < dim; c++) s += (double)r[c] * r[c];
        for (uint32_t c = 0; c < dim && s > 0; c++) r[c] = (float)(r[c] / sqrt(s));
    }
    tin_matrix_close(&m);
    return q;
}

int main(int argc, char **argv)
{
    float lam = 0.5f;
    int union_mz = -1;
    hnsw_build_params bp = {16, 100, 42, 2, NULL, NULL};
    uint32_t efs[16] = {100, 300, 1000}, nef = 3, nq = 1000, n, d, n2, d2;
    pefa_index *ix;
    if (argc < 3) {
        fprintf(stderr, "usage: xs_graph_bench INDEX TEST.npy [--lambda F] [-M N] [--efc N] [--threads N] [--ef LIST] [--nq N] "
                        "[--union MZ]\n");
        return 2;
    }
    for (int a = 3; a + 1 < argc; a += 2) {
        if (!strcmp(argv[a], "--lambda")) lam = strtof(argv[a + 1], NULL);
        else if (!strcmp(argv[a], "-M")) bp.M = (uint32_t)atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--efc")) bp.ef_construction = (uint32_t)atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--threads")) bp.threads = (uint32_t)atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--ef")) nef = parse_list(argv[a + 1], efs, 16);
        else if (!strcmp(argv[a], "--nq")) nq = (uint32_t)atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--union")) union_mz = atoi(argv[a + 1]);
    }
    if (pefa_index_open(argv[1], &ix)) fprintf(stderr, "%s\n", pefa_last_error_detail()), exit(1);
    const float *P = section(ix, PEFA_TARGET_PASSAGES, &n, &d), *Z = section(ix, PEFA_TARGET_XS_Z, &n2, &d2);
    float *Q = load_queries(argv[2], d, &nq), *Q1 = calloc((size_t)nq * (d + 1), sizeof(float));
    float *E = malloc((size_t)n * d * sizeof *E), *Ed = malloc((size_t)n * d * sizeof *Ed);
    float *E1 = malloc((size_t)n * (d + 1) * sizeof *E1);
    uint32_t *truth = malloc((size_t)nq * K * sizeof *truth), *truth_p = malloc((size_t)nq * K * sizeof *truth_p);
    double nmin = 2, nmax = 0;
    for (uint32_t j = 0; j < n; j++) {
        double s = 0;
        for (uint32_t c = 0; c < d; c++) {
            float v = lam * P[(size_t)j * d + c] + (1 - lam) * Z[(size_t)j * d + c];
            E[(size_t)j * d + c] = E1[(size_t)j * (d + 1) + c] = v;
            s += (double)v * v;
        }
        E1[(size_t)j * (d + 1) + d] = s < 1 ? (float)sqrt(1 - s) : 0.0f;
        for (uint32_t c = 0; c < d; c++) Ed[(size_t)j * d + c] = s > 0 ? (float)(E[(size_t)j * d + c] / sqrt(s)) : 0.0f;
        if (sqrt(s) < nmin) nmin = sqrt(s);
        if (sqrt(s) > nmax) nmax = sqrt(s);
    }
    for (uint32_t i = 0; i < nq; i++) memcpy(Q1 + (size_t)i * (d + 1), Q + (size_t)i * d, d * sizeof(float));
    printf("%s: %u passages, d %u, lambda %.2f, |e_j| in [%.3f, %.3f]; %u test queries; M %u efC %u, %u build threads; "
           "kernel %s\n",
           argv[1], n, d, (double)lam, nmin, nmax, nq, bp.M, bp.ef_construction, bp.threads, pefa_kernel_name());
    exact(E, n, d, Q, nq, truth);
    exact(P, n, d, Q, nq, truth_p);
    variant vs[] = {{"unit-completed", E1, d + 1, E1, d + 1}, {"raw-ip", E, d, E, d}, {"dir-build", Ed, d, E, d}};
    for (size_t v = 0; v < sizeof vs / sizeof vs[0]; v++)
        run(&vs[v], n, vs[v].search_cols == d ? Q : Q1, nq, truth, efs, (int)nef, &bp);
    if (union_mz >= 0) { /* only the union graph: P neighbours plus union_mz z neighbours per node */
        run_union(P, Z, E, n, d, Q, nq, truth, efs, (int)nef, &bp, (uint32_t)union_mz);
        return 0;
    }
    variant erm = {"erm", P, d, P, d};
    run(&erm, n, Q, nq, truth_p, efs, (int)nef, &bp);
    pefa_index_close(ix);
    return 0;
}
