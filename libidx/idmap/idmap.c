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
 * r2p/r2q (u32 big-endian row -> id). Format [I1]-[I4].
 *
 * This layer reads the container (META) and nothing of the PEFA model.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>
#include <sys/stat.h>

#include "common/bytes.h"
#include "common/paths.h"
#include "common/error.h"
#include "container/container.h"
#include "idmap/idmap.h"

struct pefa_idmap {
    MDB_env *env;              /* NULL: ids are row numbers */
    MDB_dbi id2row[2], row2id[2];
    uint32_t count[2];
    char *path;
};

static const char *DB_ID2ROW[2] = {"p2r", "q2r"};
static const char *DB_ROW2ID[2] = {"r2p", "r2q"};
static const char *SET_NAME[2] = {"passage", "training query"};

void pefa__idmap_file_name(const char *index_path, const uint8_t uuid[16], char *out, size_t cap)
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
    return pefa__set_error(code, "%s: %s: %s", path, what, mdb_strerror(rc));
}

/* ---- writing ------------------------------------------------------------------ */
typedef struct {
    const char *id;
    uint32_t row;
} id_row;

static int id_row_cmp(const void *a, const void *b)
{
    const id_row *x = (const id_row *)a, *y = (const id_row *)b;
    return strcmp(x->id, y->id);
}

static void row_key(uint32_t r, uint8_t kb[4]) /* big-endian: keys sort by row */
{
    kb[0] = (uint8_t)(r >> 24);
    kb[1] = (uint8_t)(r >> 16);
    kb[2] = (uint8_t)(r >> 8);
    kb[3] = (uint8_t)r;
}

/* row -> id in row order; ids checked for length */
static int put_rows(MDB_txn *txn, MDB_dbi row2id, const char *const *ids, uint32_t n, const char *path, int which)
{
    for (uint32_t r = 0; r < n; r++) {
        uint8_t kb[4];
        size_t len = strlen(ids[r]);
        MDB_val k = {4, kb}, v = {len, (void *)(uintptr_t)ids[r]};
        int rc;
        if (pefa_id_check(ids[r], len) != 0) { /* [I6] */
            char detail[300];
            snprintf(detail, sizeof detail, "%s", pefa_last_error_detail());
            return pefa__set_error(PEFA_ERR_BAD_INPUT, "%s id of row %u (0-based) %s", SET_NAME[which], r, detail);
        }
        row_key(r, kb);
        if ((rc = mdb_put(txn, row2id, &k, &v, MDB_APPEND)) != 0) return lmdb_err(rc, path, SET_NAME[which]);
    }
    return 0;
}

/* id -> row in id order; a duplicate id is BAD_INPUT naming both rows */
static int put_ids(MDB_txn *txn, MDB_dbi id2row, id_row *ord, uint32_t n, const char *path, int which)
{
    qsort(ord, n, sizeof *ord, id_row_cmp);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t vb[4];
        MDB_val k = {strlen(ord[i].id), (void *)(uintptr_t)ord[i].id}, v = {4, vb};
        int rc;
        RETURN_ERROR_IF(i > 0 && strcmp(ord[i - 1].id, ord[i].id) == 0, PEFA_ERR_BAD_INPUT,
                        "%s: duplicate %s id '%s' (rows %u and %u)", path, SET_NAME[which], ord[i].id,
                        ord[i - 1].row < ord[i].row ? ord[i - 1].row : ord[i].row,
                        ord[i - 1].row < ord[i].row ? ord[i].row : ord[i - 1].row);
        st32(vb, ord[i].row);
        if ((rc = mdb_put(txn, id2row, &k, &v, MDB_APPEND)) != 0) return lmdb_err(rc, path, SET_NAME[which]);
    }
    return 0;
}

static int put_set(MDB_txn *txn, MDB_dbi id2row, MDB_dbi row2id, const char *const *ids, uint32_t n,
                   const char *path, int which)
{
    id_row *ord;
    int rc;
    FORWARD_IF_ERROR(put_rows(txn, row2id, ids, n, path, which));
    ord = (id_row *)malloc((n ? n : 1) * sizeof *ord);
    RETURN_ERROR_IF(!ord, PEFA_ERR_NOMEM, "%s: out of memory", path);
    for (uint32_t r = 0; r < n; r++) {
        ord[r].id = ids[r];
        ord[r].row = r;
    }
    rc = put_ids(txn, id2row, ord, n, path, which);
    free(ord);
    return rc;
}

