/*
 * verify.c - pefa_verify: the PEFA invariants, checked after the container's
 * pefa_index_verify matched every checksum: META counts against the
 * sections, Y (CSR offsets and every row decodes with columns in range),
 * every graph's links in range, and the id map's bytes. A file crafted with
 * valid checksums but lying structure is caught here.
 */
#include <stdlib.h>

#include "common/error.h"
#include "pefa/graph_store.h"
#include "idmap/idmap.h"
#include "pefa/model.h"
#include "pefa/ycsr.h"

/* the directory index of an untargeted section, or -1 (for *bad) */
static int section_no(const pefa_index *ix, uint32_t kind)
{
    int i = pefa_index_find(ix, kind, PEFA_TARGET_NONE);
    return i < 0 ? -1 : i;
}

static int check_y(pefa_index *ix, const pefa_model *m, int *bad)
{
    uint32_t n = m->info.n_queries, *cols;
    float *vals;
    uint64_t nnz = 0;
    if (!m->y_rowptr) return 0;
    *bad = section_no(ix, PEFA_KIND_Y_ROWPTR);
    RETURN_ERROR_IF(m->y_rowptr[0] != 0 || m->y_rowptr[n] != m->y_rows_len, PEFA_ERR_CORRUPT,
                    "%s: Y_ROWPTR does not span Y_ROWS", m->path);
    for (uint32_t i = 0; i < n; i++)
        RETURN_ERROR_IF(m->y_rowptr[i + 1] < m->y_rowptr[i], PEFA_ERR_CORRUPT,
                        "%s: Y_ROWPTR decreases at row %u", m->path, i);
    *bad = section_no(ix, PEFA_KIND_Y_ROWS);
    cols = (uint32_t *)malloc(4096 * sizeof *cols);
    vals = (float *)malloc(4096 * sizeof *vals);
    if (!cols || !vals) {
        free(cols);
        free(vals);
        return pefa__set_error(PEFA_ERR_NOMEM, "%s: out of memory", m->path);
    }
    for (uint32_t i = 0; i < n; i++) {
        int64_t k = pefa__ycsr_decode_row(m->y_rowptr, n, m->y_rows, m->y_rows_len, m->y_cols, i, cols, vals, 4096);
        if (k < 0) {
            free(cols);
            free(vals);
            return pefa__set_error(PEFA_ERR_CORRUPT, "%s: Y_ROWS: row %u is malformed", m->path, i);
        }
        nnz += (uint64_t)k;
    }
    free(cols);
    free(vals);
    RETURN_ERROR_IF(m->info.nnz && nnz != m->info.nnz, PEFA_ERR_CORRUPT, "%s: Y has %llu entries, META says %llu",
                    m->path, (unsigned long long)nnz, (unsigned long long)m->info.nnz);
    return 0;
}

int pefa_verify(pefa_index *ix, int *bad)
{
    return pefa_verify_flags(ix, 0, bad);
}

int pefa_verify_flags(pefa_index *ix, unsigned flags, int *bad)
{
    pefa_model *m = NULL;
    int dummy;
    const char *dim;
    if (!bad) bad = &dummy;
    RETURN_ERROR_IF(flags & ~PEFA_IDMAP_TRUSTED, PEFA_ERR_INVALID_ARG, "pefa_verify_flags: unknown flags 0x%x", flags);
    *bad = section_no(ix, PEFA_KIND_META);
    FORWARD_IF_ERROR(pefa_index_meta_count(ix));
    /* a file without PEFA metadata is a bare container: nothing more to check */
    if (pefa_index_meta_get(ix, "pefa.dim", &dim) == PEFA_ERR_NOT_FOUND) {
        *bad = -1;
        return 0;
    }
    FORWARD_IF_ERROR(pefa__model_get(ix, &m));
    FORWARD_IF_ERROR(check_y(ix, m, bad));
    FORWARD_IF_ERROR(pefa__graph_store_check(ix, PEFA_TARGET_PASSAGES, bad));
    FORWARD_IF_ERROR(pefa__graph_store_check(ix, PEFA_TARGET_QUERIES, bad));
    FORWARD_IF_ERROR(pefa__graph_store_check(ix, PEFA_TARGET_XS, bad));
    *bad = section_no(ix, PEFA_KIND_META);
    FORWARD_IF_ERROR(pefa__idmap_verify(ix, flags));
    *bad = -1;
    return 0;
}
