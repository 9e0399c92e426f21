/*
 * test_concurrency.c - many readers, one file, while it is replaced.
 *
 * 4 threads in this process and 2 child processes open one index and query
 * it in a loop, comparing every answer with the answers they got first,
 * while the main thread rebuilds the index at the same path several times
 * (pefa_build renames a new file into place). Every reader must keep
 * answering, without an error, exactly as before (it holds the file it
 * opened); a reopen must see the new file (another UUID) and answer as a
 * fresh searcher over it does. Then batches (pefa_search_batch, 3 threads
 * each) from 3 threads at once answer as one searcher does. Runs under TSan
 * in scripts/test.sh.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pefa.h"
#include "util/input.h"

#define NP 2000
#define NQ 200
#define DIM 100
#define NTEST 40
#define K 10

static float *g_P, *g_Q;
static char g_dir[128], g_path[200];

static float *load(const char *name, uint64_t rows)
{
    char path[512], err[512];
    tin_matrix m;
    float *x;
    snprintf(path, sizeof path, "%s/%s", PEFA_TEST_DATA, name);
    if (tin_matrix_open(path, &m, err, sizeof err)) fail_msg("%s", err);
    x = malloc(rows * DIM * sizeof(float));
    for (uint64_t i = 0; i < rows; i++) assert_int_equal(tin_matrix_row(&m, i, x + i * DIM, path, err, sizeof err), 0);
    tin_matrix_close(&m);
    return x;
}

static void build(float lambda, uint64_t seed)
{
    pefa_build_input in;
    pefa_build_params p = PEFA_BUILD_PARAMS_INIT;
    pefa_pair pairs[NQ];
    memset(&in, 0, sizeof in);
    for (uint32_t i = 0; i < NQ; i++) pairs[i] = (pefa_pair){i, (i * 37) % NP, 1};
    in.passages = g_P; /* read, never written */
    in.queries = g_Q;
    in.n_passages = NP;
    in.n_queries = NQ;
    in.dim = DIM;
    in.pairs = pairs;
    in.n_pairs = NQ;
    p.M = 8;
    p.ef_construction = 40;
    p.threads = 2;
    p.lambda = lambda;
    p.seed = seed;
    p.set = PEFA_SET_LAMBDA | PEFA_SET_SEED;
    if (pefa_build(g_path, &in, &p, NULL)) fail_msg("build: %s", pefa_last_error_detail());
}

/* answers of every mode for the NTEST queries */
static int answer_all(pefa_index *ix, pefa_hit out[3][NTEST][K])
{
    pefa_searcher *s;
    uint32_t n;
    int rc = pefa_searcher_new(ix, &s);
    if (rc) return rc;
    memset(out, 0, sizeof(pefa_hit) * 3 * NTEST * K);
    for (int m = 0; m < 3 && !rc; m++)
        for (int q = 0; q < NTEST && !rc; q++) {
            pefa_query_params p = PEFA_QUERY_PARAMS_INIT;
            p.mode = PEFA_MODE_ERM + m;
            p.k = K;
            rc = pefa_search(s, g_Q + (size_t)q * 5 * DIM, &p, out[m][q], &n);
        }
    pefa_searcher_free(s);
    return rc;
}

typedef struct {
    pefa_index *ix;
    volatile int *stop;
    long rounds, mismatches, errors;
    pefa_hit first[3][NTEST][K];
    pefa_hit again[3][NTEST][K];
} reader;

static void *read_loop(void *arg)
{
    reader *r = arg;
    if (answer_all(r->ix, r->first)) {
        r->errors++;
        return NULL;
    }
    while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
        if (answer_all(r->ix, r->again)) r->errors++;
        else if (memcmp(r->first, r->again, sizeof r->first)) r->mismatches++;
        r->rounds++;
    }
    return NULL;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* a child process: keeps reading until it has seen the path replaced (a
 * reopen finds another UUID) and at least `secs` have passed, then checks
 * its old handle still answered identically throughout; exit 0 if all right */
static int child(double secs)
{
    static reader r;
    pefa_index *ix, *ix2;
    pefa_file_info a, b;
    int stop = 0, replaced = 0;
    double start = now();
    if (pefa_index_open(g_path, &ix)) return 10;
    pefa_index_file_info(ix, &a);
    r.ix = ix;
    r.stop = &stop;
    if (answer_all(ix, r.first)) return 11;
    while (!replaced || now() < start + secs) {
        if (now() > start + 120) return 16; /* the main process never replaced it */
        if (answer_all(ix, r.again)) return 12;
        if (memcmp(r.first, r.again, sizeof r.first)) return 13;
        r.rounds++;
        if (!replaced) {
            if (pefa_index_open(g_path, &ix2)) return 14;
            pefa_index_file_info(ix2, &b);
            replaced = memcmp(a.uuid, b.uuid, 16) != 0;
            pefa_index_close(ix2);
        }
    }
    pefa_index_close(ix);
    printf("child %d: %ld rounds of %d queries, all identical, before and after the replacement\n", (int)getpid(),
           r.rounds, 3 * NTEST);
    fflush(stdout);
    return 0;
}

