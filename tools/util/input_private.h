/* input_private.h - internal to tools/util/input_*.c */
#ifndef PEFA_TOOLS_INPUT_PRIVATE_H
#define PEFA_TOOLS_INPUT_PRIVATE_H

#include <stddef.h>

#if defined(__GNUC__) || defined(__clang__)
#define TIN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TIN_PRINTF(a, b)
#endif

/* formats one message line into err (errlen bytes); no-op if err is NULL */
void tin_seterr(char *err, size_t errlen, const char *fmt, ...) TIN_PRINTF(3, 4);

#endif
