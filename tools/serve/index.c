/* index.c - loaded index generations and the serving slot (index.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "serve/buf.h"
#include "serve/index.h"
#include "serve/log.h"
#include "util/cli.h"

int srv_file_id_of(const char *path, srv_file_id *out)
{
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    out->dev = st.st_dev;
    out->ino = st.st_ino;
    out->size = st.st_size;
    out->mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    return 0;
}

int srv_file_id_same(const srv_file_id *a, const srv_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

static void meta_json(srv_buf *b, pefa_index *ix)
{
    int n = pefa_index_meta_count(ix);
    srv_buf_put(b, "{");
    for (int i = 0; i < n; i++) {
        const char *k, *v;
        if (pefa_index_meta_at(ix, i, &k, &v)) continue;
        if (i) srv_buf_put(b, ",");
        srv_buf_json_str(b, k);
        srv_buf_put(b, ":");
        srv_buf_json_str(b, v);
    }
    srv_buf_put(b, "}");
}

/* "shards":[{file, uuid, rows}...] of a set (one entry for a single file) */
static void shards_json(srv_buf *b, pefa_set *set)
{
    uint32_t n = pefa_set_shard_count(set);
    srv_buf_printf(b, ",\"shards\":[");
    for (uint32_t i = 0; i < n; i++) {
        pefa_index *ix = pefa_set_shard(set, i);
        pefa_file_info fi;
        pefa_model_info mi = PEFA_MODEL_INFO_INIT;
        char uuid[37];
        pefa_index_file_info(ix, &fi);
        cli_uuid_str(fi.uuid, uuid);
        if (pefa_model_describe(ix, &mi)) mi.n_passages = 0;
        srv_buf_put(b, i ? ",{\"file\":" : "{\"file\":");
        srv_buf_json_str(b, pefa_index_path(ix));
        srv_buf_printf(b, ",\"uuid\":\"%s\",\"file_size\":%" PRIu64 ",\"passages\":%u}", uuid, fi.file_size,
                       mi.n_passages);
    }
    srv_buf_put(b, "]");
}

/* GET /info: pefa-dump --json's summary (no section table), the model and
 * the shards */
static int build_info(srv_index *g, const char *path, int trust_idmap)
{
    pefa_file_info fi;
    srv_buf b = {0};
    pefa_index_file_info(g->head, &fi);
    srv_buf_put(&b, "{\"file\":");
    srv_buf_json_str(&b, path);
    srv_buf_printf(&b, ",\"format\":{\"major\":%u,\"minor\":%u},\"uuid\":\"%s\",\"file_size\":%" PRIu64,
                   fi.major, fi.minor, g->uuid, fi.file_size);
    srv_buf_printf(&b, ",\"n_sections\":%u,\"meta\":", fi.n_sections);
    meta_json(&b, g->head);
    srv_buf_printf(&b, ",\"model\":{\"n_passages\":%u,\"n_queries\":%u,\"dim\":%u,\"nnz\":%" PRIu64,
                   g->mi.n_passages, g->mi.n_queries, g->mi.dim, g->mi.nnz);
    srv_buf_printf(&b, ",\"xs_lambda\":%g,\"vector_type\":\"%s\"}", (double)g->mi.xs_lambda,
                   pefa_type_name(g->mi.vector_type));
    shards_json(&b, g->set);
    srv_buf_printf(&b, ",\"verified\":\"%s\",\"load_seconds\":%.3f}",
                   trust_idmap ? "index; id map size only (--trust-idmap)" : "index and id map", g->load_seconds);
    g->info_json = srv_buf_take(&b, &g->info_len);
    return g->info_json ? 0 : -1;
}

/* the id maps' bytes (unless --trust-idmap), then every shard's id map
 * opened here, on the loading thread, rather than by a first request */
