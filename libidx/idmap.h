/* idmap.h - internal: writing the LMDB id map beside an index (idmap.c). */
#ifndef PEFA_IDMAP_H
#define PEFA_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"

/* "<index_path>.<32 hex uuid>.ids" */
void idmap_file_name(const char *index_path, const uint8_t uuid[16], char *out, size_t cap);

/* Writes the id map to final_path atomically (tmp + fsync + rename).
 * qids may be NULL when nq == 0. Duplicate ids: BAD_INPUT. */
int idmap_write(const char *final_path, const uint8_t uuid[16], const char *const *pids, uint32_t np,
                const char *const *qids, uint32_t nq, uint64_t *bytes);

static inline uint32_t ld32_le(const void *p)
{
    return ld32(p);
}

#endif
