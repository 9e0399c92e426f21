/* model.c - PEFA views over an opened index: META keys cross-checked with
 * the section shapes. O(number of sections): raw sections are pointed to,
 * not read; a zstd-compressed Y (pefa-build --y-codec zstd) is decompressed
 * here, once. */
#include <stdlib.h>
#include <string.h>

#include "common/abi.h"
#include "common/error.h"
#include "container/container.h"
#include "pefa/graph_store.h"
#include "pefa/model.h"

static int meta_u32(pefa_index *ix, const char *key, uint32_t *out)
{
    uint64_t v;
    FORWARD_IF_ERROR(pefa__meta_uint(ix, key, UINT32_MAX, 1, &v));
    *out = (uint32_t)v;
    return 0;
}

/* VECTORS/target: rows x cols of the model's type, or absent (when !required) */
static int vectors(pefa_index *ix, pefa_model *m, uint32_t target, uint32_t rows, uint32_t cols, const void **out,
                   int required)
{
    pefa_section_info s;
    FORWARD_IF_ERROR(pefa__section_get(ix, PEFA_KIND_VECTORS, target, (uint8_t)m->elem, out, &s));
    if (!*out) {
        int i = pefa_index_find(ix, PEFA_KIND_VECTORS, target);
        RETURN_ERROR_IF(required || i >= 0, PEFA_ERR_CORRUPT, "%s: no VECTORS/%s section of type %s", m->path,
                        pefa_target_name(target), pefa_type_name((uint8_t)m->elem));
        return 0;
    }
    RETURN_ERROR_IF(s.ndim != 2 || s.shape[0] != rows || s.shape[1] != cols, PEFA_ERR_CORRUPT,
                    "%s: VECTORS/%s is %llux%llu, META says %ux%u", m->path, pefa_target_name(target),
                    (unsigned long long)s.shape[0], (unsigned long long)s.shape[1], rows, cols);
    return 0;
}

/* [Q1] the int8 codes of a graph's rows, when the index has them */
static int codes(pefa_index *ix, pefa_model *m, uint32_t target, hnsw_view *v)
{
    pefa_section_info sc, ss;
    const void *c, *s;
    FORWARD_IF_ERROR(pefa__section_get(ix, PEFA_KIND_CODES, target, PEFA_TYPE_I8, &c, &sc));
    FORWARD_IF_ERROR(pefa__section_get(ix, PEFA_KIND_CODE_SCALES, target, PEFA_TYPE_F32, &s, &ss));
    if (!c && !s) return 0;
    RETURN_ERROR_IF(!c || !s || sc.ndim != 2 || sc.shape[0] != v->n || sc.shape[1] != v->dim || ss.ndim != 1 ||
                        ss.shape[0] != v->dim,
                    PEFA_ERR_CORRUPT, "%s: CODES/%s and CODE_SCALES/%s disagree with the graph's %ux%u rows", m->path,
                    pefa_target_name(target), pefa_target_name(target), v->n, v->dim);
    v->codes = (const int8_t *)c;
    v->code_scales = (const float *)s;
    return 0;
}

static int graph(pefa_index *ix, pefa_model *m, uint32_t target, const void *vecs, uint32_t rows, uint32_t cols,
                 size_t stride, hnsw_view *v, int *has)
{
    int rc;
    *has = 0;
    if (!vecs) return 0;
    rc = pefa__graph_store_view(ix, target, vecs, rows, cols, stride, m->elem, v);
    if (rc == PEFA_ERR_NOT_FOUND) return 0;
    if (rc == 0) *has = 1;
    return rc ? rc : codes(ix, m, target, v);
}

/* [P2] the metric: the header flag decides; META must agree with it. A
 * cosine file may say pefa.metric=ip with pefa.normalise=l2 (files of
 * 2026-11: unit rows, so their inner product is the cosine) */
