/*
 * fuzz_index.c - an index file of arbitrary bytes: open, then (on the fast
 * path, WITHOUT verify, as a serving host would) describe it and run every
 * query mode, exact and through the graphs, with explain; then verify, read
 * every section and the metadata. Nothing may crash, read outside the
 * mapping, or fail to terminate, whatever the bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pefa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void queries(pefa_index *ix, const uint8_t *data, size_t size)
{
    pefa_model_info mi = PEFA_MODEL_INFO_INIT;
    pefa_searcher *s;
    pefa_hit hits[8];
    pefa_contrib ct[8];
    uint32_t n, nc, rows[8];
    float *q;
    if (pefa_model_describe(ix, &mi) != 0 || mi.dim == 0) return;
    if (pefa_searcher_new(ix, &s) != 0) return;
    q = (float *)malloc(mi.dim * sizeof(float));
    if (!q) {
        pefa_searcher_free(s);
        return;
    }
    for (uint32_t i = 0; i < mi.dim; i++) q[i] = (float)((size ? data[(i * 31) % size] : 1) % 17) - 8.0f;
    for (int mode = PEFA_MODE_ERM; mode <= PEFA_MODE_XL; mode++)
        for (int exact = 0; exact < 2; exact++) {
            pefa_query_params p = PEFA_QUERY_PARAMS_INIT;
            p.mode = mode;
            p.k = 8;
            p.ef = 16;
            p.knn = 4;
            p.topk_p = 20;
            p.exact = exact;
            if (mode == PEFA_MODE_XS && exact) { /* re-scoring with z */
                p.lambda = 0.3f;
                p.set = PEFA_SET_LAMBDA;
            }
            if (pefa_search(s, q, &p, hits, &n) == 0 && mode == PEFA_MODE_XL) {
                for (uint32_t h = 0; h < n; h++) rows[h] = hits[h].row;
                (void)pefa_explain(s, q, &p, rows, n, ct, 8, &nc);
            }
        }
    free(q);
    pefa_searcher_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    pefa_index *ix;
    FILE *f;
    int bad;
    if (!path[0]) snprintf(path, sizeof path, "/tmp/pefa-fuzz-index-%d.pefa", (int)getpid());
    f = fopen(path, "wb");
    if (!f) return 0;
    if (size) fwrite(data, 1, size, f);
    fclose(f);
    if (pefa_index_open(path, &ix) == 0) {
        const char *k, *v;
        queries(ix, data, size);
        if (pefa_index_verify(ix, &bad) == 0) (void)pefa_verify(ix, &bad);
        for (uint32_t i = 0; i < pefa_index_section_count(ix); i++) {
            const void *p;
            uint64_t len;
            (void)pefa_index_section_data(ix, i, &p, &len);
        }
        for (int i = 0; i < pefa_index_meta_count(ix); i++) (void)pefa_index_meta_at(ix, i, &k, &v);
        pefa_index_close(ix);
    }
    unlink(path); /* libFuzzer may end with _Exit: leave nothing in /tmp */
    return 0;
}
