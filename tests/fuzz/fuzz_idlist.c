/* fuzz_idlist.c - libFuzzer target: id list parsing and the id hash map. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    tin_idlist l;
    if (tin_idlist_parse(data, size, "fuzz.txt", &l, err, sizeof err) != 0) {
        if (err[0] == '\0' || l.ids || l.buf)
            abort();
        return 0;
    }
    tin_idhash *h = tin_idhash_new(&l);
    if (h) {
        for (uint64_t i = 0; i < l.n; i++) {
            size_t n = strlen(l.ids[i]);
            if (n == 0 || n > 511 || memchr(l.ids[i], '\t', n))
                abort();
            if (tin_idhash_get(h, l.ids[i]) != (int64_t)i) /* ids are unique */
                abort();
        }
        (void)tin_idhash_get(h, "");
        (void)tin_idhash_get(h, "fuzz-missing-id");
        tin_idhash_free(h);
    }
    tin_idlist_free(&l);
    return 0;
}
