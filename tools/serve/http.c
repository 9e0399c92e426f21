/* http.c - pefa-serve's libmicrohttpd glue (http.h). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "serve/buf.h"
#include "serve/http.h"
#include "serve/log.h"
#include "serve/search.h"
#include "util/cli.h"

struct srv_http {
    struct MHD_Daemon *d;
    srv_http_config cfg;
    srv_slot *slot;
    srv_metrics *m;
    double start_unix;
    atomic_int draining;
    MHD_socket quiesced;  /* the listening socket MHD gave back, closed at stop */
    char address[80];
};

enum { R_SEARCH, R_HEALTH, R_INFO, R_METRICS, R_NONE };

/* one request's state, from its headers to its completion */
typedef struct {
    int route;
    double t0;          /* headers received */
    char *body;
    size_t len, cap;
    int too_big;        /* more than max_body arrived: the rest is dropped, then 413 */
    int counted;        /* its status is in the metrics */
} req_ctx;

/* queues a response that owns buf (malloc'd); buf NULL: out of memory */
static enum MHD_Result send_buf(srv_http *h, struct MHD_Connection *c, int status, const char *type, char *buf,
                                size_t len, const char *allow)
{
    struct MHD_Response *r;
    enum MHD_Result ok;
    if (!buf) return MHD_NO;
    if (!(r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE))) {
        free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (atomic_load(&h->draining)) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_json(srv_http *h, struct MHD_Connection *c, int status, srv_buf *b)
{
    size_t len;
    char *data = srv_buf_take(b, &len);
    return send_buf(h, c, status, "application/json", data, len, NULL);
}

/* {"error":"..."} and the request counted with that status */
static enum MHD_Result send_error(srv_http *h, struct MHD_Connection *c, req_ctx *x, int status, int mode,
                                  const char *msg)
{
    srv_buf b = {0};
    srv_buf_put(&b, "{\"error\":");
    srv_buf_json_str(&b, msg);
    srv_buf_put(&b, "}");
    size_t len;
    char *data;
    srv_metrics_request(h->m, status, mode, cli_now() - x->t0, 0);
    x->counted = 1;
    data = srv_buf_take(&b, &len);
    return send_buf(h, c, status, "application/json", data, len,
                    status != 405 ? NULL : x->route == R_SEARCH ? "POST" : "GET, HEAD");
}

static int route_of(const char *url)
{
    static const char *const paths[] = {"/search", "/healthz", "/info", "/metrics"};
    for (int i = 0; i < R_NONE; i++)
        if (strcmp(url, paths[i]) == 0) return i;
    return R_NONE;
}

static enum MHD_Result on_get(srv_http *h, struct MHD_Connection *c, req_ctx *x)
{
    srv_buf b = {0};
    srv_index *g = srv_slot_acquire(h->slot);
    int status = 200;
    const char *type = "application/json";
    if (x->route == R_HEALTH) {
        status = atomic_load(&h->draining) ? 503 : 200;
        srv_buf_printf(&b, "{\"status\":\"%s\",\"index_uuid\":\"%s\"}", status == 200 ? "ok" : "draining", g->uuid);
    } else if (x->route == R_INFO) {
        srv_buf_putn(&b, g->info_json, g->info_len);
    } else {
        srv_metrics_render(h->m, g, h->start_unix, &b);
        type = "text/plain; version=0.0.4; charset=utf-8";
    }
    srv_index_release(g);
    srv_metrics_request(h->m, status, 0, cli_now() - x->t0, 0);
    x->counted = 1;
    {
        size_t len;
        char *data = srv_buf_take(&b, &len);
        return send_buf(h, c, status, type, data, len, NULL);
    }
}

static enum MHD_Result on_search(srv_http *h, struct MHD_Connection *c, req_ctx *x)
{
    srv_buf b = {0};
    srv_request rq;
    char err[700];
    int status, mode = 0;
    double t = cli_now();
    srv_index *g = srv_slot_acquire(h->slot);
    status = srv_request_parse(x->body ? x->body : "", x->len, g->mi.dim, &h->cfg.lim, &rq, err, sizeof err);
    if (status == 0) {
        status = srv_search(g, &rq, &b, &mode, err, sizeof err);
        if (status == 0) status = 200;
    }
    srv_index_release(g);
    if (status != 200) {
        srv_buf_free(&b);
        srv_request_free(&rq);
        return send_error(h, c, x, status, mode, err);
    }
    srv_metrics_request(h->m, 200, mode, cli_now() - t, rq.n);
    srv_request_free(&rq);
    x->counted = 1;
    return send_json(h, c, 200, &b);
}

/* the first call for a request: headers only */
static enum MHD_Result on_headers(srv_http *h, struct MHD_Connection *c, const char *url, const char *method,
                                  void **con_cls)
{
    req_ctx *x = (req_ctx *)calloc(1, sizeof *x);
    const char *cl;
    if (!x) return MHD_NO;
    x->t0 = cli_now();
    x->route = route_of(url);
    *con_cls = x;
    atomic_fetch_add(&h->m->in_flight, 1);
    if (x->route == R_NONE) return send_error(h, c, x, 404, 0, "no such path (POST /search, GET /healthz /info /metrics)");
    if (x->route == R_SEARCH && strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return send_error(h, c, x, 405, 0, "/search takes POST");
    if (x->route != R_SEARCH && strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return send_error(h, c, x, 405, 0, "this path takes GET");
    cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (x->route == R_SEARCH && cl && strtoull(cl, NULL, 10) > h->cfg.max_body) {
        char msg[96];
        snprintf(msg, sizeof msg, "body: %s bytes, over --max-body %zu", cl, h->cfg.max_body);
        return send_error(h, c, x, 413, 0, msg);
    }
    return MHD_YES;
}

/* a piece of the body: kept up to max_body; a body that takes longer than
 * timeout_ms in all (slowloris) closes the connection */
static enum MHD_Result on_body(srv_http *h, req_ctx *x, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    if ((cli_now() - x->t0) * 1000 > h->cfg.timeout_ms) return MHD_NO;
    if (x->too_big || x->len + n > h->cfg.max_body) {
        x->too_big = 1;
        return MHD_YES;
    }
    if (x->len + n > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        char *nb;
        while (cap < x->len + n) cap *= 2;
        if (cap > h->cfg.max_body) cap = h->cfg.max_body;
        if (!(nb = (char *)realloc(x->body, cap))) return MHD_NO;
        x->body = nb;
        x->cap = cap;
    }
    memcpy(x->body + x->len, data, n);
    x->len += n;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    srv_http *h = (srv_http *)cls;
    req_ctx *x = (req_ctx *)*con_cls;
    (void)version;
    if (!x) return on_headers(h, c, url, method, con_cls);
    if (x->counted) { /* answered at the headers (404, 405, 413): drop the body */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) return on_body(h, x, upload_data, upload_data_size);
    if (x->route != R_SEARCH) return on_get(h, c, x);
    if (x->too_big) {
        char msg[96];
        snprintf(msg, sizeof msg, "body: over --max-body %zu bytes", h->cfg.max_body);
        return send_error(h, c, x, 413, 0, msg);
    }
    return on_search(h, c, x);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why)
{
    srv_http *h = (srv_http *)cls;
    req_ctx *x = (req_ctx *)*con_cls;
    (void)c;
    if (!x) return;
    /* closed before an answer: the body did not arrive in time, or the client left */
    if (!x->counted && (why == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED || why == MHD_REQUEST_TERMINATED_WITH_ERROR))
        srv_metrics_request(h->m, 408, 0, cli_now() - x->t0, 0);
    free(x->body);
    free(x);
    *con_cls = NULL;
    atomic_fetch_sub(&h->m->in_flight, 1);
}

/* "HOST:PORT" / "[V6]:PORT" -> a socket address (numeric or a name) */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sl, int *v6, char *err,
                        size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen, ':'), *h0 = listen;
    size_t hl;
    struct addrinfo hints, *res = NULL;
    int rc;
    char *end;
    unsigned long port;
    if (!colon || colon == listen || !colon[1]) return snprintf(err, errlen, "--listen '%s': expected HOST:PORT", listen), -1;
    port = strtoul(colon + 1, &end, 10);
    if (*end || colon[1] < '0' || colon[1] > '9' || port > 65535)
        return snprintf(err, errlen, "--listen '%s': port '%s' is not 0..65535", listen, colon + 1), -1;
    hl = (size_t)(colon - listen);
    if (listen[0] == '[' && colon[-1] == ']') h0 = listen + 1, hl -= 2;
    if (hl >= sizeof host) return snprintf(err, errlen, "--listen: host too long"), -1;
    memcpy(host, h0, hl);
    host[hl] = 0;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0)
        return snprintf(err, errlen, "--listen '%s': %s", listen, gai_strerror(rc)), -1;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return 0;
}

