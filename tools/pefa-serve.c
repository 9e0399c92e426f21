/*
 * pefa-serve - answers HTTP JSON searches from one mapped index, with hot
 * reload, metrics and a draining shutdown.
 *
 * Stages: arguments -> the index (opened and verified; exit 1 if it fails)
 * -> listening (libmicrohttpd thread pool) -> the signal loop: SIGHUP or a
 * replaced file reloads (a new generation, verified, swapped in; the old one
 * is unmapped when its last request finishes; a file that fails is refused
 * and the old one keeps serving); SIGTERM/SIGINT stop accepting, wait for the
 * requests in flight, exit 0.
 *
 * Deploy a new index by copy to a temporary name on the same filesystem,
 * `pefa-dump --verify`, then `mv` over the served name (README, "Serving").
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pefa.h"
#include "serve/http.h"
#include "serve/index.h"
#include "serve/log.h"
#include "serve/metrics.h"
#include "serve/request.h"
#include "util/cli.h"

#define SERVE_DEFAULT_POLL_MS 500u
#define SERVE_DRAIN_SECONDS 60.0 /* SIGTERM: the longest wait for requests in flight */

static void usage(void)
{
    printf("Usage: pefa-serve INDEX [options]\n"
           "\n"
           "Serves searches over HTTP from one mapped index: POST /search (JSON),\n"
           "GET /healthz, /info, /metrics (Prometheus). SIGHUP, or INDEX replaced by\n"
           "rename, loads the new file; SIGTERM drains and exits.\n"
           "\n"
           "  --listen HOST:PORT    address (default 127.0.0.1:8080; port 0: any free port,\n"
           "                        printed in the start line)\n"
           "  --threads N           request threads, each with its own searcher\n"
           "                        (default: online CPUs)\n"
           "  --max-batch N         queries per request (default %u)\n"
           "  --max-k N             hits per query (default %u, at most %u)\n"
           "  --max-body BYTES      request body size, K/M/G accepted (default %uM)\n"
           "  --timeout-ms N        a body must arrive within N ms; idle connections\n"
           "                        close after N ms rounded up to seconds (default %u)\n"
           "  --poll-ms N           how often INDEX is checked for a replacement (default %u)\n"
           "  --trust-idmap         at load, check the id map's size but not its hash\n"
           "                        (the index itself is always verified in full)\n"
           "  -h, --help, -V, --version\n",
           SRV_DEFAULT_MAX_BATCH, SRV_DEFAULT_MAX_K, PEFA_MAX_K, SRV_DEFAULT_MAX_BODY >> 20, SRV_DEFAULT_TIMEOUT_MS,
           SERVE_DEFAULT_POLL_MS);
}

typedef struct {
    const char *index_path;
    int trust_idmap;
    uint32_t poll_ms;
    srv_http_config http;
} serve_opts;

static void parse_args(int argc, char **argv, serve_opts *o)
{
    static const struct option opts[] = {
        {"listen", required_argument, 0, 'l'},    {"threads", required_argument, 0, 't'},
        {"max-batch", required_argument, 0, 'b'}, {"max-k", required_argument, 0, 'k'},
        {"max-body", required_argument, 0, 'B'},  {"timeout-ms", required_argument, 0, 'T'},
        {"poll-ms", required_argument, 0, 'p'},   {"trust-idmap", no_argument, 0, 'I'},
        {"help", no_argument, 0, 'h'},            {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hV", opts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(); exit(0);
        case 'V': cli_version(); exit(0);
        case ':': cli_usage_error("option '%s' needs an argument", argv[optind - 1]);
        case '?': cli_usage_error("unrecognized option '%s'", argv[optind - 1]);
        case 'l': o->http.listen = optarg; break;
        case 't': o->http.threads = (uint32_t)cli_parse_u64("--threads", optarg, 1, PEFA_MAX_THREADS); break;
        case 'b': o->http.lim.max_batch = (uint32_t)cli_parse_u64("--max-batch", optarg, 1, 1u << 20); break;
        case 'k': o->http.lim.max_k = (uint32_t)cli_parse_u64("--max-k", optarg, 1, PEFA_MAX_K); break;
        case 'B': o->http.max_body = (size_t)cli_parse_u64("--max-body", optarg, 2, 1ull << 32); break;
        case 'T': o->http.timeout_ms = (uint32_t)cli_parse_u64("--timeout-ms", optarg, 1, 3600000); break;
        case 'p': o->poll_ms = (uint32_t)cli_parse_u64("--poll-ms", optarg, 10, 3600000); break;
        case 'I': o->trust_idmap = 1; break;
        }
    }
    if (optind != argc - 1) cli_usage_error(optind >= argc ? "missing INDEX" : "more than one INDEX given");
    o->index_path = argv[optind];
}

/* ---- reload ------------------------------------------------------------------------ */
typedef struct {
    const serve_opts *o;
    srv_slot slot;
    srv_metrics metrics;
    srv_file_id refused;  /* the last file refused: not tried again until it changes */
    int have_refused;
} server;

