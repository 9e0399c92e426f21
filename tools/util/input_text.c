/*
 * input_text.c - text inputs: id lists, BEIR qrels TSV, and the id -> row hash
 * map. See input.h.
 *
 * Both parsers copy the text into one owned buffer (plus a NUL), cut it into
 * NUL-terminated lines in place and keep pointers into it.
 */
#include "util/input.h"
#include "util/input_private.h"
#include "pefa.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>



static const char *nm(const char *name) { return name ? name : "input"; }

/* an id for a message: at most 60 bytes, non-printable bytes as \xNN */
static void show(const char *s, char *out, size_t outlen)
{
    tin_printable((const unsigned char *)s, strlen(s), 60, out, outlen);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* ------------------------------------------------------------------------- */
/* hash map: open addressing, linear probing, power-of-two capacity, load<=1/2 */

typedef struct {
    uint64_t hash;
    uint64_t row1; /* row + 1; 0 = empty slot */
} slot;

struct tin_idhash {
    slot *slots;
    size_t mask;
    char *const *ids;
    uint64_t n;
};

static uint64_t hash_str(const char *s, size_t n) { return XXH3_64bits(s, n); }

/* Inserts ids[i]; returns 0, or the row + 1 of an equal id already present. */
static uint64_t ht_insert(struct tin_idhash *h, uint64_t i)
{
    const char *s = h->ids[i];
    size_t n = strlen(s);
    uint64_t hv = hash_str(s, n);
    size_t at = (size_t)hv & h->mask;
    for (;;) {
        slot *sl = &h->slots[at];
        if (sl->row1 == 0) {
            sl->hash = hv;
            sl->row1 = i + 1;
            return 0;
        }
        if (sl->hash == hv && strcmp(h->ids[sl->row1 - 1], s) == 0)
            return sl->row1;
        at = (at + 1) & h->mask;
    }
}

static int ht_init(struct tin_idhash *h, char *const *ids, uint64_t n)
{
    size_t cap = 16;
    if (n > SIZE_MAX / 4 / sizeof(slot))
        return -1;
    while (cap < 2 * (size_t)n)
        cap *= 2;
    h->slots = calloc(cap, sizeof(slot));
    if (!h->slots)
        return -1;
    h->mask = cap - 1;
    h->ids = ids;
    h->n = n;
    return 0;
}

tin_idhash *tin_idhash_new(const tin_idlist *l)
{
    if (!l)
        return NULL;
    tin_idhash *h = malloc(sizeof *h);
    if (!h)
        return NULL;
    if (ht_init(h, l->ids, l->n) != 0) {
        free(h);
        return NULL;
    }
    for (uint64_t i = 0; i < l->n; i++)
        (void)ht_insert(h, i); /* a duplicate keeps the first row */
    return h;
}

int64_t tin_idhash_get(const tin_idhash *h, const char *id)
{
    if (!h || !id)
        return -1;
    size_t n = strlen(id);
    uint64_t hv = hash_str(id, n);
    size_t at = (size_t)hv & h->mask;
    for (;;) {
        const slot *sl = &h->slots[at];
        if (sl->row1 == 0)
            return -1;
        if (sl->hash == hv && strcmp(h->ids[sl->row1 - 1], id) == 0)
            return (int64_t)(sl->row1 - 1);
        at = (at + 1) & h->mask;
    }
}

void tin_idhash_free(tin_idhash *h)
{
    if (!h)
        return;
    free(h->slots);
    free(h);
}

/* ------------------------------------------------------------------------- */

/* Copies the text (skipping a UTF-8 BOM) into a fresh buffer with a final NUL;
 * counts lines into *nlines (an unterminated last line counts). */
static char *copy_text(const void *buf, size_t len, size_t *outlen, uint64_t *nlines)
{
    const unsigned char *b = buf;
    if (len >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf) {
        b += 3;
        len -= 3;
    }
    if (len == SIZE_MAX)
        return NULL;
    char *t = malloc(len + 1);
    if (!t)
        return NULL;
    if (len)
        memcpy(t, b, len);
    t[len] = '\0';
    uint64_t nl = 0;
    for (const char *p = t; (p = memchr(p, '\n', (size_t)(t + len - p))) != NULL; p++)
        nl++;
    if (len > 0 && t[len - 1] != '\n')
        nl++;
    *outlen = len;
    *nlines = nl;
    return t;
}

/* Reads a whole file (regular or not) into malloc'd memory. */
static void *slurp(const char *path, size_t *lenp, char *err, size_t errlen)
{
    struct stat st;
    if (!path) {
        tin_seterr(err, errlen, "(null): cannot open");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        tin_seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    if (fstat(fd, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            tin_seterr(err, errlen, "%s: is a directory", path);
            close(fd);
            return NULL;
        }
        if (S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size < (uint64_t)SIZE_MAX / 2)
            cap = (size_t)st.st_size + 1; /* +1: EOF is seen without a realloc */
    }
    char *b = malloc(cap);
    if (!b) {
        tin_seterr(err, errlen, "%s: out of memory", path);
        close(fd);
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            if (cap > SIZE_MAX / 2) {
                tin_seterr(err, errlen, "%s: file too large", path);
                goto fail;
            }
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                tin_seterr(err, errlen, "%s: out of memory", path);
                goto fail;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            tin_seterr(err, errlen, "%s: read error: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *lenp = n;
    return b;
fail:
    free(b);
    close(fd);
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* id lists                                                                   */

int tin_idlist_parse(const void *buf, size_t len, const char *name, tin_idlist *l,
                     char *err, size_t errlen)
{
    size_t tl;
    uint64_t nlines;
    char shown[300];
    if (!l)
        return -1;
    l->ids = NULL;
    l->n = 0;
    l->buf = NULL;
    if (!buf)
        len = 0;
    char *t = copy_text(len ? buf : "", len, &tl, &nlines);
    if (!t) {
        tin_seterr(err, errlen, "%s: out of memory", nm(name));
        return -1;
    }
    char **ids = NULL;
    if (nlines > 0) {
        if (nlines > SIZE_MAX / sizeof(char *) || !(ids = malloc((size_t)nlines * sizeof(char *)))) {
            tin_seterr(err, errlen, "%s: out of memory", nm(name));
            free(t);
            return -1;
        }
    }
    uint64_t n = 0;
    char *p = t, *end = t + tl;
    /* [I6] the reading rule: a line is an id exactly as written; "\n" or
     * "\r\n" ends it; empty lines at the end of the file are ignored, any
     * other empty line is an error (it would shift every later row) */
    while (end > t && (end[-1] == '\n' || end[-1] == '\r'))
        end--;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        uint64_t line = n + 1;
        if (e > p && e[-1] == '\r')
            e--;
        if (e == p) {
            tin_seterr(err, errlen, "%s:%llu: empty line (one id per line, in row order)", nm(name),
                       (unsigned long long)line);
            goto fail;
        }
        if (pefa_id_check(p, (size_t)(e - p)) != 0) {
            tin_printable((const unsigned char *)p, (size_t)(e - p), 60, shown, sizeof shown);
            tin_seterr(err, errlen, "%s:%llu: id '%s' %s", nm(name), (unsigned long long)line, shown,
                       pefa_last_error_detail());
            goto fail;
        }
        *e = '\0';
        ids[n++] = p;
        p = nl ? nl + 1 : end;
    }

    if (n > 0) {
        struct tin_idhash h;
        if (ht_init(&h, ids, n) != 0) {
            tin_seterr(err, errlen, "%s: out of memory", nm(name));
            goto fail;
        }
        for (uint64_t i = 0; i < n; i++) {
            uint64_t first = ht_insert(&h, i);
            if (first) {
                show(ids[i], shown, sizeof shown);
                tin_seterr(err, errlen, "%s:%llu: duplicate id '%s' (first on line %llu)", nm(name),
                       (unsigned long long)(i + 1), shown, (unsigned long long)first);
                free(h.slots);
                goto fail;
            }
        }
        free(h.slots);
    }
    l->ids = ids;
    l->n = n;
    l->buf = t;
    return 0;
fail:
    free(ids);
    free(t);
    return -1;
}

int tin_idlist_read(const char *path, tin_idlist *l, char *err, size_t errlen)
{
    size_t len;
    if (l) {
        l->ids = NULL;
        l->n = 0;
        l->buf = NULL;
    }
    char *b = slurp(path, &len, err, errlen);
    if (!b)
        return -1;
    int r = tin_idlist_parse(b, len, path, l, err, errlen);
    free(b);
    return r;
}

void tin_idlist_free(tin_idlist *l)
{
    if (!l)
        return;
    free(l->ids);
    free(l->buf);
    l->ids = NULL;
    l->buf = NULL;
    l->n = 0;
}

/* ------------------------------------------------------------------------- */
/* qrels                                                                      */

/* Parses a score field; 0 and *v on success, -1 if not a finite number. */
static int parse_score(const char *s, float *v)
{
    char tmp[64];
    size_t n = strlen(s);
    while (n > 0 && is_space(s[n - 1]))
        n--;
    while (n > 0 && is_space(*s)) {
        s++;
        n--;
    }
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *e;
    errno = 0;
    double d = strtod(tmp, &e);
    if (e != tmp + n || !isfinite(d) || fabs(d) > FLT_MAX)
        return -1;
    *v = (float)d;
    return 0;
}

static int header_name(const char *s)
{
    return strcmp(s, "query-id") == 0 || strcmp(s, "query_id") == 0 || strcmp(s, "qid") == 0;
}

int tin_qrels_parse(const void *buf, size_t len, const char *name, tin_qrels *q,
                    char *err, size_t errlen)
{
    size_t tl;
    uint64_t nlines;
    char shown[300];
    if (!q)
        return -1;
    q->rows = NULL;
    q->n = 0;
    q->buf = NULL;
    if (!buf)
        len = 0;
    char *t = copy_text(len ? buf : "", len, &tl, &nlines);
    if (!t) {
        tin_seterr(err, errlen, "%s: out of memory", nm(name));
        return -1;
    }
    tin_qrel *rows = NULL;
    if (nlines > 0) {
        if (nlines > SIZE_MAX / sizeof(tin_qrel) ||
            !(rows = malloc((size_t)nlines * sizeof(tin_qrel)))) {
            tin_seterr(err, errlen, "%s: out of memory", nm(name));
            free(t);
            return -1;
        }
    }
    uint64_t n = 0, line = 0;
    int first = 1;
    char *p = t, *end = t + tl;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        char *next = nl ? nl + 1 : end;
        line++;
        char *z = memchr(p, '\0', (size_t)(e - p));
        if (z) {
            tin_seterr(err, errlen, "%s:%llu: NUL byte (column %zu; not a text file?)", nm(name),
                   (unsigned long long)line, (size_t)(z - p) + 1);
            goto fail;
        }
        /* strip trailing whitespace except tabs, which separate (maybe empty) fields */
        while (e > p && is_space(e[-1]) && e[-1] != '\t')
            e--;
        *e = '\0';
        char *b0 = p;
        while (b0 < e && is_space(*b0))
            b0++;
        if (b0 == e) { /* blank line */
            p = next;
            continue;
        }
        char *f[4];
        int nf = 0;
        char *s = p;
        for (;;) {
            char *tab = strchr(s, '\t');
            if (nf < 4)
                f[nf] = s;
            nf++;
            if (!tab)
                break;
            *tab = '\0';
            s = tab + 1;
        }
        int was_first = first;
        first = 0;
        if (was_first && header_name(f[0])) {
            p = next;
            continue;
        }
        float score = 1.0f;
        if (nf == 3 && parse_score(f[2], &score) != 0) {
            if (was_first) { /* a header with other column names */
                p = next;
                continue;
            }
            show(f[2], shown, sizeof shown);
            tin_seterr(err, errlen, "%s:%llu: score '%s' is not a finite number", nm(name),
                   (unsigned long long)line, shown);
            goto fail;
        }
        if (nf != 2 && nf != 3) {
            const char *hint = "";
            if (nf == 1 && strchr(f[0], ' '))
                hint = " (fields must be separated by tabs)";
            else if (nf == 4)
                hint = " (TREC 'qid 0 docid rel' format? drop the second column)";
            tin_seterr(err, errlen, "%s:%llu: expected 2 or 3 tab-separated fields, found %d%s", nm(name),
                   (unsigned long long)line, nf, hint);
            goto fail;
        }
        if (f[0][0] == '\0' || f[1][0] == '\0') {
            tin_seterr(err, errlen, "%s:%llu: empty %s id", nm(name), (unsigned long long)line,
                   f[0][0] == '\0' ? "query" : "corpus");
            goto fail;
        }
        rows[n].qid = f[0];
        rows[n].pid = f[1];
        rows[n].score = score;
        rows[n].line = line;
        n++;
        p = next;
    }
    q->rows = rows;
    q->n = n;
    q->buf = t;
    return 0;
fail:
    free(rows);
    free(t);
    return -1;
}

int tin_qrels_read(const char *path, tin_qrels *q, char *err, size_t errlen)
{
    size_t len;
    if (q) {
        q->rows = NULL;
        q->n = 0;
        q->buf = NULL;
    }
    char *b = slurp(path, &len, err, errlen);
    if (!b)
        return -1;
    int r = tin_qrels_parse(b, len, path, q, err, errlen);
    free(b);
    return r;
}

void tin_qrels_free(tin_qrels *q)
{
    if (!q)
        return;
    free(q->rows);
    free(q->buf);
    q->rows = NULL;
    q->buf = NULL;
    q->n = 0;
}