static int model_metric(pefa_index *ix, pefa_model *m)
{
    pefa_file_info fi;
    const char *mt = "cosine", *nz = "l2", *xs;
    int ip;
    pefa_index_file_info(ix, &fi);
    ip = (fi.flags & PEFA_FILE_FLAG_METRIC_IP) != 0;
    if (pefa_index_meta_get(ix, "pefa.metric", &mt) != 0) mt = ip ? "?" : "cosine";
    if (pefa_index_meta_get(ix, "pefa.normalise", &nz) != 0) nz = ip ? "?" : "l2";
    RETURN_ERROR_IF(ip && (strcmp(mt, "ip") != 0 || strcmp(nz, "none") != 0), PEFA_ERR_CORRUPT,
                    "%s: the header says metric ip, META says pefa.metric=%s pefa.normalise=%s", m->path, mt, nz);
    RETURN_ERROR_IF(!ip && (strcmp(nz, "l2") != 0 || (strcmp(mt, "cosine") != 0 && strcmp(mt, "ip") != 0)),
                    PEFA_ERR_CORRUPT, "%s: META pefa.metric=%s pefa.normalise=%s without the header's metric-ip flag",
                    m->path, mt, nz);
    m->info.similarity = ip ? PEFA_SIMILARITY_IP : PEFA_SIMILARITY_COSINE;
    m->info.xs_scale = 1.0f;
    if (ip && pefa_index_meta_get(ix, "pefa.xs_scale", &xs) == 0) m->info.xs_scale = strtof(xs, NULL);
    RETURN_ERROR_IF(!(m->info.xs_scale > 0) || m->info.xs_scale > 3.4e38f, PEFA_ERR_CORRUPT,
                    "%s: META pefa.xs_scale is not a positive number", m->path);
    return 0;
}

/* META counts, dimension, vector type and XS lambda */
static int model_meta(pefa_index *ix, pefa_model *m)
{
    const char *s;
    uint64_t nnz;
    FORWARD_IF_ERROR(meta_u32(ix, "pefa.n_passages", &m->info.n_passages));
    FORWARD_IF_ERROR(meta_u32(ix, "pefa.n_queries", &m->info.n_queries));
    FORWARD_IF_ERROR(meta_u32(ix, "pefa.dim", &m->info.dim));
    RETURN_ERROR_IF(m->info.dim == 0 || m->info.dim > PEFA_MAX_DIM, PEFA_ERR_CORRUPT, "%s: META pefa.dim=%u", m->path,
                    m->info.dim);
    if (pefa__meta_uint(ix, "pefa.nnz", UINT64_MAX, 0, &nnz) == PEFA_ERR_CORRUPT) return PEFA_ERR_CORRUPT;
    m->info.nnz = nnz;
    if (pefa_index_meta_get(ix, "pefa.vector_type", &s) != 0) s = "f32";
    m->elem = strcmp(s, "f32") == 0 ? PEFA_TYPE_F32 : strcmp(s, "f16") == 0 ? PEFA_TYPE_F16 : -1;
    RETURN_ERROR_IF(m->elem < 0, PEFA_ERR_VERSION, "%s: vector type '%s' not supported", m->path, s);
    m->info.vector_type = (uint8_t)m->elem;
    if (pefa_index_meta_get(ix, "pefa.codes", &s) == 0 && strcmp(s, "i8") == 0) m->info.vector_type = PEFA_TYPE_I8;
    m->stride = (size_t)m->info.dim * pefa_type_size((uint8_t)m->elem);
    m->stride_e = m->stride + pefa_type_size((uint8_t)m->elem);
    m->info.xs_lambda = pefa_index_meta_get(ix, "pefa.xs_lambda", &s) == 0 ? strtof(s, NULL) : 0.5f;
    return model_metric(ix, m);
}

/* the default setting: META tune.* when the index was tuned, else ERM */
static int model_default(pefa_index *ix, pefa_model *m)
{
    pefa_model_info *in = &m->info;
    const char *mode, *lam;
    uint64_t knn = 0;
    in->default_mode = PEFA_MODE_ERM;
    in->default_lambda = 1;
    in->default_knn = 0;
    if (pefa_index_meta_get(ix, "tune.mode", &mode) != 0) return 0;
    in->default_mode = strcmp(mode, "erm") == 0 ? PEFA_MODE_ERM
                       : strcmp(mode, "xs") == 0 ? PEFA_MODE_XS
                       : strcmp(mode, "xl") == 0 ? PEFA_MODE_XL
                                                  : -1;
    RETURN_ERROR_IF(in->default_mode < 0, PEFA_ERR_CORRUPT, "%s: META tune.mode=%s is not erm, xs or xl", m->path, mode);
    if (pefa_index_meta_get(ix, "tune.lambda", &lam) == 0) in->default_lambda = strtof(lam, NULL);
    RETURN_ERROR_IF(!(in->default_lambda >= 0 && in->default_lambda <= 1), PEFA_ERR_CORRUPT,
                    "%s: META tune.lambda is not in [0, 1]", m->path);
    if (in->default_mode == PEFA_MODE_XL)
        FORWARD_IF_ERROR(pefa__meta_uint(ix, "tune.knn", PEFA_MAX_K, 1, &knn));
    RETURN_ERROR_IF(in->default_mode == PEFA_MODE_XL && knn == 0, PEFA_ERR_CORRUPT, "%s: META tune.knn=0", m->path);
    in->default_knn = (uint32_t)knn;
    in->tuned = 1;
    return 0;
}

