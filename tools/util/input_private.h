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

/* Copies at most min(n, max_in) bytes of s into out (outlen bytes) for a
 * message: printable ASCII and valid UTF-8 characters (but C1 controls)
 * kept, anything else as \xNN, "..." when cut. */
void tin_printable(const unsigned char *s, size_t n, size_t max_in, char *out, size_t outlen);

#endif
