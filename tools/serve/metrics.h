/*
 * metrics.h - pefa-serve's counters and GET /metrics in the Prometheus text
 * format (prefix srv_metrics_). Every counter is a relaxed atomic: requests
 * on any thread add to them without a lock.
 */
#ifndef PEFA_SERVE_METRICS_H
#define PEFA_SERVE_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "serve/buf.h"
#include "serve/index.h"

/* the statuses pefa-serve answers with, in the order the counters keep them */
#define SRV_STATUS_LIST(X) X(200) X(400) X(404) X(405) X(408) X(413) X(500) X(503)
enum {
#define SRV_X(code) SRV_ST_##code,
    SRV_STATUS_LIST(SRV_X)
#undef SRV_X
    SRV_N_STATUS
};
/* mode labels: 0 = none (not a search, or refused before the mode was known) */
#define SRV_N_MODES 4
#define SRV_N_BUCKETS 15

typedef struct {
    atomic_ullong requests[SRV_N_STATUS][SRV_N_MODES];
    atomic_ullong queries[SRV_N_MODES];              /* vectors answered */
    atomic_ullong bucket[SRV_N_MODES][SRV_N_BUCKETS + 1]; /* search latency, last = +Inf */
    atomic_ullong latency_us[SRV_N_MODES];           /* sum */
    atomic_int in_flight;
    atomic_ullong reloads_ok, reloads_refused;
} srv_metrics;

/* counts a finished request (status: an HTTP code; mode: PEFA_MODE_* or 0) */
void srv_metrics_request(srv_metrics *m, int status, int mode, double seconds, uint32_t queries);
/* the whole page; g is the generation serving now */
void srv_metrics_render(srv_metrics *m, const srv_index *g, double start_unix, srv_buf *out);

#endif
