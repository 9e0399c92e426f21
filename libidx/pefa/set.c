/*
 * set.c - shard sets (pefa.h section 4c): the manifest, opening, ids,
 * verifying. Searching a set is in set_search.c.
 *
 * A manifest is a pefa file with META only ([S2]): set.format, set.shards,
 * set.rows_total, per shard set.shard.<i>.{file,uuid,bytes,xxh3,rows_from,rows},
 * and the keys all shards agree on, copied from shard 0.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/paths.h"
#include "common/abi.h"
#include "container/container.h"
#include "pefa/set_private.h"

/* [S2] the META keys every shard of a set has equal (or all lack) */
static const char *const AGREED[] = {"pefa.dim",          "pefa.vector_type",      "pefa.codes",
                                     "pefa.metric",       "pefa.xs_lambda",        "pefa.n_queries_total",
                                     "hnsw.M",            "hnsw.ef_construction",  "build.seed",
                                     "shard.count",       "shard.rows_total",      "input.passages.xxh3",
                                     "input.queries.xxh3", "input.qrels.xxh3",     "input.passage_ids.xxh3",
                                     "input.query_ids.xxh3"};
#define N_AGREED (sizeof AGREED / sizeof AGREED[0])

static void uuid_hex(const uint8_t u[16], char out[33])
{
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", u[i]);
}

static const char *meta_or(pefa_index *ix, const char *key, const char *dflt)
{
    const char *v;
    return pefa_index_meta_get(ix, key, &v) == 0 ? v : dflt;
}

/* ---- opening --------------------------------------------------------------------- */
static int set_alloc(pefa_set *s, uint32_t n)
{
    s->n = n;
    s->ix = (pefa_index **)calloc(n, sizeof *s->ix);
    s->m = (pefa_model **)calloc(n, sizeof *s->m);
    s->im = (pefa_idmap **)calloc(n, sizeof *s->im);
    s->from = (uint32_t *)calloc(n + 1, sizeof *s->from);
    RETURN_ERROR_IF(!s->ix || !s->m || !s->im || !s->from, PEFA_ERR_NOMEM, "%s: out of memory", s->path);
    return 0;
}

/* shard i as the manifest describes it: the file, its size and UUID, and
 * what its META says it is */
static int open_shard(pefa_set *s, pefa_index *man, uint32_t i)
{
    char key[64], hex[33], *path;
    pefa_file_info fi;
    struct stat st;
    uint64_t bytes, from, rows;
    int rc;
    snprintf(key, sizeof key, "set.shard.%u.file", i);
    RETURN_ERROR_IF(!(path = pefa__beside(s->path, meta_or(man, key, ""))), PEFA_ERR_NOMEM, "out of memory");
    snprintf(key, sizeof key, "set.shard.%u.bytes", i);
    rc = pefa__meta_uint(man, key, UINT64_MAX, 1, &bytes);
    if (!rc && stat(path, &st) != 0) rc = pefa__set_error(PEFA_ERR_IO, "%s: shard %u of set %s is missing", path, i, s->path);
    if (!rc) rc = pefa_index_open(path, &s->ix[i]);
    free(path);
    FORWARD_IF_ERROR(rc);
    /* identity before size: a foreign file is named as such, not as damaged */
    pefa_index_file_info(s->ix[i], &fi);
    uuid_hex(fi.uuid, hex);
    snprintf(key, sizeof key, "set.shard.%u.uuid", i);
    RETURN_ERROR_IF(strcmp(meta_or(man, key, ""), hex) != 0, PEFA_ERR_MISMATCH,
                    "%s: not shard %u of set %s (UUID %s, the set expects %s)", pefa_index_path(s->ix[i]), i, s->path,
                    hex, meta_or(man, key, "?"));
    RETURN_ERROR_IF((uint64_t)st.st_size != bytes, PEFA_ERR_CORRUPT,
                    "%s: shard %u is %llu bytes, the set %s expects %llu (damaged copy)", pefa_index_path(s->ix[i]), i,
                    (unsigned long long)st.st_size, s->path, (unsigned long long)bytes);
    FORWARD_IF_ERROR(pefa__model_get(s->ix[i], &s->m[i]));
    snprintf(key, sizeof key, "set.shard.%u.rows_from", i);
    FORWARD_IF_ERROR(pefa__meta_uint(man, key, UINT32_MAX, 1, &from));
    snprintf(key, sizeof key, "set.shard.%u.rows", i);
    FORWARD_IF_ERROR(pefa__meta_uint(man, key, UINT32_MAX, 1, &rows));
    RETURN_ERROR_IF(s->m[i]->shard_index != i || s->m[i]->shard_count != s->n || s->m[i]->rows_from != from ||
                        s->m[i]->info.n_passages != rows || from != s->from[i],
                    PEFA_ERR_MISMATCH, "%s: says it is shard %u of %u from row %u, the set %s expects shard %u of %u",
                    pefa_index_path(s->ix[i]), s->m[i]->shard_index, s->m[i]->shard_count, s->m[i]->rows_from,
                    s->path, i, s->n);
    s->from[i + 1] = (uint32_t)(from + rows);
    return 0;
}

