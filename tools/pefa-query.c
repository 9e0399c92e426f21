/*
 * pefa-query - top-k passages for a batch of test queries, from a mapped
 * index, by ERM, PEFA-XS or PEFA-XL; with external ids, scores, per-query
 * latency, and recall / nDCG against qrels.
 *
 * Stages: arguments -> index and id map -> test queries -> qrels (checked
 * before any query runs) -> search on N threads -> ids -> output -> report.
 */
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pefa.h"
#include "util/cli.h"
#include "util/eval.h"
#include "util/input.h"

static void usage(void)
{
    printf("Usage: pefa-query INDEX --queries T.npy [options]\n"
           "\n"
           "Answers test queries from a pefa index, or from a shard set's manifest\n"
           "(pefa-shardset): one line per hit on stdout.\n"
           "\n"
           "  --queries FILE        test-query embeddings (.npy float32/float16, or .fvecs)\n"
           "  --query-ids FILE      one id per line (default: row numbers)\n"
           "  --mode M              erm | xs | xl (default: the index's tuned setting from\n"
           "                        pefa-build --tune, else erm)\n"
           "  -k N                  hits per query (default 10)\n"
           "  --ef N                HNSW beam; the beam used is max(ef, wanted) (default 300)\n"
           "  --lambda F            XL: weight of <q,p> (default 0.1); XS: re-score with another\n"
           "                        lambda than the build's (needs the stored z vectors)\n"
           "  --knn N               XL: training-query neighbours (default 32)\n"
           "  --topk-p N            XL: ERM candidates (default 500, at least k)\n"
           "  --knn-norm v0|v1      XL: w_i = <q,q_i>/k (v0, default) or <q,q_i> (v1)\n"
           "  --xl-scoring S        exact (default): every candidate gets its true <q,p>;\n"
           "                        sparse-add: the authors' scripts (kNN-only candidates get 0)\n"
           "  --exact               brute force over the mapped sections (ground truth)\n"
           "  --explain             XL: for each hit, the training queries that contributed\n"
           "  --threads N           query threads (default 1)\n"
           "  --format F            tsv (default): query_id rank passage_id score;\n"
           "                        jsonl; trec (for trec_eval)\n"
           "  --qrels FILE          BEIR TSV: print recall and nDCG on stderr: k >= 100:\n"
           "                        recall@10 @20 @100 ndcg@10; below: the cutoffs 10, 20\n"
           "                        under k, recall@k and ndcg@min(10,k)\n"
           "  --no-output           do not print hits (evaluation or timing only)\n"
           "  --trust-idmap         skip hashing the id map at open (after pefa-dump --verify)\n"
           "  -h, --help, -V, --version\n");
}

enum { FMT_TSV, FMT_JSONL, FMT_TREC };

typedef struct {
    const char *index_path, *tq_path, *qids_path, *qrels_path, *mode_name;
    const char *ef_given; /* --ef given */
    int format, explain, no_output;
    unsigned idmap_flags;
    uint32_t threads;
    pefa_query_params qp;
} query_opts;

typedef struct {
    pefa_set *set;         /* an index, or a shard set's manifest */
    pefa_model_info mi;
    pefa_query_params rp;  /* resolved: rp.k hits per query */
    float *Q;              /* test queries as f32 rows */
    uint32_t nq;
    tin_idlist qids;
    tin_qrels qrels;       /* kept: ev points into it */
    ev_qrels *ev;
    pefa_hit *hits;        /* nq * k */
    uint32_t *nhits;
    double *latency;       /* seconds per query */
    double seconds;        /* wall time of the search stage */
    char **hit_ids;        /* nq * k, into id_buf */
    char *id_buf;
} query_run;

static int parse_choice(const char *opt, const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    cli_usage_error("%s: '%s' is not one of %s%s%s%s%s", opt, s, names[0], n > 1 ? ", " : "", n > 1 ? names[1] : "",
                    n > 2 ? ", " : "", n > 2 ? names[2] : "");
}

