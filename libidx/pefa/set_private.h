/*
 * set_private.h - internal: an opened shard set (set.c, set_search.c).
 */
#ifndef PEFA_SET_PRIVATE_H
#define PEFA_SET_PRIVATE_H

#include <pthread.h>

#include "pefa.h"
#include "pefa/model.h"

struct pefa_set {
    char *path;
    pefa_index *manifest;    /* NULL: a plain index, a set of one */
    uint32_t n;              /* shards */
    pefa_index **ix;
    pefa_model **m;
    uint32_t *from;          /* n + 1: shard i holds global rows [from[i], from[i+1]) */
    uint32_t n_total;
    unsigned idmap_flags;
    pthread_mutex_t lock;    /* guards im */
    pefa_idmap **im;         /* opened on first use */
};

/* the shard holding global passage row */
uint32_t pefa__set_shard_of(const pefa_set *s, uint32_t row);

#endif
