/*
 * test_container.c - the container layer (format/pefa-format-v1.md) through
 * the public API: round trips of every element type and codec, streaming
 * writes, META parsing, the writer's error paths and atomic commit, section
 * lookup and zero-copy access.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_util.h"

typedef struct {
    char *dir;
    char path[4096];
} fixture;

static int setup(void **state)
{
    fixture *f = (fixture *)calloc(1, sizeof *f);
    if (!f) return -1;
    f->dir = tu_mkdtemp();
    if (!f->dir) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/t.pefa", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = (fixture *)*state;
    tu_rmdir(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* deterministic bytes, partly compressible */
static void fill(uint8_t *p, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        if ((i / 64) % 2) {
            p[i] = (uint8_t)(i + seed);
        } else {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            p[i] = (uint8_t)x;
        }
    }
}

/* ---- round trip: every element type x codec, plus zero-length sections -- */
static void test_round_trip_types_codecs(void **state)
{
    fixture *f = (fixture *)*state;
    static const uint8_t elems[] = {PEFA_TYPE_F32, PEFA_TYPE_F16, PEFA_TYPE_I8,
                                    PEFA_TYPE_U32, PEFA_TYPE_U64, PEFA_TYPE_BYTES};
    enum { NE = sizeof elems, ROWS = 7, COLS = 5, NB = 37 };
    uint8_t data[2 * NE][ROWS * COLS * 8];
    size_t len[2 * NE];
    pefa_section_info want[2 * NE + 3];
    pefa_writer *w;
    pefa_index *ix;
    uint32_t n = 0, i;
    uint8_t uuid[16];
    pefa_file_info fi;

    assert_int_equal(pefa_writer_open(f->path, &w), 0);
    pefa_writer_uuid(w, uuid);
    for (int c = 0; c < 2; c++) {
        for (size_t e = 0; e < NE; e++) {
            uint8_t codec = c ? PEFA_CODEC_ZSTD : PEFA_CODEC_RAW;
            pefa_section_info d;
            if (elems[e] == PEFA_TYPE_BYTES) {
                d = tu_desc(PEFA_KIND_HNSW_UPPER_ADJ, 100 + n, codec, elems[e], 0, 0, 0);
                len[n] = NB;
            } else {
                d = tu_desc(PEFA_KIND_HNSW_UPPER_ADJ, 100 + n, codec, elems[e], 2, ROWS, COLS);
                len[n] = ROWS * COLS * pefa_type_size(elems[e]);
            }
            d.flags = (uint16_t)(n % 2 ? PEFA_SECTION_REQUIRED : 0);
            fill(data[n], len[n], n);
            assert_int_equal(pefa_writer_add(w, &d, data[n], len[n]), 0);
            want[n++] = d;
        }
    }
    /* zero-length sections: a [0 x 5] array in both codecs and empty opaque bytes */
    want[n] = tu_desc(PEFA_KIND_VECTORS, 200, PEFA_CODEC_RAW, PEFA_TYPE_F32, 2, 0, 5);
    assert_int_equal(pefa_writer_add(w, &want[n++], NULL, 0), 0);
    want[n] = tu_desc(PEFA_KIND_VECTORS, 201, PEFA_CODEC_ZSTD, PEFA_TYPE_F32, 2, 0, 5);
    assert_int_equal(pefa_writer_add(w, &want[n++], NULL, 0), 0);
    want[n] = tu_desc(PEFA_KIND_VECTORS, 202, PEFA_CODEC_ZSTD, PEFA_TYPE_BYTES, 0, 0, 0);
    assert_int_equal(pefa_writer_add(w, &want[n++], "", 0), 0);
    assert_int_equal(pefa_writer_commit(w), 0);

    assert_int_equal(pefa_index_open(f->path, &ix), 0);
    pefa_index_file_info(ix, &fi);
    assert_int_equal(fi.major, PEFA_FORMAT_MAJOR);
    assert_int_equal(fi.minor, PEFA_FORMAT_MINOR);
    assert_memory_equal(fi.uuid, uuid, 16);
    assert_int_equal(fi.n_sections, n);
    assert_int_equal(pefa_index_section_count(ix), n);
    for (i = 0; i < n; i++) {
        pefa_section_info s;
        const void *p;
        uint64_t sz;
        assert_int_equal(pefa_index_section_info(ix, i, &s), 0);
        assert_int_equal(s.kind, want[i].kind);
        assert_int_equal(s.target, want[i].target);
        assert_int_equal(s.codec, want[i].codec);
        assert_int_equal(s.elem, want[i].elem);
        assert_int_equal(s.ndim, want[i].ndim);
        assert_int_equal(s.flags, want[i].flags);
        assert_memory_equal(s.shape, want[i].shape, sizeof s.shape);
        assert_int_equal(s.offset % 4096, 0);
        if (s.codec == PEFA_CODEC_RAW) assert_int_equal(s.stored_size, s.raw_size);
        assert_int_equal(pefa_index_find(ix, s.kind, s.target), (int)i);
        assert_int_equal(pefa_index_section_data(ix, i, &p, &sz), 0);
        if (i < 2 * NE) {
            assert_int_equal(sz, len[i]);
            assert_memory_equal(p, data[i], len[i]);
        } else {
            assert_int_equal(sz, 0);
        }
    }
    assert_int_equal(pefa_index_section_info(ix, n, &want[0]), PEFA_ERR_INVALID_ARG);
    {
        const void *p;
        uint64_t sz;
        assert_int_equal(pefa_index_section_data(ix, n, &p, &sz), PEFA_ERR_INVALID_ARG);
    }
    int bad = 99;
    assert_int_equal(pefa_index_verify(ix, &bad), 0);
    assert_int_equal(bad, -1);
    pefa_index_close(ix);
}