static int open_manifest(pefa_set *s, pefa_index *man)
{
    uint64_t n, total;
    FORWARD_IF_ERROR(pefa__meta_uint(man, "set.shards", 4096, 1, &n));
    FORWARD_IF_ERROR(pefa__meta_uint(man, "set.rows_total", UINT32_MAX, 1, &total));
    RETURN_ERROR_IF(n < 1, PEFA_ERR_CORRUPT, "%s: a set of no shards", s->path);
    FORWARD_IF_ERROR(set_alloc(s, (uint32_t)n));
    for (uint32_t i = 0; i < s->n; i++) FORWARD_IF_ERROR(open_shard(s, man, i));
    RETURN_ERROR_IF(s->from[s->n] != total, PEFA_ERR_CORRUPT, "%s: the shards hold %u rows, the set says %llu",
                    s->path, s->from[s->n], (unsigned long long)total);
    s->n_total = (uint32_t)total;
    return 0;
}

int pefa_set_open(const char *path, unsigned idmap_flags, pefa_set **out)
{
    pefa_set *s;
    pefa_index *ix;
    const char *v;
    int rc;
    *out = NULL;
    FORWARD_IF_ERROR(pefa_index_open(path, &ix));
    s = (pefa_set *)calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        pefa_index_close(ix);
        return pefa__set_error(PEFA_ERR_NOMEM, "%s: out of memory", path);
    }
    s->idmap_flags = idmap_flags;
    pthread_mutex_init(&s->lock, NULL);
    if (pefa_index_meta_get(ix, "set.shards", &v) == 0) {
        s->manifest = ix;
        rc = open_manifest(s, ix);
    } else if (!(rc = set_alloc(s, 1))) { /* a plain index: a set of one */
        s->ix[0] = ix;
        if (!(rc = pefa__model_get(ix, &s->m[0]))) s->from[1] = s->n_total = s->m[0]->info.n_passages;
        if (!rc && s->m[0]->shard_count > 1)
            rc = pefa__set_error(PEFA_ERR_INVALID_ARG, "%s: shard %u of %u: open the set's manifest (pefa-shardset) instead",
                                 path, s->m[0]->shard_index, s->m[0]->shard_count);
    }
    if (rc) {
        pefa_set_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void pefa_set_close(pefa_set *s)
{
    if (!s) return;
    for (uint32_t i = 0; i < s->n; i++) {
        pefa_idmap_close(s->im ? s->im[i] : NULL);
        pefa_index_close(s->ix ? s->ix[i] : NULL);
    }
    pefa_index_close(s->manifest);
    pthread_mutex_destroy(&s->lock);
    free(s->ix);
    free(s->m);
    free(s->im);
    free(s->from);
    free(s->path);
    free(s);
}

uint32_t pefa_set_shard_count(const pefa_set *s)
{
    return s->n;
}

pefa_index *pefa_set_shard(const pefa_set *s, uint32_t i)
{
    return i < s->n ? s->ix[i] : NULL;
}

int pefa_set_describe(pefa_set *s, pefa_model_info *out)
{
    pefa_model_info in = s->m[0]->info;
    in.n_passages = s->n_total;
    in.shard_count = 1; /* the set as one index */
    in.shard_index = 0;
    for (uint32_t i = 1; i < s->n; i++) {
        in.has_graph_passages &= s->m[i]->info.has_graph_passages;
        in.has_graph_xs &= s->m[i]->info.has_graph_xs;
        in.has_xs &= s->m[i]->info.has_xs;
        in.has_z &= s->m[i]->info.has_z;
    }
    pefa__abi_out(out, &in, PEFA_V1_MODEL_INFO, sizeof in);
    return 0;
}

uint32_t pefa__set_shard_of(const pefa_set *s, uint32_t row)
{
    uint32_t lo = 0, hi = s->n; /* the last shard whose first row is <= row */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->from[mid] <= row) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* ---- ids ------------------------------------------------------------------------- */
/* shard i's id map, opened on first use (NULL and 0 when it has none: row numbers) */
static int shard_idmap(pefa_set *s, uint32_t i, pefa_idmap **out)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (!s->im[i]) rc = pefa_idmap_open(s->ix[i], s->idmap_flags, &s->im[i]);
    *out = s->im[i];
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int has_idmap(pefa_set *s, uint32_t i)
{
    const char *v;
    return pefa_index_meta_get(s->ix[i], "idmap.file", &v) == 0;
}

/* a shard without an id map: its passages' ids are their global row numbers */
static int row_number(const pefa_set *s, const char *id, uint32_t *row)
{
    char *end;
    unsigned long long x = strtoull(id, &end, 10);
    if (end == id || *end || id[0] == '-' || id[0] == '+' || x >= s->n_total) return PEFA_ERR_NOT_FOUND;
    *row = (uint32_t)x;
    return 0;
}

int pefa_set_id(pefa_set *s, int which, uint32_t row, char *buf, size_t cap, size_t *len)
{
    uint32_t i = which == PEFA_IDS_QUERIES ? 0 : pefa__set_shard_of(s, row);
    pefa_idmap *im;
    RETURN_ERROR_IF(which == PEFA_IDS_PASSAGES && row >= s->n_total, PEFA_ERR_NOT_FOUND,
                    "passage row %u out of range (%u passages)", row, s->n_total);
    if (which == PEFA_IDS_PASSAGES && !has_idmap(s, i)) {
        char num[16];
        size_t l = (size_t)snprintf(num, sizeof num, "%u", row);
        if (len) *len = l;
        RETURN_ERROR_IF(l + 1 > cap, PEFA_ERR_INVALID_ARG, "id buffer of %zu bytes, the id needs %zu", cap, l + 1);
        memcpy(buf, num, l + 1);
        return 0;
    }
    FORWARD_IF_ERROR(shard_idmap(s, i, &im));
    return pefa_idmap_id(im, which, which == PEFA_IDS_QUERIES ? row : row - s->from[i], buf, cap, len);
}

int pefa_set_row(pefa_set *s, int which, const char *id, uint32_t *row)
{
    pefa_idmap *im;
    int rc = PEFA_ERR_NOT_FOUND;
    for (uint32_t i = 0; i < (which == PEFA_IDS_QUERIES ? 1 : s->n) && rc == PEFA_ERR_NOT_FOUND; i++) {
        if (which == PEFA_IDS_PASSAGES && !has_idmap(s, i)) {
            rc = row_number(s, id, row);
            if (rc == 0 && pefa__set_shard_of(s, *row) != i) rc = PEFA_ERR_NOT_FOUND;
            continue;
        }
        FORWARD_IF_ERROR(shard_idmap(s, i, &im));
        rc = pefa_idmap_row(im, which, id, row);
        if (rc == 0 && which == PEFA_IDS_PASSAGES) *row += s->from[i];
        else if (rc != PEFA_ERR_NOT_FOUND) return rc;
    }
    RETURN_ERROR_IF(rc == PEFA_ERR_NOT_FOUND, rc, "%s id '%.64s' not found in %s",
                    which == PEFA_IDS_QUERIES ? "training query" : "passage", id, s->path);
    return rc;
}

/* ---- verify ---------------------------------------------------------------------- */
static int verify_shard(pefa_set *s, uint32_t i)
{
    char key[64];
    const char *want;
    uint64_t bytes, digest;
    int bad;
    if (s->manifest) { /* the exact bytes the manifest recorded */
        char hex[17];
        snprintf(key, sizeof key, "set.shard.%u.xxh3", i);
        FORWARD_IF_ERROR(pefa_index_meta_get(s->manifest, key, &want));
        FORWARD_IF_ERROR(pefa_file_digest(pefa_index_path(s->ix[i]), &bytes, &digest));
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)digest);
        RETURN_ERROR_IF(strcmp(hex, want) != 0, PEFA_ERR_CHECKSUM, "%s: shard %u differs from the one set %s was made of",
                        pefa_index_path(s->ix[i]), i, s->path);
    }
    FORWARD_IF_ERROR(pefa_index_verify(s->ix[i], &bad));
    return pefa_verify_flags(s->ix[i], s->idmap_flags, &bad);
}

