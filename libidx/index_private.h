/*
 * index_private.h - internal: the opened index, shared by reader.c, verify.c
 * and the PEFA layer.
 */
#ifndef PEFA_INDEX_PRIVATE_H
#define PEFA_INDEX_PRIVATE_H

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
    /* PEFA-layer state (views over sections), built on first use */
    void *pefa;
    void (*pefa_free)(void *);
};

/* PEFA-level structural checks run by pefa_index_verify after the container
 * checks (pefa_verify.c). Returns 0 or an error; *bad = failing section. */
int pefa_verify_structure(pefa_index *ix, int *bad);

/* a section's bytes if it exists and has the given element type, else NULL */
const void *pefa_section_ptr(pefa_index *ix, uint32_t kind, uint32_t target, uint8_t elem,
                             const pefa_section_info **info, int *err);

#endif
