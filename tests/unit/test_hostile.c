/*
 * test_hostile.c - files crafted to make a reader loop, allocate without
 * bound or read outside the mapping: out-of-range and cyclic neighbour ids,
 * huge neighbour counts, upper-level offsets that lie, an entry point out of
 * range, CSR offsets that decrease or point past the end, a Y row that claims
 * more entries than it has, META counts that disagree with the sections.
 *
 * Each lie is applied twice: (a) re-sealed (the section, directory and header
 * checksums recomputed) so that only verify's structural checks can catch it:
 * pefa_index_verify + pefa_verify must return CORRUPT; (b) not re-sealed, and queried on
 * the fast path (open does not read section data): every mode must return
 * (an answer or an error), inside the mapping (ASan watches) and in bounded
 * time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <xxhash.h>

#include "container/format.h"
#include "pefa/graph_store.h"
#include "pefa.h"
#include "util/input.h"

#define NP 600
#define NQ 60
#define DIM 100

static char g_dir[128], g_good[200], g_bad[200];
static uint8_t *g_img;
static size_t g_len;
static float *g_Q;

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b;
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    b = malloc(*len);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
}

/* directory entry of (kind, target) in an image */
static uint8_t *dirent_of(uint8_t *img, uint32_t kind, uint32_t target)
{
    uint64_t off = ld64(img + H_DIROFF);
    uint32_t n = ld32(img + H_NSECT);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *e = img + off + (uint64_t)i * PEFA_DIRENT_SIZE;
        if (ld32(e + D_KIND) == kind && ld32(e + D_TARGET) == target) return e;
    }
    fail_msg("no section %u/%u", kind, target);
    return NULL;
}

static uint8_t *data_of(uint8_t *img, uint32_t kind, uint32_t target)
{
    return img + ld64(dirent_of(img, kind, target) + D_OFFSET);
}

/* recomputes one section's checksum, then the directory's and the header's */
static void reseal(uint8_t *img, uint32_t kind, uint32_t target)
{
    uint8_t *e = dirent_of(img, kind, target);
    st64(e + D_CHECKSUM, XXH3_64bits(img + ld64(e + D_OFFSET), (size_t)ld64(e + D_STORED)));
    st64(img + H_DIRSUM, XXH3_64bits(img + ld64(img + H_DIROFF), (size_t)ld32(img + H_NSECT) * PEFA_DIRENT_SIZE));
    st64(img + H_HDRSUM, XXH3_64bits(img, H_HDRSUM));
}

typedef void (*lie_fn)(uint8_t *img);

static void run_queries(const char *path, int *answered)
{
    pefa_index *ix;
    pefa_searcher *s;
    pefa_hit hits[20];
    pefa_contrib ct[8];
    uint32_t n, nc;
    *answered = 0;
    if (pefa_index_open(path, &ix)) return;
    if (pefa_searcher_new(ix, &s) == 0) {
        for (int mode = PEFA_MODE_ERM; mode <= PEFA_MODE_XL; mode++)
            for (int exact = 0; exact < 2; exact++)
                for (int q = 0; q < 10; q++) {
                    pefa_query_params p = PEFA_QUERY_PARAMS_INIT;
                    p.mode = mode;
                    p.exact = exact;
                    p.k = 20;
                    if (pefa_search(s, g_Q + q * DIM, &p, hits, &n) == 0) {
                        (*answered)++;
                        for (uint32_t h = 0; h < n; h++) assert_true(hits[h].row < NP);
                        if (mode == PEFA_MODE_XL && n) {
                            uint32_t rows[20];
                            for (uint32_t h = 0; h < n; h++) rows[h] = hits[h].row;
                            (void)pefa_explain(s, g_Q + q * DIM, &p, rows, n, ct, 8, &nc);
                        }
                    }
                }
        pefa_searcher_free(s);
    }
    pefa_index_close(ix);
}

