/*
 * container.h - internal: what the container offers the layers above it
 * beyond pefa.h. The container knows nothing of what sections mean.
 */
#ifndef PEFA_CONTAINER_H
#define PEFA_CONTAINER_H

#include <stddef.h>

#include "pefa.h"

/* [M1] a META key: 1..PEFA_META_MAX_KEY bytes of [A-Za-z0-9_.-] */
#define PEFA_META_MAX_KEY 128u
int pefa__meta_key_ok(const char *key, size_t len);
/* a META value: no newline, no NUL (a C string has none) */
int pefa__meta_value_ok(const char *value);

/* A META value as a decimal number: 0 and *out; NOT_FOUND when absent and
 * !required (*out = 0); CORRUPT when absent and required, or not a number
 * in [0, max]. */
int pefa__meta_uint(pefa_index *ix, const char *key, uint64_t max, int required, uint64_t *out);

/* One attachment per index for the layer above (its views over sections),
 * freed by pefa_index_close with free_fn. pefa__index_ext returns it or NULL.
 * pefa__index_ext_set installs p unless another thread installed one first;
 * it returns the attachment in place (p or the earlier one; the caller frees
 * p when it lost). Thread-safe. */
void *pefa__index_ext(pefa_index *ix);

/* The file's read-only mapping (*len 0 for an empty file). */
void pefa__index_map(pefa_index *ix, const void **base, size_t *len);
void *pefa__index_ext_set(pefa_index *ix, void *p, void (*free_fn)(void *));

/* The bytes of section (kind, target) if it exists and has type elem: 0 and
 * *data (NULL when absent; *info then untouched), or CORRUPT (other type) or
 * the section_data error. */
int pefa__section_get(pefa_index *ix, uint32_t kind, uint32_t target, uint8_t elem, const void **data,
                      pefa_section_info *info);

/* 0 if nothing, or a regular file, is at path; INVALID_ARG naming the path
 * and what is there (directory, device, FIFO, socket) otherwise: the rule
 * every writer applies (pefa_writer_open, before the commit's rename, and
 * pefa_build before it creates anything), and pefa_output_check's first half. */
int pefa__output_path_ok(const char *path);

/* Header flags the file will carry ([H5]; only flags this library knows:
 * PEFA_FILE_FLAG_METRIC_IP). INVALID_ARG for others. */
int pefa__writer_set_flags(pefa_writer *w, uint64_t flags);

/* pefa_writer_commit, also telling whether the file was renamed into place
 * (then the commit happened even if a later directory fsync failed). */
int pefa__writer_commit(pefa_writer *w, int *renamed);

/* A finished, uncompressed section of an open writer, mapped read-only from
 * its temporary file: 0 and m->data (NULL for an empty section), STATE if
 * (kind, target) was not written or is compressed, IO if mmap fails.
 * pefa__writer_unmap releases it (before the writer is committed or aborted). */
typedef struct {
    const void *data;
    void *base;
    size_t len;
} pefa__wmap;
int pefa__writer_map(pefa_writer *w, uint32_t kind, uint32_t target, pefa__wmap *m);
void pefa__writer_unmap(pefa__wmap *m);

#endif
