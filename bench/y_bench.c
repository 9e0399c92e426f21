/*
 * y_bench PAIRS.tsv N_ROWS N_COLS - sizes and row-access cost of encodings of
 * the relevance matrix Y, to justify the on-disk choice (docs/y-encoding.md).
 *
 * PAIRS.tsv: "query_row<TAB>passage_row<TAB>value" lines. Compared:
 *   csr-raw     u64 rowptr + u32 columns + f32 values (8 bytes a pair)
 *   csr-zstd    the same, zstd level 3 and 19 (must be decompressed whole first)
 *   varint      ours: u64 byte offsets + delta-varint columns + value tag
 *   varint-zstd ours, zstd level 3
 * Row access: mean ns to decode one random row in place (csr-raw, varint), and
 * the one-off cost of decompressing the whole zstd section before any access.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zstd.h>

#include "pefa/ycsr.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static size_t zsize(const void *src, size_t n, int level, double *dec_ms)
{
    size_t cap = ZSTD_compressBound(n);
    void *dst = malloc(cap), *back = malloc(n ? n : 1);
    size_t z = ZSTD_compress(dst, cap, src, n, level);
    double t0 = now();
    ZSTD_decompress(back, n, dst, z);
    *dec_ms = (now() - t0) * 1e3;
    free(dst);
    free(back);
    return z;
}

int main(int argc, char **argv)
{
    FILE *f;
    pefa_pair *pairs = NULL;
    uint64_t n = 0, cap = 0, *rp, rows_len;
    uint8_t *rows, *raw;
    uint32_t nr, nc, cols[4096];
    float vals[4096];
    ycsr y;
    size_t raw_len;
    double dec3, dec19, decv, t0, sink = 0;
    const int reps = 1000000;
    if (argc != 4) {
        fprintf(stderr, "usage: y_bench PAIRS.tsv N_ROWS N_COLS\n");
        return 2;
    }
    nr = (uint32_t)strtoul(argv[2], NULL, 10);
    nc = (uint32_t)strtoul(argv[3], NULL, 10);
    if (!(f = fopen(argv[1], "r"))) return 1;
    for (;;) {
        unsigned q, p;
        float v;
        if (fscanf(f, "%u\t%u\t%f", &q, &p, &v) != 3) break;
        if (n == cap) pairs = realloc(pairs, (cap = cap ? cap * 2 : 1024) * sizeof *pairs);
        pairs[n++] = (pefa_pair){q, p, v};
    }
    fclose(f);
    if (pefa__ycsr_from_pairs(pairs, n, nr, nc, &y) || pefa__ycsr_encode(&y, &rp, &rows, &rows_len)) {
        fprintf(stderr, "y_bench: bad pairs\n");
        return 1;
    }
    /* csr-raw image */
    raw_len = (size_t)(nr + 1) * 8 + (size_t)y.nnz * 8;
    raw = malloc(raw_len);
    memcpy(raw, y.rowptr, (size_t)(nr + 1) * 8);
    memcpy(raw + (size_t)(nr + 1) * 8, y.cols, (size_t)y.nnz * 4);
    memcpy(raw + (size_t)(nr + 1) * 8 + (size_t)y.nnz * 4, y.vals, (size_t)y.nnz * 4);
    {
        size_t z3 = zsize(raw, raw_len, 3, &dec3), z19 = zsize(raw, raw_len, 19, &dec19);
        uint8_t *ours = malloc((size_t)(nr + 1) * 8 + rows_len);
        size_t ours_len = (size_t)(nr + 1) * 8 + rows_len, zv;
        memcpy(ours, rp, (size_t)(nr + 1) * 8);
        memcpy(ours + (size_t)(nr + 1) * 8, rows, rows_len);
        zv = zsize(rows, rows_len, 3, &decv);
        printf("%s: %u rows x %u columns, %llu pairs (%llu distinct)\n", argv[1], nr, nc, (unsigned long long)n,
               (unsigned long long)y.nnz);
        printf("  %-22s %10s %9s %s\n", "encoding", "bytes", "B/pair", "row access");
        printf("  %-22s %10zu %9.2f in place\n", "csr-raw (u32+f32)", raw_len, (double)raw_len / (double)y.nnz);
        printf("  %-22s %10zu %9.2f after %.2f ms whole-section decompression\n", "csr-raw + zstd -3", z3,
               (double)z3 / (double)y.nnz, dec3);
        printf("  %-22s %10zu %9.2f after %.2f ms whole-section decompression\n", "csr-raw + zstd -19", z19,
               (double)z19 / (double)y.nnz, dec19);
        printf("  %-22s %10zu %9.2f in place\n", "varint rows (ours)", ours_len, (double)ours_len / (double)y.nnz);
        printf("  %-22s %10zu %9.2f after %.2f ms decompression of Y_ROWS\n", "varint + zstd -3 rows",
               (size_t)(nr + 1) * 8 + zv, (double)((size_t)(nr + 1) * 8 + zv) / (double)y.nnz, decv);
        free(ours);
    }
    /* random-row decode cost */
    srand(1);
    t0 = now();
    for (int i = 0; i < reps; i++) {
        uint32_t r = (uint32_t)rand() % nr;
        int64_t k = pefa__ycsr_decode_row(rp, nr, rows, rows_len, nc, r, cols, vals, 4096);
        sink += k > 0 ? vals[0] + cols[0] : 0;
    }
    printf("  decode one random row, varint (ours): %.1f ns\n", (now() - t0) * 1e9 / reps);
    srand(1);
    t0 = now();
    for (int i = 0; i < reps; i++) {
        uint32_t r = (uint32_t)rand() % nr;
        for (uint64_t j = y.rowptr[r]; j < y.rowptr[r + 1] && j - y.rowptr[r] < 4096; j++) {
            cols[j - y.rowptr[r]] = y.cols[j];
            vals[j - y.rowptr[r]] = y.vals[j];
        }
        sink += y.rowptr[r + 1] > y.rowptr[r] ? vals[0] + cols[0] : 0;
    }
    printf("  copy one random row, csr-raw:         %.1f ns   (checksum %g)\n", (now() - t0) * 1e9 / reps, sink);
    return 0;
}
