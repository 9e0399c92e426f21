/*
 * bench_open.c - open time and memory do not grow with the file size.
 *
 *   bench_open [DIR]        (default: $TMPDIR or /tmp)
 *
 * Writes a 4 MB and a 4 GB pefa file into DIR through the public writer
 * (real data, written in 64 MB chunks: no sparse file), then for each one
 * measures pefa_index_open + pefa_index_close (median of 50 runs, in
 * microseconds) and the process's resident memory (VmRSS) grown by one open
 * before any section data is touched. Prints both and the big/small ratio,
 * removes the files. Needs about 4 GB of free disk; slow tier, not a ctest.
 *
 * format/pefa-format-v1.md "What open checks and what verify checks":
 * open reads the header and the directory only, so both figures should be
 * the same for both files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pefa.h"

#define BENCH_RUNS 50
#define BENCH_CHUNK (64u << 20)

static double bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static long bench_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* one META section and one raw u8 section of `bytes` bytes */
static int bench_write(const char *path, uint64_t bytes, uint8_t *chunk)
{
    pefa_writer *w;
    pefa_section_info d;
    char meta[128];
    int rc;
    uint64_t done = 0;
    if ((rc = pefa_writer_open(path, &w)) != 0) return rc;
    memset(&d, 0, sizeof d);
    d.kind = PEFA_KIND_META;
    d.flags = PEFA_SECTION_REQUIRED;
    snprintf(meta, sizeof meta, "bench.bytes=%llu\n", (unsigned long long)bytes);
    if ((rc = pefa_writer_add(w, &d, meta, strlen(meta))) != 0) goto fail;
    memset(&d, 0, sizeof d);
    d.kind = PEFA_KIND_VECTORS;
    d.target = PEFA_TARGET_PASSAGES;
    d.elem = PEFA_TYPE_I8;
    d.ndim = 1;
    d.shape[0] = bytes;
    if ((rc = pefa_writer_begin(w, &d)) != 0) goto fail;
    while (done < bytes) {
        size_t k = bytes - done < BENCH_CHUNK ? (size_t)(bytes - done) : BENCH_CHUNK;
        chunk[0] = (uint8_t)(done >> 26); /* every chunk differs a little */
        if ((rc = pefa_writer_write(w, chunk, k)) != 0) goto fail;
        done += k;
    }
    if ((rc = pefa_writer_end(w)) != 0) goto fail;
    return pefa_writer_commit(w);
fail:
    pefa_writer_abort(w);
    return rc;
}

typedef struct {
    double median_us, min_us, max_us;
    long rss_kb;
    uint64_t size;
} bench_result;

static int bench_measure(const char *path, bench_result *r)
{
    double t[BENCH_RUNS];
    pefa_index *ix;
    pefa_file_info fi;
    long before;
    int rc;
    /* warm-up (page-cache the header and directory as a serving host would) */
    if ((rc = pefa_index_open(path, &ix)) != 0) return rc;
    pefa_index_file_info(ix, &fi);
    r->size = fi.file_size;
    pefa_index_close(ix);
    for (int i = 0; i < BENCH_RUNS; i++) {
        double t0 = bench_now_us();
        if ((rc = pefa_index_open(path, &ix)) != 0) return rc;
        pefa_index_close(ix);
        t[i] = bench_now_us() - t0;
    }
    qsort(t, BENCH_RUNS, sizeof t[0], bench_cmp);
    r->median_us = (t[BENCH_RUNS / 2 - 1] + t[BENCH_RUNS / 2]) / 2;
    r->min_us = t[0];
    r->max_us = t[BENCH_RUNS - 1];
    before = bench_rss_kb();
    if ((rc = pefa_index_open(path, &ix)) != 0) return rc;
    r->rss_kb = bench_rss_kb() - before; /* resident growth from open, no data touched */
    pefa_index_close(ix);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : getenv("TMPDIR");
    static const uint64_t sizes[2] = {4ull << 20, 4ull << 30};
    bench_result res[2];
    char path[2][4096];
    uint8_t *chunk;
    long rss0;
    if (!dir || !*dir) dir = "/tmp";
    chunk = (uint8_t *)malloc(BENCH_CHUNK);
    if (!chunk) return 1;
    for (size_t i = 0; i < BENCH_CHUNK; i++) chunk[i] = (uint8_t)(i * 2654435761u >> 24);
    for (int k = 0; k < 2; k++) {
        double t0 = bench_now_us();
        snprintf(path[k], sizeof path[k], "%s/bench_open.%d.%ld.pefa", dir, k, (long)getpid());
        if (bench_write(path[k], sizes[k], chunk) != 0) {
            fprintf(stderr, "bench_open: error: %s\n", pefa_last_error_detail());
            if (k) unlink(path[0]);
            return 1;
        }
        fprintf(stderr, "wrote %s in %.1f s\n", path[k], (bench_now_us() - t0) / 1e6);
    }
    free(chunk);
    rss0 = bench_rss_kb();
    for (int k = 0; k < 2; k++) {
        if (bench_measure(path[k], &res[k]) != 0) {
            fprintf(stderr, "bench_open: error: %s\n", pefa_last_error_detail());
            unlink(path[0]);
            unlink(path[1]);
            return 1;
        }
    }
    unlink(path[0]);
    unlink(path[1]);
    printf("pefa_index_open + pefa_index_close, median of %d (process VmRSS before: %ld kB)\n", BENCH_RUNS, rss0);
    printf("%-6s %14s %12s %12s %12s %16s\n", "file", "bytes", "median_us", "min_us", "max_us", "rss_growth_kB");
    for (int k = 0; k < 2; k++)
        printf("%-6s %14llu %12.1f %12.1f %12.1f %16ld\n", k ? "4 GB" : "4 MB", (unsigned long long)res[k].size,
               res[k].median_us, res[k].min_us, res[k].max_us, res[k].rss_kb);
    printf("ratio 4 GB / 4 MB: time %.2f, size %.0f\n", res[1].median_us / res[0].median_us,
           (double)res[1].size / (double)res[0].size);
    return 0;
}
