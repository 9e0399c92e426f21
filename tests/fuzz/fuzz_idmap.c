/*
 * fuzz_idmap.c - the binding between an index and its LMDB id map. A fixed
 * valid index (built on first call) names its id map; the fuzzer supplies the
 * bytes of that id map file: either whole (first byte even) or as patches
 * (offset, byte) applied to the genuine id map (first byte odd). Then
 * pefa_idmap_open and lookups. Any bytes other than the genuine ones must be
 * refused before LMDB reads them (size, XXH3, UUID); the genuine ones must
 * map every row to its id and back.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdint.h>
#include <stdio.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pefa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NP 64
#define NQ 8
#define DIM 4

static int mkdir_p(const char *d)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", d);
    return system(cmd);
}

static char g_dir[64], g_index[128], g_ids[512];
static uint8_t *g_good;
static size_t g_good_len;

static int remove_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

/* libFuzzer may end with _Exit, so a run cannot clean up after itself: it
 * removes what earlier runs, no longer alive, left in /tmp */
static void remove_stale_dirs(void)
{
    DIR *d = opendir("/tmp");
    struct dirent *e;
    char p[300];
    while (d && (e = readdir(d)) != NULL) {
        int pid;
        if (sscanf(e->d_name, "pefa-fuzz-idmap-%d", &pid) != 1 || pid <= 0 || kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(p, sizeof p, "/tmp/%s", e->d_name);
        nftw(p, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    }
    if (d) closedir(d);
}

static void init(void)
{
    pefa_build_input in;
    pefa_build_params p = PEFA_BUILD_PARAMS_INIT;
    pefa_pair pairs[NQ];
    static float P[NP * DIM], Q[NQ * DIM];
    static char names[NP + NQ][16];
    static const char *pids[NP], *qids[NQ];
    pefa_index *ix;
    const char *name;
    FILE *f;
    remove_stale_dirs();
    snprintf(g_dir, sizeof g_dir, "/tmp/pefa-fuzz-idmap-%d", (int)getpid());
    if (mkdir_p(g_dir)) abort();
    snprintf(g_index, sizeof g_index, "%s/idx.pefa", g_dir);
    for (int i = 0; i < NP * DIM; i++) P[i] = (float)((i * 37) % 11) - 5.0f;
    for (int i = 0; i < NQ * DIM; i++) Q[i] = (float)((i * 13) % 7) - 3.0f;
    for (int i = 0; i < NP; i++) snprintf(names[i], 16, "doc-%d", i), pids[i] = names[i];
    for (int i = 0; i < NQ; i++) snprintf(names[NP + i], 16, "q%d", i), qids[i] = names[NP + i];
    for (uint32_t i = 0; i < NQ; i++) pairs[i] = (pefa_pair){i, (i * 5) % NP, 1};
    memset(&in, 0, sizeof in);
    in.passages = P;
    in.n_passages = NP;
    in.dim = DIM;
    in.queries = Q;
    in.n_queries = NQ;
    in.pairs = pairs;
    in.n_pairs = NQ;
    in.passage_ids = pids;
    in.query_ids = qids;
    p.no_graphs = 1;
    p.threads = 1;
    if (pefa_build(g_index, &in, &p, NULL) || pefa_index_open(g_index, &ix) ||
        pefa_index_meta_get(ix, "idmap.file", &name))
        abort();
    snprintf(g_ids, sizeof g_ids, "%s/%s", g_dir, name);
    pefa_index_close(ix);
    f = fopen(g_ids, "rb");
    if (!f) abort();
    fseek(f, 0, SEEK_END);
    g_good_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    g_good = malloc(g_good_len);
    if (!g_good || fread(g_good, 1, g_good_len, f) != g_good_len) abort();
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pefa_index *ix;
    pefa_idmap *im;
    uint8_t *img;
    size_t len;
    FILE *f;
    int genuine;
    if (!g_good) init();
    if (size == 0) return 0;
    if (data[0] % 2 == 0) {
        img = malloc(size);
        memcpy(img, data + 1, size - 1);
        len = size - 1;
    } else {
        img = malloc(g_good_len);
        memcpy(img, g_good, g_good_len);
        len = g_good_len;
        for (size_t i = 1; i + 3 <= size; i += 3) img[((size_t)data[i] << 8 | data[i + 1]) * 61 % len] = data[i + 2];
    }
    genuine = len == g_good_len && memcmp(img, g_good, len) == 0;
    f = fopen(g_ids, "wb");
    if (!f) abort();
    fwrite(img, 1, len, f);
    fclose(f);
    if (pefa_index_open(g_index, &ix)) abort();
    if (pefa_idmap_open(ix, 0, &im) == 0) {
        char id[64];
        uint32_t row;
        if (!genuine) abort(); /* damaged bytes accepted: the binding failed */
        for (uint32_t r = 0; r < NP; r++) {
            if (pefa_idmap_id(im, PEFA_IDS_PASSAGES, r, id, sizeof id, NULL) || pefa_idmap_row(im, PEFA_IDS_PASSAGES, id, &row) ||
                row != r)
                abort();
        }
        pefa_idmap_close(im);
    } else if (genuine) {
        abort(); /* the genuine id map refused */
    }
    pefa_index_close(ix);
    free(img);
    return 0;
}