/* ---- an empty file (no sections) is valid ------------------------------ */
static void test_no_sections(void **state)
{
    fixture *f = (fixture *)*state;
    pefa_writer *w;
    pefa_index *ix;
    assert_int_equal(pefa_writer_open(f->path, &w), 0);
    assert_int_equal(pefa_writer_commit(w), 0);
    assert_int_equal(pefa_index_open(f->path, &ix), 0);
    assert_int_equal(pefa_index_section_count(ix), 0);
    assert_int_equal(pefa_index_find(ix, PEFA_KIND_META, 0), PEFA_ERR_NOT_FOUND);
    assert_int_equal(pefa_index_meta_count(ix), 0);
    assert_null(tu_meta(ix, "x"));
    assert_int_equal(pefa_index_verify(ix, NULL), 0);
    pefa_index_close(ix);
}

/* ---- many sections -------------------------------------------------------- */
static void test_many_sections(void **state)
{
    fixture *f = (fixture *)*state;
    enum { N = 300 };
    pefa_writer *w;
    pefa_index *ix;
    uint8_t buf[16];
    assert_int_equal(pefa_writer_open(f->path, &w), 0);
    for (uint32_t i = 0; i < N; i++) {
        pefa_section_info d = tu_desc(PEFA_KIND_Y_ROWS, 1000 + i,
                                      i % 3 == 0 ? PEFA_CODEC_ZSTD : PEFA_CODEC_RAW,
                                      PEFA_TYPE_BYTES, 0, 0, 0);
        fill(buf, 1 + i % 16, i);
        assert_int_equal(pefa_writer_add(w, &d, buf, 1 + i % 16), 0);
    }
    assert_int_equal(pefa_writer_commit(w), 0);
    assert_int_equal(pefa_index_open(f->path, &ix), 0);
    assert_int_equal(pefa_index_section_count(ix), N);
    for (uint32_t i = 0; i < N; i++) {
        const void *p;
        uint64_t sz;
        int k = pefa_index_find(ix, PEFA_KIND_Y_ROWS, 1000 + i);
        assert_int_equal(k, (int)i);
        assert_int_equal(pefa_index_section_data(ix, (uint32_t)k, &p, &sz), 0);
        fill(buf, 1 + i % 16, i);
        assert_int_equal(sz, 1 + i % 16);
        assert_memory_equal(p, buf, sz);
    }
    assert_int_equal(pefa_index_find(ix, PEFA_KIND_Y_ROWS, 1000 + N), PEFA_ERR_NOT_FOUND);
    assert_int_equal(pefa_index_verify(ix, NULL), 0);
    pefa_index_close(ix);
}

