/*
 * test_corruption.c - a valid file damaged by other means must give a clean
 * error, with the right code, and never a crash (run it under ASan+UBSan:
 * cmake -DPEFA_SANITIZE=ON).
 *
 * Damage: every header byte and every directory byte flipped in turn,
 * truncation at every offset below 8192 and a spread beyond, appended bytes,
 * directories that lie with their checksums recomputed (so only the
 * structural rules [H4]..[H8], [D1]..[D7], [L1] can catch them), and flipped
 * section and padding bytes (open succeeds, verify fails naming the section).
 * Rule ids refer to format/pefa-format-v1.md.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_util.h"

/* the sample file: 4 sections of different kinds, types and codecs */
enum { S_META = 0, S_PASSAGES = 1, S_QUERIES = 2, S_YROWS = 3, NSEC = 4 };

typedef struct {
    char *dir;
    char good[4096];   /* the valid sample */
    char bad[4096];    /* scratch copy that gets damaged */
    uint8_t *img;      /* bytes of the valid sample */
    size_t len;
} fixture;

static int build_sample(const char *path)
{
    static const char meta[] = "sample.rows=4\nsample.dim=3\nnote=corruption sample (no pefa.* keys: a bare container)\n";
    float p[12] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 0.6f, 0.8f, 0};
    uint16_t q[6] = {0x3c00, 0, 0, 0, 0x3c00, 0}; /* f16 1.0 */
    uint8_t y[64];
    pefa_writer *w;
    pefa_section_info d;
    int rc;
    for (size_t i = 0; i < sizeof y; i++) y[i] = (uint8_t)(i % 5);
    if ((rc = pefa_writer_open(path, &w)) != 0) return rc;
    d = tu_desc(PEFA_KIND_META, 0, PEFA_CODEC_RAW, PEFA_TYPE_BYTES, 0, 0, 0);
    d.flags = PEFA_SECTION_REQUIRED;
    if ((rc = pefa_writer_add(w, &d, meta, sizeof meta - 1)) != 0) goto fail;
    d = tu_desc(PEFA_KIND_VECTORS, PEFA_TARGET_PASSAGES, PEFA_CODEC_RAW, PEFA_TYPE_F32, 2, 4, 3);
    d.flags = PEFA_SECTION_REQUIRED;
    if ((rc = pefa_writer_add(w, &d, p, sizeof p)) != 0) goto fail;
    d = tu_desc(PEFA_KIND_VECTORS, PEFA_TARGET_QUERIES, PEFA_CODEC_ZSTD, PEFA_TYPE_F16, 2, 2, 3);
    if ((rc = pefa_writer_add(w, &d, q, sizeof q)) != 0) goto fail;
    d = tu_desc(PEFA_KIND_Y_ROWS, 0, PEFA_CODEC_ZSTD, PEFA_TYPE_BYTES, 0, 0, 0);
    if ((rc = pefa_writer_add(w, &d, y, sizeof y)) != 0) goto fail;
    return pefa_writer_commit(w);
fail:
    pefa_writer_abort(w);
    return rc;
}

static int setup(void **state)
{
    fixture *f = (fixture *)calloc(1, sizeof *f);
    if (!f || !(f->dir = tu_mkdtemp())) return -1;
    snprintf(f->good, sizeof f->good, "%s/good.pefa", f->dir);
    snprintf(f->bad, sizeof f->bad, "%s/bad.pefa", f->dir);
    if (build_sample(f->good) != 0) return -1;
    f->img = tu_read_file(f->good, &f->len);
    if (!f->img) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = (fixture *)*state;
    tu_rmdir(f->dir);
    free(f->dir);
    free(f->img);
    free(f);
    return 0;
}

static uint8_t *copy_img(const fixture *f)
{
    uint8_t *b = (uint8_t *)malloc(f->len + 8192);
    assert_non_null(b);
    memcpy(b, f->img, f->len);
    return b;
}

/* writes buf as the bad file and returns the open error; checks that a
 * failure carries a detail naming the file */
static int open_bytes(const fixture *f, const uint8_t *buf, size_t len)
{
    int rc;
    assert_int_equal(tu_write_file(f->bad, buf, len), 0);
    rc = tu_open_rc(f->bad);
    if (rc != 0 && rc != PEFA_ERR_NOMEM) assert_non_null(strstr(pefa_last_error_detail(), f->bad));
    return rc;
}

