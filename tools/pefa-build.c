/*
 * pefa-build - embeddings (.npy / .fvecs), ids and qrels in, one index out.
 *
 *   pefa-build -o OUT --passages P.npy [--passage-ids FILE]
 *              [--queries Q.npy [--query-ids FILE] --qrels FILE]
 *              [--lambda F] [-M N] [--ef-construction N] [--threads N] [--seed N]
 *
 * The embedding files are mapped, not copied: the library reads their rows
 * and keeps only its own normalised copy.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pefa.h"
#include "util/cli.h"
#include "util/input.h"

#define MAX_META 32

static void usage(void)
{
    printf("Usage: pefa-build -o OUT --passages P.npy [options]\n"
           "\n"
           "Builds a pefa index file (and its id map OUT.<uuid>.ids) from embeddings and\n"
           "relevance logs. Without training queries the file is a plain ERM index.\n"
           "\n"
           "Inputs:\n"
           "  --passages FILE        passage embeddings, .npy (float32/float16, 2-D) or .fvecs\n"
           "  --passage-ids FILE     one id per line, aligned with rows (default: row numbers)\n"
           "  --queries FILE         training-query embeddings (.npy / .fvecs)\n"
           "  --query-ids FILE       one id per line (default: row numbers)\n"
           "  --qrels FILE           BEIR TSV query-id<TAB>corpus-id[<TAB>score]; duplicates add up;\n"
           "                         pairs whose total is <= 0 are left out (counted)\n"
           "  --skip-missing         skip qrels lines whose ids are unknown (default: error)\n"
           "  --encoder NAME         free-form encoder name recorded in the metadata\n"
           "Parameters:\n"
           "  --metric M             cosine (default): rows and queries are L2-normalised;\n"
           "                         ip: raw inner product, for encoders whose norms carry\n"
           "                         signal (rows stored as given, queries not normalised)\n"
           "  --lambda F             PEFA-XS mixing weight fixed at build time (default 0.5)\n"
           "  -M N                   HNSW degree (default 32)\n"
           "  --ef-construction N    HNSW build beam (default 500)\n"
           "  --seed N               random seed (default 42)\n"
           "  --threads N            build threads (default: all CPUs)\n"
           "  --vector-type T        f32 (default), f16, or i8: f16 rows plus int8 codes that the\n"
           "                         graphs are searched on (results re-scored from the f16 rows)\n"
           "  --y-codec C            raw (default) or zstd for the relevance matrix\n"
           "  --no-graphs            exact search only (no HNSW graphs)\n"
           "  --shard I/N            build shard I (0-based) of N: passages [n*I/N, n*(I+1)/N); shard 0\n"
           "                         also holds the training queries. Same inputs and parameters for\n"
           "                         every shard, then: pefa-shardset -o SET.pefaset FILE_0 .. FILE_N-1\n"
           "Tuning (needs training queries):\n"
           "  --tune                 choose mode, lambda and k by leave-one-out over the training\n"
           "                         queries; pefa-query then uses that setting by default\n"
           "  --tune-queries N       training queries to tune on (default 2000)\n"
           "  --tune-metric M        recall@100 (default), recall@10 or ndcg@10\n"
           "  --tune-label-check C   on (default): choose ERM when ERM finds the tuning queries'\n"
           "                         own relevant passages no better than the other tuning\n"
           "                         queries' (training labels unrelated to the text); off\n"
           "Output:\n"
           "  -o, --output FILE      the index file (written atomically); an existing file there\n"
           "                         is replaced only if it is a pefa index (or with --force),\n"
           "                         never if it is one of the inputs, and never a directory,\n"
           "                         device, FIFO or socket\n"
           "  --force                replace a regular file at OUT that is not a pefa index\n"
           "  -q, --quiet            no progress or summary on stderr\n"
           "  -h, --help, -V, --version\n");
}

typedef struct {
    const char *out, *ppath, *pids_path, *qpath, *qids_path, *qrels_path, *encoder;
    int quiet, skip_missing, force;
    pefa_build_params bp;
} build_opts;

typedef struct {
    tin_matrix P, Q;
    tin_idlist pids, qids;
    tin_qrels qrels;
    pefa_pair *pairs;
    uint64_t n_pairs, skipped, nonpositive;
    const char *keys[MAX_META];
    char *vals[MAX_META];
    uint32_t n_meta;
} build_inputs;

static void parse_vector_type(const char *s, pefa_build_params *bp)
{
    if (strcmp(s, "f32") == 0) bp->vector_type = PEFA_TYPE_F32;
    else if (strcmp(s, "f16") == 0) bp->vector_type = PEFA_TYPE_F16;
    else if (strcmp(s, "i8") == 0) bp->vector_type = PEFA_TYPE_I8;
    else cli_usage_error("--vector-type: '%s' is not f32, f16 or i8", s);
}

static void parse_metric(const char *s, pefa_build_params *bp)
{
    if (strcmp(s, "cosine") == 0) bp->similarity = PEFA_SIMILARITY_COSINE;
    else if (strcmp(s, "ip") == 0) bp->similarity = PEFA_SIMILARITY_IP;
    else cli_usage_error("--metric: '%s' is not cosine or ip", s);
}

static void parse_y_codec(const char *s, pefa_build_params *bp)
{
    if (strcmp(s, "raw") == 0) bp->y_codec = PEFA_CODEC_RAW;
    else if (strcmp(s, "zstd") == 0) bp->y_codec = PEFA_CODEC_ZSTD;
    else cli_usage_error("--y-codec: '%s' is not raw or zstd", s);
}

/* "I/N": shard I of N */
static void parse_shard(const char *s, pefa_build_params *bp)
{
    const char *slash = strchr(s, '/');
    char first[32];
    if (!slash || (size_t)(slash - s) >= sizeof first) cli_usage_error("--shard: '%s' is not I/N (e.g. 0/4)", s);
    memcpy(first, s, (size_t)(slash - s));
    first[slash - s] = 0;
    bp->shard_count = (uint32_t)cli_parse_u64("--shard (N)", slash + 1, 1, 4096);
    bp->shard_index = (uint32_t)cli_parse_u64("--shard (I)", first, 0, bp->shard_count - 1);
}