static int put_meta(MDB_txn *txn, MDB_dbi meta, const uint8_t uuid[16], uint32_t np, uint32_t nq, const char *path)
{
    uint8_t c[2][4];
    MDB_val k = {4, "uuid"}, v = {16, (void *)(uintptr_t)uuid};
    MDB_val kp = {10, "n_passages"}, vp = {4, c[0]}, kq = {9, "n_queries"}, vq = {4, c[1]};
    int rc;
    st32(c[0], np);
    st32(c[1], nq);
    if ((rc = mdb_put(txn, meta, &k, &v, 0)) || (rc = mdb_put(txn, meta, &kp, &vp, 0)) ||
        (rc = mdb_put(txn, meta, &kq, &vq, 0)))
        return lmdb_err(rc, path, "write");
    return 0;
}

/* the whole id map in one write transaction */
static int write_all(MDB_env *env, const char *tmp, const uint8_t uuid[16], const char *const *pids, uint32_t np,
                     const char *const *qids, uint32_t nq)
{
    MDB_txn *txn;
    MDB_dbi meta, d[4];
    int rc;
    if ((rc = mdb_txn_begin(env, NULL, 0, &txn))) return lmdb_err(rc, tmp, "transaction");
    if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &meta)) || (rc = mdb_dbi_open(txn, "p2r", MDB_CREATE, &d[0])) ||
        (rc = mdb_dbi_open(txn, "r2p", MDB_CREATE, &d[1])) || (rc = mdb_dbi_open(txn, "q2r", MDB_CREATE, &d[2])) ||
        (rc = mdb_dbi_open(txn, "r2q", MDB_CREATE, &d[3]))) {
        mdb_txn_abort(txn);
        return lmdb_err(rc, tmp, "cannot create databases");
    }
    if ((rc = put_meta(txn, meta, uuid, np, nq, tmp)) || (rc = put_set(txn, d[0], d[1], pids, np, tmp, 0)) ||
        (qids && (rc = put_set(txn, d[2], d[3], qids, nq, tmp, 1)))) {
        mdb_txn_abort(txn);
        return rc;
    }
    if ((rc = mdb_txn_commit(txn))) return lmdb_err(rc, tmp, "commit");
    return 0;
}

int pefa__idmap_write(const char *final_path, const uint8_t uuid[16], const char *const *pids, uint32_t np,
                      const char *const *qids, uint32_t nq, uint64_t *bytes)
{
    char *tmp;
    MDB_env *env = NULL;
    uint64_t est = 1 << 20;
    int rc;
    RETURN_ERROR_IF(!(tmp = (char *)malloc(strlen(final_path) + 8)), PEFA_ERR_NOMEM, "%s: out of memory", final_path);
    sprintf(tmp, "%s.tmp", final_path);
    unlink(tmp);
    for (uint32_t i = 0; i < np; i++) est += 2 * strlen(pids[i]) + 64;
    for (uint32_t i = 0; i < nq; i++) est += 2 * strlen(qids[i]) + 64;
    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 8)) ||
        (rc = mdb_env_set_mapsize(env, (size_t)(est * 4 + (64u << 20)))) ||
        (rc = mdb_env_open(env, tmp, MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC, 0644))) {
        rc = lmdb_err(rc, tmp, "cannot create id map");
    } else if (!(rc = write_all(env, tmp, uuid, pids, np, qids, nq)) && (rc = mdb_env_sync(env, 1))) {
        rc = lmdb_err(rc, tmp, "sync");
    }
    if (!rc) {
        MDB_stat st;
        MDB_envinfo info;
        if (!mdb_env_stat(env, &st) && !mdb_env_info(env, &info))
            *bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    }
    if (env) mdb_env_close(env);
    if (!rc && rename(tmp, final_path))
        rc = pefa__set_error(PEFA_ERR_IO, "%s: rename failed: %s", final_path, strerror(errno));
    if (rc) unlink(tmp);
    free(tmp);
    return rc;
}

/* ---- reading ------------------------------------------------------------------ */
/* the id map's path (malloc'd) from META idmap.file beside the index; *out =
 * NULL and 0 when the index has no id map */
static int idmap_path(pefa_index *ix, char **out)
{
    const char *ipath = pefa_index_path(ix), *name;
    int rc = pefa_index_meta_get(ix, "idmap.file", &name);
    *out = NULL;
    if (rc == PEFA_ERR_NOT_FOUND) return 0;
    FORWARD_IF_ERROR(rc);
    RETURN_ERROR_IF(!*name || strchr(name, '/'), PEFA_ERR_CORRUPT, "%s: META idmap.file '%s' is not a plain file name",
                    ipath, name);
    *out = pefa__beside(ipath, name);
    RETURN_ERROR_IF(!*out, PEFA_ERR_NOMEM, "%s: out of memory", ipath);
    return 0;
}

