/*
 * writer.c - streams sections into a temporary file and commits it atomically.
 *
 * Layout written (format v1): header at 0 (written last, at commit), sections
 * from offset 4096, each starting on a 4096-byte boundary with zero padding
 * between, and the directory after the last section. A crash at any moment
 * leaves only "<path>.tmp.XXXXXX"; the output path changes only by rename.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>
#include <zstd.h>

#include "common/error.h"
#include "container/container.h"
#include "container/format.h"

#define WBUF_SIZE (1u << 20)

struct pefa_writer {
    int fd;
    char *path;        /* final path */
    char *tmp;         /* temporary path */
    uint8_t uuid[16];
    uint64_t flags;    /* header flags (pefa__writer_set_flags) */
    uint64_t pos;      /* bytes written to fd + buffered */
    uint8_t *buf;      /* write buffer */
    size_t blen;
    int err;           /* sticky error */
    /* sections */
    pefa_section_info *secs;
    uint32_t nsec, capsec;
    int open;          /* a section is open */
    pefa_section_info cur;
    XXH3_state_t *xxh;
    ZSTD_CCtx *zc;
    uint8_t *zout;
    size_t zout_cap;
    int zlevel;
    /* zstd frames must carry their content size (format [C2]): a section
     * with a shape pledges its size at begin; an opaque one (ndim 0) is
     * held here and compressed in one call at end */
    uint64_t want;     /* raw bytes the shape needs (ndim > 0) */
    uint8_t *pend;
    size_t pend_len, pend_cap;
    int zdone;         /* the frame was already ended (pefa_writer_add) */
};

static int w_fail(pefa_writer *w, int code, const char *what)
{
    if (!w->err)
        w->err = pefa__set_error(code, "%s: %s: %s", w->path, what,
                                code == PEFA_ERR_IO ? strerror(errno) : pefa_strerror(code));
    return w->err;
}

static int w_flush(pefa_writer *w)
{
    size_t off = 0;
    while (off < w->blen) {
        ssize_t k = write(w->fd, w->buf + off, w->blen - off);
        if (k < 0) {
            if (errno == EINTR) continue;
            return w_fail(w, PEFA_ERR_IO, "write failed");
        }
        off += (size_t)k;
    }
    w->blen = 0;
    return 0;
}

/* appends bytes to the file (through the buffer) */
static int w_put(pefa_writer *w, const void *data, size_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    if (w->err) return w->err;
    while (len) {
        size_t room = WBUF_SIZE - w->blen;
        size_t k = len < room ? len : room;
        memcpy(w->buf + w->blen, p, k);
        w->blen += k;
        p += k;
        len -= k;
        w->pos += k;
        if (w->blen == WBUF_SIZE && w_flush(w)) return w->err;
    }
    return 0;
}

static int w_pad_to(pefa_writer *w, uint64_t target)
{
    static const uint8_t zeros[4096];
    while (w->pos < target) {
        uint64_t k = target - w->pos;
        if (k > sizeof zeros) k = sizeof zeros;
        if (w_put(w, zeros, (size_t)k)) return w->err;
    }
    return 0;
}

/* bytes a shape needs: 0, or -1 on overflow */
static int shape_bytes(const pefa_section_info *d, uint64_t *out)
{
    uint64_t want = pefa_type_size(d->elem);
    for (uint32_t i = 0; i < d->ndim; i++)
        if (mul_u64(want, d->shape[i], &want)) return -1;
    *out = want;
    return 0;
}

static int fill_random(uint8_t *out, size_t n)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    if (fd < 0) return -1;
    while (got < n) {
        ssize_t k = read(fd, out + got, n - got);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) continue;
            close(fd);
            return -1;
        }
        got += (size_t)k;
    }
    close(fd);
    return 0;
}

/* The one rule for what an index file may replace (pefa.h, pefa_output_check):
 * nothing, or a regular file (a symlink is judged by what it points to). A
 * rename over a device, FIFO, socket or directory would put the index in its
 * place, so they are refused here, by every writer, with or without force. */