/* ---- streaming writes in odd chunk sizes (bigger than the write buffer) -- */
static void test_streaming_chunks(void **state)
{
    fixture *f = (fixture *)*state;
    static const size_t chunks[] = {1, 7, 4093, 65537, 1000003};
    const size_t n_u32 = 3u << 18; /* 3 MB of u32 */
    const size_t total = n_u32 * 4;
    uint8_t *data = (uint8_t *)malloc(total);
    pefa_writer *w;
    pefa_index *ix;
    assert_non_null(data);
    fill(data, total, 77);
    assert_int_equal(pefa_writer_open(f->path, &w), 0);
    for (uint32_t c = 0; c < 2; c++) {
        for (uint32_t k = 0; k < 2; k++) {
            /* k = 0: shaped u32 section; k = 1: opaque bytes */
            pefa_section_info d = k == 0 ? tu_desc(PEFA_KIND_HNSW_UPPER_ADJ, 10 + c, (uint8_t)c,
                                                   PEFA_TYPE_U32, 1, n_u32, 0)
                                         : tu_desc(PEFA_KIND_Y_ROWS, 10 + c, (uint8_t)c,
                                                   PEFA_TYPE_BYTES, 0, 0, 0);
            size_t pos = 0, j = 0;
            assert_int_equal(pefa_writer_begin(w, &d), 0);
            while (pos < total) {
                size_t step = chunks[j++ % (sizeof chunks / sizeof chunks[0])];
                if (step > total - pos) step = total - pos;
                assert_int_equal(pefa_writer_write(w, data + pos, step), 0);
                pos += step;
            }
            assert_int_equal(pefa_writer_write(w, data, 0), 0);
            assert_int_equal(pefa_writer_end(w), 0);
        }
    }
    assert_int_equal(pefa_writer_commit(w), 0);
    assert_int_equal(pefa_index_open(f->path, &ix), 0);
    assert_int_equal(pefa_index_section_count(ix), 4);
    for (uint32_t i = 0; i < 4; i++) {
        const void *p;
        uint64_t sz;
        pefa_section_info s;
        assert_int_equal(pefa_index_section_info(ix, i, &s), 0);
        assert_int_equal(pefa_index_section_data(ix, i, &p, &sz), 0);
        assert_int_equal(sz, total);
        assert_memory_equal(p, data, total);
        if (s.codec == PEFA_CODEC_ZSTD) assert_true(s.stored_size < s.raw_size);
    }
    assert_int_equal(pefa_index_verify(ix, NULL), 0);
    pefa_index_close(ix);
    free(data);
}

/* ---- META ----------------------------------------------------------------- */
static int write_meta(const char *path, const char *text, uint8_t codec)
{
    pefa_writer *w;
    pefa_section_info d = tu_desc(PEFA_KIND_META, 0, codec, PEFA_TYPE_BYTES, 0, 0, 0);
    d.flags = PEFA_SECTION_REQUIRED;
    int rc = pefa_writer_open(path, &w);
    if (rc) return rc;
    rc = pefa_writer_add(w, &d, text, strlen(text));
    if (rc) {
        pefa_writer_abort(w);
        return rc;
    }
    return pefa_writer_commit(w);
}

