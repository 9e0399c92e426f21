/*
 * first_query INDEX QUERY.npy - what a serving process pays before and for
 * its first answer: the index's pages are first dropped from the page cache
 * (posix_fadvise DONTNEED; FIRST_QUERY_WARM=1 keeps them), then open, searcher creation and one ERM query
 * are timed, and resident memory is read after each step. Run it on a small
 * and a large index to see that none of it grows with the index.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pefa.h"
#include "util/input.h"

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + 1e-3 * (double)t.tv_nsec;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    pefa_index *ix;
    pefa_searcher *s;
    pefa_model_info mi = PEFA_MODEL_INFO_INIT;
    tin_matrix m;
    char err[512];
    float q[4096];
    pefa_hit hits[10];
    uint32_t n;
    pefa_query_params p = PEFA_QUERY_PARAMS_INIT;
    double t0, t_open, t_search_new, t_first, t_second;
    long r0, r_open, r_new, r_first;
    int fd;
    if (argc != 3) {
        fprintf(stderr, "usage: first_query INDEX QUERY.npy\n");
        return 2;
    }
    if (tin_matrix_open(argv[2], &m, err, sizeof err) || m.dim > 4096 || tin_matrix_row(&m, 0, q, argv[2], err, sizeof err)) {
        fprintf(stderr, "first_query: %s\n", err);
        return 1;
    }
    fd = getenv("FIRST_QUERY_WARM") ? -1 : open(argv[1], O_RDONLY);
    if (fd >= 0) {
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED); /* cold start */
        close(fd);
    }
    r0 = rss_kb();
    t0 = now_us();
    if (pefa_index_open(argv[1], &ix)) {
        fprintf(stderr, "first_query: %s\n", pefa_last_error_detail());
        return 1;
    }
    t_open = now_us() - t0;
    r_open = rss_kb();
    t0 = now_us();
    if (pefa_searcher_new(ix, &s) || pefa_model_describe(ix, &mi)) {
        fprintf(stderr, "first_query: %s\n", pefa_last_error_detail());
        return 1;
    }
    t_search_new = now_us() - t0;
    r_new = rss_kb();
    p.k = 10;
    p.ef = 64;
    t0 = now_us();
    if (pefa_search(s, q, &p, hits, &n)) return 1;
    t_first = now_us() - t0;
    r_first = rss_kb();
    t0 = now_us();
    pefa_search(s, q, &p, hits, &n);
    t_second = now_us() - t0;
    printf("%-28s %s rows %9u  open %7.1f us  searcher %7.1f us  first query %8.1f us  again %6.1f us  "
           "RSS +%ld kB after open, +%ld kB after searcher, +%ld kB after first query\n",
           argv[1], getenv("FIRST_QUERY_WARM") ? "warm" : "cold", mi.n_passages, t_open, t_search_new, t_first, t_second, r_open - r0, r_new - r0, r_first - r0);
    pefa_searcher_free(s);
    pefa_index_close(ix);
    tin_matrix_close(&m);
    return 0;
}
