/*
 * meta.c - the META section: UTF-8 text, one "key=value" per line, each line
 * ending in '\n'. Keys: 1..128 bytes of [A-Za-z0-9_.-], unique. Values: any
 * bytes but '\n' and NUL ([M1] in format/pefa-format-v1.md).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "container/container.h"
#include "container/index_private.h"

static int key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

int pefa__meta_key_ok(const char *key, size_t len)
{
    if (len == 0 || len > PEFA_META_MAX_KEY) return 0;
    for (size_t i = 0; i < len; i++)
        if (!key_char(key[i])) return 0;
    return 1;
}

int pefa__meta_value_ok(const char *value)
{
    return strchr(value, '\n') == NULL;
}

/* Parses text of len bytes into a NUL-separated copy. Returns 0 or CORRUPT. */
static int meta_parse(pefa_index *ix, const char *text, size_t len)
{
    size_t i, nlines = 0, line = 1;
    char *buf;
    int n = 0;
    for (i = 0; i < len; i++)
        if (text[i] == '\n') nlines++;
    RETURN_ERROR_IF(len && text[len - 1] != '\n', PEFA_ERR_CORRUPT,
                    "%s: META: last line does not end in a newline", ix->path);
    buf = (char *)malloc(len + 1);
    ix->meta_buf = buf;
    ix->meta_keys = (const char **)calloc(nlines + 1, sizeof(char *));
    ix->meta_vals = (const char **)calloc(nlines + 1, sizeof(char *));
    RETURN_ERROR_IF(!buf || !ix->meta_keys || !ix->meta_vals, PEFA_ERR_NOMEM, "%s: out of memory", ix->path);
    memcpy(buf, text, len);
    buf[len] = 0;
    for (i = 0; i < len; line++) {
        size_t start = i, eq = 0;
        while (i < len && buf[i] != '\n') {
            RETURN_ERROR_IF(buf[i] == 0, PEFA_ERR_CORRUPT, "%s: META line %zu: NUL byte", ix->path, line);
            if (!eq && buf[i] == '=') eq = i;
            i++;
        }
        RETURN_ERROR_IF(!eq, PEFA_ERR_CORRUPT, "%s: META line %zu: not key=value", ix->path, line);
        RETURN_ERROR_IF(!pefa__meta_key_ok(buf + start, eq - start), PEFA_ERR_CORRUPT,
                        "%s: META line %zu: key is not 1..%u bytes of [A-Za-z0-9_.-]", ix->path, line,
                        PEFA_META_MAX_KEY);
        buf[eq] = 0;
        buf[i] = 0;
        for (int j = 0; j < n; j++)
            RETURN_ERROR_IF(strcmp(ix->meta_keys[j], buf + start) == 0, PEFA_ERR_CORRUPT,
                            "%s: META line %zu: duplicate key '%s'", ix->path, line, buf + start);
        ix->meta_keys[n] = buf + start;
        ix->meta_vals[n] = buf + eq + 1;
        n++;
        i++;
    }
    ix->meta_n = n;
    return 0;
}

static int meta_load(pefa_index *ix)
{
    int rc = 0, state, i;
    const void *p = NULL;
    uint64_t n = 0;
    pthread_mutex_lock(&ix->lock);
    state = ix->meta_state;
    pthread_mutex_unlock(&ix->lock);
    if (state != 0) return state < 0 ? state : 0;
    /* the section bytes are fetched outside the lock: pefa_index_section_data
     * takes ix->lock itself to decompress a zstd section */
    i = pefa_index_find(ix, PEFA_KIND_META, PEFA_TARGET_NONE);
    if (i >= 0) rc = pefa_index_section_data(ix, (uint32_t)i, &p, &n);
    pthread_mutex_lock(&ix->lock);
    if (ix->meta_state == 0) {
        if (i < 0) {
            ix->meta_state = 1; /* no META: no keys */
        } else if (rc == 0 && (rc = meta_parse(ix, (const char *)p, (size_t)n)) == 0) {
            ix->meta_state = 1;
        } else {
            ix->meta_n = 0;
            ix->meta_state = rc;
        }
    }
    rc = ix->meta_state < 0 ? ix->meta_state : 0;
    pthread_mutex_unlock(&ix->lock);
    return rc;
}

int pefa_index_meta_count(pefa_index *ix)
{
    int rc = meta_load(ix);
    return rc < 0 ? rc : ix->meta_n;
}

int pefa_index_meta_at(pefa_index *ix, int i, const char **key, const char **value)
{
    FORWARD_IF_ERROR(meta_load(ix));
    RETURN_ERROR_IF(i < 0 || i >= ix->meta_n, PEFA_ERR_INVALID_ARG, "%s: no metadata entry %d", ix->path, i);
    *key = ix->meta_keys[i];
    *value = ix->meta_vals[i];
    return 0;
}

int pefa_index_meta_get(pefa_index *ix, const char *key, const char **value)
{
    *value = NULL;
    FORWARD_IF_ERROR(meta_load(ix));
    for (int i = 0; i < ix->meta_n; i++)
        if (strcmp(ix->meta_keys[i], key) == 0) {
            *value = ix->meta_vals[i];
            return 0;
        }
    return pefa__set_error(PEFA_ERR_NOT_FOUND, "%s: META has no key '%s'", ix->path, key);
}

int pefa__meta_uint(pefa_index *ix, const char *key, uint64_t max, int required, uint64_t *out)
{
    const char *v;
    char *end;
    unsigned long long x;
    int rc = pefa_index_meta_get(ix, key, &v);
    *out = 0;
    if (rc == PEFA_ERR_NOT_FOUND) {
        RETURN_ERROR_IF(required, PEFA_ERR_CORRUPT, "%s: META lacks %s", pefa_index_path(ix), key);
        return rc;
    }
    FORWARD_IF_ERROR(rc);
    errno = 0;
    x = strtoull(v, &end, 10);
    RETURN_ERROR_IF(errno || end == v || *end || x > max || v[0] == '-' || v[0] == '+', PEFA_ERR_CORRUPT,
                    "%s: META %s=%s is not a number in 0..%llu", pefa_index_path(ix), key, v,
                    (unsigned long long)max);
    *out = x;
    return 0;
}
