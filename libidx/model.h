/*
 * model.h - internal: the PEFA view of an opened index (pointers into the
 * mapped sections, graph views), built once on first use.
 */
#ifndef PEFA_MODEL_H
#define PEFA_MODEL_H

#include "hnsw.h"
#include "pefa.h"

typedef struct {
    pefa_model_info info;
    int elem;                 /* vector element type */
    size_t stride;            /* bytes per vector row (P, Q, Z: dim columns) */
    size_t stride_e;          /* bytes per XS row: dim + 1 columns (unit-norm completion) */
    const void *P, *Q, *E, *Z;
    const uint64_t *y_rowptr; /* NULL if no Y */
    const uint8_t *y_rows;
    uint64_t y_rows_len;
    hnsw_view gp, gq, gx;     /* valid when info.has_graph_* */
} pefa_model;

/* The model of ix (built on first call, then shared; thread-safe). */
int pefa_model_get(pefa_index *ix, const pefa_model **out);

#endif
