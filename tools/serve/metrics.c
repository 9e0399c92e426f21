/* metrics.c - counters and the Prometheus page (metrics.h). */
#include "serve/metrics.h"

static const int status_code[SRV_N_STATUS] = {
#define SRV_X(code) code,
    SRV_STATUS_LIST(SRV_X)
#undef SRV_X
};
static const char *const mode_name[SRV_N_MODES] = {"none", "erm", "xs", "xl"};
/* upper bounds in seconds: 0.25 ms .. 10 s */
static const double bucket_le[SRV_N_BUCKETS] = {0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
                                                0.1,     0.25,   0.5,   1,     2.5,   5,    10};

static int status_index(int status)
{
    for (int i = 0; i < SRV_N_STATUS; i++)
        if (status_code[i] == status) return i;
    return SRV_ST_500;
}

void srv_metrics_request(srv_metrics *m, int status, int mode, double seconds, uint32_t queries)
{
    int b = 0;
    if (mode < 0 || mode >= SRV_N_MODES) mode = 0;
    atomic_fetch_add_explicit(&m->requests[status_index(status)][mode], 1, memory_order_relaxed);
    if (mode == 0) return; /* latency and queries: searches only */
    atomic_fetch_add_explicit(&m->queries[mode], queries, memory_order_relaxed);
    while (b < SRV_N_BUCKETS && seconds > bucket_le[b]) b++;
    atomic_fetch_add_explicit(&m->bucket[mode][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->latency_us[mode], (unsigned long long)(seconds * 1e6), memory_order_relaxed);
}

static unsigned long long get(atomic_ullong *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static void render_requests(srv_metrics *m, srv_buf *o)
{
    srv_buf_put(o, "# HELP pefa_serve_requests_total HTTP requests answered, by status and search mode.\n"
                   "# TYPE pefa_serve_requests_total counter\n");
    for (int s = 0; s < SRV_N_STATUS; s++)
        for (int md = 0; md < SRV_N_MODES; md++) {
            unsigned long long n = get(&m->requests[s][md]);
            if (n) srv_buf_printf(o, "pefa_serve_requests_total{status=\"%d\",mode=\"%s\"} %llu\n", status_code[s], mode_name[md], n);
        }
    srv_buf_put(o, "# HELP pefa_serve_queries_total Query vectors answered (a batch counts each).\n"
                   "# TYPE pefa_serve_queries_total counter\n");
    for (int md = 1; md < SRV_N_MODES; md++)
        srv_buf_printf(o, "pefa_serve_queries_total{mode=\"%s\"} %llu\n", mode_name[md], get(&m->queries[md]));
}

static void render_latency(srv_metrics *m, srv_buf *o)
{
    srv_buf_put(o, "# HELP pefa_serve_search_duration_seconds POST /search time, body received to answer ready.\n"
                   "# TYPE pefa_serve_search_duration_seconds histogram\n");
    for (int md = 1; md < SRV_N_MODES; md++) {
        unsigned long long cum = 0;
        for (int b = 0; b <= SRV_N_BUCKETS; b++) {
            cum += get(&m->bucket[md][b]);
            if (b < SRV_N_BUCKETS)
                srv_buf_printf(o, "pefa_serve_search_duration_seconds_bucket{mode=\"%s\",le=\"%g\"} %llu\n", mode_name[md],
                               bucket_le[b], cum);
            else
                srv_buf_printf(o, "pefa_serve_search_duration_seconds_bucket{mode=\"%s\",le=\"+Inf\"} %llu\n",
                               mode_name[md], cum);
        }
        srv_buf_printf(o, "pefa_serve_search_duration_seconds_sum{mode=\"%s\"} %.6f\n", mode_name[md],
                       get(&m->latency_us[md]) / 1e6);
        srv_buf_printf(o, "pefa_serve_search_duration_seconds_count{mode=\"%s\"} %llu\n", mode_name[md], cum);
    }
}

void srv_metrics_render(srv_metrics *m, const srv_index *g, double start_unix, srv_buf *o)
{
    render_requests(m, o);
    render_latency(m, o);
    srv_buf_printf(o,
                   "# HELP pefa_serve_in_flight Requests begun and not yet answered.\n"
                   "# TYPE pefa_serve_in_flight gauge\npefa_serve_in_flight %d\n",
                   atomic_load(&m->in_flight));
    srv_buf_put(o, "# HELP pefa_serve_index_info The index serving now (value 1).\n"
                   "# TYPE pefa_serve_index_info gauge\npefa_serve_index_info{uuid=\"");
    srv_buf_put(o, g->uuid);
    srv_buf_printf(o, "\",passages=\"%u\",dim=\"%u\"} 1\n", g->mi.n_passages, g->mi.dim);
    srv_buf_printf(o,
                   "# HELP pefa_serve_index_loaded_seconds When the serving index was loaded (Unix time).\n"
                   "# TYPE pefa_serve_index_loaded_seconds gauge\npefa_serve_index_loaded_seconds %.3f\n"
                   "# HELP pefa_serve_index_load_duration_seconds Open and verify time of the serving index.\n"
                   "# TYPE pefa_serve_index_load_duration_seconds gauge\n"
                   "pefa_serve_index_load_duration_seconds %.6f\n",
                   g->loaded_unix, g->load_seconds);
    srv_buf_printf(o,
                   "# HELP pefa_serve_reloads_total Index reloads, by result.\n"
                   "# TYPE pefa_serve_reloads_total counter\n"
                   "pefa_serve_reloads_total{result=\"ok\"} %llu\npefa_serve_reloads_total{result=\"refused\"} %llu\n",
                   get(&m->reloads_ok), get(&m->reloads_refused));
    srv_buf_printf(o,
                   "# HELP pefa_serve_start_seconds When this process started (Unix time).\n"
                   "# TYPE pefa_serve_start_seconds gauge\npefa_serve_start_seconds %.3f\n",
                   start_unix);
}