static void parse_option(int c, query_opts *o)
{
    static const char *const modes[] = {"erm", "xs", "xl"}, *const norms[] = {"v0", "v1"},
                             *const scorings[] = {"exact", "sparse-add"}, *const formats[] = {"tsv", "jsonl", "trec"};
    pefa_query_params *qp = &o->qp;
    switch (c) {
    case 'Q': o->tq_path = optarg; break;
    case 'I': o->qids_path = optarg; break;
    case 'm':
        qp->mode = PEFA_MODE_ERM + parse_choice("--mode", optarg, modes, 3);
        o->mode_name = optarg;
        break;
    case 'k': qp->k = (uint32_t)cli_parse_u64("-k", optarg, 1, PEFA_MAX_K); break;
    case 'e':
        qp->ef = (uint32_t)cli_parse_u64("--ef", optarg, 1, CLI_MAX_EF);
        o->ef_given = "--ef";
        break;
    case 'l':
        qp->lambda = cli_parse_float("--lambda", optarg, 0, 1);
        qp->set |= PEFA_SET_LAMBDA;
        break;
    case 'n':
        qp->knn = (uint32_t)cli_parse_u64("--knn", optarg, 1, CLI_MAX_KNN);
        break;
    case 'p':
        qp->topk_p = (uint32_t)cli_parse_u64("--topk-p", optarg, 1, CLI_MAX_TOPK_P);
        break;
    case 'N':
        qp->knn_norm = parse_choice("--knn-norm", optarg, norms, 2);
        qp->set |= PEFA_SET_KNN_NORM;
        break;
    case 'x':
        qp->xl_scoring = parse_choice("--xl-scoring", optarg, scorings, 2);
        qp->set |= PEFA_SET_XL_SCORING;
        break;
    case 'X': qp->exact = 1; break;
    case 'E': o->explain = 1; break;
    case 't': o->threads = (uint32_t)cli_parse_u64("--threads", optarg, 1, PEFA_MAX_THREADS); break;
    case 'f': o->format = parse_choice("--format", optarg, formats, 3); break;
    case 'R': o->qrels_path = optarg; break;
    case 'O': o->no_output = 1; break;
    case 'T': o->idmap_flags |= PEFA_IDMAP_TRUSTED; break;
    }
}