int pefa_set_verify(pefa_set *s, int *bad_shard)
{
    int dummy;
    if (!bad_shard) bad_shard = &dummy;
    *bad_shard = -1;
    if (s->manifest) FORWARD_IF_ERROR(pefa_index_verify(s->manifest, &dummy));
    for (uint32_t i = 0; i < s->n; i++) {
        int rc = verify_shard(s, i);
        if (rc) {
            *bad_shard = (int)i;
            return rc;
        }
    }
    return 0;
}

/* ---- writing a manifest ------------------------------------------------------------ */
/* the shards, opened and put in shard order; every agreed key equal */
static int check_shards(pefa_index **ix, const char *const *paths, uint32_t n, pefa_index **by_index)
{
    for (uint32_t k = 0; k < n; k++) {
        uint64_t idx, cnt;
        FORWARD_IF_ERROR(pefa_index_open(paths[k], &ix[k]));
        RETURN_ERROR_IF(pefa__meta_uint(ix[k], "shard.index", UINT32_MAX, 1, &idx) ||
                            pefa__meta_uint(ix[k], "shard.count", UINT32_MAX, 1, &cnt),
                        PEFA_ERR_MISMATCH, "%s: not a shard (built without --shard)", paths[k]);
        RETURN_ERROR_IF(cnt != n || idx >= n, PEFA_ERR_MISMATCH, "%s: shard %llu of %llu, but %u files were given", paths[k],
                        (unsigned long long)idx, (unsigned long long)cnt, n);
        RETURN_ERROR_IF(by_index[idx], PEFA_ERR_MISMATCH, "%s and %s are both shard %llu", pefa_index_path(by_index[idx]),
                        paths[k], (unsigned long long)idx);
        by_index[idx] = ix[k];
    }
    for (uint32_t i = 1; i < n; i++)
        for (size_t a = 0; a < N_AGREED; a++) {
            const char *x = meta_or(by_index[0], AGREED[a], NULL), *y = meta_or(by_index[i], AGREED[a], NULL);
            RETURN_ERROR_IF((x == NULL) != (y == NULL) || (x && strcmp(x, y) != 0), PEFA_ERR_MISMATCH,
                            "%s (shard %u) and %s (shard 0) differ in %s: '%s' vs '%s': not one build",
                            pefa_index_path(by_index[i]), i, pefa_index_path(by_index[0]), AGREED[a], y ? y : "(none)",
                            x ? x : "(none)");
        }
    return 0;
}

