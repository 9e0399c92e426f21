/*
 * input_npy.c - dense matrix readers: numpy .npy (v1/v2/v3, <f4 / <f2, C order,
 * 2-D) and .fvecs. See input.h.
 *
 * Everything here treats the input as hostile: every length is checked before
 * it is used, products are overflow-checked, values are read with memcpy (no
 * alignment assumptions) and nothing reads outside [buf, buf + len).
 */
#include "util/input.h"
#include "util/input_private.h"

#include "pefa.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPY_MAX_DIM 65536u
#define NPY_MAX_NDIM 64


static const char *nm(const char *name) { return name ? name : "input"; }

static void printable(const unsigned char *s, size_t n, char *out, size_t outlen)
{
    tin_printable(s, n, n, out, outlen);
}

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* ------------------------------------------------------------------------- */
/* .npy header: a Python dict literal                                         */

typedef struct {
    const unsigned char *p, *end;
} cur;

static void skip_ws(cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(cur *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == (unsigned char)ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* Python string literal in ' or " without escapes; *s / *n point into the
 * header. Returns 0, or -1 if not a string literal. */
static int parse_str(cur *c, const unsigned char **s, size_t *n)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return -1;
    unsigned char q = *c->p++;
    const unsigned char *b = c->p;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || *c->p == '\n' || *c->p == '\0')
            return -1;
        c->p++;
    }
    if (c->p >= c->end)
        return -1;
    *s = b;
    *n = (size_t)(c->p - b);
    c->p++;
    return 0;
}

static int word_is(cur *c, const char *w)
{
    size_t n = strlen(w);
    skip_ws(c);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
        return 0;
    /* must not continue as an identifier */
    if ((size_t)(c->end - c->p) > n) {
        unsigned char nx = c->p[n];
        if ((nx >= 'a' && nx <= 'z') || (nx >= 'A' && nx <= 'Z') || (nx >= '0' && nx <= '9') || nx == '_')
            return 0;
    }
    c->p += n;
    return 1;
}

/* non-negative decimal integer (Python 2 'L' suffix accepted); -2 overflow */
static int parse_uint(cur *c, uint64_t *v)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return -1;
    uint64_t x = 0;
    int over = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p - '0');
        if (x > (UINT64_MAX - d) / 10)
            over = 1;
        else
            x = x * 10 + d;
        c->p++;
    }
    if (c->p < c->end && (*c->p == 'L' || *c->p == 'l'))
        c->p++;
    *v = x;
    return over ? -2 : 0;
}

typedef struct {
    const unsigned char *descr;
    size_t descr_len;
    int descr_kind; /* 0 absent, 1 string, 2 other (list: structured dtype) */
    int fortran;    /* -1 absent */
    int ndim;       /* -1 absent */
    uint64_t shape[NPY_MAX_NDIM];
} npy_hdr;

/* Skips a generic value (for a descr that is a list of tuples). */
static int skip_value(cur *c, int depth)
{
    const unsigned char *s;
    size_t n;
    uint64_t v;
    if (depth > 16)
        return -1;
    skip_ws(c);
    if (c->p >= c->end)
        return -1;
    if (*c->p == '\'' || *c->p == '"')
        return parse_str(c, &s, &n);
    if (*c->p == '(' || *c->p == '[') {
        char close = *c->p == '(' ? ')' : ']';
        c->p++;
        for (;;) {
            if (eat(c, close))
                return 0;
            if (skip_value(c, depth + 1) != 0)
                return -1;
            if (eat(c, ','))
                continue;
            if (eat(c, close))
                return 0;
            return -1;
        }
    }
    if (word_is(c, "True") || word_is(c, "False") || word_is(c, "None"))
        return 0;
    if (*c->p == '-')
        c->p++;
    return parse_uint(c, &v) == -1 ? -1 : 0;
}

