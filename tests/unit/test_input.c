/*
 * test_input.c - tools/util input readers: .npy / .fvecs matrices, id lists,
 * BEIR qrels and the id hash map. All inputs are built in memory (no python
 * or data files needed at run time); the file forms use a temp directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/dist.h"
#include "util/cli.h"
#include "util/input.h"
#include "util/input_private.h"

#define ERRLEN 512

/* ---- helpers ------------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n;
} blob;

/* Builds a .npy image: version major (1, 2 or 3), header dict text (padded with
 * spaces and a final '\n' to a 64-byte boundary, like numpy), then data. */
static blob npy_image(int major, const char *dict, const void *data, size_t dlen)
{
    size_t pre = major == 1 ? 10 : 12;
    size_t dl = strlen(dict);
    size_t hl = dl + 1;
    while ((pre + hl) % 64 != 0)
        hl++;
    blob b;
    b.n = pre + hl + dlen;
    b.p = malloc(b.n ? b.n : 1);
    assert_non_null(b.p);
    memcpy(b.p, "\x93NUMPY", 6);
    b.p[6] = (unsigned char)major;
    b.p[7] = 0;
    if (major == 1) {
        b.p[8] = (unsigned char)(hl & 0xff);
        b.p[9] = (unsigned char)(hl >> 8);
    } else {
        for (int i = 0; i < 4; i++)
            b.p[8 + i] = (unsigned char)(hl >> (8 * i));
    }
    memcpy(b.p + pre, dict, dl);
    memset(b.p + pre + dl, ' ', hl - dl - 1);
    b.p[pre + hl - 1] = '\n';
    if (dlen)
        memcpy(b.p + pre + hl, data, dlen);
    return b;
}

static int parse_blob(blob b, tin_matrix *m, char *err)
{
    return tin_matrix_parse(b.p, b.n, "emb.npy", m, err, ERRLEN);
}

/* expects parse failure and a message containing want */
static void expect_npy_error(int major, const char *dict, const void *data, size_t dlen,
                             const char *want)
{
    char err[ERRLEN] = "";
    tin_matrix m;
    blob b = npy_image(major, dict, data, dlen);
    int r = parse_blob(b, &m, err);
    if (r != -1 || !strstr(err, want))
        fail_msg("dict %s: r=%d err='%s', wanted '%s'", dict, r, err, want);
    assert_int_equal(strncmp(err, "emb.npy: ", 9), 0);
    free(b.p);
}

static const float F12[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11.5f};
static const char *D34 = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";

/* ---- .npy ---------------------------------------------------------------- */

static void npy_f32_valid(void **st)
{
    (void)st;
    char err[ERRLEN] = "";
    tin_matrix m;
    float row[4];
    blob b = npy_image(1, D34, F12, sizeof F12);
    assert_int_equal(parse_blob(b, &m, err), 0);
    assert_int_equal(m.rows, 3);
    assert_int_equal(m.dim, 4);
    assert_int_equal(m.elem, PEFA_TYPE_F32);
    assert_int_equal(m.row_stride, 16);
    assert_ptr_equal(m.data, b.p + 128);
    assert_null(m.map);
    for (uint64_t i = 0; i < 3; i++) {
        assert_int_equal(tin_matrix_row(&m, i, row, "emb.npy", err, ERRLEN), 0);
        assert_memory_equal(row, F12 + 4 * i, sizeof row);
    }
    assert_int_equal(tin_matrix_row(&m, 3, row, "emb.npy", err, ERRLEN), -1);
    assert_non_null(strstr(err, "out of range"));
    free(b.p);
}

static void npy_f16_valid(void **st)
{
    (void)st;
    char err[ERRLEN] = "";
    tin_matrix m;
    /* 1, -2, 0.5, smallest subnormal, 65504, -0, 0.333251953125, 2^-14 */
    const uint16_t h[8] = {0x3c00, 0xc000, 0x3800, 0x0001, 0x7bff, 0x8000, 0x3555, 0x0400};
    const float want[8] = {1.0f, -2.0f, 0.5f, 0x1p-24f, 65504.0f, -0.0f, 0.333251953125f, 0x1p-14f};
    float row[4];
    blob b = npy_image(1, "{'descr':'<f2','fortran_order':False,'shape':(2,4)}", h, sizeof h);
    assert_int_equal(parse_blob(b, &m, err), 0);
    assert_int_equal(m.rows, 2);
    assert_int_equal(m.dim, 4);
    assert_int_equal(m.elem, PEFA_TYPE_F16);
    assert_int_equal(m.row_stride, 8);
    for (uint64_t i = 0; i < 2; i++) {
        assert_int_equal(tin_matrix_row(&m, i, row, NULL, err, ERRLEN), 0);
        for (int j = 0; j < 4; j++)
            assert_true(row[j] == want[4 * i + (uint64_t)j]);
    }
    assert_true(signbit(row[1])); /* -0 kept */
    free(b.p);
}

