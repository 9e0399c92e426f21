/*
 * buf.h - pefa-serve: a growable output buffer (prefix srv_buf_) for JSON
 * answers and the metrics page. Writing never fails visibly: after an
 * allocation failure the buffer is marked (oom) and further writes do
 * nothing, so a caller checks once at the end.
 */
#ifndef PEFA_SERVE_BUF_H
#define PEFA_SERVE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data;  /* NUL-terminated while !oom; malloc'd, handed over by srv_buf_take */
    size_t len, cap;
    int oom;
} srv_buf;

void srv_buf_put(srv_buf *b, const char *s);
void srv_buf_putn(srv_buf *b, const char *s, size_t n);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void srv_buf_printf(srv_buf *b, const char *fmt, ...);
/* s as a JSON string literal; bytes that are not valid UTF-8 become \u00XX */
void srv_buf_json_str(srv_buf *b, const char *s);
/* a float that reads back as the same float32 ("%.9g"); JSON has no NaN/Inf: null */
void srv_buf_json_float(srv_buf *b, double v);
/* the data (caller frees), or NULL after oom; the buffer is empty afterwards */
char *srv_buf_take(srv_buf *b, size_t *len);
void srv_buf_free(srv_buf *b);

#endif
