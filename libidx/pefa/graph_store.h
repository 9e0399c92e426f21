/*
 * graph_store.h - internal: HNSW graphs in and out of index sections
 * (HNSW_INFO / HNSW_L0 / HNSW_UPPER_IDS / HNSW_UPPER_OFFS / HNSW_UPPER_ADJ).
 */
#ifndef PEFA_GRAPH_STORE_H
#define PEFA_GRAPH_STORE_H

#include "hnsw/hnsw.h"
#include "pefa.h"

/* [G1] the graph record in an HNSW_INFO section (64 bytes) */
#define G_RECORD_SIZE 64u
#define G_N 0
#define G_DIM 4
#define G_M 8
#define G_M0 12
#define G_MAXLEVEL 16
#define G_ENTRY 20
#define G_EFC 24
#define G_METRIC 28
#define G_SEED 32
#define G_NUPPER 40
#define G_METRIC_IP 1u

/* Writes the five sections of graph g for vector set target. */
int pefa__graph_store_write(pefa_writer *w, uint32_t target, const hnsw_graph *g, uint32_t ef_construction,
                      uint64_t seed);

/* Fills v from the sections of target, pointing into the mapping; vector
 * rows come from vecs/vec_stride/elem. Checks the record against the
 * section shapes (O(1), no graph data read). Returns 0, NOT_FOUND if the
 * index has no graph for target, or CORRUPT. */
int pefa__graph_store_view(pefa_index *ix, uint32_t target, const void *vecs, uint32_t n, uint32_t dim,
                     size_t vec_stride, int elem, hnsw_view *v);

/* Full structural check of a graph (verify): counts, ids, offsets. */
int pefa__graph_store_check(pefa_index *ix, uint32_t target, int *bad);

#endif
