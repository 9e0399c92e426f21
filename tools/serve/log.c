/* log.c - pefa-serve's event lines (log.h). */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "serve/log.h"

double srv_unix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void srv_log(const char *event, const char *fmt, ...)
{
    struct timespec ts;
    struct tm tm;
    char when[32], line[1024];
    va_list ap;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* one fprintf per line: lines from several threads do not interleave */
    fprintf(stderr, "pefa-serve: %s.%03ldZ %s %s\n", when, ts.tv_nsec / 1000000L, event, line);
}
