/* eval.c - recall and nDCG against qrels, trec_eval conventions (eval.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/eval.h"

typedef struct {
    const char *pid;
    double gain;
} ev_rel;

struct ev_qrels {
    uint64_t n_queries;
    uint64_t *first;      /* n_queries + 1: query q's relevant passages are rels[first[q]..first[q+1]) */
    ev_rel *rels;
};

static int rel_cmp(const void *a, const void *b)
{
    return strcmp(((const ev_rel *)a)->pid, ((const ev_rel *)b)->pid);
}

static int gain_desc(const void *a, const void *b)
{
    double x = ((const ev_rel *)a)->gain, y = ((const ev_rel *)b)->gain;
    return x > y ? -1 : x < y;
}

/* one query's lines [b, end): duplicates merged (gains add up), then only
 * gains > 0 kept, from rels[w] on; returns the new end */
static uint64_t compact_query(ev_rel *rels, uint64_t b, uint64_t end, uint64_t w)
{
    uint64_t start = w, k = w;
    qsort(rels + b, (size_t)(end - b), sizeof *rels, rel_cmp);
    for (uint64_t i = b; i < end; i++) {
        if (w > start && strcmp(rels[w - 1].pid, rels[i].pid) == 0) rels[w - 1].gain += rels[i].gain;
        else rels[w++] = rels[i];
    }
    for (uint64_t i = start; i < w; i++)
        if (rels[i].gain > 0) rels[k++] = rels[i];
    return k;
}

ev_qrels *ev_prepare(const tin_qrels *qr, const tin_idlist *qids, const char *qrels_path, uint64_t *unmatched,
                     char *err, size_t errlen)
{
    ev_qrels *e = (ev_qrels *)calloc(1, sizeof *e);
    tin_idhash *h = tin_idhash_new(qids);
    int64_t *row = (int64_t *)malloc((qr->n ? qr->n : 1) * sizeof *row);
    uint64_t matched = 0, w = 0;
    *unmatched = 0;
    if (!e || !h || !row || !(e->first = (uint64_t *)calloc(qids->n + 2, sizeof *e->first)) ||
        !(e->rels = (ev_rel *)malloc((qr->n ? qr->n : 1) * sizeof *e->rels))) {
        snprintf(err, errlen, "out of memory for %s", qrels_path);
        goto fail;
    }
    e->n_queries = qids->n;
    for (uint64_t i = 0; i < qr->n; i++) { /* counting sort of lines by query row */
        row[i] = tin_idhash_get(h, qr->rows[i].qid);
        if (row[i] < 0) (*unmatched)++;
        else e->first[row[i] + 2]++, matched++;
    }
    if (matched == 0) {
        snprintf(err, errlen, "%s: none of its %llu lines names one of the %llu queries", qrels_path,
                 (unsigned long long)qr->n, (unsigned long long)qids->n);
        goto fail;
    }
    for (uint64_t q = 0; q < qids->n; q++) e->first[q + 2] += e->first[q + 1];
    for (uint64_t i = 0; i < qr->n; i++)
        if (row[i] >= 0) e->rels[e->first[row[i] + 1]++] = (ev_rel){qr->rows[i].pid, qr->rows[i].score};
    for (uint64_t q = 0; q < qids->n; q++) {
        uint64_t b = q ? e->first[q] : 0, end = e->first[q + 1];
        e->first[q] = w;
        w = compact_query(e->rels, b, end, w);
    }
    e->first[qids->n] = w;
    if (w == 0) {
        snprintf(err, errlen, "%s: no test query has a relevant passage (score > 0): nothing to evaluate", qrels_path);
        goto fail;
    }
    free(row);
    tin_idhash_free(h);
    return e;
fail:
    free(row);
    tin_idhash_free(h);
    ev_free(e);
    return NULL;
}

uint64_t ev_unknown_passages(const ev_qrels *e, int (*known)(void *ctx, const char *pid), void *ctx, uint64_t *n_rel,
                             const char **first)
{
    uint64_t n = e->first[e->n_queries], unknown = 0;
    *n_rel = n;
    *first = NULL;
    for (uint64_t i = 0; i < n; i++) {
        if (known(ctx, e->rels[i].pid)) continue;
        if (!unknown++) *first = e->rels[i].pid;
    }
    return unknown;
}

/* gain of pid for query q (0 if not relevant): binary search, ids sorted */
static double gain_of(const ev_qrels *e, uint64_t q, const char *pid)
{
    ev_rel key = {pid, 0};
    const ev_rel *f = (const ev_rel *)bsearch(&key, e->rels + e->first[q], (size_t)(e->first[q + 1] - e->first[q]),
                                              sizeof *e->rels, rel_cmp);
    return f ? f->gain : 0;
}

/* the ideal DCG@cut (cut <= 10): the cut largest gains in rank order */
static double ideal_dcg(const ev_qrels *e, uint64_t q, uint32_t cut)
{
    ev_rel top[10];
    size_t n = 0;
    double idcg = 0;
    for (uint64_t i = e->first[q]; i < e->first[q + 1]; i++) { /* the cut largest gains */
        ev_rel r = e->rels[i];
        if (n < cut) top[n++] = r;
        else if (r.gain > top[cut - 1].gain) top[cut - 1] = r;
        else continue;
        qsort(top, n, sizeof *top, gain_desc);
    }
    for (size_t r = 0; r < n; r++) idcg += top[r].gain / log2((double)r + 2.0);
    return idcg;
}

void ev_metrics_init(ev_metrics *m, uint32_t k)
{
    memset(m, 0, sizeof *m);
    if (k > 10) m->cut[m->n_cut++] = 10;
    if (k > 20) m->cut[m->n_cut++] = 20;
    m->cut[m->n_cut++] = k < 100 ? k : 100;
    m->ndcg_cut = k < 10 ? k : 10;
}

void ev_add(const ev_qrels *e, uint64_t q, const char *const *hit_ids, uint32_t n, ev_metrics *m)
{
    uint64_t nrel = e->first[q + 1] - e->first[q];
    uint32_t found[EV_MAX_CUTS] = {0}, last = m->cut[m->n_cut - 1];
    double dcg = 0;
    if (nrel == 0) {
        m->skipped++;
        return;
    }
    for (uint32_t r = 0; r < n && r < last; r++) {
        double g = gain_of(e, q, hit_ids[r]);
        if (g <= 0) continue;
        if (r < m->ndcg_cut) dcg += g / log2(r + 2.0);
        for (uint32_t c = 0; c < m->n_cut; c++) found[c] += r < m->cut[c];
    }
    for (uint32_t c = 0; c < m->n_cut; c++) m->recall[c] += (double)found[c] / (double)nrel;
    m->ndcg += dcg / ideal_dcg(e, q, m->ndcg_cut);
    m->judged++;
}

void ev_free(ev_qrels *e)
{
    if (!e) return;
    free(e->first);
    free(e->rels);
    free(e);
}
