/* graph_store.c - HNSW graphs as index sections, searched in place. */
#include <string.h>

#include "common/bytes.h"
#include "common/error.h"
#include "container/container.h"
#include "pefa/graph_store.h"


int pefa__graph_store_write(pefa_writer *w, uint32_t target, const hnsw_graph *g, uint32_t ef_construction,
                      uint64_t seed)
{
    const hnsw_view *v = &g->view;
    uint8_t rec[G_RECORD_SIZE];
    pefa_section_info d;
    memset(rec, 0, sizeof rec);
    st32(rec + G_N, v->n);
    st32(rec + G_DIM, v->dim);
    st32(rec + G_M, v->M);
    st32(rec + G_M0, v->M0);
    st32(rec + G_MAXLEVEL, v->max_level);
    st32(rec + G_ENTRY, v->entry);
    st32(rec + G_EFC, ef_construction);
    st32(rec + G_METRIC, G_METRIC_IP);
    st64(rec + G_SEED, seed);
    st32(rec + G_NUPPER, v->n_upper);

    memset(&d, 0, sizeof d);
    d.target = target;
    d.kind = PEFA_KIND_HNSW_INFO;
    d.elem = PEFA_TYPE_BYTES;
    FORWARD_IF_ERROR(pefa_writer_add(w, &d, rec, sizeof rec));
    /* arrays are written as host u32/u64 = little-endian (common/bytes.h
     * refuses big-endian builds) */
    d.kind = PEFA_KIND_HNSW_L0;
    d.elem = PEFA_TYPE_U32;
    d.ndim = 2;
    d.shape[0] = v->n;
    d.shape[1] = 1 + (uint64_t)v->M0;
    FORWARD_IF_ERROR(pefa_writer_add(w, &d, v->l0, (size_t)v->n * (1 + v->M0) * 4));
    d.kind = PEFA_KIND_HNSW_UPPER_IDS;
    d.ndim = 1;
    d.shape[0] = v->n_upper;
    d.shape[1] = 0;
    FORWARD_IF_ERROR(pefa_writer_add(w, &d, v->upper_ids, (size_t)v->n_upper * 4));
    d.kind = PEFA_KIND_HNSW_UPPER_OFFS;
    d.elem = PEFA_TYPE_U64;
    d.shape[0] = (uint64_t)v->n_upper + 1;
    FORWARD_IF_ERROR(pefa_writer_add(w, &d, v->upper_offs, ((size_t)v->n_upper + 1) * 8));
    d.kind = PEFA_KIND_HNSW_UPPER_ADJ;
    d.elem = PEFA_TYPE_U32;
    d.shape[0] = v->upper_adj_len;
    return pefa_writer_add(w, &d, v->upper_adj, (size_t)v->upper_adj_len * 4);
}

/* the directory index of (kind, target), or -1 (for *bad) */
static int section_no(const pefa_index *ix, uint32_t kind, uint32_t target)
{
    int i = pefa_index_find(ix, kind, target);
    return i < 0 ? -1 : i;
}

/* the section (kind, target) of a graph: present, of type elem and ndim */
static const void *need(pefa_index *ix, uint32_t kind, uint32_t target, uint8_t elem, uint32_t ndim,
                        pefa_section_info *si, int *rc)
{
    const void *p;
    if ((*rc = pefa__section_get(ix, kind, target, elem, &p, si)) != 0) return NULL;
    if (!p) {
        *rc = pefa__set_error(PEFA_ERR_CORRUPT, "%s: graph over %s lacks its %s section", pefa_index_path(ix),
                              pefa_target_name(target), pefa_kind_name(kind));
        return NULL;
    }
    if (si->ndim != ndim) {
        *rc = pefa__set_error(PEFA_ERR_CORRUPT, "%s: %s/%s has %u dimensions, expected %u", pefa_index_path(ix),
                              pefa_kind_name(kind), pefa_target_name(target), si->ndim, ndim);
        return NULL;
    }
    return p;
}

