/*
 * verify.c - container verification: every checksum, every padding byte,
 * every compressed section, META syntax. Reads the whole file once; open()
 * does none of this (format/pefa-format-v1.md, "What open checks and what
 * verify checks"). What the sections mean is checked a layer up
 * (pefa_verify, pefa/verify.c).
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/error.h"
#include "container/format.h"
#include "container/index_private.h"

static int zero_range(const pefa_index *ix, uint64_t from, uint64_t to)
{
    for (uint64_t p = from; p < to; p++)
        RETURN_ERROR_IF(ix->map[p] != 0, PEFA_ERR_CORRUPT,
                        "%s: padding byte at offset %llu is not zero", ix->path, (unsigned long long)p);
    return 0;
}

/* [V1] every byte not in the header, the directory or a section is zero */
static int check_padding(pefa_index *ix)
{
    uint32_t n = ix->info.n_sections;
    uint64_t pos = PEFA_HEADER_SIZE;
    uint64_t dir_end = ix->dir_off + (uint64_t)n * ix->dirent_size;
    int dir_done = 0;
    /* walk structures in offset order: sections are few, so O(n^2) picks are fine */
    for (;;) {
        uint64_t best = UINT64_MAX, best_end = 0;
        for (uint32_t i = 0; i < n; i++) {
            const pefa_section_info *s = &ix->secs[i];
            if (s->offset >= pos && s->offset < best && s->stored_size) {
                best = s->offset;
                best_end = s->offset + s->stored_size;
            }
        }
        if (!dir_done && ix->dir_off >= pos && ix->dir_off <= best) {
            if (dir_end == ix->dir_off && best != UINT64_MAX) { dir_done = 1; continue; }
            best = ix->dir_off;
            best_end = dir_end;
            dir_done = 1;
        }
        if (best == UINT64_MAX) break;
        FORWARD_IF_ERROR(zero_range(ix, pos, best));
        pos = best_end;
    }
    return zero_range(ix, pos, ix->size);
}

int pefa_index_verify(pefa_index *ix, int *bad_section)
{
    int rc;
    if (bad_section) *bad_section = -1;
    rc = check_padding(ix);
    if (rc) return rc;
    for (uint32_t i = 0; i < ix->info.n_sections; i++) {
        const pefa_section_info *s = &ix->secs[i];
        if (XXH3_64bits(ix->map + s->offset, (size_t)s->stored_size) != s->checksum) {
            if (bad_section) *bad_section = (int)i;
            return pefa__set_error(PEFA_ERR_CHECKSUM, "%s: section %u (%s/%s): checksum mismatch",
                                  ix->path, i, pefa_kind_name(s->kind), pefa_target_name(s->target));
        }
        if (ix->understood[i] && s->codec == PEFA_CODEC_ZSTD) {
            const void *p;
            uint64_t len;
            rc = pefa_index_section_data(ix, i, &p, &len);
            if (rc) {
                if (bad_section) *bad_section = (int)i;
                return rc;
            }
        }
    }
    /* [M1] META is container syntax: key=value lines */
    rc = pefa_index_meta_count(ix);
    if (rc < 0 && bad_section) *bad_section = pefa_index_find(ix, PEFA_KIND_META, PEFA_TARGET_NONE);
    return rc < 0 ? rc : 0;
}