/* [S1] META shard.*: which rows of a set this file holds */
static int model_shard(pefa_index *ix, pefa_model *m)
{
    uint64_t v[4];
    static const char *const keys[4] = {"shard.index", "shard.count", "shard.rows_from", "shard.rows_total"};
    m->info.shard_count = m->shard_count = 1;
    m->rows_total = m->info.n_passages;
    if (pefa__meta_uint(ix, "shard.count", UINT32_MAX, 0, &v[1]) == PEFA_ERR_NOT_FOUND) return 0;
    for (int k = 0; k < 4; k++) FORWARD_IF_ERROR(pefa__meta_uint(ix, keys[k], UINT32_MAX, 1, &v[k]));
    RETURN_ERROR_IF(v[1] < 2 || v[0] >= v[1] || v[2] + m->info.n_passages > v[3] || (v[0] != 0 && m->Q),
                    PEFA_ERR_CORRUPT, "%s: META shard.* do not describe a shard of %u passages", m->path,
                    m->info.n_passages);
    m->info.shard_index = m->shard_index = (uint32_t)v[0];
    m->info.shard_count = m->shard_count = (uint32_t)v[1];
    m->rows_from = (uint32_t)v[2];
    m->rows_total = (uint32_t)v[3];
    return 0;
}

/* Y_ROWPTR + Y_ROWS, both or neither */
static int model_y(pefa_index *ix, pefa_model *m)
{
    pefa_section_info sp, sr;
    const void *a, *b;
    FORWARD_IF_ERROR(pefa__section_get(ix, PEFA_KIND_Y_ROWPTR, PEFA_TARGET_NONE, PEFA_TYPE_U64, &a, &sp));
    FORWARD_IF_ERROR(pefa__section_get(ix, PEFA_KIND_Y_ROWS, PEFA_TARGET_NONE, PEFA_TYPE_BYTES, &b, &sr));
    if (!a && !b) return 0;
    RETURN_ERROR_IF(!a || !b || sp.ndim != 1 || sp.shape[0] != (uint64_t)m->info.n_queries + 1 || !m->Q,
                    PEFA_ERR_CORRUPT, "%s: Y sections are incomplete or disagree with the query count", m->path);
    m->y_rowptr = (const uint64_t *)a;
    m->y_rows = (const uint8_t *)b;
    m->y_rows_len = sr.raw_size;
    return 0;
}

/* [X2] XS_NORMS: f32 [n_passages], optional (absent in format 1.0 files) */
static int model_norms(pefa_index *ix, pefa_model *m)
{
    pefa_section_info si;
    const void *p;
    FORWARD_IF_ERROR(pefa__section_get(ix, PEFA_KIND_XS_NORMS, PEFA_TARGET_NONE, PEFA_TYPE_F32, &p, &si));
    if (!p) return 0;
    RETURN_ERROR_IF(si.ndim != 1 || si.shape[0] != m->info.n_passages || !m->Z, PEFA_ERR_CORRUPT,
                    "%s: XS_NORMS has %llu entries for %u passages (or no z vectors)", m->path,
                    (unsigned long long)si.shape[0], m->info.n_passages);
    m->S = (const float *)p;
    return 0;
}

/* [C1] cold caches: the searches ask for pages ahead (hnsw/pagemap.h); the
 * upper levels of each graph, small and read by every query, are asked for
 * here, once */
static void upper_ahead(hnsw_pagemap *pm, hnsw_view *v)
{
    v->pages = pm;
    if (!pm || v->n_upper == 0) return;
    pefa__pagemap_want(pm, v->upper_ids, (size_t)v->n_upper * sizeof *v->upper_ids);
    pefa__pagemap_want(pm, v->upper_offs, ((size_t)v->n_upper + 1) * sizeof *v->upper_offs);
    pefa__pagemap_want(pm, v->upper_adj, (size_t)v->upper_adj_len * sizeof *v->upper_adj);
}