int pefa__graph_store_view(pefa_index *ix, uint32_t target, const void *vecs, uint32_t n, uint32_t dim,
                     size_t vec_stride, int elem, hnsw_view *v)
{
    const char *path = pefa_index_path(ix);
    pefa_section_info si, sl0, sid, sof, sad;
    const uint8_t *rec;
    int rc = 0;
    memset(v, 0, sizeof *v);
    if (pefa_index_find(ix, PEFA_KIND_HNSW_INFO, target) < 0)
        return pefa__set_error(PEFA_ERR_NOT_FOUND, "%s: no graph over %s", path, pefa_target_name(target));
    rec = (const uint8_t *)need(ix, PEFA_KIND_HNSW_INFO, target, PEFA_TYPE_BYTES, 0, &si, &rc);
    if (rc) return rc;
    RETURN_ERROR_IF(si.raw_size < G_RECORD_SIZE, PEFA_ERR_CORRUPT, "%s: HNSW_INFO/%s too short", path,
                    pefa_target_name(target));
    v->n = ld32(rec + G_N);
    v->dim = ld32(rec + G_DIM);
    v->M = ld32(rec + G_M);
    v->M0 = ld32(rec + G_M0);
    v->max_level = ld32(rec + G_MAXLEVEL);
    v->entry = ld32(rec + G_ENTRY);
    v->n_upper = ld32(rec + G_NUPPER);
    RETURN_ERROR_IF(v->n != n || v->dim != dim, PEFA_ERR_CORRUPT,
                    "%s: graph over %s is %ux%u but its vectors are %ux%u", path, pefa_target_name(target),
                    v->n, v->dim, n, dim);
    RETURN_ERROR_IF(v->M == 0 || v->M > PEFA_MAX_M || v->M0 == 0 || v->M0 > 2 * PEFA_MAX_M ||
                        ld32(rec + G_METRIC) != G_METRIC_IP || (n > 0 && v->entry >= n) ||
                        v->max_level > PEFA_HNSW_MAX_LEVEL || v->n_upper > n,
                    PEFA_ERR_CORRUPT, "%s: HNSW_INFO/%s has impossible values", path, pefa_target_name(target));
    v->l0 = (const uint32_t *)need(ix, PEFA_KIND_HNSW_L0, target, PEFA_TYPE_U32, 2, &sl0, &rc);
    if (rc) return rc;
    v->upper_ids = (const uint32_t *)need(ix, PEFA_KIND_HNSW_UPPER_IDS, target, PEFA_TYPE_U32, 1, &sid, &rc);
    if (rc) return rc;
    v->upper_offs = (const uint64_t *)need(ix, PEFA_KIND_HNSW_UPPER_OFFS, target, PEFA_TYPE_U64, 1, &sof, &rc);
    if (rc) return rc;
    v->upper_adj = (const uint32_t *)need(ix, PEFA_KIND_HNSW_UPPER_ADJ, target, PEFA_TYPE_U32, 1, &sad, &rc);
    if (rc) return rc;
    RETURN_ERROR_IF(sl0.shape[0] != n || sl0.shape[1] != 1 + (uint64_t)v->M0 || sid.shape[0] != v->n_upper ||
                        sof.shape[0] != (uint64_t)v->n_upper + 1,
                    PEFA_ERR_CORRUPT, "%s: graph sections over %s disagree with HNSW_INFO", path,
                    pefa_target_name(target));
    v->upper_adj_len = sad.shape[0];
    v->vecs = vecs;
    v->vec_stride = vec_stride;
    v->elem = elem;
    return 0;
}