static void npy_versions_and_dict_forms(void **st)
{
    (void)st;
    static const char *dicts[] = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }",
        "{'shape': (3, 4), 'fortran_order': False, 'descr': '<f4'}",
        "{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(3,4,),}",
        "  {  'fortran_order' :False ,\n 'shape' : ( 3 , 4 ) , 'descr' : '<f4' , }  ",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 4L)}",
        "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4)}", /* see below */
    };
    for (int major = 1; major <= 3; major++) {
        for (size_t k = 0; k < sizeof dicts / sizeof *dicts; k++) {
            char err[ERRLEN] = "";
            tin_matrix m;
            blob b = npy_image(major, dicts[k], F12, sizeof F12);
            int r = parse_blob(b, &m, err);
            if (k == 5) { /* fortran order on a 3x4 array */
                assert_int_equal(r, -1);
                assert_non_null(strstr(err, "Fortran"));
            } else {
                if (r != 0)
                    fail_msg("v%d dict %zu: %s", major, k, err);
                assert_int_equal(m.rows, 3);
                assert_int_equal(m.dim, 4);
            }
            free(b.p);
        }
    }
    /* Fortran order with one row or one column is the same layout */
    char err[ERRLEN] = "";
    tin_matrix m;
    blob b = npy_image(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 12)}", F12, sizeof F12);
    assert_int_equal(parse_blob(b, &m, err), 0);
    assert_int_equal(m.dim, 12);
    free(b.p);
    /* a v2 header longer than 65535 bytes */
    size_t big = 70000;
    char *d = malloc(big + 1);
    assert_non_null(d);
    strcpy(d, D34);
    memset(d + strlen(D34), ' ', big - strlen(D34));
    d[big] = '\0';
    b = npy_image(2, d, F12, sizeof F12);
    assert_int_equal(parse_blob(b, &m, err), 0);
    assert_int_equal(m.rows, 3);
    free(b.p);
    free(d);
}

static void npy_rejects(void **st)
{
    (void)st;
    expect_npy_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (12,)}", F12, sizeof F12,
                     "reshape(1, -1)");
    expect_npy_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (12,)}", F12, sizeof F12,
                     "1-D");
    expect_npy_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 2)}", F12, sizeof F12,
                     "3-D (shape (2, 3, 2))");
    expect_npy_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}", F12, 4, "0-D");
    expect_npy_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 1, 2, 1, 3)}", F12,
                     sizeof F12, "6-D (shape (1, 2, 1, 2, ...))");
    expect_npy_error(1, "{'descr': False, 'fortran_order': False, 'shape': (3, 4)}", F12, sizeof F12,
                     "malformed .npy header");
    expect_npy_error(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2)}", F12, sizeof F12,
                     "dtype '<f8' not supported (use float32 or float16: arr.astype('float32'))");
    expect_npy_error(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 4)}", F12, sizeof F12,
                     "big-endian");
    expect_npy_error(1, "{'descr': '>f2', 'fortran_order': False, 'shape': (3, 2)}", F12, 12,
                     "dtype '>f2'");
    expect_npy_error(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 4)}", F12, sizeof F12,
                     "dtype '<i4' not supported");
    expect_npy_error(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 4)}", F12, 12,
                     "dtype '|u1'");
    expect_npy_error(1, "{'descr': '|f4', 'fortran_order': False, 'shape': (3, 4)}", F12, sizeof F12,
                     "dtype '|f4'");
    expect_npy_error(1, "{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (6,)}",
                     F12, sizeof F12, "structured");
    expect_npy_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4)}", F12, 0, "0 rows");
    expect_npy_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0)}", F12, 0,
                     "dimension 0 out of range");
    expect_npy_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 65537)}", F12, 0,
                     "dimension 65537");
    /* trailing bytes */
    expect_npy_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4)}", F12, 36,
                     "4 trailing bytes");
    /* truncated data */
    expect_npy_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5183, 100)}", F12, sizeof F12,
                     "truncated: header says 5183x100 float32 = 2073200 bytes, file has 48");
    /* rows * dim * 4 overflows u64 */
    expect_npy_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 4)}",
                     F12, sizeof F12, "too large");
    expect_npy_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4)}",
                     F12, sizeof F12, "too large");
    expect_npy_error(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1152921504606846976, 65536)}",
                     F12, sizeof F12, "too large");
    expect_npy_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999, 4)}",
                     F12, sizeof F12, "64 bits");
    /* keys */
    expect_npy_error(1, "{'descr': '<f4', 'shape': (3, 4)}", F12, sizeof F12, "lacks the 'fortran_order'");
    expect_npy_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'x': 1}", F12,
                     sizeof F12, "unexpected key 'x'");
    expect_npy_error(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)}", F12,
                     sizeof F12, "twice");
    /* garbage dicts */
    static const char *garbage[] = {
        "",
        "{",
        "}",
        "{}",
        "[]",
        "{'descr': '<f4' 'fortran_order': False, 'shape': (3, 4)}",
        "{'descr': '<f4', 'fortran_order': false, 'shape': (3, 4)}",
        "{'descr': '<f4', 'fortran_order': Falsey, 'shape': (3, 4)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, -4)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3 4)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': [3, 4]}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)}}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4),,}",
        "{'descr': '<f4, 'fortran_order': False, 'shape': (3, 4)}",
        "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (3, 4)}",
        "{descr: '<f4', 'fortran_order': False, 'shape': (3, 4)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)} x",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4.0)}",
        "{'descr': [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]], 'fortran_order': False}",
        "\x01\x02\xff",
    };
    for (size_t k = 0; k < sizeof garbage / sizeof *garbage; k++) {
        char err[ERRLEN] = "";
        tin_matrix m;
        blob b = npy_image(1, garbage[k], F12, sizeof F12);
        if (parse_blob(b, &m, err) != -1)
            fail_msg("garbage dict %zu accepted", k);
        assert_int_equal(strncmp(err, "emb.npy: ", 9), 0);
        assert_null(strchr(err, '\n'));
        free(b.p);
    }
    /* bad versions, header length beyond the file */
    char err[ERRLEN] = "";
    tin_matrix m;
    blob b = npy_image(1, D34, F12, sizeof F12);
    b.p[6] = 4;
    assert_int_equal(parse_blob(b, &m, err), -1);
    assert_non_null(strstr(err, "version 4.0"));
    b.p[6] = 0;
    assert_int_equal(parse_blob(b, &m, err), -1);
    b.p[6] = 1;
    b.p[8] = 0xff;
    b.p[9] = 0xff;
    assert_int_equal(parse_blob(b, &m, err), -1);
    assert_non_null(strstr(err, "truncated"));
    free(b.p);
}