static uint64_t dir_off(const fixture *f)
{
    return ld64(f->img + H_DIROFF);
}

/* ---- the sample is valid ------------------------------------------------ */
static void test_sample_valid(void **state)
{
    fixture *f = (fixture *)*state;
    pefa_index *ix;
    int bad = 7;
    assert_int_equal(pefa_index_open(f->good, &ix), 0);
    assert_int_equal(pefa_index_section_count(ix), NSEC);
    assert_int_equal(pefa_index_verify(ix, &bad), 0);
    assert_int_equal(bad, -1);
    assert_string_equal(tu_meta(ix, "sample.dim"), "3");
    pefa_index_close(ix);
    /* the writer put the directory last and the file ends with it [L1] */
    assert_int_equal(dir_off(f) + NSEC * PEFA_DIRENT_SIZE, f->len);
    assert_int_equal(ld64(f->img + H_FILESIZE), f->len);
}

/* ---- every header byte ---------------------------------------------------- */
static void test_flip_header_bytes(void **state)
{
    fixture *f = (fixture *)*state;
    static const uint8_t masks[] = {0x01, 0x80, 0xFF};
    uint8_t *b = copy_img(f);
    for (size_t i = 0; i < PEFA_HEADER_SIZE; i++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            int want = i < H_MAJOR ? PEFA_ERR_NOT_PEFA      /* [H1] */
                       : i < H_MINOR ? PEFA_ERR_VERSION     /* [H2] before the checksum */
                                     : PEFA_ERR_CHECKSUM;   /* [H3] */
            int rc;
            b[i] ^= masks[m];
            rc = open_bytes(f, b, f->len);
            if (rc != want) fail_msg("header byte %zu ^ 0x%02x: got %d, want %d (%s)", i, masks[m], rc, want,
                                     pefa_last_error_detail());
            b[i] ^= masks[m];
        }
    }
    free(b);
}

/* ---- every directory byte ------------------------------------------------ */
static void test_flip_directory_bytes(void **state)
{
    fixture *f = (fixture *)*state;
    uint8_t *b = copy_img(f);
    for (size_t i = (size_t)dir_off(f); i < f->len; i++) {
        int rc;
        b[i] ^= 0x01;
        rc = open_bytes(f, b, f->len);
        if (rc != PEFA_ERR_CHECKSUM) fail_msg("directory byte %zu: got %d (%s)", i, rc, pefa_last_error_detail());
        b[i] ^= 0x01;
    }
    free(b);
}

/* ---- truncation and appended bytes ------------------------------------- */
static void test_truncate(void **state)
{
    fixture *f = (fixture *)*state;
    size_t cut;
    assert_int_equal(open_bytes(f, f->img, 0), PEFA_ERR_NOT_PEFA);
    for (cut = 1; cut < f->len; cut = cut < 8192 ? cut + 1 : cut + 97) {
        int rc = open_bytes(f, f->img, cut);
        /* [H1] a prefix of the magic is a truncated pefa file, [H7] beyond */
        if (rc != PEFA_ERR_TRUNCATED) fail_msg("cut at %zu: got %d (%s)", cut, rc, pefa_last_error_detail());
    }
    for (cut = f->len - 200; cut < f->len; cut++)
        assert_int_equal(open_bytes(f, f->img, cut), PEFA_ERR_TRUNCATED);
    /* a short file that does not start like the magic is not ours */
    assert_int_equal(open_bytes(f, (const uint8_t *)"\x89PNG", 4), PEFA_ERR_NOT_PEFA);
}

static void test_append(void **state)
{
    fixture *f = (fixture *)*state;
    static const size_t extra[] = {1, 7, 8, 128, 4096, 8000};
    uint8_t *b = copy_img(f);
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        memset(b + f->len, (int)i, extra[i]);
        assert_int_equal(open_bytes(f, b, f->len + extra[i]), PEFA_ERR_TRUNCATED); /* [H7] */
    }
    /* trailing bytes and a file_size that admits them: [L1] */
    memset(b + f->len, 0, 4096);
    st64(b + H_FILESIZE, f->len + 4096);
    tu_reseal(b, f->len + 4096);
    assert_int_equal(open_bytes(f, b, f->len + 4096), PEFA_ERR_CORRUPT);
    free(b);
}

