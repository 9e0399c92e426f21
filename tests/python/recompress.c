/*
 * recompress - test helper for tests/python: copies an index file section by
 * section into a new file, storing the sections of one kind (and target)
 * zstd-compressed, so the binding's views of compressed sections can be
 * tested (pefa-build compresses only Y). The copy gets a new UUID, so use it
 * on indexes without an id map.
 *
 *   recompress SRC DST KIND TARGET
 */
#include <stdio.h>
#include <stdlib.h>

#include "pefa.h"

static int fail(const char *what)
{
    fprintf(stderr, "recompress: %s: %s\n", what, pefa_last_error_detail());
    return 1;
}

int main(int argc, char **argv)
{
    pefa_index *ix;
    pefa_writer *w;
    uint32_t kind, target;
    if (argc != 5) {
        fprintf(stderr, "usage: recompress SRC DST KIND TARGET\n");
        return 2;
    }
    kind = (uint32_t)strtoul(argv[3], NULL, 10);
    target = (uint32_t)strtoul(argv[4], NULL, 10);
    if (pefa_index_open(argv[1], &ix)) return fail(argv[1]);
    if (pefa_writer_open(argv[2], &w)) return fail(argv[2]);
    for (uint32_t i = 0; i < pefa_index_section_count(ix); i++) {
        pefa_section_info si;
        const void *data;
        uint64_t size;
        if (pefa_index_section_info(ix, i, &si) || pefa_index_section_data(ix, i, &data, &size)) return fail(argv[1]);
        if (si.kind == kind && si.target == target) si.codec = PEFA_CODEC_ZSTD;
        if (pefa_writer_add(w, &si, data, (size_t)size)) return fail(argv[2]);
    }
    if (pefa_writer_commit(w)) return fail(argv[2]);
    pefa_index_close(ix);
    return 0;
}