static void parse_args(int argc, char **argv, query_opts *o)
{
    static const struct option opts[] = {
        {"queries", required_argument, 0, 'Q'},    {"query-ids", required_argument, 0, 'I'},
        {"mode", required_argument, 0, 'm'},       {"ef", required_argument, 0, 'e'},
        {"lambda", required_argument, 0, 'l'},     {"knn", required_argument, 0, 'n'},
        {"topk-p", required_argument, 0, 'p'},     {"knn-norm", required_argument, 0, 'N'},
        {"xl-scoring", required_argument, 0, 'x'}, {"exact", no_argument, 0, 'X'},
        {"explain", no_argument, 0, 'E'},          {"threads", required_argument, 0, 't'},
        {"format", required_argument, 0, 'f'},     {"qrels", required_argument, 0, 'R'},
        {"no-output", no_argument, 0, 'O'},        {"trust-idmap", no_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},             {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:hV", opts, NULL)) != -1) {
        if (c == 'h') usage(), exit(0);
        if (c == 'V') cli_version(), exit(0);
        if (c == ':') cli_usage_error("option '%s' needs an argument", argv[optind - 1]);
        if (c == '?') cli_usage_error("unrecognized option '%s'", argv[optind - 1]);
        parse_option(c, o);
    }
    if (optind != argc - 1) cli_usage_error(optind >= argc ? "missing INDEX" : "more than one INDEX given");
    o->index_path = argv[optind];
    if (!o->tq_path) cli_usage_error("missing --queries FILE");
    if (o->explain && o->qp.mode != PEFA_MODE_XL && o->qp.mode != PEFA_MODE_DEFAULT)
        cli_usage_error("--explain works with --mode xl");
    if (o->explain && o->format == FMT_TREC) cli_usage_error("--explain cannot be written in trec format");
}

/* --ef steers graph searches only: say so once when none will run */
static void warn_ef(const query_opts *o, const query_run *r)
{
    const pefa_model_info *mi = &r->mi;
    int graph = r->rp.mode == PEFA_MODE_ERM  ? mi->has_graph_passages
                : r->rp.mode == PEFA_MODE_XS ? mi->has_graph_xs
                                             : mi->has_graph_passages || mi->has_graph_queries;
    if (!o->ef_given) return;
    if (r->rp.exact) cli_warn("--ef has no effect with --exact (no graph is searched)");
    else if (!graph) cli_warn("--ef has no effect: %s has no HNSW graph for --mode %s (built with --no-graphs?); "
                              "every search is exact", o->index_path, o->mode_name);
}

static const char *mode_name(int mode)
{
    return mode == PEFA_MODE_XS ? "xs" : mode == PEFA_MODE_XL ? "xl" : "erm";
}

/* without --mode: the index's default, said on stderr */
static void say_default(query_opts *o, const query_run *r)
{
    o->mode_name = mode_name(r->rp.mode);
    if (!r->mi.tuned) return;
    if (r->rp.mode == PEFA_MODE_XL)
        fprintf(stderr, "pefa-query: the index's tuned setting: xl lambda %g k %u\n", (double)r->rp.lambda, r->rp.knn);
    else if (r->rp.mode == PEFA_MODE_XS)
        fprintf(stderr, "pefa-query: the index's tuned setting: xs lambda %g\n", (double)r->rp.lambda);
    else
        fprintf(stderr, "pefa-query: the index's tuned setting: erm (PEFA did not beat the encoder on its training "
                        "queries)\n");
}

/* the global row of shard i's first passage */
static uint32_t first_row_of(pefa_set *set, uint32_t i)
{
    uint32_t row = 0;
    for (uint32_t k = 0; k < i; k++) {
        pefa_model_info mi = PEFA_MODEL_INFO_INIT;
        if (pefa_model_describe(pefa_set_shard(set, k), &mi)) cli_fatal("%s", pefa_last_error_detail());
        row += mi.n_passages;
    }
    return row;
}

/* The library resolves and checks the parameters (a range, a field the
 * mode does not use, a mode the index cannot serve), its detail reading
 * "<field>: <problem>": a field this command line gave is bad usage, said
 * with its option's name; "mode: ..." (the index lacks what the mode
 * reads) is a runtime failure. */
static void resolve_params(const query_opts *o, query_run *r)
{
    static const char *const fields[][2] = {{"lambda", "--lambda"},     {"knn", "--knn"},
                                            {"topk_p", "--topk-p"},     {"knn_norm", "--knn-norm"},
                                            {"xl_scoring", "--xl-scoring"}, {"k", "-k"}, {"ef", "--ef"}};
    const char *d;
    r->rp.size = sizeof r->rp;
    if (!pefa_set_query_params_resolve(r->set, &o->qp, &r->rp)) return;
    d = pefa_last_error_detail();
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        size_t l = strlen(fields[i][0]);
        if (strncmp(d, fields[i][0], l) == 0 && d[l] == ':') cli_usage_error("%s%s", fields[i][1], d + l);
    }
    cli_fatal("%s", d);
}

static void open_index(query_opts *o, query_run *r)
{
    char id[PEFA_MAX_ID_BYTES + 1];
    if (pefa_set_open(o->index_path, o->idmap_flags, &r->set)) cli_fatal("%s", pefa_last_error_detail());
    r->mi.size = sizeof r->mi;
    if (pefa_set_describe(r->set, &r->mi)) cli_fatal("%s", pefa_last_error_detail());
    resolve_params(o, r);
    if (!o->mode_name) say_default(o, r);
    if (o->explain && r->rp.mode != PEFA_MODE_XL)
        cli_usage_error("--explain works with --mode xl (this index's default mode is %s)", o->mode_name);
    /* the id maps are checked now, not after the searches */
    for (uint32_t i = 0; i < pefa_set_shard_count(r->set); i++)
        if (pefa_set_id(r->set, PEFA_IDS_PASSAGES, first_row_of(r->set, i), id, sizeof id, NULL))
            cli_fatal("%s", pefa_last_error_detail());
    warn_ef(o, r);
}

