/* digest.c - size and XXH3-64 of a whole file (provenance, id-map binding). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/error.h"

#define DIGEST_CHUNK (1u << 20)

int pefa_file_digest(const char *path, uint64_t *bytes, uint64_t *xxh3)
{
    FILE *f = fopen(path, "rb");
    XXH3_state_t *st;
    unsigned char *buf;
    size_t n;
    int bad;
    RETURN_ERROR_IF(!f, PEFA_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    st = XXH3_createState();
    buf = (unsigned char *)malloc(DIGEST_CHUNK);
    if (!st || !buf) {
        fclose(f);
        XXH3_freeState(st);
        free(buf);
        return pefa__set_error(PEFA_ERR_NOMEM, "%s: out of memory", path);
    }
    XXH3_64bits_reset(st);
    *bytes = 0;
    while ((n = fread(buf, 1, DIGEST_CHUNK, f)) > 0) {
        XXH3_64bits_update(st, buf, n);
        *bytes += n;
    }
    bad = ferror(f) ? errno : 0;
    *xxh3 = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    free(buf);
    fclose(f);
    RETURN_ERROR_IF(bad, PEFA_ERR_IO, "%s: read error: %s", path, strerror(bad));
    return 0;
}