/* the directory part of a path ("." for a bare name), malloc'd */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 1;
    char *d = (char *)malloc(len + 1);
    if (!d) return NULL;
    memcpy(d, slash ? path : ".", len);
    d[len] = 0;
    return d;
}

/* [S2] a manifest names its shards by file name and opens them from its own
 * directory, so every shard must be there: the directories are compared by
 * device and inode ("s0.pefa", "./s0.pefa" and "/abs/s0.pefa" can all be
 * right). A shard that cannot be reached is left to check_shards to name. */
static int check_beside(const char *path, const char *const *shards, uint32_t n)
{
    struct stat md, sd;
    char *mdir = dir_of(path), *sdir;
    int rc = 0;
    RETURN_ERROR_IF(!mdir, PEFA_ERR_NOMEM, "%s: out of memory", path);
    if (stat(mdir, &md) != 0)
        rc = pefa__set_error(PEFA_ERR_IO, "%s: its directory %s: %s", path, mdir, strerror(errno));
    for (uint32_t k = 0; k < n && !rc; k++) {
        if (!(sdir = dir_of(shards[k]))) rc = pefa__set_error(PEFA_ERR_NOMEM, "%s: out of memory", path);
        else if (stat(sdir, &sd) == 0 && (sd.st_dev != md.st_dev || sd.st_ino != md.st_ino))
            rc = pefa__set_error(PEFA_ERR_INVALID_ARG,
                                 "%s: not in the manifest's directory %s: a set names its shards by file name and "
                                 "opens them from there (write the manifest beside the shards)",
                                 shards[k], mdir);
        free(sdir);
    }
    free(mdir);
    return rc;
}

