/*
 * http.h - pefa-serve's HTTP side on libmicrohttpd (prefix srv_http_):
 * routes, body limits, the body deadline, JSON errors, metrics per request.
 *
 *   POST /search   srv_request_parse + srv_search on the serving generation
 *   GET  /healthz  200 {"status":"ok",...}; 503 while draining
 *   GET  /info     the serving index (srv_index.info_json)
 *   GET  /metrics  Prometheus text
 *
 * Threads: MHD's pool of `threads` threads, each polling its own connections
 * and answering their requests itself; a searcher per request comes from the
 * generation's pool, so there are never more searchers than threads.
 */
#ifndef PEFA_SERVE_HTTP_H
#define PEFA_SERVE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "serve/index.h"
#include "serve/metrics.h"
#include "serve/request.h"

/* open connections at once (MHD refuses more); each costs a few KB */
#define SRV_MAX_CONNECTIONS 1000u

typedef struct {
    const char *listen;   /* "HOST:PORT" or "[V6]:PORT"; port 0 = any free one */
    uint32_t threads;
    size_t max_body;      /* bytes of a POST body (413 beyond) */
    uint32_t timeout_ms;  /* a body must arrive within this (closed otherwise) */
    srv_limits lim;
} srv_http_config;

typedef struct srv_http srv_http;

/* Starts listening; -1 with err (address, bind). */
int srv_http_start(const srv_http_config *cfg, srv_slot *slot, srv_metrics *m, srv_http **out, char *err,
                   size_t errlen);
/* "127.0.0.1:8080" as bound (the real port when 0 was asked) */
const char *srv_http_address(const srv_http *h);
/* Stops accepting connections; requests already begun are answered (with
 * "Connection: close"), /healthz says 503. */
void srv_http_quiesce(srv_http *h);
/* Requests begun and not yet answered. */
int srv_http_in_flight(const srv_http *h);
/* Closes every connection and frees h. */
void srv_http_stop(srv_http *h);

#endif
