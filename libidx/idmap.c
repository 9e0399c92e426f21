/*
 * idmap.c - users' string ids <-> rows, in an LMDB file beside the index.
 *
 * The file is "<index>.<uuid hex>.ids" (one LMDB environment, MDB_NOSUBDIR),
 * written to a temporary name, synced and renamed BEFORE the index itself is
 * committed; the index names it in META "idmap.file". Since the name carries
 * the index UUID and the index rename is the one commit point, an index and
 * the id map it names always belong together. Readers open it read-only and
 * lock-free (it is never written after its rename) and check the UUID
 * stored inside. Databases: meta (uuid, counts), p2r/q2r (id -> u32 LE row),
 * r2p/r2q (u32 big-endian row -> id).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "error_private.h"
#include "idmap.h"
#include "index_private.h"
#include "model.h"

struct pefa_idmap {
    MDB_env *env;              /* NULL: ids are row numbers */
    MDB_dbi id2row[2], row2id[2];
    uint32_t count[2];
    char *path;
};

static const char *DB_ID2ROW[2] = {"p2r", "q2r"};
static const char *DB_ROW2ID[2] = {"r2p", "r2q"};

void idmap_file_name(const char *index_path, const uint8_t uuid[16], char *out, size_t cap)
{
    char hex[33];
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", uuid[i]);
    snprintf(out, cap, "%s.%s.ids", index_path, hex);
}

static int lmdb_err(int rc, const char *path, const char *what)
{
    int code = rc == ENOMEM ? PEFA_ERR_NOMEM
               : rc == MDB_INVALID || rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND ? PEFA_ERR_CORRUPT
               : rc == MDB_VERSION_MISMATCH ? PEFA_ERR_VERSION
                                              : PEFA_ERR_IO;
    return pefa_set_error(code, "%s: %s: %s", path, what, mdb_strerror(rc));
}

typedef struct {
    const char *id;
    uint32_t row;
} id_row;

static int id_row_cmp(const void *a, const void *b)
{
    const id_row *x = (const id_row *)a, *y = (const id_row *)b;
    return strcmp(x->id, y->id);
}

static int put_set(MDB_txn *txn, MDB_dbi id2row, MDB_dbi row2id, const char *const *ids, uint32_t n,
                   const char *path, const char *what)
{
    id_row *ord = (id_row *)malloc((n ? n : 1) * sizeof *ord);
    int rc = 0;
    RETURN_ERROR_IF(!ord, PEFA_ERR_NOMEM, "%s: out of memory", path);
    for (uint32_t r = 0; r < n && !rc; r++) {
        uint8_t kb[4] = {(uint8_t)(r >> 24), (uint8_t)(r >> 16), (uint8_t)(r >> 8), (uint8_t)r};
        MDB_val k = {4, kb}, v = {strlen(ids[r]), (void *)(uintptr_t)ids[r]};
        ord[r].id = ids[r];
        ord[r].row = r;
        rc = mdb_put(txn, row2id, &k, &v, MDB_APPEND);
        if (rc) rc = lmdb_err(rc, path, what);
    }
    if (!rc) qsort(ord, n, sizeof *ord, id_row_cmp);
    for (uint32_t i = 0; i < n && !rc; i++) {
        uint8_t vb[4] = {(uint8_t)ord[i].row, (uint8_t)(ord[i].row >> 8), (uint8_t)(ord[i].row >> 16),
                         (uint8_t)(ord[i].row >> 24)};
        MDB_val k = {strlen(ord[i].id), (void *)(uintptr_t)ord[i].id}, v = {4, vb};
        RETURN_ERROR_IF(k.mv_size == 0 || k.mv_size > 511, PEFA_ERR_BAD_INPUT, "%s: %s id of row %u is empty or over 511 bytes",
                        path, what, ord[i].row);
        if (i > 0 && strcmp(ord[i - 1].id, ord[i].id) == 0) {
            rc = pefa_set_error(PEFA_ERR_BAD_INPUT, "%s: duplicate %s id '%s' (rows %u and %u)", path, what, ord[i].id,
                                ord[i - 1].row, ord[i].row);
            break;
        }
        rc = mdb_put(txn, id2row, &k, &v, MDB_APPEND);
        if (rc) rc = lmdb_err(rc, path, what);
    }
    free(ord);
    return rc;
}