static void model_pages(pefa_index *ix, pefa_model *m)
{
    const void *base;
    size_t len;
    pefa__index_map(ix, &base, &len);
    m->pages = pefa__pagemap_open(base, len);
    if (m->info.has_graph_passages) upper_ahead(m->pages, &m->gp);
    if (m->info.has_graph_queries) upper_ahead(m->pages, &m->gq);
    if (m->info.has_graph_xs) upper_ahead(m->pages, &m->gx);
}

static int model_build(pefa_index *ix, pefa_model *m)
{
    pefa_model_info *in = &m->info;
    const char *v;
    m->path = pefa_index_path(ix);
    in->size = sizeof *in;
    RETURN_ERROR_IF(pefa_index_meta_get(ix, "set.shards", &v) == 0, PEFA_ERR_INVALID_ARG,
                    "%s: a shard set's manifest, not an index: open it as a set (pefa_set_open; pefa-query, "
                    "pefa-serve and pefa-dump take it as is)", m->path);
    FORWARD_IF_ERROR(model_meta(ix, m));
    FORWARD_IF_ERROR(vectors(ix, m, PEFA_TARGET_PASSAGES, in->n_passages, in->dim, &m->P, 1));
    FORWARD_IF_ERROR(vectors(ix, m, PEFA_TARGET_QUERIES, in->n_queries, in->dim, &m->Q, 0));
    FORWARD_IF_ERROR(vectors(ix, m, PEFA_TARGET_XS, in->n_passages, in->dim + 1, &m->E, 0));
    FORWARD_IF_ERROR(vectors(ix, m, PEFA_TARGET_XS_Z, in->n_passages, in->dim, &m->Z, 0));
    in->has_xs = m->E != NULL;
    in->has_z = m->Z != NULL;
    FORWARD_IF_ERROR(model_shard(ix, m));
    m->y_cols = m->rows_total; /* shard 0's Y points into every shard */
    FORWARD_IF_ERROR(model_y(ix, m));
    FORWARD_IF_ERROR(model_norms(ix, m));
    FORWARD_IF_ERROR(model_default(ix, m));
    FORWARD_IF_ERROR(graph(ix, m, PEFA_TARGET_PASSAGES, m->P, in->n_passages, in->dim, m->stride, &m->gp,
                           &in->has_graph_passages));
    FORWARD_IF_ERROR(graph(ix, m, PEFA_TARGET_QUERIES, m->Q, in->n_queries, in->dim, m->stride, &m->gq,
                           &in->has_graph_queries));
    FORWARD_IF_ERROR(
        graph(ix, m, PEFA_TARGET_XS, m->E, in->n_passages, in->dim + 1, m->stride_e, &m->gx, &in->has_graph_xs));
    model_pages(ix, m);
    return 0;
}

static void model_free(void *p)
{
    pefa_model *m = (pefa_model *)p;
    pefa__pool_free(m);
    pefa__pagemap_free(m->pages);
    pthread_mutex_destroy(&m->pool_lock);
    free(m);
}

int pefa__model_get(pefa_index *ix, pefa_model **out)
{
    pefa_model *m = (pefa_model *)pefa__index_ext(ix), *won;
    int rc;
    if (m) {
        *out = m;
        return 0;
    }
    /* built outside any lock (section_data and meta take the index lock); a
     * racing thread may build a second copy, of which one is kept */
    m = (pefa_model *)calloc(1, sizeof *m);
    RETURN_ERROR_IF(!m, PEFA_ERR_NOMEM, "%s: out of memory", pefa_index_path(ix));
    pthread_mutex_init(&m->pool_lock, NULL);
    if ((rc = model_build(ix, m)) != 0) {
        model_free(m);
        return rc;
    }
    won = (pefa_model *)pefa__index_ext_set(ix, m, model_free);
    if (won != m) model_free(m);
    *out = won;
    return 0;
}

int pefa_model_describe(pefa_index *ix, pefa_model_info *out)
{
    pefa_model *m = NULL;
    FORWARD_IF_ERROR(pefa__model_get(ix, &m));
    pefa__abi_out(out, &m->info, PEFA_V1_MODEL_INFO, sizeof *out);
    return 0;
}