/* every proper prefix of a valid file is rejected cleanly (ASan catches overreads:
 * each prefix is copied into its own exact-size allocation) */
static void npy_every_prefix(void **st)
{
    (void)st;
    for (int major = 1; major <= 3; major++) {
        for (int f16 = 0; f16 <= 1; f16++) {
            blob b = npy_image(major,
                               f16 ? "{'descr': '<f2', 'fortran_order': False, 'shape': (3, 4), }" : D34,
                               F12, f16 ? 24 : sizeof F12);
            char err[ERRLEN];
            tin_matrix m;
            assert_int_equal(parse_blob(b, &m, err), 0);
            for (size_t n = 0; n < b.n; n++) {
                unsigned char *c = malloc(n ? n : 1);
                assert_non_null(c);
                memcpy(c, b.p, n);
                err[0] = '\0';
                if (tin_matrix_parse(n ? c : NULL, n, "emb.npy", &m, err, ERRLEN) != -1)
                    fail_msg("v%d prefix of %zu/%zu bytes accepted", major, n, b.n);
                assert_true(err[0] != '\0');
                free(c);
            }
            /* the data-truncation message */
            err[0] = '\0';
            assert_int_equal(tin_matrix_parse(b.p, b.n - 1, "emb.npy", &m, err, ERRLEN), -1);
            assert_non_null(strstr(err, "truncated: header says 3x4"));
            free(b.p);
        }
    }
}

static void npy_nan_inf(void **st)
{
    (void)st;
    char err[ERRLEN] = "";
    tin_matrix m;
    float v[12], row[4];
    memcpy(v, F12, sizeof v);
    v[6] = NAN;  /* row 1, column 2 */
    v[11] = -INFINITY; /* row 2, column 3 */
    blob b = npy_image(1, D34, v, sizeof v);
    assert_int_equal(parse_blob(b, &m, err), 0); /* values not scanned at parse time */
    assert_int_equal(tin_matrix_row(&m, 0, row, "emb.npy", err, ERRLEN), 0);
    assert_int_equal(tin_matrix_row(&m, 1, row, "emb.npy", err, ERRLEN), -1);
    assert_string_equal(err, "emb.npy: row 1 (0-based) has a NaN in column 2");
    assert_int_equal(tin_matrix_row(&m, 2, row, "emb.npy", err, ERRLEN), -1);
    assert_string_equal(err, "emb.npy: row 2 (0-based) has -Inf in column 3");
    free(b.p);

    const uint16_t h[4] = {0x3c00, 0x7c00, 0x7e00, 0xfc00};
    b = npy_image(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (4, 1)}", h, sizeof h);
    assert_int_equal(parse_blob(b, &m, err), 0);
    assert_int_equal(tin_matrix_row(&m, 0, row, "h.npy", err, ERRLEN), 0);
    assert_true(row[0] == 1.0f);
    assert_int_equal(tin_matrix_row(&m, 1, row, "h.npy", err, ERRLEN), -1);
    assert_string_equal(err, "h.npy: row 1 (0-based) has +Inf in column 0");
    assert_int_equal(tin_matrix_row(&m, 2, row, "h.npy", err, ERRLEN), -1);
    assert_string_equal(err, "h.npy: row 2 (0-based) has a NaN in column 0");
    assert_int_equal(tin_matrix_row(&m, 3, row, "h.npy", err, ERRLEN), -1);
    assert_string_equal(err, "h.npy: row 3 (0-based) has -Inf in column 0");
    free(b.p);
}