/* ---- lies in the header, checksums recomputed ---------------------------- */
typedef void (*mutator)(uint8_t *b, const fixture *f);

static int lie(const fixture *f, mutator m)
{
    uint8_t *b = copy_img(f);
    int rc;
    m(b, f);
    tu_reseal(b, f->len);
    rc = open_bytes(f, b, f->len);
    free(b);
    return rc;
}

static void h_major2(uint8_t *b, const fixture *f) { (void)f; st16(b + H_MAJOR, 2); }
static void h_major0(uint8_t *b, const fixture *f) { (void)f; st16(b + H_MAJOR, 0); }
static void h_endian(uint8_t *b, const fixture *f) { (void)f; st32(b + H_ENDIAN, 0x0D0C0B0Au); }
static void h_hdrsize(uint8_t *b, const fixture *f) { (void)f; st32(b + H_HDRSIZE, 256); }
static void h_direntsize(uint8_t *b, const fixture *f) { (void)f; st32(b + H_DIRENTSIZE, 64); }
static void h_direntsize_odd(uint8_t *b, const fixture *f) { (void)f; st32(b + H_DIRENTSIZE, 132); }
static void h_flag0(uint8_t *b, const fixture *f) { (void)f; st64(b + H_FLAGS, 1); }
static void h_flag1(uint8_t *b, const fixture *f) { (void)f; st64(b + H_FLAGS, 2); }
static void h_flag31(uint8_t *b, const fixture *f) { (void)f; st64(b + H_FLAGS, 1ull << 31); }
static void h_flag32(uint8_t *b, const fixture *f) { (void)f; st64(b + H_FLAGS, 1ull << 32); }
static void h_flag63(uint8_t *b, const fixture *f) { (void)f; st64(b + H_FLAGS, 1ull << 63); }
static void h_res0(uint8_t *b, const fixture *f) { (void)f; b[H_RESERVED0 + 2] = 1; }
static void h_res1(uint8_t *b, const fixture *f) { (void)f; b[H_RESERVED1 + 39] = 0x40; }
static void h_minor1_res(uint8_t *b, const fixture *f)
{
    (void)f;
    st16(b + H_MINOR, PEFA_FORMAT_MINOR + 1);
    b[H_RESERVED0] = 9;
    b[H_RESERVED1] = 9;
}
static void h_filesize(uint8_t *b, const fixture *f) { st64(b + H_FILESIZE, f->len + 1); }
static void h_nsect_many(uint8_t *b, const fixture *f) { (void)f; st32(b + H_NSECT, PEFA_MAX_SECTIONS + 1); }
static void h_nsect_more(uint8_t *b, const fixture *f) { (void)f; st32(b + H_NSECT, NSEC + 1); }
static void h_nsect_fewer(uint8_t *b, const fixture *f) { (void)f; st32(b + H_NSECT, NSEC - 1); }
static void h_diroff_unaligned(uint8_t *b, const fixture *f) { st64(b + H_DIROFF, dir_off(f) - 4); }
static void h_diroff_header(uint8_t *b, const fixture *f) { (void)f; st64(b + H_DIROFF, 64); }
static void h_diroff_past(uint8_t *b, const fixture *f) { st64(b + H_DIROFF, f->len + 8); }
static void h_diroff_huge(uint8_t *b, const fixture *f) { (void)f; st64(b + H_DIROFF, UINT64_MAX - 7); }

