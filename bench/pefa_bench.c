/*
 * pefa_bench INDEX QUERIES.npy [reps] - single-thread latency of ERM,
 * PEFA-XS and PEFA-XL on one mapped index, in one run, as ratios to ERM.
 *
 * Each mode answers every query `reps` times (default 20) after one warm-up
 * pass; the figure is the median over 5 rounds of the mean microseconds per
 * query. Default parameters of pefa-query: k 100, ef 300, XL knn 32,
 * topk_p 500, lambda 0.1, exact scoring.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pefa.h"
#include "util/input.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    const char *name;
    pefa_query_params p;
} mode;

int main(int argc, char **argv)
{
    pefa_index *ix;
    pefa_searcher *s;
    tin_matrix m;
    char err[512];
    float *qs;
    pefa_hit *hits;
    uint32_t nh, reps = argc > 3 ? (uint32_t)atoi(argv[3]) : 20;
    mode modes[5];
    double us[5];
    if (argc < 3) {
        fprintf(stderr, "usage: pefa_bench INDEX QUERIES.npy [reps]\n");
        return 2;
    }
    if (pefa_index_open(argv[1], &ix) || pefa_searcher_new(ix, &s)) {
        fprintf(stderr, "pefa_bench: %s\n", pefa_last_error_detail());
        return 1;
    }
    if (tin_matrix_open(argv[2], &m, err, sizeof err)) {
        fprintf(stderr, "pefa_bench: %s\n", err);
        return 1;
    }
    qs = (float *)malloc(m.rows * m.dim * sizeof(float));
    hits = (pefa_hit *)malloc(1000 * sizeof *hits);
    for (uint64_t i = 0; i < m.rows; i++)
        if (tin_matrix_row(&m, i, qs + i * m.dim, argv[2], err, sizeof err)) {
            fprintf(stderr, "pefa_bench: %s\n", err);
            return 1;
        }
    for (int i = 0; i < 5; i++) {
        pefa_query_params d = PEFA_QUERY_PARAMS_INIT;
        d.k = 100;
        modes[i].p = d;
    }
    modes[0].name = "erm";
    modes[0].p.mode = PEFA_MODE_ERM;
    modes[1].name = "xs";
    modes[1].p.mode = PEFA_MODE_XS;
    modes[2].name = "xl";
    modes[2].p.mode = PEFA_MODE_XL;
    modes[2].p.lambda = 0.1f;
    modes[2].p.set = PEFA_SET_LAMBDA;
    modes[3].name = "xl-k16";
    modes[3].p.mode = PEFA_MODE_XL;
    modes[3].p.lambda = 0.1f;
    modes[3].p.set = PEFA_SET_LAMBDA;
    modes[3].p.knn = 16;
    /* diagnostic: ERM with the beam XL uses for its ERM candidates (topk_p 500) */
    modes[4].name = "erm-500";
    modes[4].p.mode = PEFA_MODE_ERM;
    modes[4].p.ef = 500;
    if (getenv("PEFA_BENCH_MODE")) {
        /* one mode, each query once: for instruction counting under
         * valgrind --tool=callgrind --toggle-collect=pefa_search */
        for (int i = 0; i < 5; i++)
            if (strcmp(modes[i].name, getenv("PEFA_BENCH_MODE")) == 0) {
                for (uint64_t q = 0; q < m.rows; q++) pefa_search(s, qs + q * m.dim, &modes[i].p, hits, &nh);
                printf("%s: %llu queries done\n", modes[i].name, (unsigned long long)m.rows);
            }
        return 0;
    }
    printf("pefa_bench: %s, %llu queries x %u reps, single thread, k=100 ef=300 (XL: knn 32/16, topk_p 500)\n",
           argv[1], (unsigned long long)m.rows, reps);
    /* modes are interleaved query by query (q1: erm xs xl xl16, q2: ...), so
     * a busy machine slows every mode alike; each round's figure is the mean
     * per query, and the result is the median of 5 rounds */
    {
        double rounds[5][5];
        for (int i = 0; i < 5; i++)
            for (uint64_t q = 0; q < m.rows; q++) pefa_search(s, qs + q * m.dim, &modes[i].p, hits, &nh); /* warm-up */
        for (int r = 0; r < 5; r++) {
            double acc[5] = {0, 0, 0, 0, 0};
            for (uint32_t rep = 0; rep < reps; rep++)
                for (uint64_t q = 0; q < m.rows; q++)
                    for (int i = 0; i < 5; i++) {
                        double t0 = now();
                        if (pefa_search(s, qs + q * m.dim, &modes[i].p, hits, &nh)) {
                            fprintf(stderr, "pefa_bench: %s\n", pefa_last_error_detail());
                            return 1;
                        }
                        acc[i] += now() - t0;
                    }
            for (int i = 0; i < 5; i++) rounds[i][r] = acc[i] * 1e6 / ((double)reps * (double)m.rows);
        }
        for (int i = 0; i < 5; i++) {
            qsort(rounds[i], 5, sizeof(double), cmp_d);
            us[i] = rounds[i][2];
        }
        for (int i = 0; i < 5; i++)
            printf("  %-7s %8.1f us/query  %8.0f q/s  ratio to ERM %.2f\n", modes[i].name, us[i], 1e6 / us[i],
                   us[i] / us[0]);
    }
    printf("targets: xs/erm <= 1.10 -> %.2f %s; xl/erm <= 2.00 -> %.2f %s\n", us[1] / us[0],
           us[1] / us[0] <= 1.10 ? "met" : "MISSED", us[2] / us[0], us[2] / us[0] <= 2.0 ? "met" : "MISSED");
    free(qs);
    free(hits);
    tin_matrix_close(&m);
    pefa_searcher_free(s);
    pefa_index_close(ix);
    return 0;
}
