/* idmap.h - internal: writing the LMDB id map beside an index (idmap.c). */
#ifndef PEFA_IDMAP_H
#define PEFA_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "pefa.h"

/* "<index_path>.<32 hex uuid>.ids" */
void idmap_file_name(const char *index_path, const uint8_t uuid[16], char *out, size_t cap);

/* Writes the id map to final_path atomically (tmp + fsync + rename).
 * qids may be NULL when nq == 0. Duplicate ids: BAD_INPUT. */
int idmap_write(const char *final_path, const uint8_t uuid[16], const char *const *pids, uint32_t np,
                const char *const *qids, uint32_t nq, uint64_t *bytes);

/* size and XXH3-64 of a whole file; -1 if it cannot be read */
int idmap_digest(const char *path, uint64_t *bytes, uint64_t *digest);

/* checks the index's id map file against META idmap.bytes / idmap.xxh3
 * (full read; pefa_index_verify). 0 if the index has no id map. */
int idmap_verify(pefa_index *ix);

static inline uint32_t ld32_le(const void *p)
{
    return ld32(p);
}

#endif