/* ---- .fvecs -------------------------------------------------------------- */

static blob fvecs_image(uint32_t rows, int32_t dim, const float *v)
{
    blob b;
    b.n = (size_t)rows * (4 + 4 * (size_t)dim);
    b.p = malloc(b.n ? b.n : 1);
    assert_non_null(b.p);
    for (uint32_t i = 0; i < rows; i++) {
        unsigned char *r = b.p + (size_t)i * (4 + 4 * (size_t)dim);
        memcpy(r, &dim, 4);
        memcpy(r + 4, v + (size_t)i * (size_t)dim, 4 * (size_t)dim);
    }
    return b;
}

static void fvecs_good_and_bad(void **st)
{
    (void)st;
    char err[ERRLEN] = "";
    tin_matrix m;
    float row[4];
    blob b = fvecs_image(3, 4, F12);
    assert_int_equal(tin_matrix_parse(b.p, b.n, "b.fvecs", &m, err, ERRLEN), 0);
    assert_int_equal(m.rows, 3);
    assert_int_equal(m.dim, 4);
    assert_int_equal(m.elem, PEFA_TYPE_F32);
    assert_int_equal(m.row_stride, 20);
    for (uint64_t i = 0; i < 3; i++) {
        assert_int_equal(tin_matrix_row(&m, i, row, "b.fvecs", err, ERRLEN), 0);
        assert_memory_equal(row, F12 + 4 * i, sizeof row);
    }
    /* every proper prefix rejected */
    for (size_t n = 0; n < b.n; n++) {
        unsigned char *c = malloc(n ? n : 1);
        memcpy(c, b.p, n);
        if (n % 20 == 0 && n > 0) { /* whole rows: a valid shorter file */
            assert_int_equal(tin_matrix_parse(c, n, "b.fvecs", &m, err, ERRLEN), 0);
            assert_int_equal(m.rows, n / 20);
        } else {
            assert_int_equal(tin_matrix_parse(c, n, "b.fvecs", &m, err, ERRLEN), -1);
        }
        free(c);
    }
    /* length not a multiple */
    assert_int_equal(tin_matrix_parse(b.p, b.n - 3, "b.fvecs", &m, err, ERRLEN), -1);
    assert_non_null(strstr(err, "not a multiple"));
    /* a row with another dimension */
    int32_t d5 = 5;
    memcpy(b.p + 40, &d5, 4);
    assert_int_equal(tin_matrix_parse(b.p, b.n, "b.fvecs", &m, err, ERRLEN), -1);
    assert_string_equal(err, "b.fvecs: .fvecs row 2 (0-based) has dimension 5, row 0 has 4");
    /* dimension 0, negative, huge */
    int32_t bad[3] = {0, -4, 70000};
    for (int k = 0; k < 3; k++) {
        memcpy(b.p, &bad[k], 4);
        assert_int_equal(tin_matrix_parse(b.p, b.n, "b.fvecs", &m, err, ERRLEN), -1);
        assert_non_null(strstr(err, "not a .npy file"));
    }
    free(b.p);
    /* NaN in an fvecs row */
    float v[4] = {1, 2, INFINITY, 3};
    b = fvecs_image(1, 4, v);
    assert_int_equal(tin_matrix_parse(b.p, b.n, "b.fvecs", &m, err, ERRLEN), 0);
    assert_int_equal(tin_matrix_row(&m, 0, row, "b.fvecs", err, ERRLEN), -1);
    assert_string_equal(err, "b.fvecs: row 0 (0-based) has +Inf in column 2");
    free(b.p);
    /* dim 147 = 0x93: first byte looks like the npy magic, still fvecs */
    float z[147] = {0};
    b = fvecs_image(1, 147, z);
    assert_int_equal(tin_matrix_parse(b.p, b.n, "b.fvecs", &m, err, ERRLEN), 0);
    assert_int_equal(m.dim, 147);
    free(b.p);
    /* empty */
    assert_int_equal(tin_matrix_parse("", 0, "e.npy", &m, err, ERRLEN), -1);
    assert_string_equal(err, "e.npy: empty file");
}

/* ---- files --------------------------------------------------------------- */

static char tmpdir[256];

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static int setup_tmp(void **st)
{
    (void)st;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pefa_test_input_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **st)
{
    (void)st;
    const char *names[] = {"a.npy", "empty.npy", "ids.txt", "qrels.tsv", "bad.npy", "sub"};
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
        unlink(p);
        rmdir(p);
    }
    rmdir(tmpdir);
    return 0;
}

