/*
 * pefa-build - embeddings (.npy / .fvecs), ids and qrels in, one index out.
 *
 *   pefa-build -o OUT --passages P.npy [--passage-ids FILE]
 *              [--queries Q.npy [--query-ids FILE] --qrels FILE]
 *              [--lambda F] [-M N] [--ef-construction N] [--threads N] [--seed N]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "pefa.h"
#include "util/cli.h"
#include "util/input.h"

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
           "  --qrels FILE           BEIR TSV query-id<TAB>corpus-id[<TAB>score]; duplicates add up\n"
           "  --skip-missing         skip qrels lines whose ids are unknown (default: error)\n"
           "  --encoder NAME         free-form encoder name recorded in the metadata\n"
           "Parameters:\n"
           "  --lambda F             PEFA-XS mixing weight fixed at build time (default 0.5)\n"
           "  -M N                   HNSW degree (default 32)\n"
           "  --ef-construction N    HNSW build beam (default 500)\n"
           "  --seed N               random seed (default 42)\n"
           "  --threads N            build threads (default: all CPUs)\n"
           "  --vector-type T        f32 (default) or f16 storage\n"
           "  --y-codec C            raw (default) or zstd for the relevance matrix\n"
           "  --no-graphs            exact search only (no HNSW graphs)\n"
           "Output:\n"
           "  -o, --output FILE      the index file (written atomically)\n"
           "  -q, --quiet            no progress or summary on stderr\n"
           "  -h, --help, -V, --version\n");
}

/* xxh3 of a whole file, for provenance */
static int file_digest(const char *path, uint64_t *bytes, uint64_t *digest)
{
    FILE *f = fopen(path, "rb");
    XXH3_state_t *st;
    static unsigned char buf[1 << 20];
    size_t n;
    if (!f) return -1;
    st = XXH3_createState();
    if (!st) {
        fclose(f);
        return -1;
    }
    XXH3_64bits_reset(st);
    *bytes = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        XXH3_64bits_update(st, buf, n);
        *bytes += n;
    }
    *digest = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    n = (size_t)ferror(f);
    fclose(f);
    return n ? -1 : 0;
}

typedef struct {
    const char *keys[32];
    char *vals[32];
    uint32_t n;
} meta_list;

static void meta_add(meta_list *m, const char *key, const char *val)
{
    if (m->n >= 32) return;
    m->keys[m->n] = key;
    m->vals[m->n] = strdup(val);
    if (!m->vals[m->n]) cli_fatal("out of memory");
    m->n++;
}

static void provenance(meta_list *m, const char *what, const char *path)
{
    static char keys[8][3][64];
    static int used;
    uint64_t bytes, digest;
    char v[64];
    if (!path || used >= 8) return;
    if (file_digest(path, &bytes, &digest)) cli_fatal("%s: cannot read", path);
    snprintf(keys[used][0], 64, "input.%s.path", what);
    snprintf(keys[used][1], 64, "input.%s.bytes", what);
    snprintf(keys[used][2], 64, "input.%s.xxh3", what);
    meta_add(m, keys[used][0], path);
    snprintf(v, sizeof v, "%llu", (unsigned long long)bytes);
    meta_add(m, keys[used][1], v);
    snprintf(v, sizeof v, "%016llx", (unsigned long long)digest);
    meta_add(m, keys[used][2], v);
    used++;
}

/* loads a matrix as normalisable f32 rows, naming the file in every error */
static float *load_matrix(const char *path, uint32_t *rows, uint32_t *dim)
{
    tin_matrix m;
    char err[512];
    float *x;
    if (tin_matrix_open(path, &m, err, sizeof err)) cli_fatal("%s", err);
    if (m.rows > UINT32_MAX) cli_fatal("%s: %llu rows (at most 2^32-1)", path, (unsigned long long)m.rows);
    x = (float *)malloc((size_t)m.rows * m.dim * sizeof(float));
    if (!x) cli_fatal("%s: out of memory for %llu x %u floats", path, (unsigned long long)m.rows, m.dim);
    for (uint64_t r = 0; r < m.rows; r++)
        if (tin_matrix_row(&m, r, x + r * m.dim, path, err, sizeof err)) cli_fatal("%s", err);
    *rows = (uint32_t)m.rows;
    *dim = m.dim;
    tin_matrix_close(&m);
    return x;
}

static void load_ids(const char *path, uint64_t want, const char *rows_from, tin_idlist *l)
{
    char err[512];
    if (tin_idlist_read(path, l, err, sizeof err)) cli_fatal("%s", err);
    if (l->n != want)
        cli_fatal("%s: %llu ids, but %s has %llu rows (one id per row, in row order)", path, (unsigned long long)l->n,
                  rows_from, (unsigned long long)want);
}

