/*
 * search_private.h - internal: a searcher's state, shared by search.c (one
 * query) and batch.c (the pool and the threads of pefa_search_batch).
 */
#ifndef PEFA_SEARCH_PRIVATE_H
#define PEFA_SEARCH_PRIVATE_H

#include "hnsw/hnsw.h"
#include "kernels/dist.h"
#include "pefa/model.h"
#include "pefa/params.h"

struct pefa_searcher {
    pefa_index *ix;
    pefa_model *m;
    hnsw_scratch *hs;
    pefa_dot_fn dot;
    float *q;                /* normalised query, then a 0 for the XS column */
    /* growable buffers */
    uint32_t *ids;           /* the last search_set's results */
    float *scores;
    uint32_t cap;
    uint32_t *nids;          /* kNN neighbours */
    float *nsims;
    uint32_t ncap;
    pefa_hit *cand;          /* XL candidates; explain's sorted request */
    uint64_t ccap;
    uint32_t *rowcols;       /* one decoded Y row */
    float *rowvals;
    uint32_t rcap;
    pefa_contrib *cbuf;      /* explain's contributions */
    uint64_t cbcap;
};

int pefa__searcher_new(pefa_index *ix, pefa_model *m, pefa_searcher **out);
/* one query with resolved parameters */
int pefa__search_resolved(pefa_searcher *s, const float *q, const pefa_qp *r, pefa_hit *hits, uint32_t *n_hits);

#endif