/* [I3] the size recorded in META, checked at every open (cheap) */
static int check_size(pefa_index *ix, const char *path, uint64_t *bytes)
{
    struct stat sb;
    uint64_t want;
    int rc = pefa__meta_uint(ix, "idmap.bytes", UINT64_MAX, 0, &want);
    if (rc == PEFA_ERR_CORRUPT) return rc;
    RETURN_ERROR_IF(stat(path, &sb) != 0, PEFA_ERR_IO, "%s: id map of %s: %s (ship it together with the index)", path,
                    pefa_index_path(ix), strerror(errno));
    RETURN_ERROR_IF(rc == 0 && want != (uint64_t)sb.st_size, PEFA_ERR_CORRUPT,
                    "%s: id map is %llu bytes, %s expects %llu (damaged or truncated copy)", path,
                    (unsigned long long)sb.st_size, pefa_index_path(ix), (unsigned long long)want);
    *bytes = (uint64_t)sb.st_size;
    return 0;
}

/* [I3] the whole file's XXH3 against META idmap.xxh3 */
static int check_digest(pefa_index *ix, const char *path)
{
    const char *wd;
    uint64_t bytes, digest;
    char hex[17];
    if (pefa_index_meta_get(ix, "idmap.xxh3", &wd) != 0) return 0;
    FORWARD_IF_ERROR(pefa_file_digest(path, &bytes, &digest));
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)digest);
    RETURN_ERROR_IF(strcmp(hex, wd) != 0, PEFA_ERR_CHECKSUM,
                    "%s: id map checksum mismatch: a damaged copy, or not the id map this index was built with (%s)",
                    path, pefa_index_path(ix));
    return 0;
}

int pefa__idmap_verify(pefa_index *ix, unsigned flags)
{
    char *path;
    uint64_t bytes;
    int rc;
    FORWARD_IF_ERROR(idmap_path(ix, &path));
    if (!path) return 0;
    if (!(rc = check_size(ix, path, &bytes)) && !(flags & PEFA_IDMAP_TRUSTED)) rc = check_digest(ix, path);
    free(path);
    return rc;
}

/* opens the LMDB file read-only and checks its UUID against the index */
static int open_env(pefa_idmap *im, pefa_index *ix)
{
    MDB_txn *txn = NULL;
    MDB_dbi meta;
    MDB_val k = {4, "uuid"}, v;
    pefa_file_info fi;
    int rc;
    if ((rc = mdb_env_create(&im->env)) || (rc = mdb_env_set_maxdbs(im->env, 8)) ||
        (rc = mdb_env_open(im->env, im->path, MDB_RDONLY | MDB_NOLOCK | MDB_NOSUBDIR | MDB_NOTLS, 0644)))
        return lmdb_err(rc, im->path, "cannot open id map");
    if ((rc = mdb_txn_begin(im->env, NULL, MDB_RDONLY, &txn)) || (rc = mdb_dbi_open(txn, "meta", 0, &meta))) {
        if (txn) mdb_txn_abort(txn);
        return lmdb_err(rc, im->path, "id map has no meta database");
    }
    for (int w = 0; w < 2 && !rc; w++)
        if ((rc = mdb_dbi_open(txn, DB_ID2ROW[w], 0, &im->id2row[w])) ||
            (rc = mdb_dbi_open(txn, DB_ROW2ID[w], 0, &im->row2id[w])))
            rc = lmdb_err(rc, im->path, "id map lacks a database");
    pefa_index_file_info(ix, &fi);
    if (!rc && (mdb_get(txn, meta, &k, &v) || v.mv_size != 16 || memcmp(v.mv_data, fi.uuid, 16) != 0))
        rc = pefa__set_error(PEFA_ERR_MISMATCH, "%s: id map belongs to another index than %s (UUID differs)",
                             im->path, pefa_index_path(ix));
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    /* commit (not abort): dbi handles opened in a transaction survive only its commit */
    if ((rc = mdb_txn_commit(txn))) return lmdb_err(rc, im->path, "cannot open id map");
    return 0;
}

static int idmap_counts(pefa_index *ix, pefa_idmap *im)
{
    uint64_t v;
    FORWARD_IF_ERROR(pefa__meta_uint(ix, "pefa.n_passages", UINT32_MAX, 1, &v));
    im->count[0] = (uint32_t)v;
    FORWARD_IF_ERROR(pefa__meta_uint(ix, "pefa.n_queries", UINT32_MAX, 1, &v));
    im->count[1] = (uint32_t)v;
    return 0;
}