static void test_header_lies(void **state)
{
    fixture *f = (fixture *)*state;
    assert_int_equal(lie(f, h_major2), PEFA_ERR_VERSION);       /* [H2] */
    assert_int_equal(lie(f, h_major0), PEFA_ERR_VERSION);
    assert_int_equal(lie(f, h_endian), PEFA_ERR_CORRUPT);       /* [H4] */
    assert_int_equal(lie(f, h_hdrsize), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, h_direntsize), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, h_direntsize_odd), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, h_flag0), 0);                       /* [H5] bit 0: METRIC_IP, understood */
    assert_int_equal(lie(f, h_flag1), PEFA_ERR_VERSION);        /* [H5] */
    assert_int_equal(lie(f, h_flag31), PEFA_ERR_VERSION);
    assert_int_equal(lie(f, h_flag32), 0);                      /* ignorable flags */
    assert_int_equal(lie(f, h_flag63), 0);
    assert_int_equal(lie(f, h_res0), PEFA_ERR_CORRUPT);         /* [H6] */
    assert_int_equal(lie(f, h_res1), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, h_minor1_res), 0);                  /* newer minor: ignored */
    assert_int_equal(lie(f, h_filesize), PEFA_ERR_TRUNCATED);   /* [H7] */
    assert_int_equal(lie(f, h_nsect_many), PEFA_ERR_CORRUPT);   /* [H8] */
    assert_int_equal(lie(f, h_nsect_more), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, h_nsect_fewer), PEFA_ERR_CORRUPT);  /* [L1]: bytes after the directory */
    assert_int_equal(lie(f, h_diroff_unaligned), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, h_diroff_header), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, h_diroff_past), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, h_diroff_huge), PEFA_ERR_CORRUPT);
}

/* ---- lies in the directory, checksums recomputed ------------------------- */
static uint8_t *ent(uint8_t *b, uint32_t i) { return tu_dirent(b, i); }

static void d_unaligned(uint8_t *b, const fixture *f) { (void)f; st64(ent(b, S_PASSAGES) + D_OFFSET, ld64(ent(b, S_PASSAGES) + D_OFFSET) + 8); }
static void d_in_header(uint8_t *b, const fixture *f) { (void)f; st64(ent(b, S_META) + D_OFFSET, 0); }
static void d_past_end(uint8_t *b, const fixture *f) { st64(ent(b, S_PASSAGES) + D_OFFSET, (f->len + 8191) / 4096 * 4096); }
static void d_wrap(uint8_t *b, const fixture *f) { (void)f; st64(ent(b, S_META) + D_STORED, UINT64_MAX - 100); st64(ent(b, S_META) + D_RAW, UINT64_MAX - 100); }
static void d_overlap(uint8_t *b, const fixture *f) { (void)f; st64(ent(b, S_QUERIES) + D_OFFSET, ld64(ent(b, S_PASSAGES) + D_OFFSET)); }
static void d_overlap_dir(uint8_t *b, const fixture *f) { st64(ent(b, S_YROWS) + D_STORED, f->len - ld64(ent(b, S_YROWS) + D_OFFSET)); }
static void d_shape_size(uint8_t *b, const fixture *f) { (void)f; st64(ent(b, S_PASSAGES) + D_SHAPE, 5); }
static void d_shape_overflow(uint8_t *b, const fixture *f)
{
    (void)f;
    st64(ent(b, S_PASSAGES) + D_SHAPE, 1ull << 62);
    st64(ent(b, S_PASSAGES) + D_SHAPE + 8, 1ull << 62);
}
static void d_ndim5(uint8_t *b, const fixture *f) { (void)f; st32(ent(b, S_PASSAGES) + D_NDIM, 5); }
static void d_unused_dim(uint8_t *b, const fixture *f) { (void)f; st64(ent(b, S_PASSAGES) + D_SHAPE + 24, 1); }
static void d_raw_stored(uint8_t *b, const fixture *f) { (void)f; st64(ent(b, S_PASSAGES) + D_STORED, 44); }
static void d_zstd_tiny(uint8_t *b, const fixture *f) { (void)f; st64(ent(b, S_QUERIES) + D_STORED, 4); }
static void d_zstd_bomb(uint8_t *b, const fixture *f) { (void)f; st64(ent(b, S_YROWS) + D_RAW, 1ull << 40); }
static void d_res_flags(uint8_t *b, const fixture *f) { (void)f; st16(ent(b, S_META) + D_FLAGS, 0x8001); }
static void d_res_bytes(uint8_t *b, const fixture *f) { (void)f; ent(b, S_QUERIES)[D_RESERVED + 10] = 1; }
static void d_duplicate(uint8_t *b, const fixture *f) { (void)f; st32(ent(b, S_QUERIES) + D_TARGET, PEFA_TARGET_PASSAGES); }
static void d_unknown_kind_req(uint8_t *b, const fixture *f) { (void)f; st32(ent(b, S_META) + D_KIND, 99); }
static void d_unknown_codec_req(uint8_t *b, const fixture *f) { (void)f; ent(b, S_PASSAGES)[D_CODEC] = 7; }
static void d_unknown_type_req(uint8_t *b, const fixture *f) { (void)f; ent(b, S_PASSAGES)[D_ELEM] = 42; }
static void d_unknown_kind_opt(uint8_t *b, const fixture *f) { (void)f; st32(ent(b, S_YROWS) + D_KIND, 99); }
static void d_unknown_codec_opt(uint8_t *b, const fixture *f) { (void)f; ent(b, S_QUERIES)[D_CODEC] = 7; }
static void d_minor1_res(uint8_t *b, const fixture *f)
{
    (void)f;
    st16(b + H_MINOR, PEFA_FORMAT_MINOR + 1);
    st16(ent(b, S_META) + D_FLAGS, 0x8001);
    ent(b, S_QUERIES)[D_RESERVED + 47] = 0xAA;
}