int pefa__output_path_ok(const char *path)
{
    struct stat sb;
    const char *what;
    if (stat(path, &sb) != 0 || S_ISREG(sb.st_mode)) return 0;
    what = S_ISDIR(sb.st_mode)    ? "a directory"
           : S_ISCHR(sb.st_mode)  ? "a character device"
           : S_ISBLK(sb.st_mode)  ? "a block device"
           : S_ISFIFO(sb.st_mode) ? "a FIFO (named pipe)"
           : S_ISSOCK(sb.st_mode) ? "a socket"
                                  : "something other than a regular file";
    return pefa__set_error(PEFA_ERR_INVALID_ARG,
                           "%s: is %s, not a regular file: an index file is never written in its place", path, what);
}

int pefa_output_check(const char *path, int replace_non_index)
{
    struct stat sb;
    pefa_index *ix = NULL;
    char why[256];
    int rc;
    RETURN_ERROR_IF(!path || !*path, PEFA_ERR_INVALID_ARG, "pefa_output_check: no path");
    FORWARD_IF_ERROR(pefa__output_path_ok(path));
    if (replace_non_index || stat(path, &sb) != 0) return 0;
    rc = pefa_index_open(path, &ix);
    pefa_index_close(ix);
    RETURN_ERROR_IF(rc == PEFA_ERR_NOT_PEFA, PEFA_ERR_NOT_PEFA,
                    "%s: the file there is not a pefa index; not replacing it", path);
    if (rc == PEFA_ERR_IO) { /* unreadable: whether it is an index cannot be told */
        snprintf(why, sizeof why, "%s", pefa_last_error_detail());
        return pefa__set_error(PEFA_ERR_NOT_PEFA,
                               "%s: cannot tell whether the file there is a pefa index (%s); not replacing it", path,
                               why);
    }
    return 0; /* an index, even a damaged or newer one: an index may replace it */
}

