/*
 * reader.c - opens a pefa file: mmap, then validation of the header and the
 * directory only. O(number of sections); no section data is read.
 *
 * The rule ids [Hn], [Dn], [Ln] refer to normative sentences in
 * format/pefa-format-v1.md.
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
#include "container/format.h"
#include "container/container.h"
#include "container/index_private.h"

/* ---- names ---------------------------------------------------------------- */
const char *pefa_kind_name(uint32_t kind)
{
    switch (kind) {
    case PEFA_KIND_META: return "META";
    case PEFA_KIND_VECTORS: return "VECTORS";
    case PEFA_KIND_Y_ROWPTR: return "Y_ROWPTR";
    case PEFA_KIND_Y_ROWS: return "Y_ROWS";
    case PEFA_KIND_HNSW_INFO: return "HNSW_INFO";
    case PEFA_KIND_HNSW_L0: return "HNSW_L0";
    case PEFA_KIND_HNSW_UPPER_IDS: return "HNSW_UPPER_IDS";
    case PEFA_KIND_HNSW_UPPER_OFFS: return "HNSW_UPPER_OFFS";
    case PEFA_KIND_HNSW_UPPER_ADJ: return "HNSW_UPPER_ADJ";
    case PEFA_KIND_XS_NORMS: return "XS_NORMS";
    case PEFA_KIND_CODES: return "CODES";
    case PEFA_KIND_CODE_SCALES: return "CODE_SCALES";
    default: return "UNKNOWN";
    }
}

const char *pefa_target_name(uint32_t target)
{
    switch (target) {
    case PEFA_TARGET_NONE: return "-";
    case PEFA_TARGET_PASSAGES: return "passages";
    case PEFA_TARGET_QUERIES: return "queries";
    case PEFA_TARGET_XS: return "xs";
    case PEFA_TARGET_XS_Z: return "xs_z";
    default: return "unknown";
    }
}

const char *pefa_codec_name(uint8_t codec)
{
    return codec == PEFA_CODEC_RAW ? "raw" : codec == PEFA_CODEC_ZSTD ? "zstd" : "unknown";
}

static int kind_known(uint32_t kind)
{
    return kind >= PEFA_KIND_META && kind <= PEFA_KIND_CODE_SCALES;
}