static void test_meta_parse(void **state)
{
    fixture *f = (fixture *)*state;
    char key128[200], text[400];
    pefa_index *ix;
    const char *k, *v;
    memset(key128, 'k', 128);
    key128[128] = 0;
    snprintf(text, sizeof text, "a=1\nb.c-d_E9=x=y z\nempty=\n%s=long\nutf8=\xc3\xa9t\xc3\xa9\n", key128);
    for (uint8_t codec = 0; codec < 2; codec++) {
        assert_int_equal(write_meta(f->path, text, codec), 0);
        assert_int_equal(pefa_index_open(f->path, &ix), 0);
        assert_int_equal(pefa_index_meta_count(ix), 5);
        assert_string_equal(tu_meta(ix, "a"), "1");
        assert_string_equal(tu_meta(ix, "b.c-d_E9"), "x=y z");
        assert_string_equal(tu_meta(ix, "empty"), "");
        assert_string_equal(tu_meta(ix, key128), "long");
        assert_string_equal(tu_meta(ix, "utf8"), "\xc3\xa9t\xc3\xa9");
        assert_null(tu_meta(ix, "missing"));
        assert_int_equal(pefa_index_meta_at(ix, 1, &k, &v), 0);
        assert_string_equal(k, "b.c-d_E9");
        assert_string_equal(v, "x=y z");
        assert_int_equal(pefa_index_meta_at(ix, 5, &k, &v), PEFA_ERR_INVALID_ARG);
        assert_int_equal(pefa_index_meta_at(ix, -1, &k, &v), PEFA_ERR_INVALID_ARG);
        assert_int_equal(pefa_index_verify(ix, NULL), 0);
        pefa_index_close(ix);
    }
}

static void test_meta_bad(void **state)
{
    fixture *f = (fixture *)*state;
    char key129[200], long_line[300];
    static const char *const bad[] = {
        "noequals\n", "=value\n", "a=1\na=2\n", "a=1", "bad key=1\n", "a/b=1\n", "a=1\n\n",
    };
    memset(key129, 'k', 129);
    key129[129] = 0;
    snprintf(long_line, sizeof long_line, "%s=v\n", key129);
    for (size_t i = 0; i <= sizeof bad / sizeof bad[0]; i++) {
        const char *text = i < sizeof bad / sizeof bad[0] ? bad[i] : long_line;
        pefa_index *ix;
        assert_int_equal(write_meta(f->path, text, PEFA_CODEC_RAW), 0);
        /* META syntax is not an open-time check: open is O(sections) */
        assert_int_equal(pefa_index_open(f->path, &ix), 0);
        assert_int_equal(pefa_index_meta_count(ix), PEFA_ERR_CORRUPT);
        assert_null(tu_meta(ix, "a"));
        assert_true(strstr(pefa_last_error_detail(), "META") != NULL);
        pefa_index_close(ix);
    }
    /* a NUL byte inside a value */
    {
        pefa_writer *w;
        pefa_index *ix;
        pefa_section_info d = tu_desc(PEFA_KIND_META, 0, PEFA_CODEC_RAW, PEFA_TYPE_BYTES, 0, 0, 0);
        assert_int_equal(pefa_writer_open(f->path, &w), 0);
        assert_int_equal(pefa_writer_add(w, &d, "a=x\0y\n", 6), 0);
        assert_int_equal(pefa_writer_commit(w), 0);
        assert_int_equal(pefa_index_open(f->path, &ix), 0);
        assert_int_equal(pefa_index_meta_count(ix), PEFA_ERR_CORRUPT);
        pefa_index_close(ix);
    }
}

/* ---- writer error paths ------------------------------------------------------ */
static void assert_nothing_left(const fixture *f)
{
    struct stat st;
    assert_int_equal(stat(f->path, &st), -1);
    assert_int_equal(tu_count_matching(f->dir, ".tmp."), 0);
}

