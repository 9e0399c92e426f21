/*
 * cli.h - helpers shared by the pefa-* programs (prefix cli_): one fatal
 * error path, checked number parsing, progress lines on stderr.
 */
#ifndef PEFA_TOOLS_CLI_H
#define PEFA_TOOLS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* exit codes (STYLE: usage 2, runtime failure 1) */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

/* Ranges of the query options that pefa.h leaves open (pefa-query's flags,
 * pefa-serve's request fields): a beam or candidate list past these is a
 * mistake, not a setting. */
#define CLI_MAX_EF 1000000u     /* --ef, "ef" */
#define CLI_MAX_KNN 100000u     /* --knn, "knn" */
#define CLI_MAX_TOPK_P 1000000u /* --topk-p, "topk_p" */

/* program name used in messages */
extern const char *cli_prog;

/* "prog: error: <formatted>\n" on stderr, then exit(1) */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2), noreturn))
#endif
void cli_fatal(const char *fmt, ...);
/* "prog: <formatted>\nTry 'prog --help'.\n", exit(2) */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2), noreturn))
#endif
void cli_usage_error(const char *fmt, ...);
/* "prog: warning: <formatted>\n" */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
void cli_warn(const char *fmt, ...);

/* The output must not be one of the inputs (it would be replaced before, or
 * while, it is read): if out exists and is the same file as one of paths[0..n)
 * (device and inode, whatever the spelling; NULL paths are skipped), a usage
 * error "-o OUT is the WHAT input PATH: prog would replace its own input"
 * (exit 2). what names the input (an option, "shard"). */
void cli_check_not_input(const char *out, const char *what, const char *const *paths, size_t n);
/* stdout after writing `what` to it: a failed write (disk full, a closed
 * pipe) is fatal, with its reason. Call it right after the writes, while
 * errno still holds what failed; flush = 1 also flushes (at the end). */
void cli_check_stdout(const char *what, int flush);

/* "prog (pefa X.Y.Z, format M.m)" on stdout (--version) */
void cli_version(void);

/* Parse an unsigned integer in [lo, hi] with optional K/M/G suffix (x1024);
 * usage error naming the option otherwise. */
uint64_t cli_parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi);
/* Parse a finite float in [lo, hi]. */
float cli_parse_float(const char *opt, const char *s, float lo, float hi);
/* "on" -> 1, "off" -> 0; usage error naming the option otherwise. */
int cli_parse_on_off(const char *opt, const char *s);

/* seconds since an arbitrary start (monotonic) */
double cli_now(void);

/* progress: a line per stage; a running percentage only when stderr is a tty */
void cli_progress(void *ctx, const char *stage, uint64_t done, uint64_t total);

/* s as a JSON string literal: quotes, backslashes and control characters
 * escaped; bytes that are not valid UTF-8 written as \u00XX, so the output
 * is valid JSON for any bytes (ids in indexes built before format [I6]) */
void cli_json_str(FILE *out, const char *s);
/* length of the valid UTF-8 sequence at p (at most n bytes), or 0 */
size_t cli_utf8_len(const unsigned char *p, size_t n);
/* a UUID as printed everywhere (RFC 4122 byte order, lower-case, dashes) */
void cli_uuid_str(const uint8_t u[16], char out[37]);

#endif