static void matrix_files(void **st)
{
    (void)st;
    char p[512], err[ERRLEN] = "", want[600];
    tin_matrix m;
    float row[4];
    blob b = npy_image(1, D34, F12, sizeof F12);
    snprintf(p, sizeof p, "%s/a.npy", tmpdir);
    write_file(p, b.p, b.n);
    assert_int_equal(tin_matrix_open(p, &m, err, ERRLEN), 0);
    assert_non_null(m.map);
    assert_int_equal(m.map_len, b.n);
    assert_int_equal(m.rows, 3);
    assert_int_equal(tin_matrix_row(&m, 2, row, p, err, ERRLEN), 0);
    assert_memory_equal(row, F12 + 8, sizeof row);
    tin_matrix_close(&m);
    assert_null(m.map);
    tin_matrix_close(&m); /* idempotent */

    snprintf(p, sizeof p, "%s/bad.npy", tmpdir);
    write_file(p, b.p, b.n - 5);
    assert_int_equal(tin_matrix_open(p, &m, err, ERRLEN), -1);
    assert_non_null(strstr(err, "truncated"));
    assert_null(m.map);
    free(b.p);

    snprintf(p, sizeof p, "%s/empty.npy", tmpdir);
    write_file(p, "", 0);
    assert_int_equal(tin_matrix_open(p, &m, err, ERRLEN), -1);
    snprintf(want, sizeof want, "%s: empty file", p);
    assert_string_equal(err, want);

    snprintf(p, sizeof p, "%s/sub", tmpdir);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(tin_matrix_open(p, &m, err, ERRLEN), -1);
    snprintf(want, sizeof want, "%s: is a directory", p);
    assert_string_equal(err, want);

    snprintf(p, sizeof p, "%s/missing.npy", tmpdir);
    assert_int_equal(tin_matrix_open(p, &m, err, ERRLEN), -1);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", p);
    assert_string_equal(err, want);

    /* a pipe (e.g. bash process substitution <(...)) is read as a stream */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    b = npy_image(1, D34, F12, sizeof F12);
    assert_int_equal(write(fds[1], b.p, b.n), (ssize_t)b.n);
    close(fds[1]);
    snprintf(p, sizeof p, "/dev/fd/%d", fds[0]);
    if (access(p, R_OK) == 0) {
        assert_int_equal(tin_matrix_open(p, &m, err, ERRLEN), 0);
        assert_int_equal(m.rows, 3);
        assert_int_equal(tin_matrix_row(&m, 1, row, p, err, ERRLEN), 0);
        assert_memory_equal(row, F12 + 4, sizeof row);
        tin_matrix_close(&m);
    }
    close(fds[0]);
    free(b.p);

    /* a character device is read as a stream */
    assert_int_equal(tin_matrix_open("/dev/null", &m, err, ERRLEN), -1);
    assert_string_equal(err, "/dev/null: empty file");
}

/* ---- id lists ------------------------------------------------------------ */

static int idl(const char *text, size_t len, tin_idlist *l, char *err)
{
    return tin_idlist_parse(text, len, "ids.txt", l, err, ERRLEN);
}
#define IDL(s, l, e) idl((s), sizeof(s) - 1, (l), (e))

static void idlist_valid(void **st)
{
    (void)st;
    char err[ERRLEN] = "";
    tin_idlist l;
    assert_int_equal(IDL("a\nbb\nccc\n", &l, err), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.ids[0], "a");
    assert_string_equal(l.ids[1], "bb");
    assert_string_equal(l.ids[2], "ccc");
    tin_idlist_free(&l);
    tin_idlist_free(&l);

    /* [I6] no final newline, CRLF, BOM; empty lines at the very end ignored */
    assert_int_equal(IDL("\xef\xbb\xbfx1\r\nx2\r\nd\xc3\xa9j\xc3\xa0\r\nlast", &l, err), 0);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.ids[0], "x1");
    assert_string_equal(l.ids[1], "x2");
    assert_string_equal(l.ids[2], "d\xc3\xa9j\xc3\xa0");
    assert_string_equal(l.ids[3], "last");
    tin_idlist_free(&l);
    assert_int_equal(IDL("a\nb\n\n\r\n\n", &l, err), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.ids[1], "b");
    tin_idlist_free(&l);

    /* empty input: zero ids, not an error here */
    assert_int_equal(IDL("", &l, err), 0);
    assert_int_equal(l.n, 0);
    tin_idlist_free(&l);
    assert_int_equal(tin_idlist_parse(NULL, 0, "ids.txt", &l, err, ERRLEN), 0);
    assert_int_equal(l.n, 0);
    tin_idlist_free(&l);

    /* a 511-byte id is fine, 512 is not */
    char big[600];
    memset(big, 'z', sizeof big);
    big[511] = '\n';
    assert_int_equal(idl(big, 512, &l, err), 0);
    assert_int_equal(strlen(l.ids[0]), 511);
    tin_idlist_free(&l);
    big[511] = 'z';
    big[512] = '\n';
    assert_int_equal(idl(big, 513, &l, err), -1);
    assert_non_null(strstr(err, "ids.txt:1: id 'zzz"));
    assert_non_null(strstr(err, "is 512 bytes long"));
}

