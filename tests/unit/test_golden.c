/*
 * test_golden.c - files committed under tests/golden/ that every later
 * version must keep handling the same way:
 *
 *   good/v1-basic.pefa   a small valid format 1.0 file: must open, verify,
 *                        and show exactly the sections and META below
 *   bad/<name>.pefa      each must be refused with its expected error
 *
 * The files are made by this program in regenerate mode and then committed;
 * never regenerate good/ for a new version (that would defeat the purpose):
 *
 *   PEFA_REGENERATE_GOLDEN=1 ./test_golden
 *
 * writes them into $PEFA_SOURCE_DIR/tests/golden/ and exits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_util.h"

#define GOLDEN_DIR PEFA_SOURCE_DIR "/tests/golden"
#define GOOD_FILE GOLDEN_DIR "/good/v1-basic.pefa"

static const char g_meta[] = "pefa.n_passages=4\n"
                             "pefa.n_queries=2\n"
                             "pefa.dim=3\n"
                             "pefa.nnz=0\n"
                             "pefa.metric=ip\n"
                             "pefa.normalise=l2\n"
                             "pefa.xs_lambda=0.5\n"
                             "pefa.vector_type=f32\n"
                             "build.library=pefa 0.1.0\n"
                             "build.created_utc=2024-01-01T00:00:00Z\n"
                             "input.passages.path=golden/passages.npy\n"
                             "golden.note=format v1.0 golden file; caf\xc3\xa9 = UTF-8\n";
static const float g_passages[12] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 0.6f, 0.8f, 0};
static const float g_queries[6] = {0.6f, 0, 0.8f, 0, 1, 0};
/* No Y sections: the PEFA layer wants VECTORS/queries beside them, and five
 * sections cannot fit in 20 KB (every section but the last fills a page).
 * Y gets its own golden file once its encoding is final. */

typedef struct {
    uint32_t kind, target;
    uint16_t flags;
    uint8_t codec, elem;
    uint32_t ndim;
    uint64_t d0;
    uint64_t d1;
} golden_section;

#define N_SECT 3
static const golden_section g_sections[N_SECT] = {
    {PEFA_KIND_META, PEFA_TARGET_NONE, PEFA_SECTION_REQUIRED, PEFA_CODEC_RAW, PEFA_TYPE_BYTES, 0, 0, 0},
    {PEFA_KIND_VECTORS, PEFA_TARGET_PASSAGES, PEFA_SECTION_REQUIRED, PEFA_CODEC_RAW, PEFA_TYPE_F32, 2, 4, 3},
    {PEFA_KIND_VECTORS, PEFA_TARGET_QUERIES, 0, PEFA_CODEC_ZSTD, PEFA_TYPE_F32, 2, 2, 3},
};
#define GOOD_SIZE 12712u /* header page + 2 one-page sections + the zstd queries, pad to 8, 3 entries */

/* expected outcome of each bad file */
static const struct {
    const char *name;
    int err;
} g_bad[] = {
    {"bad-magic", PEFA_ERR_NOT_PEFA},
    {"newer-major", PEFA_ERR_VERSION},
    {"truncated", PEFA_ERR_TRUNCATED},
    {"bad-header-checksum", PEFA_ERR_CHECKSUM},
    {"overlapping-sections", PEFA_ERR_CORRUPT},
    {"unknown-required-section", PEFA_ERR_VERSION},
};
#define N_BAD (sizeof g_bad / sizeof g_bad[0])

/* ---- regenerate mode ---------------------------------------------------- */
static int write_good(const char *path)
{
    pefa_writer *w;
    const void *data[N_SECT] = {g_meta, g_passages, g_queries};
    const size_t len[N_SECT] = {sizeof g_meta - 1, sizeof g_passages, sizeof g_queries};
    int rc;
    /* the arrays above are written in host order: little-endian (common/bytes.h) */
    if ((rc = pefa_writer_open(path, &w)) != 0) return rc;
    for (int i = 0; i < N_SECT; i++) {
        const golden_section *g = &g_sections[i];
        pefa_section_info d = tu_desc(g->kind, g->target, g->codec, g->elem, g->ndim, g->d0, g->d1);
        d.flags = g->flags;
        if ((rc = pefa_writer_add(w, &d, data[i], len[i])) != 0) {
            pefa_writer_abort(w);
            return rc;
        }
    }
    return pefa_writer_commit(w);
}