static int check_idmaps(pefa_set *set, int trust_idmap, int *bad)
{
    uint32_t row = 0;
    for (uint32_t i = 0; i < pefa_set_shard_count(set); i++) {
        pefa_model_info mi = PEFA_MODEL_INFO_INIT;
        char id[PEFA_MAX_ID_BYTES + 1];
        pefa_idmap *im = NULL;
        *bad = (int)i;
        /* pefa_set_verify checked the rest; this hashes the id map, once */
        if (!trust_idmap && pefa_idmap_open(pefa_set_shard(set, i), 0, &im)) return -1;
        pefa_idmap_close(im);
        if (pefa_model_describe(pefa_set_shard(set, i), &mi)) return -1;
        if (mi.n_passages && pefa_set_id(set, PEFA_IDS_PASSAGES, row, id, sizeof id, NULL)) return -1;
        row += mi.n_passages;
    }
    *bad = -1;
    return 0;
}

/* open + verify; the file's identity is taken before the opens, so that a
 * rename in between is seen (the next poll reloads). The set is opened with
 * trusted id maps and check_idmaps hashes them once, here. */
static int open_verified(srv_index *g, const char *path, int trust_idmap, char *err, size_t errlen)
{
    int bad = -1;
    if (srv_file_id_of(path, &g->id)) return snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1;
    if (pefa_index_open(path, &g->head) || pefa_set_open(path, PEFA_IDMAP_TRUSTED, &g->set) ||
        pefa_set_verify(g->set, &bad) || check_idmaps(g->set, trust_idmap, &bad)) {
        if (bad >= 0) snprintf(err, errlen, "%s [shard %d]", pefa_last_error_detail(), bad);
        else snprintf(err, errlen, "%s", pefa_last_error_detail());
        return -1;
    }
    g->mi.size = sizeof g->mi;
    if (pefa_set_describe(g->set, &g->mi)) return snprintf(err, errlen, "%s", pefa_last_error_detail()), -1;
    return 0;
}

int srv_index_load(const char *path, int trust_idmap, srv_index **out, char *err, size_t errlen)
{
    srv_index *g = (srv_index *)calloc(1, sizeof *g);
    pefa_file_info fi;
    double t0 = cli_now();
    *out = NULL;
    if (!g) return snprintf(err, errlen, "out of memory"), -1;
    atomic_init(&g->refs, 1);
    if (open_verified(g, path, trust_idmap, err, errlen)) {
        srv_index_release(g);
        return -1;
    }
    pefa_index_file_info(g->head, &fi);
    cli_uuid_str(fi.uuid, g->uuid);
    g->load_seconds = cli_now() - t0;
    g->loaded_unix = srv_unix_now();
    if (build_info(g, path, trust_idmap)) {
        snprintf(err, errlen, "out of memory");
        srv_index_release(g);
        return -1;
    }
    *out = g;
    return 0;
}

void srv_index_release(srv_index *g)
{
    if (!g || atomic_fetch_sub(&g->refs, 1) != 1) return;
    if (g->set && g->uuid[0]) srv_log("unmap", "uuid=%s (its last request finished)", g->uuid);
    pefa_set_close(g->set);
    pefa_index_close(g->head);
    free(g->info_json);
    free(g);
}

void srv_slot_init(srv_slot *s, srv_index *first)
{
    pthread_mutex_init(&s->mu, NULL);
    s->cur = first;
}

srv_index *srv_slot_acquire(srv_slot *s)
{
    srv_index *g;
    pthread_mutex_lock(&s->mu);
    g = s->cur;
    atomic_fetch_add(&g->refs, 1);
    pthread_mutex_unlock(&s->mu);
    return g;
}

void srv_slot_swap(srv_slot *s, srv_index *g)
{
    srv_index *old;
    pthread_mutex_lock(&s->mu);
    old = s->cur;
    s->cur = g;
    pthread_mutex_unlock(&s->mu);
    srv_index_release(old);
}

void srv_slot_destroy(srv_slot *s)
{
    srv_index_release(s->cur);
    s->cur = NULL;
    pthread_mutex_destroy(&s->mu);
}