int idmap_write(const char *final_path, const uint8_t uuid[16], const char *const *pids, uint32_t np,
                const char *const *qids, uint32_t nq, uint64_t *bytes)
{
    char tmp[4200];
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi meta, d[4];
    uint64_t est = 1 << 20;
    int rc;
    RETURN_ERROR_IF(strlen(final_path) > 4000, PEFA_ERR_INVALID_ARG, "%s: path too long", final_path);
    snprintf(tmp, sizeof tmp, "%s.tmp", final_path);
    unlink(tmp);
    for (uint32_t i = 0; i < np; i++) est += 2 * strlen(pids[i]) + 64;
    for (uint32_t i = 0; i < nq; i++) est += 2 * strlen(qids[i]) + 64;
    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 8)) ||
        (rc = mdb_env_set_mapsize(env, (size_t)(est * 4 + (64u << 20)))) ||
        (rc = mdb_env_open(env, tmp, MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC, 0644))) {
        rc = lmdb_err(rc, tmp, "cannot create id map");
        goto out;
    }
    if ((rc = mdb_txn_begin(env, NULL, 0, &txn))) {
        rc = lmdb_err(rc, tmp, "transaction");
        goto out;
    }
    if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &meta)) || (rc = mdb_dbi_open(txn, "p2r", MDB_CREATE, &d[0])) ||
        (rc = mdb_dbi_open(txn, "r2p", MDB_CREATE, &d[1])) || (rc = mdb_dbi_open(txn, "q2r", MDB_CREATE, &d[2])) ||
        (rc = mdb_dbi_open(txn, "r2q", MDB_CREATE, &d[3]))) {
        rc = lmdb_err(rc, tmp, "cannot create databases");
        goto out;
    }
    {
        uint8_t c[2][4];
        MDB_val k = {4, "uuid"}, v = {16, (void *)(uintptr_t)uuid};
        MDB_val kp = {10, "n_passages"}, vp = {4, c[0]}, kq = {9, "n_queries"}, vq = {4, c[1]};
        for (int i = 0; i < 4; i++) {
            c[0][i] = (uint8_t)(np >> (8 * i));
            c[1][i] = (uint8_t)(nq >> (8 * i));
        }
        if ((rc = mdb_put(txn, meta, &k, &v, 0)) || (rc = mdb_put(txn, meta, &kp, &vp, 0)) ||
            (rc = mdb_put(txn, meta, &kq, &vq, 0))) {
            rc = lmdb_err(rc, tmp, "write");
            goto out;
        }
    }
    if ((rc = put_set(txn, d[0], d[1], pids, np, tmp, "passage")) != 0) goto out;
    if (qids && (rc = put_set(txn, d[2], d[3], qids, nq, tmp, "training query")) != 0) goto out;
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc) {
        rc = lmdb_err(rc, tmp, "commit");
        goto out;
    }
    if ((rc = mdb_env_sync(env, 1))) {
        rc = lmdb_err(rc, tmp, "sync");
        goto out;
    }
    {
        MDB_stat st;
        MDB_envinfo info;
        if (!mdb_env_stat(env, &st) && !mdb_env_info(env, &info))
            *bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    }
    mdb_env_close(env);
    env = NULL;
    if (rename(tmp, final_path)) {
        rc = pefa_set_error(PEFA_ERR_IO, "%s: rename failed: %s", final_path, strerror(errno));
        goto out;
    }
    return 0;
out:
    if (txn) mdb_txn_abort(txn);
    if (env) mdb_env_close(env);
    unlink(tmp);
    return rc;
}

static int dirname_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (!slash) return snprintf(out, cap, ".") >= (int)cap ? -1 : 0;
    if (n == 0) n = 1;
    if (n >= cap) return -1;
    memcpy(out, path, n);
    out[n] = 0;
    return 0;
}

int pefa_idmap_open(pefa_index *ix, pefa_idmap **out)
{
    return pefa_idmap_open_ex(ix, 0, out);
}

