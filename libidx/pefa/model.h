/*
 * model.h - internal: the PEFA view of an opened index (pointers into the
 * mapped sections, graph views, a pool of searchers), built once on first
 * use and attached to the index.
 */
#ifndef PEFA_MODEL_H
#define PEFA_MODEL_H

#include <pthread.h>

#include "hnsw/hnsw.h"
#include "pefa.h"

typedef struct {
    pefa_model_info info;
    const char *path;         /* the index's path, for messages */
    int elem;                 /* vector element type (PEFA_TYPE_F32 / F16) */
    size_t stride;            /* bytes per vector row (P, Q, Z: dim columns) */
    size_t stride_e;          /* bytes per XS row: dim + 1 columns (unit-norm completion) */
    const void *P, *Q, *E, *Z;
    const float *S;           /* |S_j| (XS_NORMS), NULL in format 1.0 files */
    const uint64_t *y_rowptr; /* NULL if no Y */
    const uint8_t *y_rows;
    uint64_t y_rows_len;
    uint32_t y_cols;          /* Y's columns: n_passages, or every shard's passages in shard 0 */
    /* [S1] one shard of a set: global passage rows [rows_from, rows_from + n_passages) */
    uint32_t shard_index, shard_count, rows_from, rows_total;
    hnsw_view gp, gq, gx;     /* valid when info.has_graph_* */
    hnsw_pagemap *pages;      /* read-ahead requests over the mapping, or NULL */
    /* searchers lent out by pefa_search_batch (search.c) */
    pthread_mutex_t pool_lock;
    pefa_searcher **pool;
    uint32_t pool_n, pool_cap;
} pefa_model;

/* The model of ix (built on first call, then shared; thread-safe). */
int pefa__model_get(pefa_index *ix, pefa_model **out);

/* pool of searchers (search.c): take one (new if the pool is empty), give back */
int pefa__pool_take(pefa_index *ix, pefa_model *m, pefa_searcher **out);
void pefa__pool_give(pefa_model *m, pefa_searcher *s);
void pefa__pool_free(pefa_model *m);

#endif