static void test_writer_errors(void **state)
{
    fixture *f = (fixture *)*state;
    pefa_writer *w;
    pefa_section_info d = tu_desc(PEFA_KIND_VECTORS, 1, PEFA_CODEC_RAW, PEFA_TYPE_F32, 2, 2, 3);
    float v[6] = {0};

    /* duplicate (kind, target): refused, the writer stays usable */
    assert_int_equal(pefa_writer_open(f->path, &w), 0);
    assert_int_equal(pefa_writer_add(w, &d, v, sizeof v), 0);
    assert_int_equal(pefa_writer_add(w, &d, v, sizeof v), PEFA_ERR_INVALID_ARG);
    assert_true(strstr(pefa_last_error_detail(), "twice") != NULL);
    /* ndim 5, unknown codec, unknown type, unknown flag bits */
    {
        pefa_section_info e = d;
        e.target = 2;
        e.ndim = 5;
        assert_int_equal(pefa_writer_begin(w, &e), PEFA_ERR_INVALID_ARG);
        e.ndim = 2;
        e.codec = 7;
        assert_int_equal(pefa_writer_begin(w, &e), PEFA_ERR_INVALID_ARG);
        e.codec = 0;
        e.elem = 99;
        assert_int_equal(pefa_writer_begin(w, &e), PEFA_ERR_INVALID_ARG);
        e.elem = PEFA_TYPE_F32;
        e.flags = 0x8000;
        assert_int_equal(pefa_writer_begin(w, &e), PEFA_ERR_INVALID_ARG);
        /* shape whose byte count overflows 64 bits */
        e.flags = 0;
        e.shape[0] = UINT64_MAX / 2;
        e.shape[1] = 3;
        assert_int_equal(pefa_writer_begin(w, &e), PEFA_ERR_INVALID_ARG);
    }
    /* begin while open, end/write while closed */
    {
        pefa_section_info e = d;
        e.target = 3;
        assert_int_equal(pefa_writer_end(w), PEFA_ERR_STATE);
        assert_int_equal(pefa_writer_write(w, v, 4), PEFA_ERR_STATE);
        assert_int_equal(pefa_writer_begin(w, &e), 0);
        e.target = 4;
        assert_int_equal(pefa_writer_begin(w, &e), PEFA_ERR_STATE);
        /* commit with a section still open fails and cleans up */
        assert_int_equal(pefa_writer_commit(w), PEFA_ERR_STATE);
    }
    assert_nothing_left(f);

    /* shape mismatch (raw and zstd, short and long): end fails, commit fails, nothing left */
    for (uint8_t codec = 0; codec < 2; codec++) {
        for (int longer = 0; longer < 2; longer++) {
            pefa_section_info e = d;
            int rc;
            e.codec = codec;
            assert_int_equal(pefa_writer_open(f->path, &w), 0);
            assert_int_equal(pefa_writer_begin(w, &e), 0);
            rc = pefa_writer_write(w, v, sizeof v - 4);
            assert_int_equal(rc, 0);
            if (longer) {
                rc = pefa_writer_write(w, v, 8);
                assert_true(rc == 0 || rc == PEFA_ERR_INVALID_ARG);
            }
            assert_int_equal(pefa_writer_end(w), PEFA_ERR_INVALID_ARG);
            assert_true(strstr(pefa_last_error_detail(), "VECTORS") != NULL);
            assert_int_equal(pefa_writer_commit(w), PEFA_ERR_INVALID_ARG);
            assert_nothing_left(f);
        }
    }

    /* abort removes the temporary file */
    assert_int_equal(pefa_writer_open(f->path, &w), 0);
    assert_int_equal(pefa_writer_add(w, &d, v, sizeof v), 0);
    assert_int_equal(tu_count_matching(f->dir, ".tmp."), 1);
    pefa_writer_abort(w);
    assert_nothing_left(f);

    /* unwritable directory (missing; works as root too): IO, nothing created */
    {
        char p[4200];
        snprintf(p, sizeof p, "%s/missing/x.pefa", f->dir);
        w = (pefa_writer *)(uintptr_t)1;
        assert_int_equal(pefa_writer_open(p, &w), PEFA_ERR_IO);
        assert_null(w);
        assert_true(strstr(pefa_last_error_detail(), "missing") != NULL);
        /* a regular file where a directory should be */
        assert_int_equal(tu_write_file(f->path, "x", 1), 0);
        snprintf(p, sizeof p, "%s/x.pefa", f->path);
        assert_int_equal(pefa_writer_open(p, &w), PEFA_ERR_IO);
        unlink(f->path);
    }
    /* a directory made at the path after open: commit refuses before its rename, temp file removed */
    assert_int_equal(pefa_writer_open(f->path, &w), 0);
    assert_int_equal(pefa_writer_add(w, &d, v, sizeof v), 0);
    assert_int_equal(mkdir(f->path, 0755), 0);
    assert_int_equal(pefa_writer_commit(w), PEFA_ERR_INVALID_ARG);
    assert_true(strstr(pefa_last_error_detail(), "is a directory") != NULL);
    assert_int_equal(tu_count_matching(f->dir, ".tmp."), 0);
    assert_int_equal(rmdir(f->path), 0);
    assert_nothing_left(f);

    /* bad arguments */
    assert_int_equal(pefa_writer_open("", &w), PEFA_ERR_INVALID_ARG);
    assert_int_equal(pefa_writer_open(NULL, &w), PEFA_ERR_INVALID_ARG);
    assert_int_equal(pefa_writer_commit(NULL), PEFA_ERR_INVALID_ARG);
    pefa_writer_abort(NULL);
}

