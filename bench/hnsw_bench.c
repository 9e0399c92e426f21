/*
 * hnsw_bench.c - build a pefa HNSW graph over a .npy base and measure
 * single-thread recall@k / QPS over a list of ef values.
 *
 *   pefa-hnsw-bench --base B.npy --queries Q.npy --gt G.npy
 *                   [--M 16] [--efc 200] [--threads 2] [--seed 42]
 *                   [--ef 10,20,40,80] [--k 10] [--nbase N] [--nq N] [--f16]
 *                   [--reps R]   (search timing: best of R passes per ef)
 *
 * Output: one machine-readable "key=value" record per line:
 *   impl name=avx512
 *   data n=... dim=... nq=... elem=f32
 *   build M=16 efc=200 threads=2 seconds=...
 *   search ef=... recall=... qps=... ms_per_query=...
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hnsw/hnsw.h"
#include "kernels/quant.h"

typedef struct {
    void *data;
    size_t rows, cols;
    char type; /* 'f' (f4) or 'i' (i4) */
} npy;

static int npy_load(const char *path, npy *a)
{
    memset(a, 0, sizeof *a);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    unsigned char pre[10];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        fprintf(stderr, "%s: not a .npy file\n", path);
        fclose(f);
        return -1;
    }
    size_t hlen;
    if (pre[6] == 1) {
        hlen = (size_t)pre[8] | ((size_t)pre[9] << 8);
    } else {
        unsigned char ext[2];
        if (fread(ext, 1, 2, f) != 2) {
            fclose(f);
            return -1;
        }
        hlen = (size_t)pre[8] | ((size_t)pre[9] << 8) | ((size_t)ext[0] << 16) | ((size_t)ext[1] << 24);
    }
    char *h = calloc(1, hlen + 1);
    if (!h || fread(h, 1, hlen, f) != hlen) {
        free(h);
        fclose(f);
        return -1;
    }
    int ok = 1;
    if (strstr(h, "'<f4'"))
        a->type = 'f';
    else if (strstr(h, "'<i4'"))
        a->type = 'i';
    else
        ok = 0;
    if (strstr(h, "'fortran_order': True"))
        ok = 0;
    const char *sh = strstr(h, "'shape': (");
    if (!ok || !sh || sscanf(sh, "'shape': (%zu, %zu)", &a->rows, &a->cols) != 2) {
        fprintf(stderr, "%s: unsupported header %s\n", path, h);
        free(h);
        fclose(f);
        return -1;
    }
    free(h);
    size_t bytes = a->rows * a->cols * 4;
    a->data = malloc(bytes ? bytes : 1);
    if (!a->data || fread(a->data, 1, bytes, f) != bytes) {
        fprintf(stderr, "%s: short read\n", path);
        free(a->data);
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void progress(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx;
    if (done % (total / 10 ? total / 10 : 1) == 0 || done == total) {
        fprintf(stderr, "\rbuild %3.0f%%", 100.0 * (double)done / (double)total);
        if (done == total)
            fputc('\n', stderr);
    }
}

int main(int argc, char **argv)
{
    const char *base_p = NULL, *q_p = NULL, *gt_p = NULL, *ef_list = "10,20,40,80,160";
    unsigned M = 16, efc = 200, threads = 2, k = 10, reps = 1;
    unsigned long long seed = 42;
    size_t nbase = 0, nq = 0;
    int f16 = 0, i8 = 0, coloc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--f16")) {
            f16 = 1;
            continue;
        }
        if (!strcmp(a, "--i8")) {
            i8 = 1;
            continue;
        }
        if (!strcmp(a, "--colocate")) { /* with --i8: also a layout with each node's codes after its adjacency */
            coloc = i8 = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "missing value for %s\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--base")) base_p = v;
        else if (!strcmp(a, "--queries")) q_p = v;
        else if (!strcmp(a, "--gt")) gt_p = v;
        else if (!strcmp(a, "--M")) M = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--efc")) efc = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--threads")) threads = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--reps")) reps = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--k")) k = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--ef")) ef_list = v;
        else if (!strcmp(a, "--nbase")) nbase = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--nq")) nq = strtoull(v, NULL, 10);
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    if (reps == 0)
        reps = 1;
    if (!base_p || !q_p || !gt_p || k == 0) {
        fprintf(stderr, "usage: %s --base B.npy --queries Q.npy --gt G.npy [--M m] [--efc e] "
                        "[--threads t] [--ef a,b,c] [--k k] [--nbase n] [--nq n] [--f16] [--i8] [--reps r]\n", argv[0]);
        return 2;
    }
    npy base, qs, gt;
    if (npy_load(base_p, &base) || npy_load(q_p, &qs) || npy_load(gt_p, &gt))
        return 1;
    if (base.type != 'f' || qs.type != 'f' || gt.type != 'i' || qs.cols != base.cols ||
        gt.cols < k) {
        fprintf(stderr, "inconsistent inputs\n");
        return 1;
    }
    if (nbase == 0 || nbase > base.rows)
        nbase = base.rows;
    if (nq == 0 || nq > qs.rows)
        nq = qs.rows;
    if (nq > gt.rows)
        nq = gt.rows;
    uint32_t dim = (uint32_t)base.cols;
    const void *vecs = base.data;
    size_t stride = (size_t)dim * 4;
    uint16_t *h = NULL;
    if (f16) {
        h = malloc(nbase * dim * sizeof *h);
        if (!h)
            return 1;
        pefa_f32_to_f16(base.data, h, nbase * dim);
        vecs = h;
        stride = (size_t)dim * 2;
    }
    printf("impl name=%s\n", pefa_kernel_name());
    printf("data n=%zu dim=%u nq=%zu elem=%s\n", nbase, dim, nq, f16 ? "f16" : "f32");
    fflush(stdout);

    hnsw_build_params bp = {M, efc, seed, threads, progress, NULL};
    hnsw_graph g;
    double t0 = now_s();
    int rc = pefa__hnsw_build(vecs, (uint32_t)nbase, dim, stride, f16 ? PEFA_TYPE_F16 : PEFA_TYPE_F32, &bp, &g);
    double t1 = now_s();
    if (rc) {
        fprintf(stderr, "build failed: %d\n", rc);
        return 1;
    }
    printf("build M=%u efc=%u threads=%u seconds=%.3f max_level=%u n_upper=%u\n", M, efc, threads, t1 - t0,
           g.view.max_level, g.view.n_upper);
    fflush(stdout);

    hnsw_scratch *s = pefa__hnsw_scratch_new();
    uint32_t *ids = malloc(k * sizeof *ids);
    uint32_t *all = malloc(nq * k * sizeof *all);
    float *sc = malloc(k * sizeof *sc);
    const float *Q = qs.data;
    const int32_t *G = gt.data;
    if (!s || !ids || !sc || !all)
        return 1;
    float *scales = NULL;
    int8_t *codes = NULL;
    if (i8) { /* int8 codes of the rows: the search walks on them and re-ranks its beam */
        double tq = now_s();
        scales = malloc(dim * sizeof *scales);
        codes = malloc(nbase * dim);
        if (!scales || !codes)
            return 1;
        pefa__quant_scales(vecs, f16 ? PEFA_TYPE_F16 : PEFA_TYPE_F32, stride, (uint32_t)nbase, dim, scales);
        pefa__quant_rows(vecs, f16 ? PEFA_TYPE_F16 : PEFA_TYPE_F32, stride, (uint32_t)nbase, dim, scales, codes);
        g.view.codes = codes;
        g.view.code_scales = scales;
        printf("codes i8 seconds=%.3f\n", now_s() - tq);
    }
    uint32_t *blocks = NULL;
    size_t bstride = (size_t)g.view.M0 + 1 + (dim + 3) / 4;
    if (coloc) { /* node v's block: {count, neighbours...}, then its dim code bytes */
        blocks = calloc(nbase * bstride, sizeof *blocks);
        if (!blocks)
            return 1;
        for (size_t v = 0; v < nbase; v++) {
            memcpy(blocks + v * bstride, g.view.l0 + v * (g.view.M0 + 1), (g.view.M0 + 1) * sizeof *blocks);
            memcpy(blocks + v * bstride + g.view.M0 + 1, codes + v * dim, dim);
        }
    }
    /* warm-up pass (page in, caches) */
    for (size_t i = 0; i < nq; i++)
        pefa__hnsw_search(&g.view, Q + i * dim, k, 10, s, ids, sc);

    const char *p = ef_list;
    while (*p) {
        unsigned ef = (unsigned)strtoul(p, (char **)&p, 10);
        if (*p == ',')
            p++;
        if (ef == 0)
            continue;
        /* best of reps passes (the machine may be shared); with --i8 the
         * full-row and the code searches alternate on the same graph */
        static const char *const vname[3] = {"", "_i8", "_i8_colocated"};
        hnsw_view split = g.view, colo = g.view;
        if (coloc) {
            colo.l0 = blocks;
            colo.l0_stride = bstride;
            colo.codes = (const int8_t *)(blocks + g.view.M0 + 1);
            colo.code_stride = bstride * sizeof *blocks;
        }
        for (int variant = 0; variant < (coloc ? 3 : i8 ? 2 : 1); variant++) {
            double best = 1e300;
            for (unsigned rep = 0; rep < reps; rep++) {
                g.view = variant == 2 ? colo : split;
                g.view.codes = variant == 0 ? NULL : g.view.codes;
                double ts = now_s();
                for (size_t i = 0; i < nq; i++) {
                    int r = pefa__hnsw_search(&g.view, Q + i * dim, k, ef, s, all + i * k, sc);
                    for (int a = r < 0 ? 0 : r; a < (int)k; a++)
                        all[i * k + (size_t)a] = UINT32_MAX;
                }
                double te = now_s();
                if (te - ts < best)
                    best = te - ts;
            }
            uint64_t hits = 0;
            for (size_t i = 0; i < nq; i++) {
                const int32_t *gi = G + i * gt.cols;
                for (unsigned a = 0; a < k; a++)
                    for (unsigned b = 0; b < k; b++)
                        if ((int64_t)all[i * k + a] == gi[b]) {
                            hits++;
                            break;
                        }
            }
            printf("search%s ef=%u recall=%.5f qps=%.1f ms_per_query=%.4f\n", vname[variant], ef,
                   (double)hits / ((double)nq * k), (double)nq / best, 1e3 * best / (double)nq);
            fflush(stdout);
        }
    }
    pefa__hnsw_scratch_free(s);
    free(ids);
    free(all);
    free(sc);
    pefa__hnsw_graph_free(&g);
    free(h);
    free(blocks);
    free(codes);
    free(scales);
    free(base.data);
    free(qs.data);
    free(gt.data);
    return 0;
}
