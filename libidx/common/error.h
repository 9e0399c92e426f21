/*
 * error.h - internal error helpers: one-line error paths.
 *
 *   RETURN_ERROR_IF(cond, PEFA_ERR_CORRUPT, "%s: section %u offset past end", path, i);
 *   FORWARD_IF_ERROR(pefa_writer_end(w));
 *
 * pefa__set_error() stores a formatted detail in a thread-local buffer that
 * pefa_last_error_detail() returns, and returns the code.
 */
#ifndef PEFA_COMMON_ERROR_H
#define PEFA_COMMON_ERROR_H

#include "pefa.h"

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int pefa__set_error(int code, const char *fmt, ...);

#define RETURN_ERROR_IF(cond, code, ...)                                               \
    do {                                                                               \
        if (cond) return pefa__set_error((code), __VA_ARGS__);                          \
    } while (0)

#define FORWARD_IF_ERROR(expr)                                                         \
    do {                                                                               \
        int pefa_fwd_rc_ = (expr);                                                     \
        if (pefa_fwd_rc_ < 0) return pefa_fwd_rc_;                                     \
    } while (0)

#endif