int pefa_writer_open(const char *path, pefa_writer **out)
{
    pefa_writer *w;
    size_t plen;
    RETURN_ERROR_IF(!path || !out || !*path, PEFA_ERR_INVALID_ARG, "pefa_writer_open: no path");
    *out = NULL;
    FORWARD_IF_ERROR(pefa__output_path_ok(path));
    w = (pefa_writer *)calloc(1, sizeof *w);
    if (!w) return pefa__set_error(PEFA_ERR_NOMEM, "%s: out of memory", path);
    plen = strlen(path);
    w->fd = -1;
    w->zlevel = 3;
    w->path = (char *)malloc(plen + 1);
    w->tmp = (char *)malloc(plen + 16);
    w->buf = (uint8_t *)malloc(WBUF_SIZE);
    w->xxh = XXH3_createState();
    if (!w->path || !w->tmp || !w->buf || !w->xxh) {
        pefa_writer_abort(w);
        return pefa__set_error(PEFA_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(w->path, path, plen + 1);
    snprintf(w->tmp, plen + 16, "%s.tmp.XXXXXX", path);
    w->fd = mkstemp(w->tmp);
    if (w->fd < 0) {
        int e = errno;
        int rc = pefa__set_error(PEFA_ERR_IO, "%s: cannot create temporary file %s: %s", path,
                                w->tmp, strerror(e));
        w->tmp[0] = 0;
        pefa_writer_abort(w);
        return rc;
    }
    (void)fchmod(w->fd, 0644);
    if (fill_random(w->uuid, 16)) {
        pefa_writer_abort(w);
        return pefa__set_error(PEFA_ERR_IO, "%s: cannot read /dev/urandom", path);
    }
    w->uuid[6] = (uint8_t)((w->uuid[6] & 0x0F) | 0x40); /* RFC 4122 version 4 */
    w->uuid[8] = (uint8_t)((w->uuid[8] & 0x3F) | 0x80);
    /* header placeholder (zeros) and padding to the first section */
    if (w_pad_to(w, PEFA_ALIGN)) {
        int rc = w->err;
        pefa_writer_abort(w);
        return rc;
    }
    *out = w;
    return 0;
}

void pefa_writer_uuid(const pefa_writer *w, uint8_t uuid[16])
{
    memcpy(uuid, w->uuid, 16);
}

int pefa_writer_begin(pefa_writer *w, const pefa_section_info *d)
{
    uint32_t i;
    if (w->err) return w->err;
    RETURN_ERROR_IF(w->open, PEFA_ERR_STATE, "%s: a section is already open", w->path);
    RETURN_ERROR_IF(d->ndim > PEFA_MAX_DIMS, PEFA_ERR_INVALID_ARG, "%s: ndim %u > 4", w->path,
                    d->ndim);
    RETURN_ERROR_IF(d->codec > PEFA_CODEC_ZSTD, PEFA_ERR_INVALID_ARG, "%s: unknown codec %u",
                    w->path, d->codec);
    RETURN_ERROR_IF(d->ndim > 0 && pefa_type_size(d->elem) == 0, PEFA_ERR_INVALID_ARG,
                    "%s: unknown element type %u", w->path, d->elem);
    RETURN_ERROR_IF(d->flags & ~PEFA_SFLAGS_KNOWN, PEFA_ERR_INVALID_ARG,
                    "%s: unknown section flags 0x%x", w->path, d->flags);
    for (i = 0; i < w->nsec; i++)
        RETURN_ERROR_IF(w->secs[i].kind == d->kind && w->secs[i].target == d->target,
                        PEFA_ERR_INVALID_ARG, "%s: section %s/%s written twice", w->path,
                        pefa_kind_name(d->kind), pefa_target_name(d->target));
    RETURN_ERROR_IF(w->nsec >= PEFA_MAX_SECTIONS, PEFA_ERR_INVALID_ARG, "%s: too many sections",
                    w->path);
    RETURN_ERROR_IF(d->ndim > 0 && shape_bytes(d, &w->want), PEFA_ERR_INVALID_ARG,
                    "%s: section shape overflows", w->path);
    if (w_pad_to(w, (w->pos + PEFA_ALIGN - 1) / PEFA_ALIGN * PEFA_ALIGN)) return w->err;
    w->cur = *d;
    for (i = d->ndim; i < PEFA_MAX_DIMS; i++) w->cur.shape[i] = 0;
    w->cur.offset = w->pos;
    w->cur.stored_size = 0;
    w->cur.raw_size = 0;
    XXH3_64bits_reset(w->xxh);
    if (d->codec == PEFA_CODEC_ZSTD) {
        if (!w->zc) {
            w->zc = ZSTD_createCCtx();
            w->zout_cap = ZSTD_CStreamOutSize();
            w->zout = (uint8_t *)malloc(w->zout_cap);
            if (!w->zc || !w->zout) return w_fail(w, PEFA_ERR_NOMEM, "zstd context");
        }
        ZSTD_CCtx_reset(w->zc, ZSTD_reset_session_only);
        ZSTD_CCtx_setParameter(w->zc, ZSTD_c_compressionLevel, w->zlevel);
        ZSTD_CCtx_setParameter(w->zc, ZSTD_c_checksumFlag, 0);
        ZSTD_CCtx_setParameter(w->zc, ZSTD_c_contentSizeFlag, 1);
        if (d->ndim > 0) ZSTD_CCtx_setPledgedSrcSize(w->zc, w->want);
        w->pend_len = 0;
    }
    w->zdone = 0;
    w->open = 1;
    return 0;
}

static int w_stored(pefa_writer *w, const void *p, size_t n)
{
    XXH3_64bits_update(w->xxh, p, n);
    w->cur.stored_size += n;
    return w_put(w, p, n);
}

static int w_zstd(pefa_writer *w, const void *data, size_t len, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {data, len, 0};
    for (;;) {
        ZSTD_outBuffer o = {w->zout, w->zout_cap, 0};
        size_t rem = ZSTD_compressStream2(w->zc, &o, &in, mode);
        if (ZSTD_isError(rem)) return w_fail(w, PEFA_ERR_NOMEM, ZSTD_getErrorName(rem));
        if (o.pos && w_stored(w, w->zout, o.pos)) return w->err;
        if (mode == ZSTD_e_end ? rem == 0 : in.pos == in.size) break;
    }
    return 0;
}

int pefa_writer_write(pefa_writer *w, const void *data, size_t len)
{
    if (w->err) return w->err;
    RETURN_ERROR_IF(!w->open, PEFA_ERR_STATE, "%s: no section open", w->path);
    w->cur.raw_size += len;
    RETURN_ERROR_IF(w->zdone, PEFA_ERR_STATE, "%s: section already complete", w->path);
    if (w->cur.codec == PEFA_CODEC_ZSTD && w->cur.ndim == 0) {
        if (len > w->pend_cap - w->pend_len) {
            size_t nc = w->pend_cap ? w->pend_cap : 65536;
            uint8_t *nb;
            while (nc - w->pend_len < len) {
                if (nc > SIZE_MAX / 2) return w_fail(w, PEFA_ERR_NOMEM, "section buffer");
                nc *= 2;
            }
            nb = (uint8_t *)realloc(w->pend, nc);
            if (!nb) return w_fail(w, PEFA_ERR_NOMEM, "section buffer");
            w->pend = nb;
            w->pend_cap = nc;
        }
        if (len) memcpy(w->pend + w->pend_len, data, len);
        w->pend_len += len;
        return 0;
    }
    if (w->cur.codec == PEFA_CODEC_ZSTD) {
        if (w->cur.raw_size > w->want) {
            w->err = pefa__set_error(PEFA_ERR_INVALID_ARG,
                                    "%s: section %s/%s: more bytes written than the shape needs (%llu)",
                                    w->path, pefa_kind_name(w->cur.kind),
                                    pefa_target_name(w->cur.target), (unsigned long long)w->want);
            return w->err;
        }
        return w_zstd(w, data, len, ZSTD_e_continue);
    }
    return w_stored(w, data, len);
}

int pefa_writer_end(pefa_writer *w)
{
    pefa_section_info *s;
    if (w->err) return w->err;
    RETURN_ERROR_IF(!w->open, PEFA_ERR_STATE, "%s: no section open", w->path);
    /* shape first: a zstd frame with a pledged size cannot end short */
    if (w->cur.ndim > 0 && w->want != w->cur.raw_size) {
        w->err = pefa__set_error(PEFA_ERR_INVALID_ARG,
                                "%s: section %s/%s: %llu bytes written, shape needs %llu", w->path,
                                pefa_kind_name(w->cur.kind), pefa_target_name(w->cur.target),
                                (unsigned long long)w->cur.raw_size, (unsigned long long)w->want);
        return w->err;
    }
    if (w->cur.codec == PEFA_CODEC_ZSTD && !w->zdone) {
        /* ndim 0: the whole section in one e_end call, so the frame records its size */
        int zrc = w->cur.ndim == 0 ? w_zstd(w, w->pend, w->pend_len, ZSTD_e_end)
                                   : w_zstd(w, NULL, 0, ZSTD_e_end);
        w->pend_len = 0;
        if (zrc) return w->err;
    }
    w->cur.checksum = XXH3_64bits_digest(w->xxh);
    if (w->nsec == w->capsec) {
        uint32_t nc = w->capsec ? w->capsec * 2 : 16;
        s = (pefa_section_info *)realloc(w->secs, nc * sizeof *s);
        if (!s) return w_fail(w, PEFA_ERR_NOMEM, "directory");
        w->secs = s;
        w->capsec = nc;
    }
    w->secs[w->nsec++] = w->cur;
    w->open = 0;
    return 0;
}

int pefa_writer_add(pefa_writer *w, const pefa_section_info *d, const void *data, size_t len)
{
    FORWARD_IF_ERROR(pefa_writer_begin(w, d));
    if (d->codec == PEFA_CODEC_ZSTD && d->ndim == 0) {
        /* the whole section is here: one e_end call, no copy into pend */
        w->cur.raw_size = len;
        if (w_zstd(w, data, len, ZSTD_e_end)) return w->err;
        w->zdone = 1;
        return pefa_writer_end(w);
    }
    FORWARD_IF_ERROR(pefa_writer_write(w, data, len));
    return pefa_writer_end(w);
}

static void encode_dirent(uint8_t *e, const pefa_section_info *s)
{
    uint32_t k;
    memset(e, 0, PEFA_DIRENT_SIZE);
    st32(e + D_KIND, s->kind);
    st32(e + D_TARGET, s->target);
    st16(e + D_FLAGS, s->flags);
    e[D_CODEC] = s->codec;
    e[D_ELEM] = s->elem;
    st32(e + D_NDIM, s->ndim);
    st64(e + D_OFFSET, s->offset);
    st64(e + D_STORED, s->stored_size);
    st64(e + D_RAW, s->raw_size);
    for (k = 0; k < PEFA_MAX_DIMS; k++) st64(e + D_SHAPE + 8 * k, s->shape[k]);
    st64(e + D_CHECKSUM, s->checksum);
}

static int fsync_parent_dir(const char *path)
{
    char *dir = strdup(path);
    char *slash;
    int fd, rc = 0;
    if (!dir) return -1;
    slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = 0;
    else if (slash) *slash = 0;
    else strcpy(dir, ".");
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        if (fsync(fd) && errno != EINVAL) rc = -1;
        close(fd);
    }
    free(dir);
    return rc;
}

/* the directory after the last section (8-byte aligned), then the header at 0 */
static int write_directory_and_header(pefa_writer *w)
{
    uint8_t hdr[PEFA_HEADER_SIZE];
    uint8_t *dir;
    uint64_t dir_off, dir_len;
    if (w_pad_to(w, (w->pos + 7) / 8 * 8)) return w->err;
    dir_off = w->pos;
    dir_len = (uint64_t)w->nsec * PEFA_DIRENT_SIZE;
    dir = (uint8_t *)calloc(1, dir_len ? dir_len : 1);
    if (!dir) return w_fail(w, PEFA_ERR_NOMEM, "directory");
    for (uint32_t i = 0; i < w->nsec; i++) encode_dirent(dir + (size_t)i * PEFA_DIRENT_SIZE, &w->secs[i]);
    if (w_put(w, dir, dir_len) || w_flush(w)) {
        free(dir);
        return w->err;
    }
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr + H_MAGIC, PEFA_MAGIC, PEFA_MAGIC_LEN);
    st16(hdr + H_MAJOR, PEFA_FORMAT_MAJOR);
    st16(hdr + H_MINOR, PEFA_FORMAT_MINOR);
    st32(hdr + H_ENDIAN, PEFA_ENDIAN_TAG);
    st32(hdr + H_HDRSIZE, PEFA_HEADER_SIZE);
    st32(hdr + H_DIRENTSIZE, PEFA_DIRENT_SIZE);
    st64(hdr + H_FLAGS, w->flags);
    memcpy(hdr + H_UUID, w->uuid, 16);
    st64(hdr + H_FILESIZE, w->pos);
    st64(hdr + H_DIROFF, dir_off);
    st32(hdr + H_NSECT, w->nsec);
    st64(hdr + H_DIRSUM, XXH3_64bits(dir, (size_t)dir_len));
    st64(hdr + H_HDRSUM, XXH3_64bits(hdr, H_HDRSUM));
    free(dir);
    if (pwrite(w->fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr) return w_fail(w, PEFA_ERR_IO, "writing header failed");
    return 0;
}

int pefa__writer_set_flags(pefa_writer *w, uint64_t flags)
{
    RETURN_ERROR_IF(flags & ~PEFA_HFLAGS_KNOWN, PEFA_ERR_INVALID_ARG, "%s: unknown header flags 0x%llx", w->path,
                    (unsigned long long)flags);
    w->flags = flags;
    return 0;
}

int pefa__writer_commit(pefa_writer *w, int *renamed)
{
    int rc;
    *renamed = 0;
    if (!w) return pefa__set_error(PEFA_ERR_INVALID_ARG, "pefa_writer_commit: NULL writer");
    if (!w->err && w->open) w->err = pefa__set_error(PEFA_ERR_STATE, "%s: section still open", w->path);
    if (w->err || write_directory_and_header(w)) goto fail;
    if (fsync(w->fd)) {
        w_fail(w, PEFA_ERR_IO, "fsync failed");
        goto fail;
    }
    rc = close(w->fd);
    w->fd = -1;
    if (rc) {
        w_fail(w, PEFA_ERR_IO, "close failed");
        goto fail;
    }
    /* the path may have changed since open: never rename over a non-regular file */
    if ((rc = pefa__output_path_ok(w->path)) != 0) {
        w->err = rc;
        goto fail;
    }
    if (rename(w->tmp, w->path)) {
        w_fail(w, PEFA_ERR_IO, "rename into place failed");
        goto fail;
    }
    w->tmp[0] = 0; /* nothing to remove any more: the file is committed */
    *renamed = 1;
    if (fsync_parent_dir(w->path))
        w_fail(w, PEFA_ERR_IO, "committed, but syncing its directory failed (the file may not survive a power loss)");
fail:
    rc = w->err;
    pefa_writer_abort(w);
    return rc;
}

/* a finished stored section read back from the temporary file (the build
 * graphs and tunes the rows it wrote instead of keeping a second copy) */
int pefa__writer_map(pefa_writer *w, uint32_t kind, uint32_t target, pefa__wmap *m)
{
    const pefa_section_info *s = NULL;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t from;
    memset(m, 0, sizeof *m);
    if (w->err) return w->err;
    for (uint32_t i = 0; i < w->nsec && !s; i++)
        if (w->secs[i].kind == kind && w->secs[i].target == target) s = &w->secs[i];
    RETURN_ERROR_IF(!s || s->codec != PEFA_CODEC_RAW, PEFA_ERR_STATE, "%s: section %s/%s not written uncompressed",
                    w->path, pefa_kind_name(kind), pefa_target_name(target));
    if (w_flush(w)) return w->err;
    if (!s->stored_size) return 0;
    from = s->offset / (uint64_t)(page > 0 ? page : 4096) * (uint64_t)(page > 0 ? page : 4096);
    m->len = (size_t)(s->offset + s->stored_size - from);
    m->base = mmap(NULL, m->len, PROT_READ, MAP_SHARED, w->fd, (off_t)from);
    if (m->base == MAP_FAILED) {
        m->base = NULL;
        return w_fail(w, PEFA_ERR_IO, "mapping a written section failed");
    }
    m->data = (const uint8_t *)m->base + (s->offset - from);
    return 0;
}

void pefa__writer_unmap(pefa__wmap *m)
{
    if (m->base) munmap(m->base, m->len);
    memset(m, 0, sizeof *m);
}

int pefa_writer_commit(pefa_writer *w)
{
    int renamed;
    return pefa__writer_commit(w, &renamed);
}

void pefa_writer_abort(pefa_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    if (w->tmp && w->tmp[0]) unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w->buf);
    free(w->secs);
    free(w->zout);
    free(w->pend);
    if (w->xxh) XXH3_freeState(w->xxh);
    if (w->zc) ZSTD_freeCCtx(w->zc);
    free(w);
}