/* test queries as f32 rows (every value checked, with the file's name) */
static void load_queries(const query_opts *o, query_run *r)
{
    tin_matrix tq;
    char err[600];
    if (tin_matrix_open(o->tq_path, &tq, err, sizeof err)) cli_fatal("%s", err);
    if (tq.dim != r->mi.dim)
        cli_fatal("%s: dimension %u does not match the index %s (%u)", o->tq_path, tq.dim, o->index_path, r->mi.dim);
    if (tq.rows > UINT32_MAX) cli_fatal("%s: too many rows", o->tq_path);
    r->nq = (uint32_t)tq.rows;
    if (!(r->Q = (float *)malloc((size_t)r->nq * r->mi.dim * sizeof(float) + 1))) cli_fatal("out of memory");
    for (uint32_t i = 0; i < r->nq; i++)
        if (tin_matrix_row(&tq, i, r->Q + (size_t)i * r->mi.dim, o->tq_path, err, sizeof err)) cli_fatal("%s", err);
    tin_matrix_close(&tq);
    if (!o->qids_path) {
        if (tin_idlist_rows(r->nq, &r->qids)) cli_fatal("out of memory");
        return;
    }
    if (tin_idlist_read(o->qids_path, &r->qids, err, sizeof err)) cli_fatal("%s", err);
    if (r->qids.n != r->nq)
        cli_fatal("%s: %llu ids, but %s has %u rows", o->qids_path, (unsigned long long)r->qids.n, o->tq_path, r->nq);
}

/* a passage id of the eval qrels that a hit can carry: in the id map (or,
 * without one, the row number as pefa_set_id writes it: "7", not "007") */
static int passage_known(void *ctx, const char *pid)
{
    query_run *r = (query_run *)ctx;
    char id[PEFA_MAX_ID_BYTES + 1];
    uint32_t row;
    int rc = pefa_set_row(r->set, PEFA_IDS_PASSAGES, pid, &row);
    if (rc == PEFA_ERR_NOT_FOUND) return 0;
    if (rc || pefa_set_id(r->set, PEFA_IDS_PASSAGES, row, id, sizeof id, NULL))
        cli_fatal("%s", pefa_last_error_detail());
    return strcmp(id, pid) == 0;
}

/* relevant passages the index lacks count as misses: warned; none known
 * means the ids do not match the index's (e.g. another id scheme): refused */
static void check_qrels_passages(const query_opts *o, query_run *r)
{
    const char *first;
    uint64_t n_rel, unknown = ev_unknown_passages(r->ev, passage_known, r, &n_rel, &first);
    if (unknown == n_rel)
        cli_fatal("%s: none of the %llu relevant passages of its test queries is in %s (first: '%.64s'): do its "
                  "passage ids match the index's?",
                  o->qrels_path, (unsigned long long)n_rel, o->index_path, first);
    if (unknown)
        cli_warn("%s: %llu of the %llu relevant passages of its test queries are not in %s (first: '%.64s'); "
                 "they count as misses",
                 o->qrels_path, (unsigned long long)unknown, (unsigned long long)n_rel, o->index_path, first);
}

static void load_qrels(const query_opts *o, query_run *r)
{
    char err[600];
    uint64_t unmatched;
    if (!o->qrels_path) return;
    if (tin_qrels_read(o->qrels_path, &r->qrels, err, sizeof err)) cli_fatal("%s", err);
    if (r->qrels.n == 0) cli_fatal("%s: no relevance judgements", o->qrels_path);
    if (!(r->ev = ev_prepare(&r->qrels, &r->qids, o->qrels_path, &unmatched, err, sizeof err))) cli_fatal("%s", err);
    if (unmatched)
        cli_warn("%s: %llu lines name queries that are not in %s (ignored)", o->qrels_path,
                 (unsigned long long)unmatched, o->qids_path ? o->qids_path : o->tq_path);
    check_qrels_passages(o, r);
}