static int manifest_text(pefa_index **sh, uint32_t n, char *buf, size_t cap)
{
    size_t o = 0;
    uint64_t total = 0;
    for (uint32_t i = 0; i < n && o < cap; i++) {
        pefa_model *m;
        pefa_file_info fi;
        uint64_t bytes, digest;
        char hex[33];
        const char *p = pefa_index_path(sh[i]), *slash = strrchr(p, '/');
        FORWARD_IF_ERROR(pefa__model_get(sh[i], &m));
        FORWARD_IF_ERROR(pefa_file_digest(p, &bytes, &digest));
        pefa_index_file_info(sh[i], &fi);
        uuid_hex(fi.uuid, hex);
        RETURN_ERROR_IF(m->rows_from != total, PEFA_ERR_MISMATCH, "%s: shard %u starts at row %u, expected %llu", p, i,
                        m->rows_from, (unsigned long long)total);
        o += (size_t)snprintf(buf + o, cap - o,
                              "set.shard.%u.file=%s\nset.shard.%u.uuid=%s\nset.shard.%u.bytes=%llu\nset.shard.%u.xxh3=%016llx\n"
                              "set.shard.%u.rows_from=%u\nset.shard.%u.rows=%u\n",
                              i, slash ? slash + 1 : p, i, hex, i, (unsigned long long)bytes, i,
                              (unsigned long long)digest, i, m->rows_from, i, m->info.n_passages);
        total += m->info.n_passages;
    }
    o += (size_t)snprintf(buf + o, o < cap ? cap - o : 0, "set.format=1\nset.shards=%u\nset.rows_total=%llu\n", n,
                          (unsigned long long)total);
    for (size_t a = 0; a < N_AGREED && o < cap; a++) {
        const char *v = meta_or(sh[0], AGREED[a], NULL);
        if (v) o += (size_t)snprintf(buf + o, cap - o, "%s=%s\n", AGREED[a], v);
    }
    RETURN_ERROR_IF(o >= cap, PEFA_ERR_NOMEM, "set manifest: too long");
    return (int)o;
}

int pefa_set_write(const char *path, const char *const *shards, uint32_t n)
{
    pefa_index **ix = (pefa_index **)calloc(n ? n : 1, sizeof *ix), **by = (pefa_index **)calloc(n ? n : 1, sizeof *by);
    size_t cap = 4096 + (size_t)n * 1024;
    char *text = (char *)malloc(cap);
    pefa_writer *w = NULL;
    pefa_section_info d;
    int rc = ix && by && text ? 0 : pefa__set_error(PEFA_ERR_NOMEM, "%s: out of memory", path);
    if (!rc && n == 0) rc = pefa__set_error(PEFA_ERR_INVALID_ARG, "%s: a set needs at least one shard", path);
    if (!rc) rc = check_beside(path, shards, n);
    if (!rc) rc = check_shards(ix, shards, n, by);
    if (rc >= 0 && !rc) rc = manifest_text(by, n, text, cap);
    if (rc > 0 && !(rc = pefa_writer_open(path, &w))) {
        memset(&d, 0, sizeof d);
        d.kind = PEFA_KIND_META;
        d.flags = PEFA_SECTION_REQUIRED;
        d.elem = PEFA_TYPE_BYTES;
        if ((rc = pefa_writer_add(w, &d, text, strlen(text))) != 0) pefa_writer_abort(w);
        else rc = pefa_writer_commit(w); /* frees w */
    }
    for (uint32_t k = 0; ix && k < n; k++) pefa_index_close(ix[k]);
    free(ix);
    free(by);
    free(text);
    return rc;
}