static void test_directory_lies(void **state)
{
    fixture *f = (fixture *)*state;
    /* [D3] bounds and alignment */
    assert_int_equal(lie(f, d_unaligned), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, d_in_header), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, d_past_end), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, d_wrap), PEFA_ERR_CORRUPT);
    /* [D7] overlap */
    assert_int_equal(lie(f, d_overlap), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, d_overlap_dir), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, d_duplicate), PEFA_ERR_CORRUPT);
    /* [D4] shape */
    assert_int_equal(lie(f, d_shape_size), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, d_shape_overflow), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, d_ndim5), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, d_unused_dim), PEFA_ERR_CORRUPT);
    /* [D5] [D6] codec sizes */
    assert_int_equal(lie(f, d_raw_stored), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, d_zstd_tiny), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, d_zstd_bomb), PEFA_ERR_CORRUPT);
    /* [D1] reserved bits and bytes */
    assert_int_equal(lie(f, d_res_flags), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, d_res_bytes), PEFA_ERR_CORRUPT);
    assert_int_equal(lie(f, d_minor1_res), 0);
    /* [D2] unknown required -> VERSION */
    assert_int_equal(lie(f, d_unknown_kind_req), PEFA_ERR_VERSION);
    assert_int_equal(lie(f, d_unknown_codec_req), PEFA_ERR_VERSION);
    assert_int_equal(lie(f, d_unknown_type_req), PEFA_ERR_VERSION);
    assert_int_equal(lie(f, d_unknown_codec_opt), 0);
}

/* [D2] an unknown optional section opens, is listed, but is invisible to find */
static void test_unknown_optional_ignored(void **state)
{
    fixture *f = (fixture *)*state;
    uint8_t *b = copy_img(f);
    pefa_index *ix;
    pefa_section_info s;
    const void *p;
    uint64_t n;
    d_unknown_kind_opt(b, f);
    tu_reseal(b, f->len);
    assert_int_equal(tu_write_file(f->bad, b, f->len), 0);
    assert_int_equal(pefa_index_open(f->bad, &ix), 0);
    assert_int_equal(pefa_index_section_count(ix), NSEC);
    assert_int_equal(pefa_index_section_info(ix, S_YROWS, &s), 0);
    assert_int_equal(s.kind, 99);
    assert_int_equal(pefa_index_find(ix, 99, 0), PEFA_ERR_NOT_FOUND);
    assert_int_equal(pefa_index_find(ix, PEFA_KIND_Y_ROWS, 0), PEFA_ERR_NOT_FOUND);
    assert_int_equal(pefa_index_section_data(ix, S_YROWS, &p, &n), PEFA_ERR_VERSION);
    assert_int_equal(pefa_index_find(ix, PEFA_KIND_VECTORS, PEFA_TARGET_PASSAGES), S_PASSAGES);
    assert_string_equal(tu_meta(ix, "sample.rows"), "4");
    assert_int_equal(pefa_index_verify(ix, NULL), 0); /* its checksum still holds */
    pefa_index_close(ix);
    free(b);
}

