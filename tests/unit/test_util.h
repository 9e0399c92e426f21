/*
 * test_util.h - helpers shared by the container tests (test_container.c,
 * test_corruption.c, test_golden.c): temporary directories, whole-file I/O,
 * and re-sealing a damaged file (recomputing the directory and header
 * checksums) so that only the structural checks can catch a lie.
 *
 * Everything is static: each test is one translation unit.
 */
#ifndef PEFA_TEST_UTIL_H
#define PEFA_TEST_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "container/format.h"
#include "pefa.h"

#if defined(__GNUC__)
#define TU_UNUSED __attribute__((unused))
#else
#define TU_UNUSED
#endif

/* META value of key, or NULL (absent or META bad) */
static TU_UNUSED const char *tu_meta(pefa_index *ix, const char *key)
{
    const char *v;
    return pefa_index_meta_get(ix, key, &v) == 0 ? v : NULL;
}

/* a fresh directory under $TMPDIR (or /tmp); caller frees and removes it */
static TU_UNUSED char *tu_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char *p;
    size_t n;
    if (!base || !*base) base = "/tmp";
    n = strlen(base) + 32;
    p = (char *)malloc(n);
    if (!p) return NULL;
    snprintf(p, n, "%s/pefa-test-XXXXXX", base);
    if (!mkdtemp(p)) {
        free(p);
        return NULL;
    }
    return p;
}

/* removes every entry of a flat directory, then the directory */
static TU_UNUSED void tu_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    if (d) {
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* number of entries in dir whose name contains needle */
static TU_UNUSED int tu_count_matching(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, needle)) n++;
    closedir(d);
    return n;
}

static TU_UNUSED uint8_t *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = (uint8_t *)malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

static TU_UNUSED int tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f;
    int rc;
    /* a fresh inode each time: truncating a written file on ext4 forces a
     * flush at close (auto_da_alloc), which makes thousands of rewrites slow */
    unlink(path);
    f = fopen(path, "wb");
    if (!f) return -1;
    rc = (len && fwrite(data, 1, len, f) != len) ? -1 : 0;
    if (fclose(f)) rc = -1;
    return rc;
}

/* recompute the directory checksum and then the header checksum in place */
static TU_UNUSED void tu_reseal(uint8_t *buf, size_t len)
{
    uint64_t dir_off = ld64(buf + H_DIROFF);
    uint64_t dir_len = (uint64_t)ld32(buf + H_NSECT) * ld32(buf + H_DIRENTSIZE);
    if (dir_off <= len && dir_len <= len - dir_off)
        st64(buf + H_DIRSUM, XXH3_64bits(buf + dir_off, (size_t)dir_len));
    st64(buf + H_HDRSUM, XXH3_64bits(buf, H_HDRSUM));
}

/* address of directory entry i */
static TU_UNUSED uint8_t *tu_dirent(uint8_t *buf, uint32_t i)
{
    return buf + ld64(buf + H_DIROFF) + (uint64_t)i * ld32(buf + H_DIRENTSIZE);
}

/* opens path and returns the error code (closing the index on success) */
static TU_UNUSED int tu_open_rc(const char *path)
{
    pefa_index *ix = NULL;
    int rc = pefa_index_open(path, &ix);
    if (rc == 0) pefa_index_close(ix);
    return rc;
}

static TU_UNUSED pefa_section_info tu_desc(uint32_t kind, uint32_t target, uint8_t codec, uint8_t elem,
                                 uint32_t ndim, uint64_t d0, uint64_t d1)
{
    pefa_section_info d;
    memset(&d, 0, sizeof d);
    d.kind = kind;
    d.target = target;
    d.codec = codec;
    d.elem = elem;
    d.ndim = ndim;
    d.shape[0] = d0;
    d.shape[1] = d1;
    return d;
}

#endif
