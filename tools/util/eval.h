/*
 * eval.h - CLI-side retrieval metrics against qrels (prefix ev_), computed
 * as trec_eval / pytrec_eval / BEIR do:
 *   - relevant = qrels lines with a score > 0; gains are those scores
 *     (a (query, passage) pair listed twice: its scores add up);
 *   - recall@k = relevant passages in the top k / relevant passages;
 *   - nDCG@10 with gain / log2(rank + 1) and the ideal ranking of all
 *     relevant passages;
 *   - averages over the judged queries only (those with a relevant passage);
 *     queries without one are skipped and counted.
 */
#ifndef PEFA_TOOLS_EVAL_H
#define PEFA_TOOLS_EVAL_H

#include <stdint.h>

#include "util/input.h"

typedef struct ev_qrels ev_qrels;

typedef struct {
    double recall10, recall20, recall100, ndcg10; /* sums over judged queries */
    uint64_t judged, skipped;
} ev_metrics;

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