int pefa_idmap_open_ex(pefa_index *ix, unsigned flags, pefa_idmap **out)
{
    const pefa_model *m;
    pefa_idmap *im;
    const char *name;
    char dir[4096];
    MDB_txn *txn = NULL;
    MDB_dbi meta;
    int rc;
    *out = NULL;
    FORWARD_IF_ERROR(pefa_model_get(ix, &m));
    im = (pefa_idmap *)calloc(1, sizeof *im);
    RETURN_ERROR_IF(!im, PEFA_ERR_NOMEM, "out of memory");
    im->count[0] = m->info.n_passages;
    im->count[1] = m->info.n_queries;
    name = pefa_index_meta_get(ix, "idmap.file");
    if (!name) {
        *out = im;
        return 0;
    }
    if (strchr(name, '/') || !*name || dirname_of(ix->path, dir, sizeof dir)) {
        free(im);
        return pefa_set_error(PEFA_ERR_CORRUPT, "%s: META idmap.file '%s' is not a plain file name", ix->path, name);
    }
    im->path = (char *)malloc(strlen(dir) + strlen(name) + 2);
    if (!im->path) {
        free(im);
        return pefa_set_error(PEFA_ERR_NOMEM, "out of memory");
    }
    sprintf(im->path, "%s/%s", dir, name);
    {
        struct stat sb;
        const char *want = pefa_index_meta_get(ix, "idmap.bytes");
        if (stat(im->path, &sb) != 0) {
            rc = pefa_set_error(PEFA_ERR_IO, "%s: id map of %s: %s (ship it together with the index)", im->path,
                                ix->path, strerror(errno));
            goto fail;
        }
        /* [I2] the size is checked at every open (cheap); the checksum by verify */
        if (want && strtoull(want, NULL, 10) != (unsigned long long)sb.st_size) {
            rc = pefa_set_error(PEFA_ERR_CORRUPT, "%s: id map is %llu bytes, %s expects %s (damaged or truncated copy)",
                                im->path, (unsigned long long)sb.st_size, ix->path, want);
            goto fail;
        }
    }
    /* [I3] the exact bytes, before LMDB reads any of them */
    if (!(flags & PEFA_IDMAP_TRUSTED) && (rc = idmap_verify(ix)) != 0) goto fail;
    if ((rc = mdb_env_create(&im->env)) || (rc = mdb_env_set_maxdbs(im->env, 8)) ||
        (rc = mdb_env_open(im->env, im->path, MDB_RDONLY | MDB_NOLOCK | MDB_NOSUBDIR | MDB_NOTLS, 0644))) {
        rc = lmdb_err(rc, im->path, "cannot open id map");
        goto fail;
    }
    if ((rc = mdb_txn_begin(im->env, NULL, MDB_RDONLY, &txn)) || (rc = mdb_dbi_open(txn, "meta", 0, &meta))) {
        rc = lmdb_err(rc, im->path, "id map has no meta database");
        goto fail;
    }
    for (int w = 0; w < 2; w++) {
        if ((rc = mdb_dbi_open(txn, DB_ID2ROW[w], 0, &im->id2row[w])) ||
            (rc = mdb_dbi_open(txn, DB_ROW2ID[w], 0, &im->row2id[w]))) {
            rc = lmdb_err(rc, im->path, "id map lacks a database");
            goto fail;
        }
    }
    {
        MDB_val k = {4, "uuid"}, v;
        rc = mdb_get(txn, meta, &k, &v);
        if (rc || v.mv_size != 16 || memcmp(v.mv_data, ix->info.uuid, 16) != 0) {
            rc = pefa_set_error(PEFA_ERR_MISMATCH, "%s: id map belongs to another index than %s (UUID differs)",
                                im->path, ix->path);
            goto fail;
        }
    }
    /* commit (not abort): dbi handles opened in a transaction survive only its commit */
    if ((rc = mdb_txn_commit(txn))) {
        txn = NULL;
        rc = lmdb_err(rc, im->path, "cannot open id map");
        goto fail;
    }
    *out = im;
    return 0;
fail:
    if (txn) mdb_txn_abort(txn);
    pefa_idmap_close(im);
    return rc;
}

void pefa_idmap_close(pefa_idmap *m)
{
    if (!m) return;
    if (m->env) mdb_env_close(m->env);
    free(m->path);
    free(m);
}

int pefa_idmap_id(pefa_idmap *m, int which, uint32_t row, char *buf, size_t cap)
{
    MDB_txn *txn;
    MDB_val k, v;
    uint8_t kb[4] = {(uint8_t)(row >> 24), (uint8_t)(row >> 16), (uint8_t)(row >> 8), (uint8_t)row};
    int rc;
    RETURN_ERROR_IF(which != 0 && which != 1, PEFA_ERR_INVALID_ARG, "idmap: bad id set %d", which);
    RETURN_ERROR_IF(row >= m->count[which], PEFA_ERR_NOT_FOUND, "row %u out of range", row);
    if (!m->env) {
        RETURN_ERROR_IF((size_t)snprintf(buf, cap, "%u", row) >= cap, PEFA_ERR_INVALID_ARG, "id buffer too small");
        return 0;
    }
    if ((rc = mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn))) return lmdb_err(rc, m->path, "read");
    k.mv_size = 4;
    k.mv_data = kb;
    rc = mdb_get(txn, m->row2id[which], &k, &v);
    if (rc) {
        mdb_txn_abort(txn);
        return rc == MDB_NOTFOUND ? pefa_set_error(PEFA_ERR_CORRUPT, "%s: no id for row %u", m->path, row)
                                  : lmdb_err(rc, m->path, "read");
    }
    if (v.mv_size + 1 > cap) {
        mdb_txn_abort(txn);
        return pefa_set_error(PEFA_ERR_INVALID_ARG, "id buffer too small");
    }
    memcpy(buf, v.mv_data, v.mv_size);
    buf[v.mv_size] = 0;
    mdb_txn_abort(txn);
    return 0;
}

