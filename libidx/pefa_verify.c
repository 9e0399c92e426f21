/*
 * pefa_verify.c - PEFA structural invariants checked by pefa_index_verify
 * after every checksum matched: META syntax and counts, Y (CSR offsets and
 * every row decodes with columns in range), every graph's links in range.
 * A file crafted with valid checksums but lying structure is caught here.
 */
#include <stdlib.h>

#include "error_private.h"
#include "graph_store.h"
#include "idmap.h"
#include "index_private.h"
#include "model.h"
#include "ycsr.h"

static int check_y(pefa_index *ix, const pefa_model *m, int *bad)
{
    uint32_t n = m->info.n_queries, *cols;
    float *vals;
    uint64_t nnz = 0;
    if (!m->y_rowptr) return 0;
    *bad = pefa_index_find(ix, PEFA_KIND_Y_ROWPTR, PEFA_TARGET_NONE);
    RETURN_ERROR_IF(m->y_rowptr[0] != 0 || m->y_rowptr[n] != m->y_rows_len, PEFA_ERR_CORRUPT,
                    "%s: Y_ROWPTR does not span Y_ROWS", ix->path);
    for (uint32_t i = 0; i < n; i++)
        RETURN_ERROR_IF(m->y_rowptr[i + 1] < m->y_rowptr[i], PEFA_ERR_CORRUPT,
                        "%s: Y_ROWPTR decreases at row %u", ix->path, i);
    *bad = pefa_index_find(ix, PEFA_KIND_Y_ROWS, PEFA_TARGET_NONE);
    cols = (uint32_t *)malloc(4096 * sizeof *cols);
    vals = (float *)malloc(4096 * sizeof *vals);
    if (!cols || !vals) {
        free(cols);
        free(vals);
        return pefa_set_error(PEFA_ERR_NOMEM, "%s: out of memory", ix->path);
    }
    for (uint32_t i = 0; i < n; i++) {
        int64_t k = ycsr_decode_row(m->y_rowptr, n, m->y_rows, m->y_rows_len, m->info.n_passages, i, cols, vals, 4096);
        if (k < 0) {
            free(cols);
            free(vals);
            return pefa_set_error(PEFA_ERR_CORRUPT, "%s: Y_ROWS: row %u is malformed", ix->path, i);
        }
        nnz += (uint64_t)k;
    }
    free(cols);
    free(vals);
    RETURN_ERROR_IF(m->info.nnz && nnz != m->info.nnz, PEFA_ERR_CORRUPT, "%s: Y has %llu entries, META says %llu",
                    ix->path, (unsigned long long)nnz, (unsigned long long)m->info.nnz);
    return 0;
}

int pefa_verify_structure(pefa_index *ix, int *bad)
{
    const pefa_model *m;
    int dummy, rc;
    if (!bad) bad = &dummy;
    *bad = pefa_index_find(ix, PEFA_KIND_META, PEFA_TARGET_NONE);
    rc = pefa_index_meta_count(ix);
    if (rc < 0) return rc;
    /* a file without PEFA metadata is a bare container: nothing more to check */
    if (!pefa_index_meta_get(ix, "pefa.dim")) {
        *bad = -1;
        return 0;
    }
    FORWARD_IF_ERROR(pefa_model_get(ix, &m));
    FORWARD_IF_ERROR(check_y(ix, m, bad));
    FORWARD_IF_ERROR(graph_store_check(ix, PEFA_TARGET_PASSAGES, bad));
    FORWARD_IF_ERROR(graph_store_check(ix, PEFA_TARGET_QUERIES, bad));
    FORWARD_IF_ERROR(graph_store_check(ix, PEFA_TARGET_XS, bad));
    *bad = pefa_index_find(ix, PEFA_KIND_META, PEFA_TARGET_NONE);
    FORWARD_IF_ERROR(idmap_verify(ix));
    *bad = -1;
    return 0;
}
