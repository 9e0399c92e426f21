/* pagemap.c - read-ahead requests for the pages of a mapped file (pagemap.h) */
#define _DEFAULT_SOURCE 1 /* mincore (Linux, the BSDs) */
#include "hnsw/pagemap.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

hnsw_pagemap *pefa__pagemap_new(const void *base, size_t len)
{
    long ps = sysconf(_SC_PAGESIZE);
    hnsw_pagemap *pm;
    unsigned shift = 0;
    if (len == 0 || ps <= 0 || (ps & (ps - 1)) != 0 || ((uintptr_t)base & (uintptr_t)(ps - 1)) != 0) return NULL;
    while ((1ul << shift) < (unsigned long)ps) shift++;
    pm = (hnsw_pagemap *)calloc(1, sizeof *pm);
    if (!pm) return NULL;
    pm->base = (uintptr_t)base;
    pm->len = len;
    pm->shift = shift;
    pm->bits = (_Atomic uint64_t *)calloc(((len >> shift) >> 6) + 1, sizeof(uint64_t));
    if (!pm->bits) {
        free(pm);
        return NULL;
    }
    return pm;
}

/* how many of PEFA_PAGEMAP_SAMPLES pages spread over the mapping are resident */
static unsigned resident(const void *base, size_t len, size_t ps)
{
    unsigned n = 0;
    size_t pages = len / ps;
    for (unsigned i = 0; i < PEFA_PAGEMAP_SAMPLES && pages; i++) {
        unsigned char in = 0;
        size_t pg = (size_t)((uint64_t)pages * i / PEFA_PAGEMAP_SAMPLES);
#if defined(__linux__) || defined(__FreeBSD__)
        if (mincore((void *)((uintptr_t)base + pg * ps), ps, &in) == 0 && (in & 1)) n++;
#else
        (void)pg; /* no mincore: take the file as not resident */
#endif
    }
    return n;
}

hnsw_pagemap *pefa__pagemap_open(const void *base, size_t len)
{
    long ps = sysconf(_SC_PAGESIZE);
    if (len == 0 || ps <= 0) return NULL;
    if (resident(base, len, (size_t)ps) >= PEFA_PAGEMAP_SAMPLES * 9 / 10) return NULL;
    if (len <= PEFA_PAGEMAP_SMALL) {
        (void)posix_madvise((void *)(uintptr_t)base, len, POSIX_MADV_WILLNEED);
        return NULL;
    }
    return pefa__pagemap_new(base, len);
}

void pefa__pagemap_free(hnsw_pagemap *pm)
{
    if (!pm) return;
    free((void *)pm->bits);
    free(pm);
}

/* sets page pg's bit: whether this call set it */
static int claim(hnsw_pagemap *pm, size_t pg)
{
    uint64_t bit = UINT64_C(1) << (pg & 63);
    return !(atomic_fetch_or_explicit(&pm->bits[pg >> 6], bit, memory_order_relaxed) & bit);
}

static void willneed(hnsw_pagemap *pm, size_t from, size_t to)
{
    /* queued, not waited for; an error only means no read-ahead */
    (void)posix_madvise((void *)(pm->base + (from << pm->shift)), (to - from) << pm->shift, POSIX_MADV_WILLNEED);
}

size_t pefa__pagemap_ask(hnsw_pagemap *pm, size_t pg, size_t last)
{
    size_t from = pg, run = 0, n = 0;
    for (; pg <= last; pg++) {
        if (claim(pm, pg)) {
            if (!run) from = pg;
            run = 1;
            n++;
            continue;
        }
        if (run) willneed(pm, from, pg);
        run = 0;
    }
    if (run) willneed(pm, from, pg);
    return n;
}

hnsw_pagemap *pefa__pagemap_begin(hnsw_pagemap *pm)
{
    return pm && !atomic_load_explicit(&pm->settled, memory_order_relaxed) ? pm : NULL;
}

void pefa__pagemap_end(hnsw_pagemap *pm, size_t asked)
{
    if (!pm) return;
    if (asked) atomic_fetch_add_explicit(&pm->asked, asked, memory_order_relaxed);
    if ((atomic_fetch_add_explicit(&pm->searches, 1, memory_order_relaxed) + 1) % PEFA_PAGEMAP_WINDOW) return;
    /* a window ended: settle when it asked for fewer pages than it had searches */
    if (atomic_exchange_explicit(&pm->asked, 0, memory_order_relaxed) < PEFA_PAGEMAP_WINDOW)
        atomic_store_explicit(&pm->settled, 1, memory_order_relaxed);
}
