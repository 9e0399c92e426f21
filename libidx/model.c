/* model.c - PEFA views over an opened index: META keys cross-checked with
 * the section shapes; O(number of sections), no vector or graph data read. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error_private.h"
#include "graph_store.h"
#include "index_private.h"
#include "model.h"

static int meta_u32(pefa_index *ix, const char *key, uint32_t *out, int required)
{
    const char *v = pefa_index_meta_get(ix, key);
    char *end;
    unsigned long long x;
    if (!v) {
        *out = 0;
        RETURN_ERROR_IF(required, PEFA_ERR_CORRUPT, "%s: META lacks %s", ix->path, key);
        return 0;
    }
    errno = 0;
    x = strtoull(v, &end, 10);
    RETURN_ERROR_IF(errno || end == v || *end || x > UINT32_MAX || v[0] == '-', PEFA_ERR_CORRUPT,
                    "%s: META %s=%s is not a 32-bit count", ix->path, key, v);
    *out = (uint32_t)x;
    return 0;
}

static int vectors(pefa_index *ix, pefa_model *m, uint32_t target, uint32_t rows, uint32_t cols, const void **out,
                   int required)
{
    int i = pefa_index_find(ix, PEFA_KIND_VECTORS, target);
    const pefa_section_info *s;
    uint64_t n;
    *out = NULL;
    if (i < 0) {
        RETURN_ERROR_IF(required, PEFA_ERR_CORRUPT, "%s: no VECTORS/%s section", ix->path, pefa_target_name(target));
        return 0;
    }
    s = &ix->secs[i];
    RETURN_ERROR_IF(s->ndim != 2 || s->shape[0] != rows || s->shape[1] != cols || s->elem != m->elem,
                    PEFA_ERR_CORRUPT, "%s: VECTORS/%s is %llux%llu %s, META says %ux%u %s", ix->path,
                    pefa_target_name(target), (unsigned long long)s->shape[0], (unsigned long long)s->shape[1],
                    pefa_type_name(s->elem), rows, cols, pefa_type_name((uint8_t)m->elem));
    return pefa_index_section_data(ix, (uint32_t)i, out, &n);
}

static int graph(pefa_index *ix, pefa_model *m, uint32_t target, const void *vecs, uint32_t rows, uint32_t cols,
                 size_t stride, hnsw_view *v, int *has)
{
    int rc;
    *has = 0;
    if (!vecs) return 0;
    rc = graph_store_view(ix, target, vecs, rows, cols, stride, m->elem, v);
    if (rc == PEFA_ERR_NOT_FOUND) return 0;
    if (rc == 0) *has = 1;
    return rc;
}

static int model_build(pefa_index *ix, pefa_model *m)
{
    const char *s;
    uint32_t nnz_lo = 0;
    memset(m, 0, sizeof *m);
    FORWARD_IF_ERROR(pefa_index_meta_count(ix));
    FORWARD_IF_ERROR(meta_u32(ix, "pefa.n_passages", &m->info.n_passages, 1));
    FORWARD_IF_ERROR(meta_u32(ix, "pefa.n_queries", &m->info.n_queries, 1));
    FORWARD_IF_ERROR(meta_u32(ix, "pefa.dim", &m->info.dim, 1));
    (void)nnz_lo;
    s = pefa_index_meta_get(ix, "pefa.nnz");
    m->info.nnz = s ? strtoull(s, NULL, 10) : 0;
    s = pefa_index_meta_get(ix, "pefa.vector_type");
    m->elem = (!s || strcmp(s, "f32") == 0) ? PEFA_TYPE_F32 : strcmp(s, "f16") == 0 ? PEFA_TYPE_F16 : -1;
    RETURN_ERROR_IF(m->elem < 0, PEFA_ERR_VERSION, "%s: vector type '%s' not supported", ix->path, s);
    m->info.vector_type = (uint8_t)m->elem;
    RETURN_ERROR_IF(m->info.dim == 0 || m->info.dim > 65536, PEFA_ERR_CORRUPT, "%s: META pefa.dim=%u", ix->path,
                    m->info.dim);
    m->stride = (size_t)m->info.dim * pefa_type_size((uint8_t)m->elem);
    m->stride_e = m->stride + pefa_type_size((uint8_t)m->elem);
    s = pefa_index_meta_get(ix, "pefa.xs_lambda");
    m->info.xs_lambda = s ? strtof(s, NULL) : 0.5f;
    FORWARD_IF_ERROR(vectors(ix, m, PEFA_TARGET_PASSAGES, m->info.n_passages, m->info.dim, &m->P, 1));
    FORWARD_IF_ERROR(vectors(ix, m, PEFA_TARGET_QUERIES, m->info.n_queries, m->info.dim, &m->Q, 0));
    FORWARD_IF_ERROR(vectors(ix, m, PEFA_TARGET_XS, m->info.n_passages, m->info.dim + 1, &m->E, 0));
    FORWARD_IF_ERROR(vectors(ix, m, PEFA_TARGET_XS_Z, m->info.n_passages, m->info.dim, &m->Z, 0));
    m->info.has_xs = m->E != NULL;
    m->info.has_z = m->Z != NULL;
    {
        int ip = pefa_index_find(ix, PEFA_KIND_Y_ROWPTR, PEFA_TARGET_NONE);
        int ir = pefa_index_find(ix, PEFA_KIND_Y_ROWS, PEFA_TARGET_NONE);
        if (ip >= 0 || ir >= 0) {
            const pefa_section_info *sp = &ix->secs[ip < 0 ? 0 : ip];
            const void *a, *b;
            uint64_t na, nb;
            RETURN_ERROR_IF(ip < 0 || ir < 0 || sp->elem != PEFA_TYPE_U64 || sp->ndim != 1 ||
                                sp->shape[0] != (uint64_t)m->info.n_queries + 1 || !m->Q,
                            PEFA_ERR_CORRUPT, "%s: Y sections are incomplete or disagree with the query count",
                            ix->path);
            FORWARD_IF_ERROR(pefa_index_section_data(ix, (uint32_t)ip, &a, &na));
            FORWARD_IF_ERROR(pefa_index_section_data(ix, (uint32_t)ir, &b, &nb));
            m->y_rowptr = (const uint64_t *)a;
            m->y_rows = (const uint8_t *)b;
            m->y_rows_len = nb;
        }
    }
    FORWARD_IF_ERROR(graph(ix, m, PEFA_TARGET_PASSAGES, m->P, m->info.n_passages, m->info.dim, m->stride, &m->gp,
                           &m->info.has_graph_passages));
    FORWARD_IF_ERROR(graph(ix, m, PEFA_TARGET_QUERIES, m->Q, m->info.n_queries, m->info.dim, m->stride, &m->gq,
                           &m->info.has_graph_queries));
    FORWARD_IF_ERROR(graph(ix, m, PEFA_TARGET_XS, m->E, m->info.n_passages, m->info.dim + 1, m->stride_e, &m->gx,
                           &m->info.has_graph_xs));
    return 0;
}

static void model_free(void *p)
{
    free(p);
}

int pefa_model_get(pefa_index *ix, const pefa_model **out)
{
    int rc = 0;
    pefa_model *m;
    pthread_mutex_lock(&ix->lock);
    m = (pefa_model *)ix->pefa;
    pthread_mutex_unlock(&ix->lock);
    if (m) {
        *out = m;
        return 0;
    }
    /* built outside the lock (section_data and meta take it); a racing
     * thread may build a second copy, of which one is kept */
    m = (pefa_model *)malloc(sizeof *m);
    RETURN_ERROR_IF(!m, PEFA_ERR_NOMEM, "%s: out of memory", ix->path);
    if ((rc = model_build(ix, m)) != 0) {
        free(m);
        return rc;
    }
    pthread_mutex_lock(&ix->lock);
    if (!ix->pefa) {
        ix->pefa = m;
        ix->pefa_free = model_free;
    } else {
        free(m);
    }
    *out = (const pefa_model *)ix->pefa;
    pthread_mutex_unlock(&ix->lock);
    return 0;
}

int pefa_model_describe(pefa_index *ix, pefa_model_info *out)
{
    const pefa_model *m;
    FORWARD_IF_ERROR(pefa_model_get(ix, &m));
    *out = m->info;
    return 0;
}
