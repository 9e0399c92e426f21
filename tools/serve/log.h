/*
 * log.h - pefa-serve's event log: one line per event on stderr,
 *   pefa-serve: 2024-05-01T12:00:00.123Z reload uuid=... -> uuid=... ms=41
 * (start, reload, refusal, unmap, shutdown; no line per request).
 */
#ifndef PEFA_SERVE_LOG_H
#define PEFA_SERVE_LOG_H

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void srv_log(const char *event, const char *fmt, ...);

/* wall-clock seconds since the epoch (for "loaded at" figures) */
double srv_unix_now(void);

#endif