static int parse_header(const unsigned char *h, size_t hl, npy_hdr *o, const char *name,
                        char *err, size_t errlen)
{
    cur c = {h, h + hl};
    int seen_d = 0, seen_f = 0, seen_s = 0;
    char tmp[80];
    o->descr = NULL;
    o->descr_len = 0;
    o->descr_kind = 0;
    o->fortran = -1;
    o->ndim = -1;

    if (!eat(&c, '{'))
        goto bad;
    for (;;) {
        const unsigned char *k;
        size_t kn;
        if (eat(&c, '}'))
            break;
        if (parse_str(&c, &k, &kn) != 0)
            goto bad;
        if (!eat(&c, ':'))
            goto bad;
        if (kn == 5 && memcmp(k, "descr", 5) == 0) {
            if (seen_d++)
                goto dup;
            cur save = c;
            if (parse_str(&c, &o->descr, &o->descr_len) == 0) {
                o->descr_kind = 1;
            } else { /* a list of fields: a structured dtype */
                c = save;
                skip_ws(&c);
                if (c.p >= c.end || *c.p != '[' || skip_value(&c, 0) != 0)
                    goto bad;
                o->descr_kind = 2;
            }
        } else if (kn == 13 && memcmp(k, "fortran_order", 13) == 0) {
            if (seen_f++)
                goto dup;
            if (word_is(&c, "True"))
                o->fortran = 1;
            else if (word_is(&c, "False"))
                o->fortran = 0;
            else
                goto bad;
        } else if (kn == 5 && memcmp(k, "shape", 5) == 0) {
            if (seen_s++)
                goto dup;
            if (!eat(&c, '('))
                goto bad;
            o->ndim = 0;
            for (;;) {
                if (eat(&c, ')'))
                    break;
                uint64_t v;
                int r = parse_uint(&c, &v);
                if (r == -1)
                    goto bad;
                if (r == -2) {
                    tin_seterr(err, errlen, "%s: .npy shape has a dimension that does not fit in 64 bits",
                           nm(name));
                    return -1;
                }
                if (o->ndim >= NPY_MAX_NDIM) {
                    tin_seterr(err, errlen, "%s: .npy shape has more than %d dimensions", nm(name),
                           NPY_MAX_NDIM);
                    return -1;
                }
                o->shape[o->ndim++] = v;
                if (eat(&c, ','))
                    continue;
                if (eat(&c, ')'))
                    break;
                goto bad;
            }
        } else {
            printable(k, kn, tmp, sizeof tmp);
            tin_seterr(err, errlen, "%s: .npy header has an unexpected key '%s'", nm(name), tmp);
            return -1;
        }
        if (eat(&c, ','))
            continue;
        if (eat(&c, '}'))
            break;
        goto bad;
    }
    skip_ws(&c);
    if (c.p != c.end)
        goto bad;
    if (!seen_d || !seen_f || !seen_s) {
        tin_seterr(err, errlen, "%s: .npy header lacks the '%s' key", nm(name),
               !seen_d ? "descr" : !seen_f ? "fortran_order" : "shape");
        return -1;
    }
    return 0;
dup:
    tin_seterr(err, errlen, "%s: .npy header has a key twice", nm(name));
    return -1;
bad: {
    size_t at = (size_t)(c.p - h);
    printable(h, hl < 60 ? hl : 60, tmp, sizeof tmp);
    tin_seterr(err, errlen, "%s: malformed .npy header (at byte %zu of the dict): \"%s\"", nm(name), at, tmp);
    return -1;
}
}

static void shape_str(const npy_hdr *o, char *out, size_t outlen)
{
    size_t w = 0;
    out[0] = '\0';
    w += (size_t)snprintf(out, outlen, "(");
    for (int i = 0; i < o->ndim && w < outlen; i++) {
        if (i >= 4) {
            snprintf(out + w, outlen - w, ", ...)");
            return;
        }
        w += (size_t)snprintf(out + w, outlen - w, "%s%llu", i ? ", " : "",
                              (unsigned long long)o->shape[i]);
    }
    if (w < outlen)
        snprintf(out + w, outlen - w, o->ndim == 1 ? ",)" : ")");
}

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

