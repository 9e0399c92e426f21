/* idmap.h - internal: writing and checking the LMDB id map beside an index
 * (idmap.c; reading is public in pefa.h). */
#ifndef PEFA_IDMAP_H
#define PEFA_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "pefa.h"

/* [I1] "<index_path>.<32 hex uuid>.ids" */
void pefa__idmap_file_name(const char *index_path, const uint8_t uuid[16], char *out, size_t cap);

/* Writes the id map to final_path atomically (tmp + fsync + rename); *bytes
 * gets its size. qids may be NULL when nq == 0. Empty, overlong or
 * duplicate ids: BAD_INPUT naming the row(s). */
int pefa__idmap_write(const char *final_path, const uint8_t uuid[16], const char *const *pids, uint32_t np,
                      const char *const *qids, uint32_t nq, uint64_t *bytes);

/* [I3] checks the index's id map file against META idmap.bytes / idmap.xxh3
 * (a full read; with PEFA_IDMAP_TRUSTED the size only). 0 if the index has no
 * id map. */
int pefa__idmap_verify(pefa_index *ix, unsigned flags);

#endif