static void bound_address(srv_http *h, const struct sockaddr_storage *ss, int v6)
{
    char host[INET6_ADDRSTRLEN + 2] = "?";
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    getnameinfo((const struct sockaddr *)ss, v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in), host,
                sizeof host, NULL, 0, NI_NUMERICHOST);
    snprintf(h->address, sizeof h->address, v6 ? "[%s]:%u" : "%s:%u", host, di ? (unsigned)di->port : 0u);
}

int srv_http_start(const srv_http_config *cfg, srv_slot *slot, srv_metrics *m, srv_http **out, char *err,
                   size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int v6;
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC;
    /* an idle connection is closed after this many seconds (MHD counts whole seconds) */
    unsigned idle_s = (cfg->timeout_ms + 999) / 1000;
    srv_http *h = (srv_http *)calloc(1, sizeof *h);
    *out = NULL;
    if (!h) return snprintf(err, errlen, "out of memory"), -1;
    if (parse_listen(cfg->listen, &ss, &sl, &v6, err, errlen)) return free(h), -1;
    h->cfg = *cfg;
    h->quiesced = MHD_INVALID_SOCKET;
    h->slot = slot;
    h->m = m;
    h->start_unix = srv_unix_now();
    if (v6) flags |= MHD_USE_IPv6;
    errno = 0;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads, MHD_OPTION_CONNECTION_TIMEOUT,
                            idle_s ? idle_s : 1u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_CONNECTION_LIMIT, SRV_MAX_CONNECTIONS, MHD_OPTION_LISTEN_BACKLOG_SIZE, 256u, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "cannot listen on %s%s%s", cfg->listen, errno ? ": " : "", errno ? strerror(errno) : "");
        free(h);
        return -1;
    }
    (void)sl;
    bound_address(h, &ss, v6);
    *out = h;
    return 0;
}

const char *srv_http_address(const srv_http *h)
{
    return h->address;
}

void srv_http_quiesce(srv_http *h)
{
    MHD_socket fd;
    atomic_store(&h->draining, 1);
    fd = MHD_quiesce_daemon(h->d);
    if (fd == MHD_INVALID_SOCKET) return;
    /* new connections are refused from now on; the descriptor itself is closed
     * only after MHD_stop_daemon, since MHD's polling thread may still hold it
     * until it wakes (closing it here raced with that thread under TSan) */
    shutdown(fd, SHUT_RDWR);
    h->quiesced = fd;
}

int srv_http_in_flight(const srv_http *h)
{
    return atomic_load(&h->m->in_flight);
}

void srv_http_stop(srv_http *h)
{
    if (!h) return;
    MHD_stop_daemon(h->d);
    if (h->quiesced != MHD_INVALID_SOCKET) close(h->quiesced);
    free(h);
}