static void damage(uint8_t *b, size_t *len, const char *name)
{
    if (!strcmp(name, "bad-magic")) {
        b[1] = 'X';
    } else if (!strcmp(name, "newer-major")) {
        st16(b + H_MAJOR, PEFA_FORMAT_MAJOR + 1);
        tu_reseal(b, *len);
    } else if (!strcmp(name, "truncated")) {
        *len = 10000;
    } else if (!strcmp(name, "bad-header-checksum")) {
        b[H_UUID + 3] ^= 0x20;
    } else if (!strcmp(name, "overlapping-sections")) {
        st64(tu_dirent(b, 2) + D_OFFSET, ld64(tu_dirent(b, 1) + D_OFFSET));
        tu_reseal(b, *len);
    } else if (!strcmp(name, "unknown-required-section")) {
        st32(tu_dirent(b, 2) + D_KIND, 200);
        st16(tu_dirent(b, 2) + D_FLAGS, PEFA_SECTION_REQUIRED);
        tu_reseal(b, *len);
    }
}

static int regenerate(void)
{
    uint8_t *img;
    size_t len;
    char path[4096];
    mkdir(GOLDEN_DIR, 0755);
    mkdir(GOLDEN_DIR "/good", 0755);
    mkdir(GOLDEN_DIR "/bad", 0755);
    if (write_good(GOOD_FILE) != 0) {
        fprintf(stderr, "regenerate: %s\n", pefa_last_error_detail());
        return 1;
    }
    img = tu_read_file(GOOD_FILE, &len);
    if (!img) return 1;
    for (size_t i = 0; i < N_BAD; i++) {
        uint8_t *b = (uint8_t *)malloc(len);
        size_t n = len;
        if (!b) return 1;
        memcpy(b, img, len);
        damage(b, &n, g_bad[i].name);
        snprintf(path, sizeof path, "%s/bad/%s.pefa", GOLDEN_DIR, g_bad[i].name);
        if (tu_write_file(path, b, n)) return 1;
        printf("wrote %s (%zu bytes)\n", path, n);
        free(b);
    }
    printf("wrote %s (%zu bytes)\n", GOOD_FILE, len);
    free(img);
    return 0;
}

/* ---- checks --------------------------------------------------------------- */
static void test_good_opens_and_verifies(void **state)
{
    pefa_index *ix;
    pefa_file_info fi;
    int bad = 7;
    (void)state;
    assert_int_equal(pefa_index_open(GOOD_FILE, &ix), 0);
    pefa_index_file_info(ix, &fi);
    assert_int_equal(fi.major, 1);
    assert_int_equal(fi.minor, 0);
    assert_int_equal(fi.flags, 0);
    assert_int_equal(fi.file_size, GOOD_SIZE);
    assert_int_equal(fi.n_sections, N_SECT);
    assert_int_equal(pefa_index_verify(ix, &bad), 0);
    assert_int_equal(bad, -1);
    pefa_index_close(ix);
}