static int parse_npy(const unsigned char *b, size_t len, const char *name, tin_matrix *m,
                     char *err, size_t errlen)
{
    if (len < 10) {
        tin_seterr(err, errlen, "%s: truncated .npy file (%zu bytes, shorter than the preamble)", nm(name), len);
        return -1;
    }
    unsigned major = b[6], minor = b[7];
    size_t off, hl;
    if (major == 1) {
        hl = rd16(b + 8);
        off = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) {
            tin_seterr(err, errlen, "%s: truncated .npy file (%zu bytes, shorter than the preamble)", nm(name),
                   len);
            return -1;
        }
        hl = rd32(b + 8);
        off = 12;
    } else {
        tin_seterr(err, errlen, "%s: unsupported .npy format version %u.%u (1.0, 2.0 and 3.0 are read)",
               nm(name), major, minor);
        return -1;
    }
    if (hl > len - off) {
        tin_seterr(err, errlen, "%s: truncated .npy file: header of %zu bytes but only %zu bytes follow",
               nm(name), hl, len - off);
        return -1;
    }

    npy_hdr o;
    if (parse_header(b + off, hl, &o, name, err, errlen) != 0)
        return -1;

    char dt[80], sh[128];
    int elem;
    size_t esz;
    const char *ename;
    if (o.descr_kind != 1) {
        tin_seterr(err, errlen, "%s: structured (record) dtype not supported (save a plain float32 "
               "or float16 2-D array)", nm(name));
        return -1;
    }
    printable(o.descr, o.descr_len, dt, sizeof dt);
    if (o.descr_len == 3 && memcmp(o.descr, "<f4", 3) == 0) {
        elem = PEFA_TYPE_F32, esz = 4, ename = "float32";
    } else if (o.descr_len == 3 && memcmp(o.descr, "<f2", 3) == 0) {
        elem = PEFA_TYPE_F16, esz = 2, ename = "float16";
    } else if (o.descr_len == 3 && o.descr[0] == '>' && (o.descr[2] == '4' || o.descr[2] == '2') &&
               o.descr[1] == 'f') {
        tin_seterr(err, errlen, "%s: dtype '%s' not supported: big-endian (use little-endian: "
               "arr.astype('<f%c'))", nm(name), dt, o.descr[2]);
        return -1;
    } else {
        tin_seterr(err, errlen, "%s: dtype '%s' not supported (use float32 or float16: "
               "arr.astype('float32'))", nm(name), dt);
        return -1;
    }

    shape_str(&o, sh, sizeof sh);
    if (o.ndim != 2) {
        if (o.ndim == 1)
            tin_seterr(err, errlen, "%s: array is 1-D (shape %s), expected 2-D (rows, dim); for a single "
                   "vector save arr.reshape(1, -1)", nm(name), sh);
        else if (o.ndim == 0)
            tin_seterr(err, errlen, "%s: array is a 0-D scalar, expected 2-D (rows, dim)", nm(name));
        else
            tin_seterr(err, errlen, "%s: array is %d-D (shape %s), expected 2-D (rows, dim); "
                   "use arr.reshape(-1, arr.shape[-1]) if the last axis is the dimension",
                   nm(name), o.ndim, sh);
        return -1;
    }
    uint64_t rows = o.shape[0], dim = o.shape[1];
    if (rows == 0) {
        tin_seterr(err, errlen, "%s: array has 0 rows (shape %s)", nm(name), sh);
        return -1;
    }
    if (dim == 0 || dim > NPY_MAX_DIM) {
        tin_seterr(err, errlen, "%s: dimension %llu out of range (shape %s; 1..%u supported)", nm(name),
               (unsigned long long)dim, sh, NPY_MAX_DIM);
        return -1;
    }
    /* C order and Fortran order coincide when one axis has length 1 */
    if (o.fortran == 1 && rows != 1 && dim != 1) {
        tin_seterr(err, errlen, "%s: array is in Fortran order; save a C-ordered array "
               "(np.ascontiguousarray(arr))", nm(name));
        return -1;
    }
    uint64_t rowbytes = dim * esz; /* <= 262144 */
    if (rows > UINT64_MAX / rowbytes || rows * rowbytes > (uint64_t)SIZE_MAX) {
        tin_seterr(err, errlen, "%s: shape %s too large (size overflows)", nm(name), sh);
        return -1;
    }
    uint64_t need = rows * rowbytes;
    size_t have = len - off - hl;
    size_t doff = off + hl;
    if (need > have) {
        tin_seterr(err, errlen, "%s: truncated: header says %llux%llu %s = %llu bytes, file has %zu "
               "after the %zu-byte header", nm(name), (unsigned long long)rows,
               (unsigned long long)dim, ename, (unsigned long long)need, have, doff);
        return -1;
    }
    if (need < have) {
        tin_seterr(err, errlen, "%s: %llu trailing bytes after the data (header says %llux%llu %s = "
               "%llu bytes)", nm(name), (unsigned long long)(have - need), (unsigned long long)rows,
               (unsigned long long)dim, ename, (unsigned long long)need);
        return -1;
    }
    m->data = b + doff;
    m->rows = rows;
    m->dim = (uint32_t)dim;
    m->elem = elem;
    m->row_stride = (size_t)rowbytes;
    return 0;
}