/* ---- validation ------------------------------------------------------------ */
static int all_zero(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static int check_header(pefa_index *ix)
{
    const uint8_t *h = ix->map;
    const char *path = ix->path;
    uint64_t flags, dir_len, end;
    uint32_t hdrsize;

    /* [H1] magic first: "not our file" before anything else */
    if (ix->size < PEFA_MAGIC_LEN)
        RETURN_ERROR_IF(ix->size == 0 || memcmp(h, PEFA_MAGIC, (size_t)ix->size) != 0,
                        PEFA_ERR_NOT_PEFA, "%s: not a pefa file (%s)", path,
                        ix->size == 0 ? "empty file" : "too short for the magic number");
    RETURN_ERROR_IF(ix->size >= PEFA_MAGIC_LEN && memcmp(h, PEFA_MAGIC, PEFA_MAGIC_LEN) != 0,
                    PEFA_ERR_NOT_PEFA, "%s: not a pefa file (bad magic number)", path);
    RETURN_ERROR_IF(ix->size < PEFA_HEADER_SIZE, PEFA_ERR_TRUNCATED,
                    "%s: truncated: %llu bytes, the header alone is %u", path,
                    (unsigned long long)ix->size, PEFA_HEADER_SIZE);
    /* [H2] a newer (or older, unknown) major version is refused before its
     * layout is interpreted any further */
    ix->info.major = ld16(h + H_MAJOR);
    ix->info.minor = ld16(h + H_MINOR);
    RETURN_ERROR_IF(ix->info.major != PEFA_FORMAT_MAJOR, PEFA_ERR_VERSION,
                    "%s: format version %u.%u, this reader understands %u.x", path,
                    ix->info.major, ix->info.minor, PEFA_FORMAT_MAJOR);
    /* [H3] header checksum */
    RETURN_ERROR_IF(ld64(h + H_HDRSUM) != XXH3_64bits(h, H_HDRSUM), PEFA_ERR_CHECKSUM,
                    "%s: header checksum mismatch", path);
    /* [H4] byte order and sizes */
    RETURN_ERROR_IF(ld32(h + H_ENDIAN) != PEFA_ENDIAN_TAG, PEFA_ERR_CORRUPT,
                    "%s: bad endianness tag 0x%08x", path, ld32(h + H_ENDIAN));
    hdrsize = ld32(h + H_HDRSIZE);
    ix->dirent_size = ld32(h + H_DIRENTSIZE);
    RETURN_ERROR_IF(hdrsize != PEFA_HEADER_SIZE, PEFA_ERR_CORRUPT,
                    "%s: header size %u, expected %u", path, hdrsize, PEFA_HEADER_SIZE);
    RETURN_ERROR_IF(ix->dirent_size < PEFA_DIRENT_SIZE || ix->dirent_size % 8 != 0 ||
                        ix->dirent_size > 65536,
                    PEFA_ERR_CORRUPT, "%s: bad directory entry size %u", path, ix->dirent_size);
    /* [H5] must-understand flags */
    flags = ld64(h + H_FLAGS);
    ix->info.flags = flags;
    RETURN_ERROR_IF(flags & PEFA_HFLAGS_REQUIRED_MASK & ~PEFA_HFLAGS_KNOWN, PEFA_ERR_VERSION,
                    "%s: header requires features this reader lacks (flags 0x%llx)", path,
                    (unsigned long long)(flags & PEFA_HFLAGS_REQUIRED_MASK & ~PEFA_HFLAGS_KNOWN));
    /* [H6] reserved bytes are zero in files of a minor version we know */
    if (ix->info.minor <= PEFA_FORMAT_MINOR)
        RETURN_ERROR_IF(ld32(h + H_RESERVED0) != 0 || !all_zero(h + H_RESERVED1, H_HDRSUM - H_RESERVED1),
                        PEFA_ERR_CORRUPT, "%s: reserved header bytes are not zero", path);
    memcpy(ix->info.uuid, h + H_UUID, 16);
    ix->info.file_size = ld64(h + H_FILESIZE);
    ix->info.n_sections = ld32(h + H_NSECT);
    ix->dir_off = ld64(h + H_DIROFF);
    /* [H7] exact length: truncation and appended bytes are both detected here */
    RETURN_ERROR_IF(ix->info.file_size != ix->size, PEFA_ERR_TRUNCATED,
                    "%s: %s: header says %llu bytes, file has %llu", path,
                    ix->size < ix->info.file_size ? "truncated" : "trailing bytes",
                    (unsigned long long)ix->info.file_size, (unsigned long long)ix->size);
    RETURN_ERROR_IF(ix->info.n_sections > PEFA_MAX_SECTIONS, PEFA_ERR_CORRUPT,
                    "%s: %u sections (limit %u)", path, ix->info.n_sections, PEFA_MAX_SECTIONS);
    dir_len = (uint64_t)ix->info.n_sections * ix->dirent_size;
    RETURN_ERROR_IF(ix->dir_off < PEFA_HEADER_SIZE || ix->dir_off % 8 != 0 ||
                        add_u64(ix->dir_off, dir_len, &end) || end > ix->size,
                    PEFA_ERR_CORRUPT, "%s: directory (offset %llu, %u entries) lies outside the file",
                    path, (unsigned long long)ix->dir_off, ix->info.n_sections);
    /* [H8] directory checksum */
    RETURN_ERROR_IF(ld64(h + H_DIRSUM) != XXH3_64bits(ix->map + ix->dir_off, (size_t)dir_len),
                    PEFA_ERR_CHECKSUM, "%s: directory checksum mismatch", path);
    return 0;
}

static int cmp_by_offset(const void *a, const void *b, void *ctx);

static int check_entry(pefa_index *ix, uint32_t i)
{
    const uint8_t *e = ix->map + ix->dir_off + (uint64_t)i * ix->dirent_size;
    pefa_section_info *s = &ix->secs[i];
    const char *path = ix->path;
    uint64_t end, want;
    uint32_t k;
    int known_minor = ix->info.minor <= PEFA_FORMAT_MINOR;

    s->kind = ld32(e + D_KIND);
    s->target = ld32(e + D_TARGET);
    s->flags = ld16(e + D_FLAGS);
    s->codec = e[D_CODEC];
    s->elem = e[D_ELEM];
    s->ndim = ld32(e + D_NDIM);
    s->offset = ld64(e + D_OFFSET);
    s->stored_size = ld64(e + D_STORED);
    s->raw_size = ld64(e + D_RAW);
    for (k = 0; k < PEFA_MAX_DIMS; k++) s->shape[k] = ld64(e + D_SHAPE + 8 * k);
    s->checksum = ld64(e + D_CHECKSUM);

#define SEC_ERR(code, ...)                                                                  \
    do {                                                                                    \
        char why_[200];                                                                     \
        snprintf(why_, sizeof why_, __VA_ARGS__);                                           \
        return pefa__set_error(code, "%s: section %u (%s/%s): %s", path, i,                  \
                              pefa_kind_name(s->kind), pefa_target_name(s->target), why_);  \
    } while (0)

    /* [D1] reserved flag bits and bytes */
    if (known_minor) {
        if (s->flags & ~PEFA_SFLAGS_KNOWN) SEC_ERR(PEFA_ERR_CORRUPT, "reserved flag bits set (0x%x)", s->flags);
        if (!all_zero(e + D_RESERVED, PEFA_DIRENT_SIZE - D_RESERVED) ||
            !all_zero(e + PEFA_DIRENT_SIZE, ix->dirent_size - PEFA_DIRENT_SIZE))
            SEC_ERR(PEFA_ERR_CORRUPT, "reserved directory bytes are not zero");
    }
    /* [D2] unknown required sections refuse the file; unknown optional ones are ignored */
    ix->understood[i] = (uint8_t)(kind_known(s->kind) && s->codec <= PEFA_CODEC_ZSTD &&
                                  pefa_type_size(s->elem) != 0);
    if (!ix->understood[i] && (s->flags & PEFA_SECTION_REQUIRED))
        SEC_ERR(PEFA_ERR_VERSION, "required section of unknown kind %u / codec %u / type %u",
                s->kind, s->codec, s->elem);
    /* [D3] bounds and alignment */
    if (s->offset % PEFA_ALIGN != 0) SEC_ERR(PEFA_ERR_CORRUPT, "offset %llu not 4096-aligned", (unsigned long long)s->offset);
    if (s->offset < PEFA_ALIGN) SEC_ERR(PEFA_ERR_CORRUPT, "offset %llu overlaps the header", (unsigned long long)s->offset);
    if (add_u64(s->offset, s->stored_size, &end) || end > ix->size)
        SEC_ERR(PEFA_ERR_CORRUPT, "bytes %llu+%llu lie outside the file (%llu bytes)",
                (unsigned long long)s->offset, (unsigned long long)s->stored_size,
                (unsigned long long)ix->size);
    /* [D4] shape */
    if (s->ndim > PEFA_MAX_DIMS) SEC_ERR(PEFA_ERR_CORRUPT, "ndim %u > 4", s->ndim);
    for (k = s->ndim; k < PEFA_MAX_DIMS; k++)
        if (s->shape[k]) SEC_ERR(PEFA_ERR_CORRUPT, "unused shape entry %u is not zero", k);
    if (!ix->understood[i]) return 0;
    if (s->ndim > 0) {
        want = pefa_type_size(s->elem);
        for (k = 0; k < s->ndim; k++)
            if (mul_u64(want, s->shape[k], &want)) SEC_ERR(PEFA_ERR_CORRUPT, "shape overflows 64 bits");
        if (want != s->raw_size)
            SEC_ERR(PEFA_ERR_CORRUPT, "raw size %llu does not match shape and type (%llu)",
                    (unsigned long long)s->raw_size, (unsigned long long)want);
    }
    /* [D5] codec sizes */
    if (s->codec == PEFA_CODEC_RAW && s->stored_size != s->raw_size)
        SEC_ERR(PEFA_ERR_CORRUPT, "raw section with stored size %llu != raw size %llu",
                (unsigned long long)s->stored_size, (unsigned long long)s->raw_size);
    if (s->codec == PEFA_CODEC_ZSTD) {
        uint64_t limit;
        if (s->stored_size < 9) SEC_ERR(PEFA_ERR_CORRUPT, "zstd section too small (%llu bytes)", (unsigned long long)s->stored_size);
        /* [D6] no zstd frame expands more than 1:65536 here; bounds what a lying raw size can make us allocate */
        if (mul_u64(s->stored_size, 65536, &limit) || s->raw_size > limit)
            SEC_ERR(PEFA_ERR_CORRUPT, "raw size %llu implausible for %llu stored bytes",
                    (unsigned long long)s->raw_size, (unsigned long long)s->stored_size);
    }
    return 0;
#undef SEC_ERR
}

/* [D7] sections never overlap each other, the header or the directory;
 * (kind, target) pairs are unique */
static int check_layout(pefa_index *ix)
{
    uint32_t n = ix->info.n_sections, i;
    uint32_t *ord;
    uint64_t dir_end = ix->dir_off + (uint64_t)n * ix->dirent_size;
    uint64_t max_end = dir_end;
    int rc = 0;
    if (n == 0) goto tail;
    ord = (uint32_t *)malloc(n * sizeof *ord);
    if (!ord) return pefa__set_error(PEFA_ERR_NOMEM, "%s: out of memory", ix->path);
    for (i = 0; i < n; i++) ord[i] = i;
    /* insertion sort keeps this dependency-free; n is small (<= 4096) */
    for (i = 1; i < n; i++) {
        uint32_t v = ord[i], j = i;
        while (j > 0 && cmp_by_offset(&ord[j - 1], &v, ix->secs) > 0) {
            ord[j] = ord[j - 1];
            j--;
        }
        ord[j] = v;
    }
    for (i = 0; i < n && !rc; i++) {
        const pefa_section_info *s = &ix->secs[ord[i]];
        uint64_t end = s->offset + s->stored_size;
        if (end > max_end) max_end = end;
        if (s->stored_size && s->offset < dir_end && ix->dir_off < end)
            rc = pefa__set_error(PEFA_ERR_CORRUPT, "%s: section %u overlaps the directory", ix->path, ord[i]);
        else if (i + 1 < n && s->stored_size && ix->secs[ord[i + 1]].offset < end)
            rc = pefa__set_error(PEFA_ERR_CORRUPT, "%s: sections %u and %u overlap", ix->path, ord[i], ord[i + 1]);
    }
    for (i = 0; i < n && !rc; i++) {
        uint32_t j;
        for (j = i + 1; j < n && !rc; j++)
            if (ix->secs[i].kind == ix->secs[j].kind && ix->secs[i].target == ix->secs[j].target)
                rc = pefa__set_error(PEFA_ERR_CORRUPT, "%s: sections %u and %u are both %s/%s", ix->path,
                                    i, j, pefa_kind_name(ix->secs[i].kind), pefa_target_name(ix->secs[i].target));
    }
    free(ord);
    if (rc) return rc;
tail:
    /* [L1] the file ends where its last structure ends */
    RETURN_ERROR_IF(max_end != ix->size, PEFA_ERR_CORRUPT,
                    "%s: %llu bytes after the last section or directory", ix->path,
                    (unsigned long long)(ix->size - max_end));
    return 0;
}

static int cmp_by_offset(const void *a, const void *b, void *ctx)
{
    const pefa_section_info *s = (const pefa_section_info *)ctx;
    uint64_t x = s[*(const uint32_t *)a].offset, y = s[*(const uint32_t *)b].offset;
    return x < y ? -1 : x > y;
}

int pefa_index_open(const char *path, pefa_index **out)
{
    pefa_index *ix;
    struct stat st;
    int rc;
    RETURN_ERROR_IF(!path || !out, PEFA_ERR_INVALID_ARG, "pefa_index_open: NULL argument");
    *out = NULL;
    ix = (pefa_index *)calloc(1, sizeof *ix);
    if (!ix) return pefa__set_error(PEFA_ERR_NOMEM, "%s: out of memory", path);
    ix->fd = -1;
    pthread_mutex_init(&ix->lock, NULL);
    ix->path = strdup(path);
    if (!ix->path) {
        pefa_index_close(ix);
        return pefa__set_error(PEFA_ERR_NOMEM, "%s: out of memory", path);
    }
    ix->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (ix->fd < 0 || fstat(ix->fd, &st) != 0) {
        rc = pefa__set_error(PEFA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = pefa__set_error(PEFA_ERR_IO, "%s: not a regular file", path);
        goto fail;
    }
    ix->size = (uint64_t)st.st_size;
    if (ix->size > 0) {
        void *m = mmap(NULL, (size_t)ix->size, PROT_READ, MAP_SHARED, ix->fd, 0);
        if (m == MAP_FAILED) {
            rc = pefa__set_error(PEFA_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
            goto fail;
        }
        ix->map = (const uint8_t *)m;
    } else {
        ix->map = (const uint8_t *)"";
    }
    if ((rc = check_header(ix)) != 0) goto fail;
    ix->secs = (pefa_section_info *)calloc(ix->info.n_sections + 1, sizeof *ix->secs);
    ix->understood = (uint8_t *)calloc(ix->info.n_sections + 1, 1);
    ix->zcache = (void **)calloc(ix->info.n_sections + 1, sizeof(void *));
    if (!ix->secs || !ix->understood || !ix->zcache) {
        rc = pefa__set_error(PEFA_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (uint32_t i = 0; i < ix->info.n_sections; i++)
        if ((rc = check_entry(ix, i)) != 0) goto fail;
    if ((rc = check_layout(ix)) != 0) goto fail;
    *out = ix;
    return 0;
fail:
    pefa_index_close(ix);
    return rc;
}

void pefa__index_map(pefa_index *ix, const void **base, size_t *len)
{
    *base = ix->map;
    *len = (size_t)ix->size;
}

void pefa_index_close(pefa_index *ix)
{
    if (!ix) return;
    if (ix->ext && ix->ext_free) ix->ext_free(ix->ext);
    if (ix->zcache)
        for (uint32_t i = 0; i < ix->info.n_sections; i++) free(ix->zcache[i]);
    if (ix->map && ix->size) munmap((void *)(uintptr_t)ix->map, (size_t)ix->size);
    if (ix->fd >= 0) close(ix->fd);
    pthread_mutex_destroy(&ix->lock);
    free(ix->zcache);
    free(ix->understood);
    free(ix->secs);
    free(ix->meta_buf);
    free(ix->meta_keys);
    free(ix->meta_vals);
    free(ix->path);
    free(ix);
}

const char *pefa_index_path(const pefa_index *ix)
{
    return ix->path;
}

void pefa_index_file_info(const pefa_index *ix, pefa_file_info *out)
{
    *out = ix->info;
}

uint32_t pefa_index_section_count(const pefa_index *ix)
{
    return ix->info.n_sections;
}

int pefa_index_section_info(const pefa_index *ix, uint32_t i, pefa_section_info *out)
{
    RETURN_ERROR_IF(i >= ix->info.n_sections, PEFA_ERR_INVALID_ARG, "%s: no section %u", ix->path, i);
    *out = ix->secs[i];
    return 0;
}

int pefa_index_find(const pefa_index *ix, uint32_t kind, uint32_t target)
{
    for (uint32_t i = 0; i < ix->info.n_sections; i++)
        if (ix->secs[i].kind == kind && ix->secs[i].target == target && ix->understood[i]) return (int)i;
    return PEFA_ERR_NOT_FOUND;
}

void *pefa__index_ext(pefa_index *ix)
{
    void *p;
    pthread_mutex_lock(&ix->lock);
    p = ix->ext;
    pthread_mutex_unlock(&ix->lock);
    return p;
}

void *pefa__index_ext_set(pefa_index *ix, void *p, void (*free_fn)(void *))
{
    pthread_mutex_lock(&ix->lock);
    if (!ix->ext) {
        ix->ext = p;
        ix->ext_free = free_fn;
    }
    p = ix->ext;
    pthread_mutex_unlock(&ix->lock);
    return p;
}

/* decompresses a zstd section after checking its stored checksum */
static int zstd_load(pefa_index *ix, uint32_t i, void **out)
{
    const pefa_section_info *s = &ix->secs[i];
    const uint8_t *src = ix->map + s->offset;
    unsigned long long fcs;
    size_t got;
    void *dst;
    RETURN_ERROR_IF(XXH3_64bits(src, (size_t)s->stored_size) != s->checksum, PEFA_ERR_CHECKSUM,
                    "%s: section %u (%s/%s): checksum mismatch", ix->path, i,
                    pefa_kind_name(s->kind), pefa_target_name(s->target));
    /* [C1] exactly one frame: nothing (not even a skippable frame) after it */
    RETURN_ERROR_IF(ZSTD_findFrameCompressedSize(src, (size_t)s->stored_size) != s->stored_size, PEFA_ERR_CORRUPT,
                    "%s: section %u (%s/%s): not exactly one zstd frame", ix->path, i, pefa_kind_name(s->kind),
                    pefa_target_name(s->target));
    fcs = ZSTD_getFrameContentSize(src, (size_t)s->stored_size);
    RETURN_ERROR_IF(fcs != s->raw_size, PEFA_ERR_CORRUPT,
                    "%s: section %u (%s/%s): zstd frame size disagrees with the directory", ix->path,
                    i, pefa_kind_name(s->kind), pefa_target_name(s->target));
    dst = malloc(s->raw_size ? (size_t)s->raw_size : 1);
    RETURN_ERROR_IF(!dst, PEFA_ERR_NOMEM, "%s: section %u: cannot allocate %llu bytes", ix->path, i,
                    (unsigned long long)s->raw_size);
    got = ZSTD_decompress(dst, (size_t)s->raw_size, src, (size_t)s->stored_size);
    if (ZSTD_isError(got) || got != s->raw_size) {
        free(dst);
        return pefa__set_error(PEFA_ERR_CORRUPT, "%s: section %u (%s/%s): zstd: %s", ix->path, i,
                              pefa_kind_name(s->kind), pefa_target_name(s->target),
                              ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short output");
    }
    *out = dst;
    return 0;
}

int pefa_index_section_data(pefa_index *ix, uint32_t i, const void **data, uint64_t *size)
{
    const pefa_section_info *s;
    int rc = 0;
    RETURN_ERROR_IF(i >= ix->info.n_sections, PEFA_ERR_INVALID_ARG, "%s: no section %u", ix->path, i);
    s = &ix->secs[i];
    RETURN_ERROR_IF(!ix->understood[i], PEFA_ERR_VERSION, "%s: section %u has an unknown kind or codec",
                    ix->path, i);
    if (s->codec == PEFA_CODEC_RAW) {
        *data = ix->map + s->offset;
        *size = s->raw_size;
        return 0;
    }
    pthread_mutex_lock(&ix->lock);
    if (!ix->zcache[i]) rc = zstd_load(ix, i, &ix->zcache[i]);
    pthread_mutex_unlock(&ix->lock);
    if (rc) return rc;
    *data = ix->zcache[i];
    *size = s->raw_size;
    return 0;
}

int pefa__section_get(pefa_index *ix, uint32_t kind, uint32_t target, uint8_t elem, const void **data,
                      pefa_section_info *info)
{
    int i = pefa_index_find(ix, kind, target);
    uint64_t n;
    *data = NULL;
    if (i < 0) return 0;
    RETURN_ERROR_IF(ix->secs[i].elem != elem, PEFA_ERR_CORRUPT, "%s: section %d (%s/%s) has type %s, expected %s",
                    ix->path, i, pefa_kind_name(kind), pefa_target_name(target), pefa_type_name(ix->secs[i].elem),
                    pefa_type_name(elem));
    FORWARD_IF_ERROR(pefa_index_section_data(ix, (uint32_t)i, data, &n));
    if (info) *info = ix->secs[i];
    return 0;
}
