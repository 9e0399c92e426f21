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

/* the steps of a query, for a set (set_search.c) to run them shard by shard:
 * sq_prepare normalises q into the searcher; sq_top answers ERM or XS;
 * sq_knn leaves XL's kNN part in s->cand[0..*nk) (row-sorted, rows of Y's
 * columns); sq_erm leaves the top n by <q, p> in s->ids / s->scores and
 * returns how many; sq_dot_p is <q, p_row>. */
int pefa__sq_prepare(pefa_searcher *s, const float *q);
int pefa__sq_top(pefa_searcher *s, const pefa_qp *r, pefa_hit *hits, uint32_t *n_hits);
int pefa__sq_knn(pefa_searcher *s, const pefa_qp *r, uint64_t *nk);
int pefa__sq_erm(pefa_searcher *s, uint32_t n, uint32_t ef, int exact);
float pefa__sq_dot_p(const pefa_searcher *s, uint32_t row);
/* PEFA-XS candidates (search.c; pefa.h PEFA_XS_KNN): the passages of the
 * nearest training queries into s->cand[0..*n) (row-sorted, unique, rows of
 * Y's columns); the top k of the XS graph (passages = 0) or of the passage
 * graph (1) into s->ids (returns the count); and a row's XS score */
int pefa__sq_xs_knn_rows(pefa_searcher *s, uint64_t *n);
int pefa__sq_xs_beam(pefa_searcher *s, const pefa_qp *r, int passages);
float pefa__sq_xs_score(const pefa_searcher *s, const pefa_qp *r, uint32_t row);
/* the best k of c[0..nc) (score desc, row asc), sorted, into hits */
void pefa__emit(pefa_hit *c, uint64_t nc, uint32_t k, pefa_hit *hits, uint32_t *n_hits);
int pefa__hit_row_cmp(const void *a, const void *b);
/* sorts c[0..n) by row and drops repeated rows; returns the new count */
uint64_t pefa__hits_unique_rows(pefa_hit *c, uint64_t n);
/* pefa_explain with rows checked against n_passages (a set: every shard's) */
int pefa__explain_rows(pefa_searcher *s, const float *q, const pefa_query_params *p, const uint32_t *rows,
                       uint32_t n_rows, pefa_contrib *out, uint32_t cap, uint32_t *n_out, uint32_t n_passages);

#endif