int pefa_idmap_open(pefa_index *ix, unsigned flags, pefa_idmap **out)
{
    pefa_idmap *im;
    uint64_t bytes;
    int rc;
    *out = NULL;
    im = (pefa_idmap *)calloc(1, sizeof *im);
    RETURN_ERROR_IF(!im, PEFA_ERR_NOMEM, "out of memory");
    if ((rc = idmap_counts(ix, im)) || (rc = idmap_path(ix, &im->path)) || !im->path) goto done;
    /* [I3] size always, the exact bytes unless trusted, before LMDB reads any */
    if ((rc = check_size(ix, im->path, &bytes)) || (!(flags & PEFA_IDMAP_TRUSTED) && (rc = check_digest(ix, im->path))))
        goto done;
    rc = open_env(im, ix);
done:
    if (rc) pefa_idmap_close(im);
    else *out = im;
    return rc;
}

void pefa_idmap_close(pefa_idmap *m)
{
    if (!m) return;
    if (m->env) mdb_env_close(m->env);
    free(m->path);
    free(m);
}

uint32_t pefa_idmap_count(const pefa_idmap *m, int which)
{
    return which == PEFA_IDS_PASSAGES || which == PEFA_IDS_QUERIES ? m->count[which] : 0;
}

/* copies an id of len bytes into buf (cap bytes) with its NUL */
static int put_id(const char *id, size_t len, char *buf, size_t cap, size_t *lenp)
{
    if (lenp) *lenp = len;
    RETURN_ERROR_IF(len + 1 > cap, PEFA_ERR_INVALID_ARG, "id buffer of %zu bytes, the id needs %zu", cap, len + 1);
    memcpy(buf, id, len);
    buf[len] = 0;
    return 0;
}

int pefa_idmap_id(pefa_idmap *m, int which, uint32_t row, char *buf, size_t cap, size_t *len)
{
    MDB_txn *txn;
    MDB_val k, v;
    uint8_t kb[4];
    char num[16];
    int rc;
    RETURN_ERROR_IF(which != PEFA_IDS_PASSAGES && which != PEFA_IDS_QUERIES, PEFA_ERR_INVALID_ARG,
                    "idmap: bad id set %d", which);
    RETURN_ERROR_IF(row >= m->count[which], PEFA_ERR_NOT_FOUND, "%s row %u out of range (%u rows)", SET_NAME[which],
                    row, m->count[which]);
    if (!m->env) return put_id(num, (size_t)snprintf(num, sizeof num, "%u", row), buf, cap, len);
    if ((rc = mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn))) return lmdb_err(rc, m->path, "read");
    row_key(row, kb);
    k.mv_size = 4;
    k.mv_data = kb;
    rc = mdb_get(txn, m->row2id[which], &k, &v);
    if (rc) rc = rc == MDB_NOTFOUND ? pefa__set_error(PEFA_ERR_CORRUPT, "%s: no id for row %u", m->path, row)
                                    : lmdb_err(rc, m->path, "read");
    else rc = put_id((const char *)v.mv_data, v.mv_size, buf, cap, len);
    mdb_txn_abort(txn);
    return rc;
}

int pefa_idmap_row(pefa_idmap *m, int which, const char *id, uint32_t *row)
{
    MDB_txn *txn;
    MDB_val k, v;
    int rc;
    RETURN_ERROR_IF(which != PEFA_IDS_PASSAGES && which != PEFA_IDS_QUERIES, PEFA_ERR_INVALID_ARG,
                    "idmap: bad id set %d", which);
    if (!m->env) {
        char *end;
        unsigned long long x;
        errno = 0;
        x = strtoull(id, &end, 10);
        RETURN_ERROR_IF(errno || end == id || *end || id[0] == '-' || id[0] == '+' || x >= m->count[which],
                        PEFA_ERR_NOT_FOUND, "%s id '%s' not found (ids are row numbers 0..%u)", SET_NAME[which], id,
                        m->count[which] ? m->count[which] - 1 : 0);
        *row = (uint32_t)x;
        return 0;
    }
    k.mv_size = strlen(id);
    k.mv_data = (void *)(uintptr_t)id;
    RETURN_ERROR_IF(k.mv_size == 0 || k.mv_size > PEFA_MAX_ID_BYTES, PEFA_ERR_NOT_FOUND, "%s id '%.64s' not found",
                    SET_NAME[which], id);
    if ((rc = mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn))) return lmdb_err(rc, m->path, "read");
    rc = mdb_get(txn, m->id2row[which], &k, &v);
    if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != 4))
        rc = pefa__set_error(PEFA_ERR_NOT_FOUND, "%s id '%s' not found", SET_NAME[which], id);
    else if (rc) rc = lmdb_err(rc, m->path, "read");
    else *row = ld32(v.mv_data);
    mdb_txn_abort(txn);
    if (rc) return rc;
    RETURN_ERROR_IF(*row >= m->count[which], PEFA_ERR_CORRUPT, "%s: id '%s' maps to row %u, out of range", m->path, id,
                    *row);
    return 0;
}