static void reload(server *s, const char *why)
{
    srv_index *g, *old;
    char err[800], old_uuid[37];
    double t0 = cli_now();
    if (srv_index_load(s->o->index_path, s->o->trust_idmap, &g, err, sizeof err)) {
        old = srv_slot_acquire(&s->slot);
        srv_log("refuse", "%s: %s; still serving uuid=%s", why, err, old->uuid);
        srv_index_release(old);
        atomic_fetch_add(&s->metrics.reloads_refused, 1);
        s->have_refused = srv_file_id_of(s->o->index_path, &s->refused) == 0;
        return;
    }
    old = srv_slot_acquire(&s->slot);
    memcpy(old_uuid, old->uuid, sizeof old_uuid);
    srv_index_release(old);
    srv_slot_swap(&s->slot, g);
    s->have_refused = 0;
    atomic_fetch_add(&s->metrics.reloads_ok, 1);
    srv_log("reload", "%s: uuid=%s -> uuid=%s passages=%u load_ms=%.1f total_ms=%.1f", why, old_uuid, g->uuid,
            g->mi.n_passages, g->load_seconds * 1000, (cli_now() - t0) * 1000);
}

/* a cheap stat: another inode, size or mtime at INDEX means a new file */
static void poll_file(server *s)
{
    srv_file_id now;
    srv_index *g;
    int changed;
    if (srv_file_id_of(s->o->index_path, &now)) return; /* mid-rename or removed: keep serving */
    if (s->have_refused && srv_file_id_same(&now, &s->refused)) return;
    g = srv_slot_acquire(&s->slot);
    changed = !srv_file_id_same(&now, &g->id);
    srv_index_release(g);
    if (changed) reload(s, "file replaced");
}

/* ---- the signal loop ------------------------------------------------------------ */
static void serve_loop(server *s, srv_http *h, const sigset_t *sigs)
{
    struct timespec tick = {(time_t)(s->o->poll_ms / 1000), (long)(s->o->poll_ms % 1000) * 1000000L};
    double t0;
    int sig, n;
    for (;;) {
        sig = sigtimedwait(sigs, NULL, &tick);
        if (sig == SIGHUP) reload(s, "SIGHUP");
        else if (sig == SIGTERM || sig == SIGINT) break;
        else if (sig < 0 && errno == EAGAIN) poll_file(s);
    }
    n = srv_http_in_flight(h);
    srv_log("shutdown", "%s: no new connections; waiting for %d request%s in flight", sig == SIGINT ? "SIGINT" : "SIGTERM",
            n, n == 1 ? "" : "s");
    srv_http_quiesce(h);
    t0 = cli_now();
    while ((n = srv_http_in_flight(h)) > 0 && cli_now() - t0 < SERVE_DRAIN_SECONDS) {
        struct timespec ms10 = {0, 10000000L};
        nanosleep(&ms10, NULL);
    }
    if (n > 0) srv_log("shutdown", "%d request%s still in flight after %.0f s: closing them", n, n == 1 ? "" : "s",
                       SERVE_DRAIN_SECONDS);
}

int main(int argc, char **argv)
{
    static server s;
    serve_opts o;
    sigset_t sigs;
    srv_index *g;
    srv_http *h;
    char err[800];
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cli_prog = "pefa-serve";
    memset(&o, 0, sizeof o);
    o.http.listen = "127.0.0.1:8080";
    o.http.threads = ncpu > 0 ? (uint32_t)(ncpu < (long)PEFA_MAX_THREADS ? ncpu : (long)PEFA_MAX_THREADS) : 1;
    o.http.lim.max_batch = SRV_DEFAULT_MAX_BATCH;
    o.http.lim.max_k = SRV_DEFAULT_MAX_K;
    o.http.max_body = SRV_DEFAULT_MAX_BODY;
    o.http.timeout_ms = SRV_DEFAULT_TIMEOUT_MS;
    o.poll_ms = SERVE_DEFAULT_POLL_MS;
    parse_args(argc, argv, &o);
    /* the signals are taken by sigtimedwait in this thread only: every thread
     * started from here on inherits the mask */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    s.o = &o;
    if (srv_index_load(o.index_path, o.trust_idmap, &g, err, sizeof err)) cli_fatal("%s", err);
    srv_slot_init(&s.slot, g);
    if (srv_http_start(&o.http, &s.slot, &s.metrics, &h, err, sizeof err)) cli_fatal("%s", err);
    srv_log("start", "listen=%s index=%s uuid=%s passages=%u dim=%u verified=%s load_ms=%.1f threads=%u pid=%ld",
            srv_http_address(h), o.index_path, g->uuid, g->mi.n_passages, g->mi.dim,
            o.trust_idmap ? "index,idmap-size" : "index,idmap", g->load_seconds * 1000, o.http.threads, (long)getpid());
    serve_loop(&s, h, &sigs);
    srv_http_stop(h);
    srv_slot_destroy(&s.slot);
    srv_log("shutdown", "done");
    return 0;
}