int main(int argc, char **argv)
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
        {"help", no_argument, 0, 'h'},              {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    const char *out = NULL, *ppath = NULL, *pids_path = NULL, *qpath = NULL, *qids_path = NULL, *qrels_path = NULL,
               *encoder = NULL;
    pefa_build_params bp = PEFA_BUILD_PARAMS_INIT;
    pefa_build_input in;
    pefa_build_stats st;
    int c, quiet = 0, skip_missing = 0;
    tin_idlist pids = {0}, qids = {0};
    tin_qrels qrels = {0};
    pefa_pair *pairs = NULL;
    uint64_t n_pairs = 0, skipped = 0;
    meta_list meta = {{0}, {0}, 0};
    char err[512];
    double t0 = cli_now();

    cli_prog = "pefa-build";
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:M:qhV", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'P': ppath = optarg; break;
        case 'p': pids_path = optarg; break;
        case 'Q': qpath = optarg; break;
        case 'I': qids_path = optarg; break;
        case 'R': qrels_path = optarg; break;
        case 'l': bp.lambda = cli_parse_float("--lambda", optarg, 0, 1); break;
        case 'M': bp.M = (uint32_t)cli_parse_u64("-M", optarg, 2, 2048); break;
        case 'e': bp.ef_construction = (uint32_t)cli_parse_u64("--ef-construction", optarg, 1, 1u << 20); break;
        case 't': bp.threads = (uint32_t)cli_parse_u64("--threads", optarg, 1, 256); break;
        case 's': bp.seed = cli_parse_u64("--seed", optarg, 0, UINT64_MAX); break;
        case 'v':
            if (strcmp(optarg, "f32") == 0) bp.vector_type = PEFA_TYPE_F32;
            else if (strcmp(optarg, "f16") == 0) bp.vector_type = PEFA_TYPE_F16;
            else cli_usage_error("--vector-type: '%s' is not f32 or f16", optarg);
            break;
        case 'y':
            if (strcmp(optarg, "raw") == 0) bp.y_codec = PEFA_CODEC_RAW;
            else if (strcmp(optarg, "zstd") == 0) bp.y_codec = PEFA_CODEC_ZSTD;
            else cli_usage_error("--y-codec: '%s' is not raw or zstd", optarg);
            break;
        case 'G': bp.no_graphs = 1; break;
        case 'S': skip_missing = 1; break;
        case 'E': encoder = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': usage(); return 0;
        case 'V': printf("pefa-build (pefa %s, format %d.%d)\n", pefa_version_string(), PEFA_FORMAT_MAJOR, PEFA_FORMAT_MINOR); return 0;
        case ':': cli_usage_error("option '%s' needs an argument", argv[optind - 1]);
        default: cli_usage_error("unrecognized option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!out) cli_usage_error("missing -o OUT");
    if (!ppath) cli_usage_error("missing --passages FILE");
    if ((qpath != NULL) != (qrels_path != NULL)) cli_usage_error("--queries and --qrels go together");
    if (qids_path && !qpath) cli_usage_error("--query-ids needs --queries");
    {
        /* fail before the long stages if the output cannot be written */
        struct stat sb;
        char probe[4200];
        int fd;
        if (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode)) cli_fatal("%s: is a directory", out);
        if (strlen(out) > 4000) cli_fatal("%s: path too long", out);
        snprintf(probe, sizeof probe, "%s.tmp.XXXXXX", out);
        if ((fd = mkstemp(probe)) < 0) cli_fatal("%s: cannot create files there: %s", out, strerror(errno));
        close(fd);
        unlink(probe);
    }

    memset(&in, 0, sizeof in);
    if (!quiet) fprintf(stderr, "pefa-build: reading %s\n", ppath);
    in.passages = load_matrix(ppath, &in.n_passages, &in.dim);
    if (pids_path) load_ids(pids_path, in.n_passages, ppath, &pids);
    else if (tin_idlist_rows(in.n_passages, &pids)) cli_fatal("out of memory");
    if (qpath) {
        uint32_t qdim;
        tin_idhash *hp, *hq;
        if (!quiet) fprintf(stderr, "pefa-build: reading %s\n", qpath);
        in.queries = load_matrix(qpath, &in.n_queries, &qdim);
        if (qdim != in.dim)
            cli_fatal("%s: dimension %u does not match %s (%u)", qpath, qdim, ppath, in.dim);
        if (qids_path) load_ids(qids_path, in.n_queries, qpath, &qids);
        else if (tin_idlist_rows(in.n_queries, &qids)) cli_fatal("out of memory");
        if (tin_qrels_read(qrels_path, &qrels, err, sizeof err)) cli_fatal("%s", err);
        if (qrels.n == 0) cli_fatal("%s: no relevance pairs", qrels_path);
        hp = tin_idhash_new(&pids);
        hq = tin_idhash_new(&qids);
        pairs = (pefa_pair *)malloc(qrels.n * sizeof *pairs);
        if (!hp || !hq || !pairs) cli_fatal("out of memory");
        for (uint64_t i = 0; i < qrels.n; i++) {
            int64_t qr = tin_idhash_get(hq, qrels.rows[i].qid), pr = tin_idhash_get(hp, qrels.rows[i].pid);
            if (qr < 0 || pr < 0) {
                if (!skip_missing)
                    cli_fatal("%s:%llu: %s id '%s' not found in %s (use --skip-missing to skip such lines)",
                              qrels_path, (unsigned long long)qrels.rows[i].line, qr < 0 ? "query" : "passage",
                              qr < 0 ? qrels.rows[i].qid : qrels.rows[i].pid,
                              qr < 0 ? (qids_path ? qids_path : "the query rows") : (pids_path ? pids_path : "the passage rows"));
                skipped++;
                continue;
            }
            pairs[n_pairs].q = (uint32_t)qr;
            pairs[n_pairs].p = (uint32_t)pr;
            pairs[n_pairs].y = qrels.rows[i].score;
            n_pairs++;
        }
        if (skipped) cli_warn("%s: skipped %llu of %llu lines with unknown ids", qrels_path, (unsigned long long)skipped,
                              (unsigned long long)qrels.n);
        if (n_pairs == 0) cli_fatal("%s: no relevance pair left after skipping unknown ids", qrels_path);
        tin_idhash_free(hp);
        tin_idhash_free(hq);
    }
    in.pairs = pairs;
    in.n_pairs = n_pairs;
    in.passage_ids = pids_path ? (const char *const *)pids.ids : NULL;
    in.query_ids = qids_path ? (const char *const *)qids.ids : NULL;
    /* an id map is written when either side has ids; the other side then
     * gets row numbers in it (pefa_build does that) */
    provenance(&meta, "passages", ppath);
    provenance(&meta, "passage_ids", pids_path);
    provenance(&meta, "queries", qpath);
    provenance(&meta, "query_ids", qids_path);
    provenance(&meta, "qrels", qrels_path);
    if (encoder) meta_add(&meta, "encoder", encoder);
    if (skipped) {
        char v[32];
        snprintf(v, sizeof v, "%llu", (unsigned long long)skipped);
        meta_add(&meta, "input.qrels.skipped_lines", v);
    }
    in.meta_keys = meta.keys;
    in.meta_values = (const char *const *)meta.vals;
    in.n_meta = meta.n;
    bp.progress = cli_progress;
    bp.progress_ctx = quiet ? (void *)&quiet : NULL;

    if (pefa_build(out, &in, &bp, &st) != 0) cli_fatal("%s", pefa_last_error_detail());

    if (st.zero_passages) cli_warn("%s: %llu all-zero rows (they score 0 against every query)", ppath, (unsigned long long)st.zero_passages);
    if (st.zero_queries) cli_warn("%s: %llu all-zero rows", qpath, (unsigned long long)st.zero_queries);
    if (!quiet) {
        char uuid[40];
        const uint8_t *u = st.uuid;
        snprintf(uuid, sizeof uuid, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
        fprintf(stderr,
                "pefa-build: wrote %s (%.1f MB, uuid %s)%s\n"
                "  passages %u, training queries %u, dim %u, Y pairs %llu (distinct %llu)\n"
                "  passages with no training query (z = 0): %llu\n"
                "  seconds: read %.2f, normalise %.2f, Y %.2f, xs %.2f, graphs %.2f, write %.2f, total %.2f\n",
                out, (double)st.file_bytes / 1e6, uuid, st.idmap_bytes ? " + id map" : "", in.n_passages,
                in.n_queries, in.dim, (unsigned long long)n_pairs, (unsigned long long)st.nnz,
                (unsigned long long)st.passages_without_queries, cli_now() - t0 - st.seconds_total,
                st.seconds_normalise, st.seconds_y, st.seconds_xs, st.seconds_graphs, st.seconds_write,
                cli_now() - t0);
    }
    for (uint32_t i = 0; i < meta.n; i++) free(meta.vals[i]);
    free(in.passages);
    free(in.queries);
    free(pairs);
    tin_idlist_free(&pids);
    tin_idlist_free(&qids);
    tin_qrels_free(&qrels);
    return 0;
}