/* ---- search ---------------------------------------------------------------------- */
typedef struct {
    query_run *r;
    const pefa_query_params *qp;
    const char *tq_path; /* the test queries' file, for messages */
    uint32_t from, to;
    int rc;
    char err[600];
} job;

/* each query on its own (a batch of one: pooled searchers), timed */
static void *worker(void *arg)
{
    job *j = (job *)arg;
    query_run *r = j->r;
    for (uint32_t i = j->from; i < j->to; i++) {
        double t = cli_now();
        if (pefa_set_search_batch(r->set, r->Q + (size_t)i * r->mi.dim, 1, 0, j->qp, 1, r->hits + (size_t)i * r->rp.k,
                                  &r->nhits[i])) {
            const char *d = pefa_last_error_detail();
            if (strncmp(d, "query 0: ", 9) == 0) d += 9; /* a batch of one: its query 0 is row i */
            j->rc = -1;
            snprintf(j->err, sizeof j->err, "%s: row %u (0-based): %s", j->tq_path, i, d);
            break;
        }
        r->latency[i] = cli_now() - t;
    }
    return NULL;
}

static void run_queries(const query_opts *o, query_run *r)
{
    uint32_t nt = o->threads < r->nq ? o->threads : (r->nq ? r->nq : 1);
    job *jobs = (job *)calloc(nt, sizeof *jobs);
    pthread_t *tid = (pthread_t *)calloc(nt, sizeof *tid);
    double t0;
    r->hits = (pefa_hit *)malloc((size_t)r->nq * r->rp.k * sizeof *r->hits + 1);
    r->nhits = (uint32_t *)calloc(r->nq + 1, sizeof *r->nhits);
    r->latency = (double *)calloc(r->nq + 1, sizeof *r->latency);
    if (!jobs || !tid || !r->hits || !r->nhits || !r->latency) cli_fatal("out of memory for %u x %u hits", r->nq, r->rp.k);
    t0 = cli_now();
    for (uint32_t t = 0; t < nt; t++) {
        jobs[t] = (job){r, &o->qp, o->tq_path, (uint32_t)((uint64_t)r->nq * t / nt),
                        (uint32_t)((uint64_t)r->nq * (t + 1) / nt), 0, ""};
        if (t > 0 && pthread_create(&tid[t], NULL, worker, &jobs[t])) cli_fatal("cannot start a thread");
    }
    worker(&jobs[0]);
    for (uint32_t t = 1; t < nt; t++) pthread_join(tid[t], NULL);
    r->seconds = cli_now() - t0;
    for (uint32_t t = 0; t < nt; t++)
        if (jobs[t].rc) cli_fatal("%s", jobs[t].err);
    free(jobs);
    free(tid);
}

/* external ids of all hits: offsets into one growing buffer, then pointers */
static void resolve_ids(query_run *r)
{
    size_t used = 0, cap = (size_t)r->nq * r->rp.k * 16 + 64, total = (size_t)r->nq * r->rp.k;
    size_t *off = (size_t *)malloc((total + 1) * sizeof *off);
    r->hit_ids = (char **)calloc(total + 1, sizeof(char *));
    r->id_buf = (char *)malloc(cap);
    if (!off || !r->hit_ids || !r->id_buf) cli_fatal("out of memory");
    for (size_t at = 0; at < total; at++) {
        char id[PEFA_MAX_ID_BYTES + 1];
        size_t l;
        if (at % r->rp.k >= r->nhits[at / r->rp.k]) continue;
        if (pefa_set_id(r->set, PEFA_IDS_PASSAGES, r->hits[at].row, id, sizeof id, &l))
            cli_fatal("%s", pefa_last_error_detail());
        if (used + l + 1 > cap) {
            char *nb = (char *)realloc(r->id_buf, (cap + l + 1) * 2);
            if (!nb) cli_fatal("out of memory");
            r->id_buf = nb;
            cap = (cap + l + 1) * 2;
        }
        memcpy(r->id_buf + used, id, l + 1);
        off[at] = used;
        used += l + 1;
    }
    for (size_t at = 0; at < total; at++)
        if (at % r->rp.k < r->nhits[at / r->rp.k]) r->hit_ids[at] = r->id_buf + off[at];
    free(off);
}

