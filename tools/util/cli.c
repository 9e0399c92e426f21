/* cli.c - shared CLI helpers (see cli.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pefa.h"
#include "util/cli.h"

const char *cli_prog = "pefa";

void cli_fatal(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: error: ", cli_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(CLI_EXIT_FAIL);
}

void cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", cli_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", cli_prog);
    exit(CLI_EXIT_USAGE);
}

void cli_check_not_input(const char *out, const char *what, const char *const *paths, size_t n)
{
    struct stat o, sb;
    if (stat(out, &o) != 0) return; /* nothing there yet: no input is it */
    for (size_t i = 0; i < n; i++)
        if (paths[i] && stat(paths[i], &sb) == 0 && sb.st_dev == o.st_dev && sb.st_ino == o.st_ino)
            cli_usage_error("-o %s is the %s input %s: %s would replace its own input", out, what, paths[i],
                            cli_prog);
}

void cli_check_stdout(const char *what, int flush)
{
    if ((flush && fflush(stdout)) || ferror(stdout))
        cli_fatal("writing %s to stdout failed: %s", what, strerror(errno));
}

void cli_version(void)
{
    printf("%s (pefa %s, format %d.%d)\n", cli_prog, pefa_version_string(), PEFA_FORMAT_MAJOR, PEFA_FORMAT_MINOR);
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: warning: ", cli_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

uint64_t cli_parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi)
{
    char *end;
    unsigned long long v;
    uint64_t mul = 1;
    const char *d = s ? s : "";
    if (*d == '-' && d[1] >= '0' && d[1] <= '9')
        cli_usage_error("%s: %s is out of range (%llu..%llu)", opt, s, (unsigned long long)lo, (unsigned long long)hi);
    if (!*d || *d == '-' || *d == '+' || *d == ' ') cli_usage_error("%s: '%s' is not a number", opt, d);
    errno = 0;
    v = strtoull(s, &end, 10);
    if (end == s) cli_usage_error("%s: '%s' is not a number", opt, s);
    if (*end == 'K' || *end == 'k') mul = 1024, end++;
    else if (*end == 'M' || *end == 'm') mul = 1024 * 1024, end++;
    else if (*end == 'G' || *end == 'g') mul = 1024ull * 1024 * 1024, end++;
    if (*end) cli_usage_error("%s: '%s' is not a number", opt, s);
    if (errno == ERANGE || v > UINT64_MAX / mul || v * mul < lo || v * mul > hi)
        cli_usage_error("%s: %s is out of range (%llu..%llu)", opt, s, (unsigned long long)lo, (unsigned long long)hi);
    return v * mul;
}

float cli_parse_float(const char *opt, const char *s, float lo, float hi)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) cli_usage_error("%s: '%s' is not a number", opt, s);
    if (v < lo || v > hi) cli_usage_error("%s: %g is out of range (%g..%g)", opt, v, (double)lo, (double)hi);
    return (float)v;
}

int cli_parse_on_off(const char *opt, const char *s)
{
    if (strcmp(s, "on") == 0) return 1;
    if (strcmp(s, "off") == 0) return 0;
    cli_usage_error("%s: '%s' is not on or off", opt, s);
}

double cli_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void cli_progress(void *ctx, const char *stage, uint64_t done, uint64_t total)
{
    static const char *last;
    static double t_start, t_last;
    static int tty = -1;
    double t = cli_now();
    if (ctx) return; /* ctx != NULL: quiet */
    if (tty < 0) tty = isatty(STDERR_FILENO);
    if (stage != last) {
        if (last && tty) fputc('\n', stderr);
        fprintf(stderr, "%s: %s ...%s", cli_prog, stage, tty ? "" : "\n");
        last = stage;
        t_start = t_last = t;
    }
    if (tty && total && (t - t_last > 0.2 || done == total)) {
        fprintf(stderr, "\r%s: %s ... %5.1f%% (%.1fs)", cli_prog, stage, 100.0 * (double)done / (double)total,
                t - t_start);
        t_last = t;
    }
    if (done == total && total && !tty && t - t_start > 1.0)
        fprintf(stderr, "%s: %s done in %.1fs\n", cli_prog, stage, t - t_start);
    if (done == total && tty) fflush(stderr);
}

/* a JSON string literal; bytes that are not valid UTF-8 are written as U+00XX */
void cli_json_str(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    fputc('"', out);
    while (n) {
        size_t l;
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc((int)c, out);
        } else if (c == '\n') {
            fputs("\\n", out);
        } else if (c == '\r') {
            fputs("\\r", out);
        } else if (c == '\t') {
            fputs("\\t", out);
        } else if (c < 0x20 || c == 0x7F) {
            fprintf(out, "\\u%04x", c);
        } else if ((l = cli_utf8_len(p, n)) == 0) {
            fprintf(out, "\\u%04x", c);
        } else {
            fwrite(p, 1, l, out);
            p += l;
            n -= l;
            continue;
        }
        p++;
        n--;
    }
    fputc('"', out);
}
