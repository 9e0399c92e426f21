/* buf.c - pefa-serve's output buffer (buf.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/buf.h"
#include "util/cli.h"

static int grow(srv_buf *b, size_t more)
{
    size_t want, cap;
    char *nd;
    if (b->oom) return -1;
    if (more > SIZE_MAX / 2 - b->len - 1) want = SIZE_MAX;
    else want = b->len + more + 1;
    if (want <= b->cap) return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < want && cap < SIZE_MAX / 2) cap *= 2;
    if (want == SIZE_MAX || !(nd = (char *)realloc(b->data, cap))) {
        b->oom = 1;
        return -1;
    }
    b->data = nd;
    b->cap = cap;
    return 0;
}

void srv_buf_putn(srv_buf *b, const char *s, size_t n)
{
    if (grow(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void srv_buf_put(srv_buf *b, const char *s)
{
    srv_buf_putn(b, s, strlen(s));
}

void srv_buf_printf(srv_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    char small[128];
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        srv_buf_putn(b, small, (size_t)n);
        return;
    }
    if (grow(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void srv_buf_json_str(srv_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    srv_buf_putn(b, "\"", 1);
    while (n) {
        size_t run = 0, l;
        /* the longest run that needs no escaping, copied at once */
        while (run < n && p[run] >= 0x20 && p[run] < 0x7F && p[run] != '"' && p[run] != '\\') run++;
        if (run) {
            srv_buf_putn(b, (const char *)p, run);
            p += run;
            n -= run;
            continue;
        }
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            srv_buf_putn(b, esc, 2);
        } else if (*p == '\n') {
            srv_buf_put(b, "\\n");
        } else if (*p == '\t') {
            srv_buf_put(b, "\\t");
        } else if (*p < 0x20 || *p == 0x7F || (l = cli_utf8_len(p, n)) == 0) {
            srv_buf_printf(b, "\\u%04x", *p);
        } else {
            srv_buf_putn(b, (const char *)p, l);
            p += l;
            n -= l;
            continue;
        }
        p++;
        n--;
    }
    srv_buf_putn(b, "\"", 1);
}

void srv_buf_json_float(srv_buf *b, double v)
{
    if (isfinite(v)) srv_buf_printf(b, "%.9g", v);
    else srv_buf_put(b, "null");
}

char *srv_buf_take(srv_buf *b, size_t *len)
{
    char *d = b->oom ? NULL : b->data;
    if (len) *len = b->oom ? 0 : b->len;
    if (b->oom) free(b->data);
    if (!d && !b->oom && grow(b, 0) == 0) d = b->data, d[0] = 0; /* empty, but a valid string */
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
    return d;
}

void srv_buf_free(srv_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}