/* ---- output ---------------------------------------------------------------------- */
typedef struct {
    pefa_contrib *buf;
    uint32_t cap, n;
    uint32_t *rows;
} explainer;

/* the contributions to query i's hits, grouped by hit in rank order */
static void explain_query(const query_opts *o, query_run *r, explainer *x, uint32_t i)
{
    uint32_t nh = r->nhits[i];
    for (uint32_t h = 0; h < nh; h++) x->rows[h] = r->hits[(size_t)i * r->rp.k + h].row;
    for (;;) {
        if (pefa_set_explain(r->set, r->Q + (size_t)i * r->mi.dim, &o->qp, x->rows, nh, x->buf, x->cap, &x->n))
            cli_fatal("explain: %s", pefa_last_error_detail());
        if (x->n <= x->cap) return;
        free(x->buf);
        x->cap = x->n;
        if (!(x->buf = (pefa_contrib *)malloc((size_t)x->cap * sizeof *x->buf))) cli_fatal("out of memory");
    }
}

static void query_id(const query_run *r, uint32_t row, char *id)
{
    if (pefa_set_id(r->set, PEFA_IDS_QUERIES, row, id, PEFA_MAX_ID_BYTES + 1, NULL))
        cli_fatal("%s", pefa_last_error_detail());
}

/* [I6] an id from an index built before ids were checked may hold
 * whitespace or bytes that a TSV or TREC line cannot carry (JSON escapes) */
static void check_plain_id(const query_opts *o, const char *what, const char *id)
{
    if (o->format == FMT_JSONL || pefa_id_check(id, strlen(id)) == 0) return;
    cli_fatal("%s id '%s' %s: it cannot be written in a %s line as it is; use --format jsonl, which escapes it "
              "(the index was built before ids were checked)",
              what, id, pefa_last_error_detail(), o->format == FMT_TREC ? "TREC" : "TSV");
}

/* the explanation of one hit: contributions [*e, ...) with its passage row */
static void write_explain(const query_opts *o, const query_run *r, const explainer *x, uint32_t *e, uint32_t row)
{
    char qid[PEFA_MAX_ID_BYTES + 1];
    int any = 0;
    fputs(o->format == FMT_JSONL ? ",\"explain\":[" : "\t", stdout);
    for (; *e < x->n && x->buf[*e].passage_row == row; (*e)++, any = 1) {
        const pefa_contrib *ct = &x->buf[*e];
        query_id(r, ct->query_row, qid);
        check_plain_id(o, "training query", qid);
        if (o->format == FMT_JSONL) {
            fputs(any ? ",{\"training_query\":" : "{\"training_query\":", stdout);
            cli_json_str(stdout, qid);
            printf(",\"similarity\":%.6g,\"y\":%.6g,\"contribution\":%.6g}", (double)ct->similarity, (double)ct->y,
                   (double)ct->contribution);
        } else {
            printf("%s%s=%.6g", any ? "," : "", qid, (double)ct->contribution);
        }
    }
    fputs(o->format == FMT_JSONL ? "]" : any ? "" : "-", stdout);
}

static void write_hit(const query_opts *o, const query_run *r, uint32_t i, uint32_t rank)
{
    size_t at = (size_t)i * r->rp.k + rank;
    const char *qid = r->qids.ids[i], *pid = r->hit_ids[at];
    double sc = (double)r->hits[at].score;
    check_plain_id(o, "passage", pid);
    if (o->format == FMT_TREC) {
        printf("%s Q0 %s %u %.7g pefa-%s\n", qid, pid, rank + 1, sc, o->mode_name);
    } else if (o->format == FMT_JSONL) {
        fputs("{\"query\":", stdout);
        cli_json_str(stdout, qid);
        printf(",\"rank\":%u,\"passage\":", rank + 1);
        cli_json_str(stdout, pid);
        printf(",\"score\":%.7g", sc);
    } else {
        printf("%s\t%u\t%s\t%.7g", qid, rank + 1, pid, sc);
    }
}