int pefa__graph_store_check(pefa_index *ix, uint32_t target, int *bad)
{
    hnsw_view v;
    int vi = pefa_index_find(ix, PEFA_KIND_VECTORS, target);
    const char *path = pefa_index_path(ix);
    pefa_section_info vs;
    uint64_t stride0, b, prev_end = 0;
    uint32_t i;
    int rc;
    if (pefa_index_find(ix, PEFA_KIND_HNSW_INFO, target) < 0) return 0;
    *bad = section_no(ix, PEFA_KIND_HNSW_INFO, target);
    RETURN_ERROR_IF(vi < 0, PEFA_ERR_CORRUPT, "%s: graph over %s without its vectors", path,
                    pefa_target_name(target));
    FORWARD_IF_ERROR(pefa_index_section_info(ix, (uint32_t)vi, &vs));
    RETURN_ERROR_IF(vs.ndim != 2 || vs.shape[0] > UINT32_MAX || vs.shape[1] > UINT32_MAX, PEFA_ERR_CORRUPT,
                    "%s: VECTORS/%s has a bad shape", path, pefa_target_name(target));
    rc = pefa__graph_store_view(ix, target, NULL, (uint32_t)vs.shape[0], (uint32_t)vs.shape[1], 0, vs.elem, &v);
    if (rc) return rc;
    stride0 = 1 + (uint64_t)v.M0;
    *bad = section_no(ix, PEFA_KIND_HNSW_L0, target);
    for (i = 0; i < v.n; i++) {
        const uint32_t *blk = v.l0 + i * stride0;
        RETURN_ERROR_IF(blk[0] > v.M0, PEFA_ERR_CORRUPT, "%s: HNSW_L0/%s: node %u has %u neighbours (max %u)",
                        path, pefa_target_name(target), i, blk[0], v.M0);
        for (uint32_t j = 1; j <= blk[0]; j++)
            RETURN_ERROR_IF(blk[j] >= v.n, PEFA_ERR_CORRUPT, "%s: HNSW_L0/%s: node %u links to %u (n = %u)",
                            path, pefa_target_name(target), i, blk[j], v.n);
    }
    *bad = section_no(ix, PEFA_KIND_HNSW_UPPER_IDS, target);
    for (i = 0; i < v.n_upper; i++)
        RETURN_ERROR_IF(v.upper_ids[i] >= v.n || (i && v.upper_ids[i] <= v.upper_ids[i - 1]), PEFA_ERR_CORRUPT,
                        "%s: HNSW_UPPER_IDS/%s: entry %u out of order or range", path, pefa_target_name(target), i);
    *bad = section_no(ix, PEFA_KIND_HNSW_UPPER_OFFS, target);
    b = 1 + (uint64_t)v.M;
    RETURN_ERROR_IF(v.upper_offs[0] != 0 || v.upper_offs[v.n_upper] != v.upper_adj_len, PEFA_ERR_CORRUPT,
                    "%s: HNSW_UPPER_OFFS/%s does not span HNSW_UPPER_ADJ", path, pefa_target_name(target));
    for (i = 0; i < v.n_upper; i++) {
        uint64_t s = v.upper_offs[i], e = v.upper_offs[i + 1];
        RETURN_ERROR_IF(s != prev_end || e <= s || (e - s) % b != 0 || (e - s) / b > v.max_level, PEFA_ERR_CORRUPT,
                        "%s: HNSW_UPPER_OFFS/%s: node entry %u has a bad block range", path,
                        pefa_target_name(target), i);
        prev_end = e;
    }
    *bad = section_no(ix, PEFA_KIND_HNSW_UPPER_ADJ, target);
    for (uint64_t s = 0; s < v.upper_adj_len; s += b) {
        const uint32_t *blk = v.upper_adj + s;
        RETURN_ERROR_IF(blk[0] > v.M, PEFA_ERR_CORRUPT, "%s: HNSW_UPPER_ADJ/%s: block at %llu has %u neighbours",
                        path, pefa_target_name(target), (unsigned long long)s, blk[0]);
        for (uint32_t j = 1; j <= blk[0]; j++)
            RETURN_ERROR_IF(blk[j] >= v.n, PEFA_ERR_CORRUPT, "%s: HNSW_UPPER_ADJ/%s: link to %u (n = %u)",
                            path, pefa_target_name(target), blk[j], v.n);
    }
    *bad = -1;
    return 0;
}