static int parse_fvecs(const unsigned char *b, size_t len, const char *name, tin_matrix *m,
                       char *err, size_t errlen)
{
    if (len < 4) {
        tin_seterr(err, errlen, "%s: not a .npy file, and too short (%zu bytes) for .fvecs", nm(name), len);
        return -1;
    }
    int32_t d0;
    uint32_t u = rd32(b);
    memcpy(&d0, &u, sizeof d0);
    if (d0 < 1 || (uint32_t)d0 > NPY_MAX_DIM) {
        tin_seterr(err, errlen, "%s: not a .npy file (no \\x93NUMPY magic), and not .fvecs either "
               "(first row dimension %ld out of 1..%u)", nm(name), (long)d0, NPY_MAX_DIM);
        return -1;
    }
    size_t stride = 4 + 4 * (size_t)d0;
    if (len % stride != 0) {
        tin_seterr(err, errlen, "%s: .fvecs length %zu is not a multiple of the row size %zu "
               "(4 + 4*%ld): truncated, or not an .fvecs file", nm(name), len, stride, (long)d0);
        return -1;
    }
    size_t rows = len / stride;
    for (size_t i = 1; i < rows; i++) {
        uint32_t di = rd32(b + i * stride);
        if (di != (uint32_t)d0) {
            int32_t sd;
            memcpy(&sd, &di, sizeof sd);
            tin_seterr(err, errlen, "%s: .fvecs row %zu (0-based) has dimension %ld, row 0 has %ld",
                   nm(name), i, (long)sd, (long)d0);
            return -1;
        }
    }
    m->data = b + 4;
    m->rows = rows;
    m->dim = (uint32_t)d0;
    m->elem = PEFA_TYPE_F32;
    m->row_stride = stride;
    return 0;
}

int tin_matrix_parse(const void *buf, size_t len, const char *name, tin_matrix *m,
                     char *err, size_t errlen)
{
    const unsigned char *b = buf;
    if (!m)
        return -1;
    m->data = NULL;
    m->rows = 0;
    m->dim = 0;
    m->elem = 0;
    m->row_stride = 0;
    m->map = NULL;
    m->map_len = 0;
    if (len == 0 || !b) {
        tin_seterr(err, errlen, "%s: empty file", nm(name));
        return -1;
    }
    size_t k = len < sizeof npy_magic ? len : sizeof npy_magic;
    if (memcmp(b, npy_magic, k) == 0) {
        if (len < sizeof npy_magic) {
            tin_seterr(err, errlen, "%s: truncated .npy file (%zu bytes)", nm(name), len);
            return -1;
        }
        return parse_npy(b, len, name, m, err, errlen);
    }
    return parse_fvecs(b, len, name, m, err, errlen);
}

/* Reads a non-seekable input (pipe, FIFO, character device) into an anonymous
 * private mapping so that tin_matrix_close can munmap in all cases. */
