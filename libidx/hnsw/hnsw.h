/*
 * hnsw.h - internal: HNSW graph build and in-place search (not public API).
 *
 * The graph is kept in the same arrays whether it was just built in memory or
 * is mapped from a pefa file, so search never needs a conversion step:
 *
 *   l0        u32[n * (1 + M0)]   level-0 adjacency, fixed stride: for node v
 *                                 the block at v*(1+M0) is {count, nbr[0..M0-1]},
 *                                 unused slots are 0 (and ignored).
 *   upper_ids u32[n_upper]        ids of nodes whose level >= 1, strictly increasing
 *   upper_offs u64[n_upper + 1]   upper_offs[i] is the start (in u32 units) in
 *                                 upper_adj of node upper_ids[i]'s level-1 block;
 *                                 its level = (upper_offs[i+1]-upper_offs[i])/(1+M)
 *   upper_adj u32[...]            blocks of (1 + M) u32: {count, nbr[0..M-1]},
 *                                 levels 1..L of a node stored consecutively.
 *
 * Search must stay inside these arrays and terminate even if they were damaged
 * (the fast open path does not verify checksums): every count is clamped to the
 * block size, every neighbour id >= n is skipped, and upper-level greedy moves
 * only on strict improvement.
 */
#ifndef PEFA_HNSW_H
#define PEFA_HNSW_H

#include <stddef.h>
#include <stdint.h>

#include "hnsw/pagemap.h"
#include "kernels/dist.h"
#include "pefa.h"

typedef struct {
    uint32_t n;          /* number of nodes == number of vector rows */
    uint32_t dim;        /* vector dimension */
    uint32_t M;          /* max neighbours on upper levels */
    uint32_t M0;         /* max neighbours on level 0 (2*M by default) */
    uint32_t max_level;  /* level of the entry point */
    uint32_t entry;      /* entry point node id (< n unless n == 0) */
    const void *vecs;    /* row v at (const char*)vecs + v*vec_stride bytes */
    size_t vec_stride;   /* bytes between rows */
    int elem;            /* PEFA_TYPE_F32 or PEFA_TYPE_F16 */
    const uint32_t *l0;
    uint32_t n_upper;
    const uint32_t *upper_ids;
    const uint64_t *upper_offs;
    const uint32_t *upper_adj;
    uint64_t upper_adj_len; /* number of u32 in upper_adj */
    /* optional int8 codes of the rows (kernels/quant.h): when set, the search
     * walks the graph on codes and re-scores its final beam with vecs */
    const int8_t *codes;     /* row v at codes + v*code_stride */
    const float *code_scales;/* dim per-dimension scales */
    /* strides of level 0 and of the codes; 0 means packed: 1 + M0 u32 and
     * dim bytes. A co-located layout interleaves them (each node's block
     * holds its adjacency, then its codes). */
    size_t l0_stride;        /* in u32 */
    size_t code_stride;      /* in bytes */
    /* optional: read-ahead requests for a mapped file's pages (pagemap.h);
     * NULL for in-memory graphs */
    hnsw_pagemap *pages;
} hnsw_view;

/* Levels are capped here when drawn; a graph read from a file with a higher
 * max_level is refused (format [G1]). Level draws reach ~53/log2(M) at most,
 * so the cap never binds in practice. */
#define PEFA_HNSW_MAX_LEVEL 64u

typedef void (*hnsw_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct {
    uint32_t M;               /* 2..PEFA_MAX_M; 0 = 16 */
    uint32_t ef_construction; /* beam while inserting (at least M is used) */
    uint64_t seed;            /* default 42; same seed + 1 thread => same graph */
    uint32_t threads;         /* 0 = all online CPUs */
    hnsw_progress_fn progress;/* may be NULL; called from any thread, serialised */
    void *progress_ctx;
} hnsw_build_params;

/* A graph built in memory: owns its arrays; view points into them. */
typedef struct {
    hnsw_view view;
    uint32_t *l0;
    uint32_t *upper_ids;
    uint64_t *upper_offs;
    uint32_t *upper_adj;
} hnsw_graph;

/* Builds a graph over n rows of vecs (f32 or f16 as elem says, rows vec_stride
 * bytes apart). Inner-product metric (maximum inner product search).
 * Returns 0, or PEFA_ERR_NOMEM / PEFA_ERR_INVALID_ARG with the detail set; on
 * failure *g is left zeroed. */
int pefa__hnsw_build(const void *vecs, uint32_t n, uint32_t dim, size_t vec_stride, int elem,
               const hnsw_build_params *p, hnsw_graph *g);
void pefa__hnsw_graph_free(hnsw_graph *g);

/* Per-thread search scratch: visited set with epoch tags, heaps. One scratch
 * must not be used by two threads at once; a scratch grows as needed and can
 * be used with any view. */
typedef struct hnsw_scratch hnsw_scratch;
hnsw_scratch *pefa__hnsw_scratch_new(void);
void pefa__hnsw_scratch_free(hnsw_scratch *s);

/* Top-k by inner product with q (f32[dim]); beam = max(ef, k).
 * Writes up to k results, best first, into ids/scores; returns the count
 * (>= 0) or a negative error code. With codes, the whole beam is re-scored
 * from the full rows and the scores are exact. Re-entrant; view is read-only. */
int pefa__hnsw_search(const hnsw_view *v, const float *q, uint32_t k, uint32_t ef,
                hnsw_scratch *s, uint32_t *ids, float *scores);

/* Exact top-k by brute force over the rows of v (graph arrays unused).
 * Ties broken by smaller id. Same return convention as hnsw_search. */
int pefa__exact_search(const void *vecs, uint32_t n, uint32_t dim, size_t vec_stride, int elem,
                 const float *q, uint32_t k, hnsw_scratch *s, uint32_t *ids, float *scores);

#endif