/* ---- what a writer may replace (pefa_output_check) ------------------------ */
/* a FIFO stands in for a device: neither is ever replaced, with or without
 * replace_non_index, and no temporary file is made beside it */
static void test_output_rule(void **state)
{
    fixture *f = (fixture *)*state;
    pefa_writer *w = NULL;
    pefa_section_info d = tu_desc(PEFA_KIND_META, 0, PEFA_CODEC_RAW, PEFA_TYPE_BYTES, 0, 0, 0);
    struct stat sb;

    assert_int_equal(pefa_output_check(f->path, 0), 0); /* nothing there */
    assert_int_equal(mkfifo(f->path, 0644), 0);
    for (int force = 0; force < 2; force++) {
        assert_int_equal(pefa_output_check(f->path, force), PEFA_ERR_INVALID_ARG);
        assert_true(strstr(pefa_last_error_detail(), f->path) != NULL);
        assert_true(strstr(pefa_last_error_detail(), "is a FIFO (named pipe), not a regular file") != NULL);
    }
    assert_int_equal(pefa_writer_open(f->path, &w), PEFA_ERR_INVALID_ARG);
    assert_null(w);
    assert_true(strstr(pefa_last_error_detail(), f->path) != NULL);
    assert_int_equal(tu_count_matching(f->dir, ".tmp."), 0);
    assert_int_equal(unlink(f->path), 0);
    /* a FIFO made after open: commit refuses, the FIFO stays */
    assert_int_equal(pefa_writer_open(f->path, &w), 0);
    assert_int_equal(pefa_writer_add(w, &d, "a=1\n", 4), 0);
    assert_int_equal(mkfifo(f->path, 0644), 0);
    assert_int_equal(pefa_writer_commit(w), PEFA_ERR_INVALID_ARG);
    assert_int_equal(stat(f->path, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    assert_int_equal(tu_count_matching(f->dir, ".tmp."), 0);
    assert_int_equal(unlink(f->path), 0);
    /* a directory */
    assert_int_equal(pefa_output_check(f->dir, 1), PEFA_ERR_INVALID_ARG);
    assert_true(strstr(pefa_last_error_detail(), "is a directory") != NULL);
    /* a regular file that is not an index: refused unless replace_non_index */
    assert_int_equal(tu_write_file(f->path, "some notes\n", 11), 0);
    assert_int_equal(pefa_output_check(f->path, 0), PEFA_ERR_NOT_PEFA);
    assert_true(strstr(pefa_last_error_detail(), "not a pefa index; not replacing it") != NULL);
    assert_int_equal(pefa_output_check(f->path, 1), 0);
    assert_int_equal(tu_write_file(f->path, "", 0), 0); /* empty: not an index either */
    assert_int_equal(pefa_output_check(f->path, 0), PEFA_ERR_NOT_PEFA);
    /* an index (even a damaged one) may be replaced */
    assert_int_equal(write_meta(f->path, "gen=1\n", PEFA_CODEC_RAW), 0);
    assert_int_equal(pefa_output_check(f->path, 0), 0);
    assert_int_equal(truncate(f->path, 5000), 0);
    assert_int_equal(pefa_output_check(f->path, 0), 0);
    assert_int_equal(unlink(f->path), 0);
    assert_int_equal(pefa_output_check("", 0), PEFA_ERR_INVALID_ARG);
    assert_int_equal(pefa_output_check(NULL, 0), PEFA_ERR_INVALID_ARG);
}

/* ---- commit replaces an existing file atomically ------------------------ */
static void test_atomic_replace(void **state)
{
    fixture *f = (fixture *)*state;
    pefa_writer *w;
    pefa_index *old_ix, *ix;
    pefa_file_info a, b;
    uint8_t uuid[16];
    pefa_section_info d = tu_desc(PEFA_KIND_META, 0, PEFA_CODEC_RAW, PEFA_TYPE_BYTES, 0, 0, 0);

    assert_int_equal(write_meta(f->path, "gen=1\n", PEFA_CODEC_RAW), 0);
    assert_int_equal(pefa_index_open(f->path, &old_ix), 0);
    pefa_index_file_info(old_ix, &a);

    assert_int_equal(pefa_writer_open(f->path, &w), 0);
    pefa_writer_uuid(w, uuid);
    assert_memory_not_equal(uuid, a.uuid, 16);
    assert_int_equal(pefa_writer_add(w, &d, "gen=2\n", 6), 0);
    /* until commit the path still holds the old file, complete and valid */
    assert_int_equal(pefa_index_open(f->path, &ix), 0);
    assert_string_equal(tu_meta(ix, "gen"), "1");
    pefa_index_close(ix);
    assert_int_equal(pefa_writer_commit(w), 0);
    assert_int_equal(tu_count_matching(f->dir, ".tmp."), 0);

    assert_int_equal(pefa_index_open(f->path, &ix), 0);
    pefa_index_file_info(ix, &b);
    assert_memory_equal(b.uuid, uuid, 16);
    assert_string_equal(tu_meta(ix, "gen"), "2");
    assert_int_equal(pefa_index_verify(ix, NULL), 0);
    pefa_index_close(ix);
    /* an index opened before the replacement keeps reading the old file */
    assert_string_equal(tu_meta(old_ix, "gen"), "1");
    assert_int_equal(pefa_index_verify(old_ix, NULL), 0);
    pefa_index_close(old_ix);
}

/* ---- find, and zero-copy pointers into the map for raw sections ---------- */
static void test_find_and_zero_copy(void **state)
{
    fixture *f = (fixture *)*state;
    pefa_writer *w;
    pefa_index *ix;
    float p[12], q[6];
    const void *d1, *d2, *d3, *dz1, *dz2;
    uint64_t n;
    pefa_section_info s1, s3;
    for (int i = 0; i < 12; i++) p[i] = (float)i;
    for (int i = 0; i < 6; i++) q[i] = (float)-i;
    assert_int_equal(pefa_writer_open(f->path, &w), 0);
    {
        pefa_section_info a = tu_desc(PEFA_KIND_META, 0, PEFA_CODEC_RAW, PEFA_TYPE_BYTES, 0, 0, 0);
        pefa_section_info b = tu_desc(PEFA_KIND_VECTORS, 1, PEFA_CODEC_RAW, PEFA_TYPE_F32, 2, 4, 3);
        pefa_section_info c = tu_desc(PEFA_KIND_VECTORS, 2, PEFA_CODEC_ZSTD, PEFA_TYPE_F32, 2, 2, 3);
        pefa_section_info e = tu_desc(PEFA_KIND_VECTORS, 3, PEFA_CODEC_RAW, PEFA_TYPE_F32, 2, 2, 3);
        assert_int_equal(pefa_writer_add(w, &a, "x=1\n", 4), 0);
        assert_int_equal(pefa_writer_add(w, &b, p, sizeof p), 0);
        assert_int_equal(pefa_writer_add(w, &c, q, sizeof q), 0);
        assert_int_equal(pefa_writer_add(w, &e, q, sizeof q), 0);
    }
    assert_int_equal(pefa_writer_commit(w), 0);
    assert_int_equal(pefa_index_open(f->path, &ix), 0);
    assert_string_equal(pefa_index_path(ix), f->path);
    assert_int_equal(pefa_index_find(ix, PEFA_KIND_META, 0), 0);
    assert_int_equal(pefa_index_find(ix, PEFA_KIND_VECTORS, 1), 1);
    assert_int_equal(pefa_index_find(ix, PEFA_KIND_VECTORS, 2), 2);
    assert_int_equal(pefa_index_find(ix, PEFA_KIND_VECTORS, 3), 3);
    assert_int_equal(pefa_index_find(ix, PEFA_KIND_VECTORS, 4), PEFA_ERR_NOT_FOUND);
    assert_int_equal(pefa_index_find(ix, PEFA_KIND_Y_ROWS, 0), PEFA_ERR_NOT_FOUND);
    assert_int_equal(pefa_index_find(ix, 77, 0), PEFA_ERR_NOT_FOUND);

    assert_int_equal(pefa_index_section_data(ix, 1, &d1, &n), 0);
    assert_int_equal(pefa_index_section_data(ix, 1, &d2, &n), 0);
    assert_int_equal(pefa_index_section_data(ix, 3, &d3, &n), 0);
    assert_int_equal(pefa_index_section_info(ix, 1, &s1), 0);
    assert_int_equal(pefa_index_section_info(ix, 3, &s3), 0);
    /* the same pointer each time, page aligned, and two raw sections lie
     * exactly as far apart in memory as in the file: both point into the map */
    assert_ptr_equal(d1, d2);
    assert_int_equal((uintptr_t)d1 % 4096, 0);
    assert_int_equal((const uint8_t *)d3 - (const uint8_t *)d1, (ptrdiff_t)(s3.offset - s1.offset));
    assert_memory_equal(d1, p, sizeof p);
    /* zstd: decompressed once and cached */
    assert_int_equal(pefa_index_section_data(ix, 2, &dz1, &n), 0);
    assert_int_equal(pefa_index_section_data(ix, 2, &dz2, &n), 0);
    assert_ptr_equal(dz1, dz2);
    assert_int_equal(n, sizeof q);
    assert_memory_equal(dz1, q, sizeof q);
    pefa_index_close(ix);
}

/* ---- names and sizes --------------------------------------------------------- */
static void test_names(void **state)
{
    (void)state;
    assert_string_equal(pefa_kind_name(PEFA_KIND_Y_ROWPTR), "Y_ROWPTR");
    assert_string_equal(pefa_kind_name(999), "UNKNOWN");
    assert_string_equal(pefa_target_name(PEFA_TARGET_XS_Z), "xs_z");
    assert_string_equal(pefa_codec_name(PEFA_CODEC_ZSTD), "zstd");
    assert_string_equal(pefa_type_name(PEFA_TYPE_F16), "f16");
    assert_int_equal(pefa_type_size(PEFA_TYPE_U64), 8);
    assert_int_equal(pefa_type_size(PEFA_TYPE_BYTES), 1);
    assert_int_equal(pefa_type_size(200), 0);
    assert_string_equal(pefa_strerror(PEFA_ERR_NOT_PEFA), "not a pefa index file");
    assert_string_equal(pefa_strerror(-999), "unknown error");
    assert_int_equal(pefa_version_number(), PEFA_VERSION_NUMBER);
}

/* ---- open of things that are not pefa files ------------------------------- */
static void test_open_non_files(void **state)
{
    fixture *f = (fixture *)*state;
    pefa_index *ix = (pefa_index *)(uintptr_t)1;
    assert_int_equal(pefa_index_open(f->dir, &ix), PEFA_ERR_IO); /* a directory */
    assert_null(ix);
    assert_int_equal(pefa_index_open("/nonexistent/x.pefa", &ix), PEFA_ERR_IO);
    assert_true(strstr(pefa_last_error_detail(), "/nonexistent/x.pefa") != NULL);
    assert_int_equal(tu_write_file(f->path, "", 0), 0);
    assert_int_equal(tu_open_rc(f->path), PEFA_ERR_NOT_PEFA);
    assert_int_equal(tu_write_file(f->path, "hello world, this is text\n", 26), 0);
    assert_int_equal(tu_open_rc(f->path), PEFA_ERR_NOT_PEFA);
    assert_int_equal(pefa_index_open(NULL, &ix), PEFA_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_types_codecs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_sections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_sections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streaming_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_and_zero_copy, setup, teardown),
        cmocka_unit_test(test_names),
        cmocka_unit_test_setup_teardown(test_open_non_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
