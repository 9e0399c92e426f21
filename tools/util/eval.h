/*
 * eval.h - CLI-side retrieval metrics against qrels (prefix ev_), computed
 * as trec_eval / pytrec_eval / BEIR do:
 *   - relevant = qrels lines with a score > 0; gains are those scores
 *     (a (query, passage) pair listed twice: its scores add up);
 *   - recall@c = relevant passages in the top c / relevant passages;
 *   - nDCG@c (c <= 10) with gain / log2(rank + 1) and the ideal ranking of
 *     all relevant passages;
 *   - averages over the judged queries only (those with a relevant passage);
 *     queries without one are skipped and counted.
 */
#ifndef PEFA_TOOLS_EVAL_H
#define PEFA_TOOLS_EVAL_H

#include <stdint.h>

#include "util/input.h"

typedef struct ev_qrels ev_qrels;

#define EV_MAX_CUTS 3
typedef struct {
    uint32_t cut[EV_MAX_CUTS], n_cut; /* recall@cut[i], ascending */
    uint32_t ndcg_cut;                /* nDCG@ndcg_cut */
    double recall[EV_MAX_CUTS], ndcg; /* sums over judged queries */
    uint64_t judged, skipped;
} ev_metrics;

/* Zeroes m and sets the cutoffs honest for k hits per query: recall at 10,
 * 20 and 100 where they are below k, and at k itself when k < 100 (k >= 100:
 * 10, 20, 100); nDCG at min(10, k). k = 1: recall@1 and ndcg@1. */
void ev_metrics_init(ev_metrics *m, uint32_t k);

/* Indexes qrels by the rows of qids. Returns NULL and a message in err when
 * no qrels line names a query of qids, or none of those has a relevant
 * passage (so nothing could be evaluated), or on out of memory. *unmatched gets the number of lines naming other queries. */
ev_qrels *ev_prepare(const tin_qrels *qr, const tin_idlist *qids, const char *qrels_path, uint64_t *unmatched,
                     char *err, size_t errlen);
/* The relevant (query, passage) pairs whose passage id known() does not
 * know (known returns nonzero for a known id): returns their count, *n_rel
 * gets the number of relevant pairs, *first the first unknown id (or NULL). */
uint64_t ev_unknown_passages(const ev_qrels *e, int (*known)(void *ctx, const char *pid), void *ctx, uint64_t *n_rel,
                             const char **first);
/* adds query row q's ranked hit ids (n of them) to m */
void ev_add(const ev_qrels *e, uint64_t q, const char *const *hit_ids, uint32_t n, ev_metrics *m);
void ev_free(ev_qrels *e);

#endif