static void idlist_errors(void **st)
{
    (void)st;
    char err[ERRLEN] = "";
    tin_idlist l;
    assert_int_equal(IDL("abc\nd\nabc\n", &l, err), -1);
    assert_string_equal(err, "ids.txt:3: duplicate id 'abc' (first on line 1)");
    assert_null(l.ids);
    assert_int_equal(IDL("a\nb\nc\nabc\nd\ne\nf\ng\nh\ni\nj\nabc\r\n", &l, err), -1);
    assert_string_equal(err, "ids.txt:12: duplicate id 'abc' (first on line 4)");
    assert_int_equal(IDL("a\n\nb\n", &l, err), -1);
    assert_string_equal(err, "ids.txt:2: empty line (one id per line, in row order)");
    assert_int_equal(IDL("a\n\r\nb", &l, err), -1);
    assert_string_equal(err, "ids.txt:2: empty line (one id per line, in row order)");
    /* [I6] one rule, nothing stripped: leading and trailing blanks are refused alike */
    assert_int_equal(IDL("a\n  \t \r\nb\n", &l, err), -1);
    assert_non_null(strstr(err, "ids.txt:2: id '  \\x09 ' has a space at byte 0"));
    assert_int_equal(IDL("a\n b\n", &l, err), -1);
    assert_non_null(strstr(err, "ids.txt:2: id ' b' has a space at byte 0"));
    assert_int_equal(IDL("a\nb \n", &l, err), -1);
    assert_non_null(strstr(err, "ids.txt:2: id 'b ' has a space at byte 1"));
    assert_int_equal(IDL("a\nb\x00x\nc\n", &l, err), -1);
    assert_non_null(strstr(err, "ids.txt:2: id 'b\\x00x' has the control character U+0000 at byte 1"));
    assert_int_equal(IDL("a\nb\tc\n", &l, err), -1);
    assert_non_null(strstr(err, "ids.txt:2: id 'b\\x09c' has a tab at byte 1"));
    assert_int_equal(IDL("a\nb\xff" "c\n", &l, err), -1);
    assert_non_null(strstr(err, "ids.txt:2: id 'b\\xffc' is not valid UTF-8 at byte 1"));
    assert_int_equal(IDL("a\nb\xc2\x85\n", &l, err), -1); /* U+0085, a C1 control (NEL) */
    assert_non_null(strstr(err, "has the control character U+0085 at byte 1"));
    assert_int_equal(IDL("a\xed\xa0\x80\n", &l, err), -1); /* a UTF-16 surrogate */
    assert_non_null(strstr(err, "is not valid UTF-8 at byte 1"));
    /* an id in UTF-8 is shown as written */
    assert_int_equal(IDL("\xc3\xa9\n\xc3\xa9\n", &l, err), -1);
    assert_string_equal(err, "ids.txt:2: duplicate id '\xc3\xa9' (first on line 1)");
}

static void idlist_file(void **st)
{
    (void)st;
    char p[512], err[ERRLEN] = "", want[600];
    tin_idlist l;
    snprintf(p, sizeof p, "%s/ids.txt", tmpdir);
    write_file(p, "d1\nd2\nd3\n", 9);
    assert_int_equal(tin_idlist_read(p, &l, err, ERRLEN), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.ids[2], "d3");
    tin_idlist_free(&l);
    write_file(p, "d1\nd2\nd1\n", 9);
    assert_int_equal(tin_idlist_read(p, &l, err, ERRLEN), -1);
    snprintf(want, sizeof want, "%s:3: duplicate id 'd1' (first on line 1)", p);
    assert_string_equal(err, want);
    snprintf(p, sizeof p, "%s/nope.txt", tmpdir);
    assert_int_equal(tin_idlist_read(p, &l, err, ERRLEN), -1);
    assert_non_null(strstr(err, "cannot open: No such file or directory"));
    assert_int_equal(tin_idlist_read(tmpdir, &l, err, ERRLEN), -1);
    assert_non_null(strstr(err, "is a directory"));
}

/* JSON for any bytes: ids from an index built before format [I6] */
static void json_any_bytes(void **st)
{
    char buf[256] = "";
    FILE *f = fmemopen(buf, sizeof buf, "w");
    (void)st;
    assert_non_null(f);
    cli_json_str(f, "a\"b\\c\td\x01" "e\xff" "f\xc3\xa9");
    fclose(f);
    assert_string_equal(buf, "\"a\\\"b\\\\c\\td\\u0001e\\u00fff\xc3\xa9\"");
}

/* ---- id hash ------------------------------------------------------------- */