int pefa_idmap_row(pefa_idmap *m, int which, const char *id, uint32_t *row)
{
    MDB_txn *txn;
    MDB_val k, v;
    int rc;
    RETURN_ERROR_IF(which != 0 && which != 1, PEFA_ERR_INVALID_ARG, "idmap: bad id set %d", which);
    if (!m->env) {
        char *end;
        unsigned long long x;
        errno = 0;
        x = strtoull(id, &end, 10);
        RETURN_ERROR_IF(errno || end == id || *end || id[0] == '-' || x >= m->count[which], PEFA_ERR_NOT_FOUND,
                        "id '%s' not found (ids are row numbers 0..%u)", id, m->count[which] ? m->count[which] - 1 : 0);
        *row = (uint32_t)x;
        return 0;
    }
    RETURN_ERROR_IF(!*id, PEFA_ERR_NOT_FOUND, "empty id");
    if ((rc = mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn))) return lmdb_err(rc, m->path, "read");
    k.mv_size = strlen(id);
    k.mv_data = (void *)(uintptr_t)id;
    rc = k.mv_size > 511 ? MDB_NOTFOUND : mdb_get(txn, m->id2row[which], &k, &v);
    if (rc || v.mv_size != 4) {
        mdb_txn_abort(txn);
        return rc == MDB_NOTFOUND || rc == 0 ? pefa_set_error(PEFA_ERR_NOT_FOUND, "id '%s' not found", id)
                                             : lmdb_err(rc, m->path, "read");
    }
    *row = ld32_le(v.mv_data);
    mdb_txn_abort(txn);
    RETURN_ERROR_IF(*row >= m->count[which], PEFA_ERR_CORRUPT, "%s: id '%s' maps to row %u, out of range", m->path, id,
                    *row);
    return 0;
}

int idmap_digest(const char *path, uint64_t *bytes, uint64_t *digest)
{
    FILE *f = fopen(path, "rb");
    XXH3_state_t *st;
    unsigned char *buf;
    size_t n;
    int bad;
    if (!f) return -1;
    st = XXH3_createState();
    buf = (unsigned char *)malloc(1 << 20);
    if (!st || !buf) {
        fclose(f);
        XXH3_freeState(st);
        free(buf);
        return -1;
    }
    XXH3_64bits_reset(st);
    *bytes = 0;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0) {
        XXH3_64bits_update(st, buf, n);
        *bytes += n;
    }
    bad = ferror(f);
    *digest = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    free(buf);
    fclose(f);
    return bad ? -1 : 0;
}

int idmap_verify(pefa_index *ix)
{
    const char *name = pefa_index_meta_get(ix, "idmap.file");
    const char *wb = pefa_index_meta_get(ix, "idmap.bytes"), *wd = pefa_index_meta_get(ix, "idmap.xxh3");
    char dir[4096], *path;
    uint64_t bytes, digest;
    int rc = 0;
    if (!name) return 0;
    if (strchr(name, '/') || !*name || dirname_of(ix->path, dir, sizeof dir))
        return pefa_set_error(PEFA_ERR_CORRUPT, "%s: META idmap.file '%s' is not a plain file name", ix->path, name);
    path = (char *)malloc(strlen(dir) + strlen(name) + 2);
    if (!path) return pefa_set_error(PEFA_ERR_NOMEM, "out of memory");
    sprintf(path, "%s/%s", dir, name);
    if (idmap_digest(path, &bytes, &digest))
        rc = pefa_set_error(PEFA_ERR_IO, "%s: id map of %s cannot be read: %s", path, ix->path, strerror(errno));
    else if (wb && strtoull(wb, NULL, 10) != bytes)
        rc = pefa_set_error(PEFA_ERR_CORRUPT, "%s: id map is %llu bytes, the index expects %s", path,
                            (unsigned long long)bytes, wb);
    else if (wd && strtoull(wd, NULL, 16) != digest)
        rc = pefa_set_error(PEFA_ERR_CHECKSUM, "%s: id map checksum mismatch: a damaged copy, or not the id map this index was built with", path);
    free(path);
    return rc;
}