static int read_stream(int fd, const char *path, void **mapp, size_t *lenp, char *err, size_t errlen)
{
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    if (!b) {
        tin_seterr(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (;;) {
        if (n == cap) {
            if (cap > SIZE_MAX / 2) {
                free(b);
                tin_seterr(err, errlen, "%s: input too large", path);
                return -1;
            }
            unsigned char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                tin_seterr(err, errlen, "%s: out of memory", path);
                return -1;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            tin_seterr(err, errlen, "%s: read error: %s", path, strerror(errno));
            free(b);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n == 0) {
        free(b);
        tin_seterr(err, errlen, "%s: empty file", path);
        return -1;
    }
    /* MAP_ANONYMOUS is not POSIX; a private mapping of /dev/zero is the same */
    int zfd = open("/dev/zero", O_RDWR | O_CLOEXEC);
    void *mp = zfd < 0 ? MAP_FAILED : mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE, zfd, 0);
    if (zfd >= 0)
        close(zfd);
    if (mp == MAP_FAILED) {
        tin_seterr(err, errlen, "%s: cannot map %zu bytes: %s", path, n, strerror(errno));
        free(b);
        return -1;
    }
    memcpy(mp, b, n);
    free(b);
    mprotect(mp, n, PROT_READ);
    *mapp = mp;
    *lenp = n;
    return 0;
}

/* .ivecs (int32) and .bvecs (uint8) rows have the .fvecs layout, so the
 * content test would take them for float32: refused by their name */
static int other_vecs(const char *path, char *err, size_t errlen)
{
    size_t n = strlen(path);
    if (n >= 6 && (strcmp(path + n - 6, ".ivecs") == 0 || strcmp(path + n - 6, ".bvecs") == 0)) {
        tin_seterr(err, errlen, "%s: %s holds %s vectors, not float32 (.fvecs): convert it to a float32 .npy", path,
                   path + n - 6, path[n - 5] == 'i' ? "int32" : "uint8");
        return -1;
    }
    return 0;
}

int tin_matrix_open(const char *path, tin_matrix *m, char *err, size_t errlen)
{
    struct stat st;
    void *mp = NULL;
    size_t len = 0;
    if (!m)
        return -1;
    memset(m, 0, sizeof *m);
    if (!path) {
        tin_seterr(err, errlen, "(null): cannot open");
        return -1;
    }
    if (other_vecs(path, err, errlen))
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        tin_seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        tin_seterr(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        tin_seterr(err, errlen, "%s: is a directory", path);
        close(fd);
        return -1;
    }
    if (S_ISREG(st.st_mode)) {
        if (st.st_size == 0) {
            tin_seterr(err, errlen, "%s: empty file", path);
            close(fd);
            return -1;
        }
        if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
            tin_seterr(err, errlen, "%s: file too large to map", path);
            close(fd);
            return -1;
        }
        len = (size_t)st.st_size;
        mp = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (mp == MAP_FAILED) {
            tin_seterr(err, errlen, "%s: cannot map: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    } else if (read_stream(fd, path, &mp, &len, err, errlen) != 0) {
        close(fd);
        return -1;
    }
    close(fd);
    if (tin_matrix_parse(mp, len, path, m, err, errlen) != 0) {
        munmap(mp, len);
        memset(m, 0, sizeof *m);
        return -1;
    }
    m->map = mp;
    m->map_len = len;
    return 0;
}

void tin_matrix_close(tin_matrix *m)
{
    if (!m)
        return;
    if (m->map)
        munmap(m->map, m->map_len);
    memset(m, 0, sizeof *m);
}

int tin_matrix_row(const tin_matrix *m, uint64_t i, float *out, const char *name,
                   char *err, size_t errlen)
{
    if (!m || !m->data || i >= m->rows) {
        tin_seterr(err, errlen, "%s: row %llu (0-based) out of range (%llu rows)", nm(name),
               (unsigned long long)i, (unsigned long long)(m ? m->rows : 0));
        return -1;
    }
    const unsigned char *r = (const unsigned char *)m->data + (size_t)i * m->row_stride;
    uint32_t dim = m->dim;
    if (m->elem == PEFA_TYPE_F32) {
        memcpy(out, r, (size_t)dim * 4);
        for (uint32_t j = 0; j < dim; j++) {
            if (!isfinite(out[j])) {
                tin_seterr(err, errlen, "%s: row %llu (0-based) has %s in column %u", nm(name),
                       (unsigned long long)i, isnan(out[j]) ? "a NaN" : out[j] > 0 ? "+Inf" : "-Inf", j);
                return -1;
            }
        }
        return 0;
    }
    if (m->elem == PEFA_TYPE_F16) {
        for (uint32_t j = 0; j < dim; j++) {
            uint16_t h = rd16(r + 2 * (size_t)j);
            if ((h & 0x7c00u) == 0x7c00u) {
                tin_seterr(err, errlen, "%s: row %llu (0-based) has %s in column %u", nm(name),
                       (unsigned long long)i, (h & 0x3ffu) ? "a NaN" : (h & 0x8000u) ? "-Inf" : "+Inf",
                       j);
                return -1;
            }
        }
        /* every value is finite: convert the row at once */
        if (((uintptr_t)r & 1u) == 0) {
            pefa_f16_to_f32((const uint16_t *)(const void *)r, out, dim);
        } else {
            for (uint32_t j = 0; j < dim; j++) {
                uint16_t h = rd16(r + 2 * (size_t)j);
                pefa_f16_to_f32(&h, &out[j], 1);
            }
        }
        return 0;
    }
    tin_seterr(err, errlen, "%s: unsupported element type %d", nm(name), m->elem);
    return -1;
}