static void idhash_lookups(void **st)
{
    (void)st;
    char err[ERRLEN] = "";
    tin_idlist l;
    const size_t n = 20000;
    size_t cap = n * 12 + 1, w = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (size_t i = 0; i < n; i++)
        w += (size_t)snprintf(text + w, cap - w, "doc%zu\n", i * 7);
    assert_int_equal(tin_idlist_parse(text, w, "ids.txt", &l, err, ERRLEN), 0);
    assert_int_equal(l.n, n);
    tin_idhash *h = tin_idhash_new(&l);
    assert_non_null(h);
    char id[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof id, "doc%zu", i * 7);
        assert_int_equal(tin_idhash_get(h, id), (int64_t)i);
        snprintf(id, sizeof id, "doc%zu", i * 7 + 3);
        assert_int_equal(tin_idhash_get(h, id), -1);
    }
    assert_int_equal(tin_idhash_get(h, ""), -1);
    assert_int_equal(tin_idhash_get(h, "doc"), -1);
    assert_int_equal(tin_idhash_get(h, NULL), -1);
    tin_idhash_free(h);
    tin_idhash_free(NULL);
    tin_idlist_free(&l);
    free(text);

    /* empty list */
    assert_int_equal(tin_idlist_parse("", 0, "ids.txt", &l, err, ERRLEN), 0);
    h = tin_idhash_new(&l);
    assert_non_null(h);
    assert_int_equal(tin_idhash_get(h, "x"), -1);
    tin_idhash_free(h);
    tin_idlist_free(&l);
}

/* ---- qrels --------------------------------------------------------------- */

static int qr(const char *text, size_t len, tin_qrels *q, char *err)
{
    return tin_qrels_parse(text, len, "qrels.tsv", q, err, ERRLEN);
}
#define QR(s, q, e) qr((s), sizeof(s) - 1, (q), (e))

static void qrels_valid(void **st)
{
    (void)st;
    char err[ERRLEN] = "";
    tin_qrels q;
    assert_int_equal(QR("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\nq2\td1\t0\n", &q, err), 0);
    assert_int_equal(q.n, 3);
    assert_string_equal(q.rows[0].qid, "q1");
    assert_string_equal(q.rows[0].pid, "d1");
    assert_true(q.rows[0].score == 1.0f);
    assert_int_equal(q.rows[0].line, 2);
    assert_true(q.rows[1].score == 2.0f);
    assert_string_equal(q.rows[2].qid, "q2");
    assert_true(q.rows[2].score == 0.0f);
    assert_int_equal(q.rows[2].line, 4);
    tin_qrels_free(&q);
    tin_qrels_free(&q);

    /* no header, 2 fields, CRLF, blank lines, no final newline, duplicates kept */
    assert_int_equal(QR("q1\td1\r\n\r\n  \nq2\td9\t0.5\r\nq2\td9\t-1e-3\nq3\td3", &q, err), 0);
    assert_int_equal(q.n, 4);
    assert_true(q.rows[0].score == 1.0f);
    assert_string_equal(q.rows[0].pid, "d1");
    assert_true(q.rows[1].score == 0.5f);
    assert_int_equal(q.rows[1].line, 4);
    assert_true(q.rows[2].score == -1e-3f);
    assert_string_equal(q.rows[3].pid, "d3");
    assert_true(q.rows[3].score == 1.0f);
    assert_int_equal(q.rows[3].line, 6);
    tin_qrels_free(&q);

    /* a header with other names (score column not a number), and a 2-field header */
    assert_int_equal(QR("q\tdoc\trel\nq1\td1\t3\n", &q, err), 0);
    assert_int_equal(q.n, 1);
    assert_true(q.rows[0].score == 3.0f);
    tin_qrels_free(&q);
    assert_int_equal(QR("query-id\tcorpus-id\nq1\td1\n", &q, err), 0);
    assert_int_equal(q.n, 1);
    tin_qrels_free(&q);

    /* empty, only blank lines, only a header: 0 rows, not an error */
    assert_int_equal(QR("", &q, err), 0);
    assert_int_equal(q.n, 0);
    tin_qrels_free(&q);
    assert_int_equal(QR("\n\r\n", &q, err), 0);
    assert_int_equal(q.n, 0);
    tin_qrels_free(&q);
    assert_int_equal(QR("query-id\tcorpus-id\tscore\r\n", &q, err), 0);
    assert_int_equal(q.n, 0);
    tin_qrels_free(&q);
}