static void test_readers_during_replacement(void **state)
{
    static reader rd[4];
    pthread_t tid[4];
    pid_t kids[2];
    pefa_index *ix, *fresh;
    pefa_file_info a, b;
    volatile int stop = 0;
    static pefa_hit want[3][NTEST][K], got[3][NTEST][K];
    (void)state;
    build(0.5f, 1);
    /* processes first (no threads are running now), then threads */
    for (int c = 0; c < 2; c++) {
        kids[c] = fork();
        assert_true(kids[c] >= 0);
        if (kids[c] == 0) _exit(child(1.0));
    }
    assert_int_equal(pefa_index_open(g_path, &ix), 0);
    pefa_index_file_info(ix, &a);
    for (int t = 0; t < 4; t++) {
        rd[t].ix = ix;
        rd[t].stop = &stop;
        assert_int_equal(pthread_create(&tid[t], NULL, read_loop, &rd[t]), 0);
    }
    nanosleep(&(struct timespec){0, 300 * 1000 * 1000}, NULL);
    for (int i = 0; i < 3; i++) build(0.2f + 0.2f * (float)i, 100 + (uint64_t)i); /* replaced 3 times */
    nanosleep(&(struct timespec){0, 300 * 1000 * 1000}, NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int t = 0; t < 4; t++) {
        pthread_join(tid[t], NULL);
        print_message("thread %d: %ld rounds, %ld mismatches, %ld errors\n", t, rd[t].rounds, rd[t].mismatches,
                      rd[t].errors);
        assert_int_equal(rd[t].errors, 0);
        assert_int_equal(rd[t].mismatches, 0);
        assert_true(rd[t].rounds > 0);
    }
    for (int c = 0; c < 2; c++) {
        int st;
        assert_int_equal(waitpid(kids[c], &st, 0), kids[c]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    /* a reopen sees the new file and answers as a fresh open does */
    assert_int_equal(pefa_index_open(g_path, &fresh), 0);
    pefa_index_file_info(fresh, &b);
    assert_true(memcmp(a.uuid, b.uuid, 16) != 0);
    assert_int_equal(answer_all(fresh, want), 0);
    assert_int_equal(answer_all(fresh, got), 0);
    assert_memory_equal(want, got, sizeof want);
    assert_true(memcmp(want[1], rd[0].first[1], sizeof want[1]) != 0); /* XS answers changed with lambda */
    pefa_index_close(fresh);
    pefa_index_close(ix);
}

/* batches of every mode, 3 threads each, from 3 threads at once: every
 * answer as one searcher gives it (the chunk counter and the searcher pool
 * under TSan) */
typedef struct {
    pefa_index *ix;
    const pefa_hit (*want)[NQ * K];
    long mismatches, errors;
} batcher;

static void *batch_loop(void *arg)
{
    batcher *b = arg;
    static _Thread_local pefa_hit got[NQ * K];
    uint32_t n[NQ];
    for (int round = 0; round < 4; round++)
        for (int m = 0; m < 3; m++) {
            pefa_query_params p = PEFA_QUERY_PARAMS_INIT;
            p.mode = PEFA_MODE_ERM + m;
            p.k = K;
            memset(got, 0, sizeof got);
            if (pefa_search_batch(b->ix, g_Q, NQ, 0, &p, 3, got, n)) b->errors++;
            else if (memcmp(got, b->want[m], sizeof got)) b->mismatches++;
        }
    return NULL;
}

static void test_batches_from_threads(void **state)
{
    static pefa_hit want[3][NQ * K];
    static batcher bt[3];
    pthread_t tid[3];
    pefa_index *ix;
    pefa_searcher *s;
    uint32_t n;
    (void)state;
    build(0.5f, 7);
    assert_int_equal(pefa_index_open(g_path, &ix), 0);
    assert_int_equal(pefa_searcher_new(ix, &s), 0);
    for (int m = 0; m < 3; m++)
        for (int q = 0; q < NQ; q++) {
            pefa_query_params p = PEFA_QUERY_PARAMS_INIT;
            p.mode = PEFA_MODE_ERM + m;
            p.k = K;
            assert_int_equal(pefa_search(s, g_Q + (size_t)q * DIM, &p, want[m] + q * K, &n), 0);
        }
    pefa_searcher_free(s);
    for (int t = 0; t < 3; t++) {
        bt[t] = (batcher){ix, (const pefa_hit(*)[NQ * K])want, 0, 0};
        assert_int_equal(pthread_create(&tid[t], NULL, batch_loop, &bt[t]), 0);
    }
    for (int t = 0; t < 3; t++) {
        pthread_join(tid[t], NULL);
        assert_int_equal(bt[t].errors, 0);
        assert_int_equal(bt[t].mismatches, 0);
    }
    pefa_index_close(ix);
}

static int setup(void **state)
{
    (void)state;
    g_P = load("glove-5k-base.npy", NP);
    g_Q = load("glove-5k-queries.npy", NQ);
    snprintf(g_dir, sizeof g_dir, "/tmp/pefa-test-conc-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_path, sizeof g_path, "%s/idx.pefa", g_dir);
    return 0;
}

static int teardown(void **state)
{
    char cmd[200];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    assert_int_equal(system(cmd), 0);
    free(g_P);
    free(g_Q);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_readers_during_replacement),
                                       cmocka_unit_test(test_batches_from_threads)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
