/*
 * pagemap.h - internal: which pages of a mapped file a search has already
 * asked the kernel to read ahead (a cold-cache aid for in-place search).
 *
 * A graph search on a cold page cache pays one disk read per hop and per
 * neighbour row, one after another. Before it touches a batch of rows (a
 * node's neighbours, an upper-level list, the beam it re-scores) the search
 * asks for all their pages at once (madvise WILLNEED: reads are queued, not
 * waited for), so the batch costs about one read latency instead of one per
 * row. Each page is asked for once per mapping: a bit per page records it.
 * Once searches find almost nothing left to ask for (fewer than one new page
 * per search over PEFA_PAGEMAP_WINDOW searches) the map settles and searches
 * stop consulting it: a warm index pays nothing. A page evicted later is read
 * on demand, as without the map.
 *
 * Thread-safe: bits are set with atomic or; two threads may both ask for a
 * page, which is harmless.
 */
#ifndef PEFA_HNSW_PAGEMAP_H
#define PEFA_HNSW_PAGEMAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define PEFA_PAGEMAP_WINDOW 1024u /* searches per settling decision */
#define PEFA_PAGEMAP_SMALL (32u << 20) /* a file this small is read ahead whole */
#define PEFA_PAGEMAP_SAMPLES 32u /* pages sampled for residency */

typedef struct hnsw_pagemap {
    uintptr_t base;          /* page-aligned start of the mapping */
    size_t len;              /* bytes from base */
    unsigned shift;          /* log2 of the page size */
    _Atomic uint64_t *bits;  /* one bit per page: asked for */
    _Atomic uint64_t searches, asked; /* in the current window */
    _Atomic int settled;     /* 1: searches no longer ask */
} hnsw_pagemap;

/* A map over [base, base + len) (base page-aligned, as mmap returns it), or
 * NULL when len is 0 or memory is short (searches then run without one). */
hnsw_pagemap *pefa__pagemap_new(const void *base, size_t len);

/* The map a mapped file's searches should use: NULL when the file is mostly
 * in the page cache already (9 in 10 of PEFA_PAGEMAP_SAMPLES pages), or when
 * it is small (PEFA_PAGEMAP_SMALL): that is asked for whole, in one request,
 * which the kernel reads faster than page by page. Otherwise a new map. */
hnsw_pagemap *pefa__pagemap_open(const void *base, size_t len);
void pefa__pagemap_free(hnsw_pagemap *pm);

/* asks for pages [pg, last] not asked for yet (out of line: the first time
 * only), one request per run of pages; returns how many it asked for */
size_t pefa__pagemap_ask(hnsw_pagemap *pm, size_t pg, size_t last);

/* the map for one search: pm, or NULL when there is none or it settled */
hnsw_pagemap *pefa__pagemap_begin(hnsw_pagemap *pm);
/* one search ended having asked for `asked` pages */
void pefa__pagemap_end(hnsw_pagemap *pm, size_t asked);

/* Asks for the pages of [p, p + bytes) not asked for yet; returns how many.
 * pm may be NULL; addresses outside the mapping are ignored. */
static inline size_t pefa__pagemap_want(hnsw_pagemap *pm, const void *p, size_t bytes)
{
    uintptr_t off = (uintptr_t)p - (pm ? pm->base : 0);
    if (!pm || bytes == 0 || off >= pm->len) return 0;
    size_t last = (off + bytes - 1 < pm->len ? off + bytes - 1 : pm->len - 1) >> pm->shift;
    for (size_t pg = off >> pm->shift; pg <= last; pg++)
        if (!(atomic_load_explicit(&pm->bits[pg >> 6], memory_order_relaxed) & (UINT64_C(1) << (pg & 63))))
            return pefa__pagemap_ask(pm, pg, last);
    return 0;
}

#endif
