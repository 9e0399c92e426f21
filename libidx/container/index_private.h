/*
 * index_private.h - internal to the container (reader.c, verify.c, meta.c):
 * the opened index. Layers above use pefa.h and container/container.h.
 */
#ifndef PEFA_CONTAINER_INDEX_PRIVATE_H
#define PEFA_CONTAINER_INDEX_PRIVATE_H

#include <pthread.h>

#include "pefa.h"

struct pefa_index {
    char *path;
    int fd;
    const uint8_t *map;
    uint64_t size;
    pefa_file_info info;
    uint32_t dirent_size;
    uint64_t dir_off;
    pefa_section_info *secs;
    uint8_t *understood;    /* per section: kind, codec and elem known to this reader */
    pthread_mutex_t lock;   /* guards the lazy state below */
    void **zcache;          /* decompressed zstd sections */
    /* metadata, parsed on first use */
    int meta_state;         /* 0 not parsed, 1 ok, <0 error code */
    int meta_n;
    char *meta_buf;
    const char **meta_keys;
    const char **meta_vals;
    /* state of a layer above (views over sections), attached on first use */
    void *ext;
    void (*ext_free)(void *);
};

#endif