static void parse_args(int argc, char **argv, build_opts *o)
{
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'},      {"passages", required_argument, 0, 'P'},
        {"passage-ids", required_argument, 0, 'p'}, {"queries", required_argument, 0, 'Q'},
        {"query-ids", required_argument, 0, 'I'},   {"qrels", required_argument, 0, 'R'},
        {"lambda", required_argument, 0, 'l'},      {"ef-construction", required_argument, 0, 'e'},
        {"threads", required_argument, 0, 't'},     {"seed", required_argument, 0, 's'},
        {"vector-type", required_argument, 0, 'v'}, {"y-codec", required_argument, 0, 'y'},
        {"no-graphs", no_argument, 0, 'G'},         {"skip-missing", no_argument, 0, 'S'},
        {"encoder", required_argument, 0, 'E'},     {"quiet", no_argument, 0, 'q'},
        {"tune", no_argument, 0, 'T'},              {"tune-queries", required_argument, 0, 'n'},
        {"tune-metric", required_argument, 0, 'm'}, {"shard", required_argument, 0, 'H'},
        {"help", no_argument, 0, 'h'},              {"version", no_argument, 0, 'V'},
        {"force", no_argument, 0, 'F'},             {"metric", required_argument, 0, 'K'},
        {"tune-label-check", required_argument, 0, 'L'},
        {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:M:qhV", opts, NULL)) != -1) {
        switch (c) {
        case 'o': o->out = optarg; break;
        case 'P': o->ppath = optarg; break;
        case 'p': o->pids_path = optarg; break;
        case 'Q': o->qpath = optarg; break;
        case 'I': o->qids_path = optarg; break;
        case 'R': o->qrels_path = optarg; break;
        case 'l':
            o->bp.lambda = cli_parse_float("--lambda", optarg, 0, 1);
            o->bp.set |= PEFA_SET_LAMBDA;
            break;
        case 'M': o->bp.M = (uint32_t)cli_parse_u64("-M", optarg, 2, PEFA_MAX_M); break;
        case 'e': o->bp.ef_construction = (uint32_t)cli_parse_u64("--ef-construction", optarg, 1, 1u << 20); break;
        case 't': o->bp.threads = (uint32_t)cli_parse_u64("--threads", optarg, 1, PEFA_MAX_THREADS); break;
        case 's':
            o->bp.seed = cli_parse_u64("--seed", optarg, 0, UINT64_MAX);
            o->bp.set |= PEFA_SET_SEED;
            break;
        case 'v': parse_vector_type(optarg, &o->bp); break;
        case 'y': parse_y_codec(optarg, &o->bp); break;
        case 'K': parse_metric(optarg, &o->bp); break;
        case 'G': o->bp.no_graphs = 1; break;
        case 'T': o->bp.tune = 1; break;
        case 'H': parse_shard(optarg, &o->bp); break;
        case 'n': o->bp.tune_queries = (uint32_t)cli_parse_u64("--tune-queries", optarg, 1, UINT32_MAX); break;
        case 'm':
            if ((o->bp.tune_metric = pefa_metric_parse(optarg)) < 0)
                cli_usage_error("--tune-metric: '%s' is not recall@100, recall@10 or ndcg@10", optarg);
            break;
        case 'L':
            o->bp.tune_label_check = cli_parse_on_off("--tune-label-check", optarg) ? PEFA_LABEL_CHECK_ON
                                                                                    : PEFA_LABEL_CHECK_OFF;
            break;
        case 'S': o->skip_missing = 1; break;
        case 'E': o->encoder = optarg; break;
        case 'q': o->quiet = 1; break;
        case 'F': o->force = 1; break;
        case 'h': usage(); exit(0);
        case 'V': cli_version(); exit(0);
        case ':': cli_usage_error("option '%s' needs an argument", argv[optind - 1]);
        default: cli_usage_error("unrecognized option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->out) cli_usage_error("missing -o OUT");
    if (!*o->out) cli_usage_error("-o: the output path is empty");
    if (!o->ppath) cli_usage_error("missing --passages FILE");
    if ((o->qpath != NULL) != (o->qrels_path != NULL)) cli_usage_error("--queries and --qrels go together");
    if (o->qids_path && !o->qpath) cli_usage_error("--query-ids needs --queries");
    if ((o->bp.tune || o->bp.tune_queries || o->bp.tune_metric || o->bp.tune_label_check) && !o->qpath)
        cli_usage_error("--tune needs training queries: give --queries FILE and --qrels FILE");
    if ((o->bp.tune_queries || o->bp.tune_metric || o->bp.tune_label_check) && !o->bp.tune)
        cli_usage_error("--tune-queries, --tune-metric and --tune-label-check go with --tune");
    if (o->bp.tune && o->bp.shard_count > 1)
        cli_usage_error("--tune with --shard: a shard is not tuned on its own, and tuning a set is not supported yet");
}

/* -o naming one of the inputs (same device and inode, whatever the spelling)
 * would destroy it: a usage error */
static void check_not_input(const build_opts *o)
{
    const char *const what[] = {"--passages", "--passage-ids", "--queries", "--query-ids", "--qrels"};
    const char *const paths[] = {o->ppath, o->pids_path, o->qpath, o->qids_path, o->qrels_path};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) cli_check_not_input(o->out, what[i], &paths[i], 1);
}

/* fail before the long stages if the output cannot be written, or names a
 * file that must not be replaced (an input; the library's rule,
 * pefa_output_check: never a directory, device, FIFO or socket, and a file
 * that is not an index only with --force) */
static void check_output(const build_opts *o)
{
    const char *out = o->out;
    char *probe;
    int fd, rc;
    check_not_input(o);
    if ((rc = pefa_output_check(out, o->force)) != 0)
        cli_usage_error("-o %s%s", pefa_last_error_detail(), rc == PEFA_ERR_NOT_PEFA ? " (--force to replace it)" : "");
    if (!(probe = (char *)malloc(strlen(out) + 16))) cli_fatal("out of memory");
    snprintf(probe, strlen(out) + 16, "%s.tmp.XXXXXX", out);
    if ((fd = mkstemp(probe)) < 0) cli_fatal("%s: cannot create files there: %s", out, strerror(errno));
    close(fd);
    unlink(probe);
    free(probe);
}

static void open_matrix(const char *path, tin_matrix *m)
{
    char err[512];
    if (tin_matrix_open(path, m, err, sizeof err)) cli_fatal("%s", err);
    if (m->rows > UINT32_MAX) cli_fatal("%s: %llu rows (at most 2^32-1)", path, (unsigned long long)m->rows);
}

static void load_ids(const char *path, uint64_t want, const char *rows_from, tin_idlist *l)
{
    char err[512];
    if (!path) {
        if (tin_idlist_rows(want, l)) cli_fatal("out of memory");
        return;
    }
    if (tin_idlist_read(path, l, err, sizeof err)) cli_fatal("%s", err);
    if (l->n != want)
        cli_fatal("%s: %llu ids, but %s has %llu rows (one id per row, in row order)", path, (unsigned long long)l->n,
                  rows_from, (unsigned long long)want);
}

/* the library's qrels rule (pefa_pairs_merge, as in pefa-query's evaluation):
 * a pair's relevance is the sum of its lines' scores, and only pairs whose
 * sum is > 0 are relevant; the others are left out of Y and counted */
static void merge_pairs(const build_opts *o, build_inputs *b)
{
    if (pefa_pairs_merge(b->pairs, &b->n_pairs, &b->nonpositive))
        cli_fatal("%s: %s", o->qrels_path, pefa_last_error_detail());
    if (b->nonpositive)
        cli_warn("%s: %llu (query, passage) pairs with a total score <= 0 left out (not relevant: they add nothing "
                 "to Y)", o->qrels_path, (unsigned long long)b->nonpositive);
    if (b->n_pairs == 0) cli_fatal("%s: no relevance pair with a score > 0", o->qrels_path);
}

/* qrels lines -> (query row, passage row, score) pairs through the id lists */
static void map_pairs(const build_opts *o, build_inputs *b)
{
    tin_idhash *hp = tin_idhash_new(&b->pids), *hq = tin_idhash_new(&b->qids);
    b->pairs = (pefa_pair *)malloc((b->qrels.n ? b->qrels.n : 1) * sizeof *b->pairs);
    if (!hp || !hq || !b->pairs) cli_fatal("out of memory");
    for (uint64_t i = 0; i < b->qrels.n; i++) {
        const tin_qrel *r = &b->qrels.rows[i];
        int64_t qr = tin_idhash_get(hq, r->qid), pr = tin_idhash_get(hp, r->pid);
        if (qr < 0 || pr < 0) {
            if (!o->skip_missing)
                cli_fatal("%s:%llu: %s id '%s' not found in %s (use --skip-missing to skip such lines)", o->qrels_path,
                          (unsigned long long)r->line, qr < 0 ? "query" : "passage", qr < 0 ? r->qid : r->pid,
                          qr < 0 ? (o->qids_path ? o->qids_path : "the query rows")
                                 : (o->pids_path ? o->pids_path : "the passage rows"));
            b->skipped++;
            continue;
        }
        b->pairs[b->n_pairs++] = (pefa_pair){(uint32_t)qr, (uint32_t)pr, r->score};
    }
    if (b->skipped)
        cli_warn("%s: skipped %llu of %llu lines with unknown ids", o->qrels_path, (unsigned long long)b->skipped,
                 (unsigned long long)b->qrels.n);
    if (b->n_pairs == 0) cli_fatal("%s: no relevance pair left after skipping unknown ids", o->qrels_path);
    tin_idhash_free(hp);
    tin_idhash_free(hq);
    merge_pairs(o, b);
}

static void load_inputs(const build_opts *o, build_inputs *b)
{
    char err[512];
    if (!o->quiet) fprintf(stderr, "pefa-build: reading %s\n", o->ppath);
    open_matrix(o->ppath, &b->P);
    load_ids(o->pids_path, b->P.rows, o->ppath, &b->pids);
    if (!o->qpath) return;
    if (!o->quiet) fprintf(stderr, "pefa-build: reading %s\n", o->qpath);
    open_matrix(o->qpath, &b->Q);
    if (b->Q.dim != b->P.dim) cli_fatal("%s: dimension %u does not match %s (%u)", o->qpath, b->Q.dim, o->ppath, b->P.dim);
    load_ids(o->qids_path, b->Q.rows, o->qpath, &b->qids);
    if (tin_qrels_read(o->qrels_path, &b->qrels, err, sizeof err)) cli_fatal("%s", err);
    if (b->qrels.n == 0) cli_fatal("%s: no relevance pairs", o->qrels_path);
    map_pairs(o, b);
}

static void meta_add(build_inputs *b, const char *key, const char *val)
{
    if (b->n_meta >= MAX_META) cli_fatal("too many metadata entries");
    b->keys[b->n_meta] = key;
    if (!(b->vals[b->n_meta] = strdup(val))) cli_fatal("out of memory");
    b->n_meta++;
}

/* input.<what>.path / .bytes / .xxh3 for one input file */
static void provenance(build_inputs *b, const char *what, const char *path)
{
    static char keys[8][3][64];
    static int used;
    uint64_t bytes, digest;
    char v[64];
    if (!path || used >= 8) return;
    if (pefa_file_digest(path, &bytes, &digest)) cli_fatal("%s", pefa_last_error_detail());
    snprintf(keys[used][0], 64, "input.%s.path", what);
    snprintf(keys[used][1], 64, "input.%s.bytes", what);
    snprintf(keys[used][2], 64, "input.%s.xxh3", what);
    meta_add(b, keys[used][0], path);
    snprintf(v, sizeof v, "%llu", (unsigned long long)bytes);
    meta_add(b, keys[used][1], v);
    snprintf(v, sizeof v, "%016llx", (unsigned long long)digest);
    meta_add(b, keys[used][2], v);
    used++;
}

static void add_meta(const build_opts *o, build_inputs *b)
{
    provenance(b, "passages", o->ppath);
    provenance(b, "passage_ids", o->pids_path);
    provenance(b, "queries", o->qpath);
    provenance(b, "query_ids", o->qids_path);
    provenance(b, "qrels", o->qrels_path);
    if (o->encoder) meta_add(b, "encoder", o->encoder);
    if (b->skipped) {
        char v[32];
        snprintf(v, sizeof v, "%llu", (unsigned long long)b->skipped);
        meta_add(b, "input.qrels.skipped_lines", v);
    }
    if (b->nonpositive) {
        char v[32];
        snprintf(v, sizeof v, "%llu", (unsigned long long)b->nonpositive);
        meta_add(b, "input.qrels.nonpositive_pairs", v);
    }
}

/* the library's input: the mapped rows as they are, ids only when given
 * (an id map is written when either side has ids; the other side then gets
 * row numbers in it) */
static void fill_input(const build_opts *o, const build_inputs *b, pefa_build_input *in)
{
    in->passages = b->P.data;
    in->passages_type = (uint8_t)b->P.elem;
    in->passages_stride = b->P.row_stride;
    in->n_passages = (uint32_t)b->P.rows;
    in->dim = b->P.dim;
    in->passages_name = o->ppath;
    if (o->qpath) {
        in->queries = b->Q.data;
        in->queries_type = (uint8_t)b->Q.elem;
        in->queries_stride = b->Q.row_stride;
        in->n_queries = (uint32_t)b->Q.rows;
        in->queries_name = o->qpath;
    }
    in->pairs = b->pairs;
    in->n_pairs = b->n_pairs;
    in->passage_ids = o->pids_path ? (const char *const *)b->pids.ids : NULL;
    in->query_ids = o->qids_path ? (const char *const *)b->qids.ids : NULL;
    in->meta_keys = b->keys;
    in->meta_values = (const char *const *)b->vals;
    in->n_meta = b->n_meta;
}

/* the tuned setting, as the index records it */
static void print_tuned(const char *path)
{
    static const char *const keys[] = {"tune.mode",         "tune.lambda",      "tune.knn",        "tune.metric",
                                       "tune.queries",      "tune.score",       "tune.score_erm",  "tune.delta_lo",
                                       "tune.label_check",  "tune.label_passed", "tune.label_own", "tune.label_other",
                                       "tune.label_delta_lo"};
    const char *v[13];
    pefa_index *ix;
    if (pefa_index_open(path, &ix)) cli_fatal("%s", pefa_last_error_detail());
    for (int i = 0; i < 13; i++)
        if (pefa_index_meta_get(ix, keys[i], &v[i])) v[i] = "-";
    fprintf(stderr,
            "  tuned: %s lambda %s%s%s (leave-one-out %s on %s training queries: %s, ERM %s, "
            "bootstrap 5%% gain %s)\n",
            v[0], v[1], strcmp(v[0], "xl") == 0 ? " k " : "", strcmp(v[0], "xl") == 0 ? v[2] : "", v[3], v[4], v[5],
            v[6], v[7]);
    fprintf(stderr, "  label check (%s): %s (ERM recall@100 on own labels %s, on other queries' labels %s, 5%% %s)\n",
            v[8], strcmp(v[9], "1") == 0 ? "passed" : "FAILED", v[10], v[11], v[12]);
    pefa_index_close(ix);
}

static void print_summary(const build_opts *o, const build_inputs *b, const pefa_build_stats *st, double t0)
{
    char uuid[40];
    const uint8_t *u = st->uuid;
    if (st->zero_passages) cli_warn("%s: %llu all-zero rows (they score 0 against every query)", o->ppath,
                                    (unsigned long long)st->zero_passages);
    if (st->zero_queries) cli_warn("%s: %llu all-zero rows", o->qpath, (unsigned long long)st->zero_queries);
    if (o->quiet) return;
    snprintf(uuid, sizeof uuid, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
             u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
    fprintf(stderr,
            "pefa-build: wrote %s (%.1f MB, uuid %s)%s\n"
            "  passages %llu, training queries %llu, dim %u, Y pairs %llu (%llu left out: score <= 0)\n"
            "  passages with no training query (z = 0): %llu\n"
            "  seconds: read %.2f, normalise %.2f, Y %.2f, xs %.2f, tune %.2f, graphs %.2f, write %.2f, total %.2f\n",
            o->out, (double)st->file_bytes / 1e6, uuid, st->idmap_bytes ? " + id map" : "",
            (unsigned long long)b->P.rows, (unsigned long long)b->Q.rows, b->P.dim, (unsigned long long)st->nnz,
            (unsigned long long)b->nonpositive, (unsigned long long)st->passages_without_queries,
            cli_now() - t0 - st->seconds_total, st->seconds_normalise, st->seconds_y, st->seconds_xs,
            st->seconds_tune, st->seconds_graphs, st->seconds_write, cli_now() - t0);
    if (o->bp.tune) print_tuned(o->out);
}

static void free_inputs(build_inputs *b)
{
    for (uint32_t i = 0; i < b->n_meta; i++) free(b->vals[i]);
    tin_matrix_close(&b->P);
    tin_matrix_close(&b->Q);
    free(b->pairs);
    tin_idlist_free(&b->pids);
    tin_idlist_free(&b->qids);
    tin_qrels_free(&b->qrels);
}

int main(int argc, char **argv)
{
    build_opts o;
    build_inputs b;
    pefa_build_input in = PEFA_BUILD_INPUT_INIT;
    pefa_build_stats st = PEFA_BUILD_STATS_INIT;
    double t0 = cli_now();
    cli_prog = "pefa-build";
    memset(&o, 0, sizeof o);
    memset(&b, 0, sizeof b);
    o.bp.size = sizeof o.bp;
    parse_args(argc, argv, &o);
    check_output(&o);
    load_inputs(&o, &b);
    add_meta(&o, &b);
    fill_input(&o, &b, &in);
    o.bp.progress = cli_progress;
    o.bp.progress_ctx = o.quiet ? (void *)&o.quiet : NULL;
    if (pefa_build(o.out, &in, &o.bp, &st) != 0) cli_fatal("%s", pefa_last_error_detail());
    print_summary(&o, &b, &st, t0);
    free_inputs(&b);
    return 0;
}