/* ---- section data and padding: open succeeds, verify names the section -- */
static void test_flip_section_bytes(void **state)
{
    fixture *f = (fixture *)*state;
    uint8_t *b = copy_img(f);
    for (uint32_t s = 0; s < NSEC; s++) {
        const uint8_t *e = tu_dirent(f->img, s);
        uint64_t off = ld64(e + D_OFFSET), len = ld64(e + D_STORED);
        uint64_t picks[3] = {off, off + len / 2, off + len - 1};
        for (int k = 0; k < 3; k++) {
            pefa_index *ix;
            int bad = -7, rc;
            char want[32];
            b[picks[k]] ^= 0x10;
            assert_int_equal(tu_write_file(f->bad, b, f->len), 0);
            assert_int_equal(pefa_index_open(f->bad, &ix), 0);
            rc = pefa_index_verify(ix, &bad);
            assert_int_equal(rc, PEFA_ERR_CHECKSUM);
            assert_int_equal(bad, (int)s);
            snprintf(want, sizeof want, "section %u ", s);
            assert_non_null(strstr(pefa_last_error_detail(), want));
            if (ld64(e + D_STORED) != ld64(e + D_RAW) || e[D_CODEC] == PEFA_CODEC_ZSTD) {
                const void *p;
                uint64_t n;
                assert_int_equal(pefa_index_section_data(ix, s, &p, &n), PEFA_ERR_CHECKSUM);
            }
            pefa_index_close(ix);
            b[picks[k]] ^= 0x10;
        }
    }
    free(b);
}

/* a zstd section whose bytes are garbage but whose checksum was recomputed:
 * only decompression catches it */
static void test_zstd_garbage_with_checksum(void **state)
{
    fixture *f = (fixture *)*state;
    uint8_t *b = copy_img(f);
    uint8_t *e = tu_dirent(b, S_YROWS);
    uint64_t off = ld64(e + D_OFFSET), len = ld64(e + D_STORED);
    pefa_index *ix;
    const void *p;
    uint64_t n;
    int bad = -7;
    for (uint64_t i = 8; i < len; i++) b[off + i] ^= 0x5A;
    st64(e + D_CHECKSUM, XXH3_64bits(b + off, (size_t)len));
    tu_reseal(b, f->len);
    assert_int_equal(tu_write_file(f->bad, b, f->len), 0);
    assert_int_equal(pefa_index_open(f->bad, &ix), 0);
    assert_int_equal(pefa_index_section_data(ix, S_YROWS, &p, &n), PEFA_ERR_CORRUPT);
    assert_int_equal(pefa_index_verify(ix, &bad), PEFA_ERR_CORRUPT);
    assert_int_equal(bad, S_YROWS);
    pefa_index_close(ix);
    free(b);
}

static void test_flip_padding(void **state)
{
    fixture *f = (fixture *)*state;
    uint8_t *b = copy_img(f);
    uint64_t picks[8];
    int np = 0;
    picks[np++] = PEFA_HEADER_SIZE;           /* just after the header */
    picks[np++] = 4095;                       /* just before the first section */
    for (uint32_t s = 0; s < NSEC; s++) {     /* just after each section */
        const uint8_t *e = tu_dirent(f->img, s);
        uint64_t end = ld64(e + D_OFFSET) + ld64(e + D_STORED);
        if (end < dir_off(f)) picks[np++] = end;
    }
    picks[np++] = dir_off(f) - 1;
    for (int k = 0; k < np; k++) {
        pefa_index *ix;
        int bad = -7;
        if (f->img[picks[k]] != 0) continue; /* the last section may end at the directory */
        b[picks[k]] = 0x01;
        assert_int_equal(tu_write_file(f->bad, b, f->len), 0);
        assert_int_equal(pefa_index_open(f->bad, &ix), 0);
        assert_int_equal(pefa_index_verify(ix, &bad), PEFA_ERR_CORRUPT); /* [V1] */
        assert_int_equal(bad, -1);
        assert_non_null(strstr(pefa_last_error_detail(), "padding"));
        pefa_index_close(ix);
        b[picks[k]] = 0;
    }
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_valid),
        cmocka_unit_test(test_flip_header_bytes),
        cmocka_unit_test(test_flip_directory_bytes),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_header_lies),
        cmocka_unit_test(test_directory_lies),
        cmocka_unit_test(test_unknown_optional_ignored),
        cmocka_unit_test(test_flip_section_bytes),
        cmocka_unit_test(test_zstd_garbage_with_checksum),
        cmocka_unit_test(test_flip_padding),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
