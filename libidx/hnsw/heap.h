/*
 * hnsw_heap.h - internal: the binary heaps of HNSW build and search, on
 * (score, id) pairs: a min-heap of candidates and a max-heap of results.
 * (Scores are "distances" here: smaller is better.)
 */
#ifndef PEFA_HNSW_HEAP_H
#define PEFA_HNSW_HEAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float d;
    uint32_t id;
} hnsw_cand;

/* min-heap (candidates) and max-heap (results) on d */
static inline void minh_push(hnsw_cand *h, size_t *len, float d, uint32_t id)
{
    size_t i = (*len)++;
    while (i > 0) {
        size_t p = (i - 1) >> 1;
        if (!(d < h[p].d))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i].d = d;
    h[i].id = id;
}

static inline void minh_pop(hnsw_cand *h, size_t *len)
{
    size_t n = --(*len);
    if (n == 0)
        return;
    hnsw_cand x = h[n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n)
            break;
        if (l + 1 < n && h[l + 1].d < h[l].d)
            l++;
        if (!(h[l].d < x.d))
            break;
        h[i] = h[l];
        i = l;
    }
    h[i] = x;
}

static inline void maxh_push(hnsw_cand *h, size_t *len, float d, uint32_t id)
{
    size_t i = (*len)++;
    while (i > 0) {
        size_t p = (i - 1) >> 1;
        if (!(d > h[p].d))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i].d = d;
    h[i].id = id;
}

static inline void maxh_pop(hnsw_cand *h, size_t *len)
{
    size_t n = --(*len);
    if (n == 0)
        return;
    hnsw_cand x = h[n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n)
            break;
        if (l + 1 < n && h[l + 1].d > h[l].d)
            l++;
        if (!(h[l].d > x.d))
            break;
        h[i] = h[l];
        i = l;
    }
    h[i] = x;
}

#endif