static void test_good_sections(void **state)
{
    pefa_index *ix;
    (void)state;
    assert_int_equal(pefa_index_open(GOOD_FILE, &ix), 0);
    assert_int_equal(pefa_index_section_count(ix), N_SECT);
    for (uint32_t i = 0; i < N_SECT; i++) {
        const golden_section *g = &g_sections[i];
        pefa_section_info s;
        assert_int_equal(pefa_index_section_info(ix, i, &s), 0);
        assert_int_equal(s.kind, g->kind);
        assert_int_equal(s.target, g->target);
        assert_int_equal(s.flags, g->flags);
        assert_int_equal(s.codec, g->codec);
        assert_int_equal(s.elem, g->elem);
        assert_int_equal(s.ndim, g->ndim);
        assert_int_equal(s.shape[0], g->d0);
        assert_int_equal(s.shape[1], g->d1);
        assert_int_equal(s.offset, 4096u * (i + 1));
        assert_int_equal(pefa_index_find(ix, g->kind, g->target), (int)i);
    }
    /* contents, decoded little-endian whatever the host */
    {
        const void *p;
        uint64_t n;
        const uint8_t *b;
        assert_int_equal(pefa_index_section_data(ix, 1, &p, &n), 0);
        assert_int_equal(n, 48);
        b = (const uint8_t *)p;
        for (int i = 0; i < 12; i++) {
            uint32_t bits = ld32(b + 4 * i);
            float v;
            memcpy(&v, &bits, 4);
            assert_true(v == g_passages[i]);
        }
        assert_int_equal(pefa_index_section_data(ix, 2, &p, &n), 0);
        assert_int_equal(n, 24);
        b = (const uint8_t *)p;
        for (int i = 0; i < 6; i++) {
            uint32_t bits = ld32(b + 4 * i);
            float v;
            memcpy(&v, &bits, 4);
            assert_true(v == g_queries[i]);
        }
    }
    pefa_index_close(ix);
}

static void test_good_meta(void **state)
{
    pefa_index *ix;
    const char *k, *v;
    (void)state;
    assert_int_equal(pefa_index_open(GOOD_FILE, &ix), 0);
    assert_int_equal(pefa_index_meta_count(ix), 12);
    assert_string_equal(tu_meta(ix, "pefa.n_passages"), "4");
    assert_string_equal(tu_meta(ix, "pefa.n_queries"), "2");
    assert_string_equal(tu_meta(ix, "pefa.dim"), "3");
    assert_string_equal(tu_meta(ix, "pefa.nnz"), "0");
    assert_string_equal(tu_meta(ix, "pefa.metric"), "ip");
    assert_string_equal(tu_meta(ix, "pefa.normalise"), "l2");
    assert_string_equal(tu_meta(ix, "pefa.xs_lambda"), "0.5");
    assert_string_equal(tu_meta(ix, "pefa.vector_type"), "f32");
    assert_string_equal(tu_meta(ix, "build.created_utc"), "2024-01-01T00:00:00Z");
    assert_string_equal(tu_meta(ix, "golden.note"),
                        "format v1.0 golden file; caf\xc3\xa9 = UTF-8");
    assert_null(tu_meta(ix, "idmap.file"));
    assert_int_equal(pefa_index_meta_at(ix, 0, &k, &v), 0);
    assert_string_equal(k, "pefa.n_passages");
    pefa_index_close(ix);
}

static void test_bad_rejected(void **state)
{
    char path[4096];
    (void)state;
    for (size_t i = 0; i < N_BAD; i++) {
        int rc;
        snprintf(path, sizeof path, "%s/bad/%s.pefa", GOLDEN_DIR, g_bad[i].name);
        rc = tu_open_rc(path);
        if (rc != g_bad[i].err)
            fail_msg("%s: got %d (%s), want %d", g_bad[i].name, rc, pefa_last_error_detail(), g_bad[i].err);
    }
}

/* any file added to bad/ later must be rejected too, and stay tiny */
static void test_every_bad_file_rejected(void **state)
{
    DIR *d = opendir(GOLDEN_DIR "/bad");
    struct dirent *e;
    char path[4096];
    int n = 0;
    (void)state;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 5, ".pefa") != 0) continue;
        snprintf(path, sizeof path, "%s/bad/%s", GOLDEN_DIR, e->d_name);
        assert_int_equal(stat(path, &st), 0);
        assert_true(st.st_size < 20 * 1024);
        if (tu_open_rc(path) == 0) fail_msg("%s opened", path);
        n++;
    }
    closedir(d);
    assert_true(n >= (int)N_BAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_opens_and_verifies),
        cmocka_unit_test(test_good_sections),
        cmocka_unit_test(test_good_meta),
        cmocka_unit_test(test_bad_rejected),
        cmocka_unit_test(test_every_bad_file_rejected),
    };
    const char *regen = getenv("PEFA_REGENERATE_GOLDEN");
    if (regen && !strcmp(regen, "1")) return regenerate();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