static void check_lie(const char *what, lie_fn lie, uint32_t kind, uint32_t target)
{
    uint8_t *img = malloc(g_len);
    pefa_index *ix;
    int bad = -2, rc, answered;
    double t0;
    struct timespec ts;
    /* (a) re-sealed: verify must name it CORRUPT */
    memcpy(img, g_img, g_len);
    lie(img);
    reseal(img, kind, target);
    spit(g_bad, img, g_len);
    rc = pefa_index_open(g_bad, &ix);
    if (rc == 0) {
        rc = pefa_index_verify(ix, &bad);
        if (rc == 0) rc = pefa_verify(ix, &bad);
        pefa_index_close(ix);
    }
    if (rc != PEFA_ERR_CORRUPT) fail_msg("%s: verify returned %d (%s), expected CORRUPT", what, rc, pefa_last_error_detail());
    print_message("%-46s -> %s\n", what, pefa_last_error_detail() + strlen(g_dir) + 1);
    /* (b) fast path, unsealed and sealed: queries end, in bounds */
    for (int sealed = 0; sealed < 2; sealed++) {
        memcpy(img, g_img, g_len);
        lie(img);
        if (sealed) reseal(img, kind, target);
        spit(g_bad, img, g_len);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t0 = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
        run_queries(g_bad, &answered);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        assert_true((double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec - t0 < 60.0);
    }
    free(img);
}

/* ---- the lies --------------------------------------------------------------- */
static uint32_t graph_u32(uint8_t *img, uint32_t field)
{
    return ld32(data_of(img, PEFA_KIND_HNSW_INFO, PEFA_TARGET_PASSAGES) + field);
}

static void lie_l0_out_of_range(uint8_t *img)
{
    uint8_t *l0 = data_of(img, PEFA_KIND_HNSW_L0, PEFA_TARGET_PASSAGES);
    uint32_t stride = 1 + graph_u32(img, G_M0);
    for (uint32_t v = 0; v < NP; v += 3) st32(l0 + 4 * ((size_t)v * stride + 1), 0xFFFFFFF0u - v);
}

static void lie_l0_huge_count(uint8_t *img)
{
    uint8_t *l0 = data_of(img, PEFA_KIND_HNSW_L0, PEFA_TARGET_PASSAGES);
    uint32_t stride = 1 + graph_u32(img, G_M0);
    for (uint32_t v = 0; v < NP; v += 2) st32(l0 + 4 * (size_t)v * stride, 0x7FFFFFFFu);
}

static void lie_l0_cycles(uint8_t *img)
{
    /* every node links only to itself and its two neighbours in a ring, plus
     * an out-of-range id at the end: a cyclic graph that is still "valid" in
     * ids is fine for search (visited set); the out-of-range id makes verify fail */
    uint8_t *l0 = data_of(img, PEFA_KIND_HNSW_L0, PEFA_TARGET_PASSAGES);
    uint32_t stride = 1 + graph_u32(img, G_M0);
    for (uint32_t v = 0; v < NP; v++) {
        uint8_t *b = l0 + 4 * (size_t)v * stride;
        st32(b, 4);
        st32(b + 4, v);
        st32(b + 8, (v + 1) % NP);
        st32(b + 12, (v + NP - 1) % NP);
        st32(b + 16, v == NP / 2 ? NP + 5 : v);
    }
}

static void lie_upper_offsets(uint8_t *img)
{
    uint8_t *offs = data_of(img, PEFA_KIND_HNSW_UPPER_OFFS, PEFA_TARGET_PASSAGES);
    uint32_t n_upper = graph_u32(img, G_NUPPER);
    for (uint32_t i = 1; i <= n_upper; i++) st64(offs + 8 * (size_t)i, 0xFFFFFFFFFFFFull - i);
}

static void lie_upper_ids(uint8_t *img)
{
    uint8_t *ids = data_of(img, PEFA_KIND_HNSW_UPPER_IDS, PEFA_TARGET_PASSAGES);
    uint32_t n_upper = graph_u32(img, G_NUPPER);
    for (uint32_t i = 0; i < n_upper; i++) st32(ids + 4 * (size_t)i, n_upper - i); /* decreasing */
}

static void lie_upper_adj(uint8_t *img)
{
    uint8_t *e = dirent_of(img, PEFA_KIND_HNSW_UPPER_ADJ, PEFA_TARGET_PASSAGES);
    uint8_t *adj = img + ld64(e + D_OFFSET);
    uint64_t n = ld64(e + D_RAW) / 4;
    for (uint64_t i = 0; i < n; i++) st32(adj + 4 * i, 0xFFFF0000u + (uint32_t)i);
}

static void lie_y_decreasing(uint8_t *img)
{
    uint8_t *rp = data_of(img, PEFA_KIND_Y_ROWPTR, PEFA_TARGET_NONE);
    for (uint32_t i = 1; i < NQ; i += 2) st64(rp + 8 * (size_t)i, 0);
    st64(rp + 8 * 5, 7);
}

static void lie_y_past_end(uint8_t *img)
{
    uint8_t *rp = data_of(img, PEFA_KIND_Y_ROWPTR, PEFA_TARGET_NONE);
    for (uint32_t i = 1; i <= NQ; i++) st64(rp + 8 * (size_t)i, (uint64_t)1 << 40);
}

static void lie_y_row_counts(uint8_t *img)
{
    /* every row claims 2^35 entries (a 6-byte varint) */
    uint8_t *e = dirent_of(img, PEFA_KIND_Y_ROWS, PEFA_TARGET_NONE);
    uint8_t *rows = img + ld64(e + D_OFFSET);
    uint8_t *rp = data_of(img, PEFA_KIND_Y_ROWPTR, PEFA_TARGET_NONE);
    for (uint32_t i = 0; i < NQ; i++) {
        uint64_t at = ld64(rp + 8 * (size_t)i), end = ld64(rp + 8 * ((size_t)i + 1));
        if (end - at >= 6) memcpy(rows + at, "\x80\x80\x80\x80\x80\x01", 6);
    }
}

static void lie_entry_point(uint8_t *img)
{
    st32(data_of(img, PEFA_KIND_HNSW_INFO, PEFA_TARGET_PASSAGES) + G_ENTRY, NP + 100);
}

static void lie_meta_counts(uint8_t *img)
{
    /* "pefa.n_passages=600" -> "pefa.n_passages=900": META disagrees with the sections */
    uint8_t *e = dirent_of(img, PEFA_KIND_META, PEFA_TARGET_NONE);
    char *m = (char *)img + ld64(e + D_OFFSET);
    size_t len = (size_t)ld64(e + D_RAW), i;
    char *p = NULL;
    for (i = 0; i + 14 <= len && !p; i++)
        if (memcmp(m + i, "n_passages=600", 14) == 0) p = m + i;
    assert_non_null(p);
    p[11] = '9';
}

/* every node of the passage and XS graphs without a neighbour: a valid but
 * useless graph. A search must still return k hits (never silently fewer):
 * the exact answer, by a scan, when the graph yields fewer than asked. */
static void isolate_graph(uint8_t *img, uint32_t target)
{
    uint8_t *l0 = data_of(img, PEFA_KIND_HNSW_L0, target);
    uint8_t *e = dirent_of(img, PEFA_KIND_HNSW_UPPER_ADJ, target);
    uint32_t stride = 1 + ld32(data_of(img, PEFA_KIND_HNSW_INFO, target) + G_M0);
    for (uint32_t v = 0; v < NP; v++) st32(l0 + 4 * (size_t)v * stride, 0);
    memset(img + ld64(e + D_OFFSET), 0, (size_t)ld64(e + D_STORED));
    reseal(img, PEFA_KIND_HNSW_L0, target);
    reseal(img, PEFA_KIND_HNSW_UPPER_ADJ, target);
}

static void test_disconnected_graph_gives_k(void **state)
{
    uint8_t *img = malloc(g_len);
    pefa_index *ix;
    pefa_searcher *s;
    pefa_hit hits[20], want[20];
    uint32_t n, nw;
    (void)state;
    memcpy(img, g_img, g_len);
    isolate_graph(img, PEFA_TARGET_PASSAGES);
    isolate_graph(img, PEFA_TARGET_XS);
    spit(g_bad, img, g_len);
    assert_int_equal(pefa_index_open(g_bad, &ix), 0);
    assert_int_equal(pefa_searcher_new(ix, &s), 0);
    for (int mode = PEFA_MODE_ERM; mode <= PEFA_MODE_XL; mode++)
        for (int q = 0; q < 5; q++) {
            pefa_query_params p = PEFA_QUERY_PARAMS_INIT;
            p.mode = mode;
            p.k = 20;
            p.ef = 10; /* a beam of 20 over 600 rows: the graph is searched, not scanned */
            if (mode == PEFA_MODE_XL) p.topk_p = 20; /* ERM and XS refuse a field they do not use */
            assert_int_equal(pefa_search(s, g_Q + q * DIM, &p, hits, &n), 0);
            if (n != 20) fail_msg("mode %d query %d: %u hits, expected 20", mode, q, n);
            p.exact = 1;
            assert_int_equal(pefa_search(s, g_Q + q * DIM, &p, want, &nw), 0);
            for (uint32_t h = 0; h < n; h++) assert_int_equal(hits[h].row, want[h].row);
        }
    pefa_searcher_free(s);
    pefa_index_close(ix);
    free(img);
}

static void test_hostile_files(void **state)
{
    (void)state;
    check_lie("L0: neighbour ids out of range", lie_l0_out_of_range, PEFA_KIND_HNSW_L0, PEFA_TARGET_PASSAGES);
    check_lie("L0: neighbour counts of 2^31", lie_l0_huge_count, PEFA_KIND_HNSW_L0, PEFA_TARGET_PASSAGES);
    check_lie("L0: a ring of self/neighbour cycles + bad id", lie_l0_cycles, PEFA_KIND_HNSW_L0, PEFA_TARGET_PASSAGES);
    check_lie("upper: offsets past the adjacency", lie_upper_offsets, PEFA_KIND_HNSW_UPPER_OFFS, PEFA_TARGET_PASSAGES);
    check_lie("upper: node ids not increasing", lie_upper_ids, PEFA_KIND_HNSW_UPPER_IDS, PEFA_TARGET_PASSAGES);
    check_lie("upper: counts and ids garbage", lie_upper_adj, PEFA_KIND_HNSW_UPPER_ADJ, PEFA_TARGET_PASSAGES);
    check_lie("graph record: entry point out of range", lie_entry_point, PEFA_KIND_HNSW_INFO, PEFA_TARGET_PASSAGES);
    check_lie("Y: row offsets decrease", lie_y_decreasing, PEFA_KIND_Y_ROWPTR, PEFA_TARGET_NONE);
    check_lie("Y: row offsets past the end", lie_y_past_end, PEFA_KIND_Y_ROWPTR, PEFA_TARGET_NONE);
    check_lie("Y: rows claim 2^35 entries", lie_y_row_counts, PEFA_KIND_Y_ROWS, PEFA_TARGET_NONE);
    check_lie("META: passage count disagrees", lie_meta_counts, PEFA_KIND_META, PEFA_TARGET_NONE);
}

static int setup(void **state)
{
    char path[512], err[512];
    tin_matrix m;
    pefa_build_input in;
    pefa_build_params p = PEFA_BUILD_PARAMS_INIT;
    pefa_pair pairs[NQ * 2];
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/pefa-test-hostile-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_good, sizeof g_good, "%s/good.pefa", g_dir);
    snprintf(g_bad, sizeof g_bad, "%s/bad.pefa", g_dir);
    float *P = malloc(sizeof(float) * NP * DIM);
    memset(&in, 0, sizeof in);
    g_Q = malloc(sizeof(float) * NQ * DIM);
    snprintf(path, sizeof path, "%s/glove-5k-base.npy", PEFA_TEST_DATA);
    assert_int_equal(tin_matrix_open(path, &m, err, sizeof err), 0);
    for (uint32_t i = 0; i < NP; i++) assert_int_equal(tin_matrix_row(&m, i, P + i * DIM, path, err, sizeof err), 0);
    tin_matrix_close(&m);
    snprintf(path, sizeof path, "%s/glove-5k-queries.npy", PEFA_TEST_DATA);
    assert_int_equal(tin_matrix_open(path, &m, err, sizeof err), 0);
    for (uint32_t i = 0; i < NQ; i++) assert_int_equal(tin_matrix_row(&m, i, g_Q + i * DIM, path, err, sizeof err), 0);
    tin_matrix_close(&m);
    in.passages = P;
    in.queries = g_Q;
    for (uint32_t i = 0; i < NQ; i++) {
        pairs[2 * i] = (pefa_pair){i, (i * 13) % NP, 1};
        pairs[2 * i + 1] = (pefa_pair){i, (i * 29 + 5) % NP, 3};
    }
    in.n_passages = NP;
    in.n_queries = NQ;
    in.dim = DIM;
    in.pairs = pairs;
    in.n_pairs = NQ * 2;
    p.M = 8;
    p.ef_construction = 40;
    p.threads = 1;
    assert_int_equal(pefa_build(g_good, &in, &p, NULL), 0);
    free(P);
    g_img = slurp(g_good, &g_len);
    return 0;
}

static int teardown(void **state)
{
    char cmd[200];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    assert_int_equal(system(cmd), 0);
    free(g_img);
    free(g_Q);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_hostile_files), cmocka_unit_test(test_disconnected_graph_gives_k)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