static void write_results(const query_opts *o, query_run *r)
{
    explainer x = {0};
    if (o->no_output) return;
    if (o->explain && !(x.rows = (uint32_t *)malloc(r->rp.k * sizeof *x.rows))) cli_fatal("out of memory");
    for (uint32_t i = 0; i < r->nq; i++) {
        uint32_t e = 0;
        if (o->explain) explain_query(o, r, &x, i);
        for (uint32_t h = 0; h < r->nhits[i]; h++) {
            write_hit(o, r, i, h);
            if (o->explain) write_explain(o, r, &x, &e, r->hits[(size_t)i * r->rp.k + h].row);
            if (o->format != FMT_TREC) fputs(o->format == FMT_JSONL ? "}\n" : "\n", stdout);
            cli_check_stdout("results", 0); /* a full buffer's write failed: say why now */
        }
    }
    cli_check_stdout("results", 1);
    free(x.buf);
    free(x.rows);
}

/* ---- report ---------------------------------------------------------------------- */
static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, uint32_t n, double p)
{
    return n ? sorted[(size_t)(p * (n - 1) + 0.5)] : 0;
}

static void report(const query_opts *o, query_run *r)
{
    ev_metrics m;
    qsort(r->latency, r->nq, sizeof *r->latency, dbl_cmp);
    fprintf(stderr,
            "pefa-query: mode=%s%s queries=%u k=%u threads=%u seconds=%.3f qps=%.1f latency_ms p50=%.3f p99=%.3f\n",
            o->mode_name, r->rp.exact ? " exact" : "", r->nq, r->rp.k, o->threads, r->seconds,
            r->seconds > 0 ? r->nq / r->seconds : 0.0, 1000 * percentile(r->latency, r->nq, 0.50),
            1000 * percentile(r->latency, r->nq, 0.99));
    if (!r->ev) return;
    ev_metrics_init(&m, r->rp.k);
    for (uint32_t i = 0; i < r->nq; i++)
        ev_add(r->ev, i, (const char *const *)r->hit_ids + (size_t)i * r->rp.k, r->nhits[i], &m);
    if (m.judged == 0) cli_fatal("%s: no test query has a relevant passage (score > 0)", o->qrels_path);
    /* only cutoffs the k hits can fill: k >= 100 gives recall@10 @20 @100 ndcg@10 */
    for (uint32_t c = 0; c < m.n_cut; c++) fprintf(stderr, "recall@%u=%.4f ", m.cut[c], m.recall[c] / m.judged);
    fprintf(stderr, "ndcg@%u=%.4f judged=%llu skipped=%llu\n", m.ndcg_cut, m.ndcg / m.judged,
            (unsigned long long)m.judged, (unsigned long long)m.skipped);
}

static void run_free(query_run *r)
{
    free(r->hit_ids);
    free(r->id_buf);
    free(r->hits);
    free(r->nhits);
    free(r->latency);
    free(r->Q);
    ev_free(r->ev);
    tin_qrels_free(&r->qrels);
    tin_idlist_free(&r->qids);
    pefa_set_close(r->set);
}

int main(int argc, char **argv)
{
    query_opts o;
    query_run r;
    cli_prog = "pefa-query";
    memset(&o, 0, sizeof o);
    memset(&r, 0, sizeof r);
    o.qp.size = sizeof o.qp;
    o.threads = 1;
    parse_args(argc, argv, &o);
    open_index(&o, &r);
    load_queries(&o, &r);
    load_qrels(&o, &r);
    run_queries(&o, &r);
    resolve_ids(&r);
    write_results(&o, &r);
    report(&o, &r);
    run_free(&r);
    return 0;
}