static void qrels_errors(void **st)
{
    (void)st;
    char err[ERRLEN] = "";
    tin_qrels q;
    assert_int_equal(QR("q1\td1\t1\nq2\td2\tx\n", &q, err), -1);
    assert_string_equal(err, "qrels.tsv:2: score 'x' is not a finite number");
    assert_null(q.rows);
    assert_int_equal(QR("q1\td1\t1\nq2\td2\tnan\n", &q, err), -1);
    assert_string_equal(err, "qrels.tsv:2: score 'nan' is not a finite number");
    assert_int_equal(QR("q1\td1\t1\nq2\td2\t-inf\n", &q, err), -1);
    assert_int_equal(QR("q1\td1\t1\nq2\td2\t1e999\n", &q, err), -1);
    assert_int_equal(QR("q1\td1\t1\nq2\td2\t1e39\n", &q, err), -1); /* not a finite float */
    assert_int_equal(QR("q1\td1\t1\nq2\td2\t1x\n", &q, err), -1);
    assert_int_equal(QR("q1\td1\t1\nq2\td2\t\n", &q, err), -1);
    assert_int_equal(QR("q1\td1\t1\n\nq2 d2 1\n", &q, err), -1);
    assert_string_equal(err, "qrels.tsv:3: expected 2 or 3 tab-separated fields, found 1 "
                             "(fields must be separated by tabs)");
    assert_int_equal(QR("q1\td1\t1\nq2\n", &q, err), -1);
    assert_string_equal(err, "qrels.tsv:2: expected 2 or 3 tab-separated fields, found 1");
    assert_int_equal(QR("q1\t0\td1\t1\n", &q, err), -1);
    assert_non_null(strstr(err, "qrels.tsv:1: expected 2 or 3 tab-separated fields, found 4"));
    assert_int_equal(QR("q1\td1\t1\nq1\t\t1\n", &q, err), -1);
    assert_string_equal(err, "qrels.tsv:2: empty corpus id");
    assert_int_equal(QR("q1\td1\t1\n\td1\n", &q, err), -1);
    assert_string_equal(err, "qrels.tsv:2: empty query id");
    assert_int_equal(QR("q1\td1\t1\nq\x00\td\n", &q, err), -1);
    assert_string_equal(err, "qrels.tsv:2: NUL byte (column 2; not a text file?)");
    assert_int_equal(QR("q1\td1\t1\nq1\td1\t1\t1\t1\t1\t1\t1\n", &q, err), -1);
    assert_non_null(strstr(err, "found 8"));
    /* a header is only skipped on the first line */
    assert_int_equal(QR("q1\td1\t1\nquery-id\tcorpus-id\tscore\n", &q, err), -1);
    assert_string_equal(err, "qrels.tsv:2: score 'score' is not a finite number");
    /* a long score field */
    assert_int_equal(QR("q1\td1\t1\nq\td\t1.000000000000000000000000000000000000000000000000000000000000000000000\n",
                        &q, err), -1);
}

static void qrels_file(void **st)
{
    (void)st;
    char p[512], err[ERRLEN] = "";
    tin_qrels q;
    snprintf(p, sizeof p, "%s/qrels.tsv", tmpdir);
    const char t[] = "query-id\tcorpus-id\tscore\nq1\td1\t1\n";
    write_file(p, t, sizeof t - 1);
    assert_int_equal(tin_qrels_read(p, &q, err, ERRLEN), 0);
    assert_int_equal(q.n, 1);
    assert_int_equal(q.rows[0].line, 2);
    tin_qrels_free(&q);
    snprintf(p, sizeof p, "%s/none.tsv", tmpdir);
    assert_int_equal(tin_qrels_read(p, &q, err, ERRLEN), -1);
    assert_non_null(strstr(err, "none.tsv: cannot open: No such file or directory"));
}

/* ids in messages: UTF-8 characters as written, other bytes escaped */
static void printable_ids(void **state)
{
    char out[64];
    (void)state;
    tin_printable((const unsigned char *)"\xe6\x96\x87\xe6\xa1\xa3-\xc3\xbc-9", 11, 64, out, sizeof out);
    assert_string_equal(out, "\xe6\x96\x87\xe6\xa1\xa3-\xc3\xbc-9"); /* 文档-ü-9 */
    tin_printable((const unsigned char *)"a\xff\xc2\x9b\x01\\", 6, 64, out, sizeof out);
    assert_string_equal(out, "a\\xff\\xc2\\x9b\\x01\\x5c"); /* bad byte, C1 control, control, backslash */
    tin_printable((const unsigned char *)"\xe6\x96", 2, 64, out, sizeof out); /* cut sequence */
    assert_string_equal(out, "\\xe6\\x96");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(npy_f32_valid),
        cmocka_unit_test(npy_f16_valid),
        cmocka_unit_test(npy_versions_and_dict_forms),
        cmocka_unit_test(npy_rejects),
        cmocka_unit_test(npy_every_prefix),
        cmocka_unit_test(npy_nan_inf),
        cmocka_unit_test(fvecs_good_and_bad),
        cmocka_unit_test(matrix_files),
        cmocka_unit_test(idlist_valid),
        cmocka_unit_test(printable_ids),
        cmocka_unit_test(idlist_errors),
        cmocka_unit_test(json_any_bytes),
        cmocka_unit_test(idlist_file),
        cmocka_unit_test(idhash_lookups),
        cmocka_unit_test(qrels_valid),
        cmocka_unit_test(qrels_errors),
        cmocka_unit_test(qrels_file),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
