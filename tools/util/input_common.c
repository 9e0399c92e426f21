/* input_common.c - helpers shared by the input readers */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cli.h"
#include "util/input.h"

#include "util/input_private.h"

void tin_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int tin_idlist_rows(uint64_t n, tin_idlist *l)
{
    size_t need = (size_t)n * 21 + 1;
    char *p;
    l->n = n;
    l->buf = (char *)malloc(need);
    l->ids = (char **)malloc((n ? n : 1) * sizeof(char *));
    if (!l->buf || !l->ids) {
        free(l->buf);
        free(l->ids);
        l->buf = NULL;
        l->ids = NULL;
        l->n = 0;
        return -1;
    }
    p = l->buf;
    for (uint64_t i = 0; i < n; i++) {
        l->ids[i] = p;
        p += snprintf(p, 21, "%llu", (unsigned long long)i) + 1;
    }
    return 0;
}

void tin_printable(const unsigned char *s, size_t n, size_t max_in, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (o + 8 >= outlen || i >= max_in) {
            if (o + 4 <= outlen) {
                memcpy(out + o, "...", 3);
                o += 3;
            }
            break;
        }
        size_t u = c >= 0x80 ? cli_utf8_len(s + i, n - i) : 0;
        if (u == 2 && c == 0xC2 && s[i + 1] < 0xA0) u = 0; /* C1 controls stay escaped */
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[o++] = (char)c;
        } else if (u > 1 && o + u + 8 < outlen) { /* a valid UTF-8 character, as written */
            memcpy(out + o, s + i, u);
            o += u;
            i += u - 1;
        } else {
            snprintf(out + o, outlen - o, "\\x%02x", c);
            o += 4;
        }
    }
    out[o] = '\0';
}
