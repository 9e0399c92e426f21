/*
 * pefa-query - top-k passages for a batch of test queries, from a mapped
 * index, by ERM, PEFA-XS or PEFA-XL; with external ids, scores, and recall
 * against qrels.
 */
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pefa.h"
#include "util/cli.h"
#include "util/input.h"

#define ID_MAX 512
#define MAX_EXPLAIN 64

static void usage(void)
{
    printf("Usage: pefa-query INDEX --queries T.npy [options]\n"
           "\n"
           "Answers test queries from a pefa index: one line per hit on stdout.\n"
           "\n"
           "  --queries FILE        test-query embeddings (.npy float32/float16, or .fvecs)\n"
           "  --query-ids FILE      one id per line (default: row numbers)\n"
           "  --mode M              erm | xs | xl (default erm)\n"
           "  -k N                  hits per query (default 10)\n"
           "  --ef N                HNSW beam; the beam used is max(ef, wanted) (default 300)\n"
           "  --lambda F            XL: weight of <q,p> (default 0.1); XS: re-score with another\n"
           "                        lambda than the build's (needs the stored z vectors)\n"
           "  --knn N               XL: training-query neighbours (default 32)\n"
           "  --topk-p N            XL: ERM candidates (default 500)\n"
           "  --knn-norm v0|v1      XL: w_i = <q,q_i>/k (v0, default) or <q,q_i> (v1)\n"
           "  --xl-scoring S        exact (default): every candidate gets its true <q,p>;\n"
           "                        sparse-add: the authors' scripts (kNN-only candidates get 0)\n"
           "  --exact               brute force over the mapped sections (ground truth)\n"
           "  --explain             XL: for each hit, the training queries that contributed\n"
           "  --threads N           query threads (default 1)\n"
           "  --format F            tsv (default): query_id rank passage_id score;\n"
           "                        jsonl; trec (for trec_eval)\n"
           "  --qrels FILE          BEIR TSV: print recall@10/20/100 and ndcg@10 on stderr\n"
           "  --no-output           do not print hits (evaluation or timing only)\n"
           "  --trust-idmap         skip hashing the id map at open (after pefa-dump --verify)\n"
           "  -h, --help, -V, --version\n");
}

typedef struct {
    pefa_index *ix;
    const tin_matrix *tq;
    const char *tq_path;
    pefa_query_params qp;
    uint32_t nq, dim;
    pefa_hit *hits;        /* nq * k */
    uint32_t *nhits;
    int explain;
    pefa_contrib *contrib; /* nq * k * MAX_EXPLAIN when explain */
    uint32_t *ncontrib;
    uint32_t from, to;
    int rc;
    char err[600];
} job;

static void *worker(void *arg)
{
    job *j = (job *)arg;
    pefa_searcher *s;
    float *q = (float *)malloc(j->dim * sizeof(float));
    if (!q) {
        j->rc = -1;
        snprintf(j->err, sizeof j->err, "out of memory");
        return NULL;
    }
    if (pefa_searcher_new(j->ix, &s)) {
        j->rc = -1;
        snprintf(j->err, sizeof j->err, "%s", pefa_last_error_detail());
        free(q);
        return NULL;
    }
    for (uint32_t i = j->from; i < j->to && !j->rc; i++) {
        pefa_hit *h = j->hits + (size_t)i * j->qp.k;
        if (tin_matrix_row(j->tq, i, q, j->tq_path, j->err, sizeof j->err)) {
            j->rc = -1;
            break;
        }
        if (pefa_search(s, q, &j->qp, h, &j->nhits[i])) {
            j->rc = -1;
            snprintf(j->err, sizeof j->err, "query row %u: %s", i, pefa_last_error_detail());
            break;
        }
        if (j->explain)
            for (uint32_t r = 0; r < j->nhits[i]; r++) {
                size_t at = ((size_t)i * j->qp.k + r);
                if (pefa_explain(s, q, &j->qp, h[r].row, j->contrib + at * MAX_EXPLAIN, MAX_EXPLAIN,
                                 &j->ncontrib[at])) {
                    j->rc = -1;
                    snprintf(j->err, sizeof j->err, "explain: %s", pefa_last_error_detail());
                    break;
                }
            }
    }
    pefa_searcher_free(s);
    free(q);
    return NULL;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* ---- evaluation ------------------------------------------------------------- */
typedef struct {
    double r10, r20, r100, ndcg10;
    uint32_t n;
} metrics;

/* relevant (pid, gain) for one query: linear scan over that query's qrels rows */
static void evaluate(const tin_qrels *qr, const tin_idlist *qids, char **hit_ids, const uint32_t *nhits, uint32_t k,
                     metrics *m)
{
    tin_idhash *h = tin_idhash_new(qids);
    uint64_t *first = NULL, *next = NULL;
    if (!h) cli_fatal("out of memory");
    first = (uint64_t *)malloc((qids->n ? qids->n : 1) * sizeof *first);
    next = (uint64_t *)malloc((qr->n ? qr->n : 1) * sizeof *next);
    if (!first || !next) cli_fatal("out of memory");
    for (uint64_t i = 0; i < qids->n; i++) first[i] = UINT64_MAX;
    for (uint64_t i = qr->n; i-- > 0;) {
        int64_t q = tin_idhash_get(h, qr->rows[i].qid);
        next[i] = UINT64_MAX;
        if (q < 0 || !(qr->rows[i].score > 0)) continue;
        next[i] = first[q];
        first[q] = i;
    }
    memset(m, 0, sizeof *m);
    for (uint64_t q = 0; q < qids->n; q++) {
        uint32_t nrel = 0, c10 = 0, c20 = 0, c100 = 0;
        double dcg = 0, idcg = 0;
        double gains[1024];
        uint32_t ng = 0;
        for (uint64_t i = first[q]; i != UINT64_MAX; i = next[i]) {
            /* a (qid, pid) pair listed twice counts once; its gains add up */
            int dup = 0;
            for (uint64_t j = first[q]; j != i; j = next[j])
                if (strcmp(qr->rows[j].pid, qr->rows[i].pid) == 0) dup = 1;
            if (dup) continue;
            nrel++;
            if (ng < 1024) gains[ng++] = qr->rows[i].score;
        }
        for (uint32_t r = 0; r < nhits[q]; r++) {
            const char *pid = hit_ids[(size_t)q * k + r];
            for (uint64_t i = first[q]; i != UINT64_MAX; i = next[i])
                if (strcmp(qr->rows[i].pid, pid) == 0) {
                    if (r < 10) c10++, dcg += qr->rows[i].score / log2(r + 2.0);
                    if (r < 20) c20++;
                    if (r < 100) c100++;
                    break;
                }
        }
        /* ideal DCG: gains sorted descending */
        for (uint32_t a = 0; a < ng; a++)
            for (uint32_t b = a + 1; b < ng; b++)
                if (gains[b] > gains[a]) {
                    double t = gains[a];
                    gains[a] = gains[b];
                    gains[b] = t;
                }
        for (uint32_t r = 0; r < ng && r < 10; r++) idcg += gains[r] / log2(r + 2.0);
        m->r10 += (double)c10 / (nrel ? nrel : 1);
        m->r20 += (double)c20 / (nrel ? nrel : 1);
        m->r100 += (double)c100 / (nrel ? nrel : 1);
        m->ndcg10 += idcg > 0 ? dcg / idcg : 0;
        m->n++;
    }
    free(first);
    free(next);
    tin_idhash_free(h);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"queries", required_argument, 0, 'Q'},     {"query-ids", required_argument, 0, 'I'},
        {"mode", required_argument, 0, 'm'},        {"ef", required_argument, 0, 'e'},
        {"lambda", required_argument, 0, 'l'},      {"knn", required_argument, 0, 'n'},
        {"topk-p", required_argument, 0, 'p'},      {"knn-norm", required_argument, 0, 'N'},
        {"xl-scoring", required_argument, 0, 'x'},  {"exact", no_argument, 0, 'X'},
        {"explain", no_argument, 0, 'E'},           {"threads", required_argument, 0, 't'},
        {"format", required_argument, 0, 'f'},      {"qrels", required_argument, 0, 'R'},
        {"no-output", no_argument, 0, 'O'},         {"trust-idmap", no_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},           {0, 0, 0, 0}};
    pefa_query_params qp = PEFA_QUERY_PARAMS_INIT;
    const char *tq_path = NULL, *qids_path = NULL, *qrels_path = NULL, *format = "tsv", *index_path;
    const char *mode_name = "erm";
    int c, explain = 0, no_output = 0;
    unsigned idmap_flags = 0;
    uint32_t threads = 1;
    pefa_index *ix;
    pefa_idmap *im;
    pefa_model_info mi;
    tin_matrix tq;
    tin_idlist qids = {0};
    char err[600];
    job *jobs;
    pthread_t *tid;
    pefa_hit *hits;
    uint32_t *nhits, nq;
    pefa_contrib *contrib = NULL;
    uint32_t *ncontrib = NULL;
    char **hit_ids, *id_buf;
    double t0, secs;

    cli_prog = "pefa-query";
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'Q': tq_path = optarg; break;
        case 'I': qids_path = optarg; break;
        case 'm':
            mode_name = optarg;
            if (strcmp(optarg, "erm") == 0) qp.mode = PEFA_MODE_ERM;
            else if (strcmp(optarg, "xs") == 0) qp.mode = PEFA_MODE_XS;
            else if (strcmp(optarg, "xl") == 0) qp.mode = PEFA_MODE_XL;
            else cli_usage_error("--mode: '%s' is not erm, xs or xl", optarg);
            break;
        case 'k': qp.k = (uint32_t)cli_parse_u64("-k", optarg, 1, 100000); break;
        case 'e': qp.ef = (uint32_t)cli_parse_u64("--ef", optarg, 1, 1000000); break;
        case 'l': qp.lambda = cli_parse_float("--lambda", optarg, 0, 1); break;
        case 'n': qp.knn = (uint32_t)cli_parse_u64("--knn", optarg, 1, 100000); break;
        case 'p': qp.topk_p = (uint32_t)cli_parse_u64("--topk-p", optarg, 1, 1000000); break;
        case 'N':
            if (strcmp(optarg, "v0") == 0) qp.knn_norm = PEFA_KNN_V0;
            else if (strcmp(optarg, "v1") == 0) qp.knn_norm = PEFA_KNN_V1;
            else cli_usage_error("--knn-norm: '%s' is not v0 or v1", optarg);
            break;
        case 'x':
            if (strcmp(optarg, "exact") == 0) qp.xl_scoring = PEFA_XL_EXACT;
            else if (strcmp(optarg, "sparse-add") == 0) qp.xl_scoring = PEFA_XL_SPARSE_ADD;
            else cli_usage_error("--xl-scoring: '%s' is not exact or sparse-add", optarg);
            break;
        case 'X': qp.exact = 1; break;
        case 'E': explain = 1; break;
        case 't': threads = (uint32_t)cli_parse_u64("--threads", optarg, 1, 256); break;
        case 'f':
            if (strcmp(optarg, "tsv") && strcmp(optarg, "jsonl") && strcmp(optarg, "trec"))
                cli_usage_error("--format: '%s' is not tsv, jsonl or trec", optarg);
            format = optarg;
            break;
        case 'R': qrels_path = optarg; break;
        case 'O': no_output = 1; break;
        case 'T': idmap_flags |= PEFA_IDMAP_TRUSTED; break;
        case 'h': usage(); return 0;
        case 'V': printf("pefa-query (pefa %s, format %d.%d)\n", pefa_version_string(), PEFA_FORMAT_MAJOR, PEFA_FORMAT_MINOR); return 0;
        case ':': cli_usage_error("option '%s' needs an argument", argv[optind - 1]);
        default: cli_usage_error("unrecognized option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) cli_usage_error(optind >= argc ? "missing INDEX" : "more than one INDEX given");
    index_path = argv[optind];
    if (!tq_path) cli_usage_error("missing --queries FILE");
    if (explain && qp.mode != PEFA_MODE_XL) cli_usage_error("--explain works with --mode xl");
    if (explain && strcmp(format, "trec") == 0) cli_usage_error("--explain cannot be written in trec format");

    if (pefa_index_open(index_path, &ix)) cli_fatal("%s", pefa_last_error_detail());
    if (pefa_model_describe(ix, &mi)) cli_fatal("%s", pefa_last_error_detail());
    if (pefa_idmap_open_ex(ix, idmap_flags, &im)) cli_fatal("%s", pefa_last_error_detail());
    if (qp.mode != PEFA_MODE_ERM && !mi.has_xs)
        cli_fatal("%s: --mode %s needs training queries; this index was built without them", index_path, mode_name);
    if (tin_matrix_open(tq_path, &tq, err, sizeof err)) cli_fatal("%s", err);
    if (tq.dim != mi.dim) cli_fatal("%s: dimension %u does not match the index %s (%u)", tq_path, tq.dim, index_path, mi.dim);
    if (tq.rows > UINT32_MAX) cli_fatal("%s: too many rows", tq_path);
    nq = (uint32_t)tq.rows;
    if (qids_path) {
        if (tin_idlist_read(qids_path, &qids, err, sizeof err)) cli_fatal("%s", err);
        if (qids.n != nq) cli_fatal("%s: %llu ids, but %s has %u rows", qids_path, (unsigned long long)qids.n, tq_path, nq);
    } else if (tin_idlist_rows(nq, &qids)) {
        cli_fatal("out of memory");
    }

    hits = (pefa_hit *)malloc((size_t)nq * qp.k * sizeof *hits + 1);
    nhits = (uint32_t *)calloc(nq ? nq : 1, sizeof *nhits);
    if (!hits || !nhits) cli_fatal("out of memory for %u x %u hits", nq, qp.k);
    if (explain) {
        contrib = (pefa_contrib *)malloc((size_t)nq * qp.k * MAX_EXPLAIN * sizeof *contrib + 1);
        ncontrib = (uint32_t *)calloc((size_t)nq * qp.k + 1, sizeof *ncontrib);
        if (!contrib || !ncontrib) cli_fatal("out of memory for --explain");
    }
    if (threads > nq && nq > 0) threads = nq;
    jobs = (job *)calloc(threads, sizeof *jobs);
    tid = (pthread_t *)calloc(threads, sizeof *tid);
    if (!jobs || !tid) cli_fatal("out of memory");
    t0 = cli_now();
    for (uint32_t t = 0; t < threads; t++) {
        job *j = &jobs[t];
        j->ix = ix;
        j->tq = &tq;
        j->tq_path = tq_path;
        j->qp = qp;
        j->nq = nq;
        j->dim = mi.dim;
        j->hits = hits;
        j->nhits = nhits;
        j->explain = explain;
        j->contrib = contrib;
        j->ncontrib = ncontrib;
        j->from = (uint32_t)((uint64_t)nq * t / threads);
        j->to = (uint32_t)((uint64_t)nq * (t + 1) / threads);
        if (t > 0 && pthread_create(&tid[t], NULL, worker, j)) cli_fatal("cannot start thread");
    }
    worker(&jobs[0]);
    for (uint32_t t = 1; t < threads; t++) pthread_join(tid[t], NULL);
    secs = cli_now() - t0;
    for (uint32_t t = 0; t < threads; t++)
        if (jobs[t].rc) cli_fatal("%s", jobs[t].err);

    /* external ids of all hits: offsets into one growing buffer, then pointers */
    {
        size_t used = 0, cap = (size_t)nq * qp.k * 16 + 64, total = (size_t)nq * qp.k;
        size_t *off = (size_t *)malloc((total + 1) * sizeof *off);
        hit_ids = (char **)malloc((total + 1) * sizeof(char *));
        id_buf = (char *)malloc(cap);
        if (!off || !hit_ids || !id_buf) cli_fatal("out of memory");
        for (uint32_t i = 0; i < nq; i++)
            for (uint32_t r = 0; r < nhits[i]; r++) {
                char id[ID_MAX];
                size_t l;
                if (pefa_idmap_id(im, PEFA_IDS_PASSAGES, hits[(size_t)i * qp.k + r].row, id, sizeof id))
                    cli_fatal("%s", pefa_last_error_detail());
                l = strlen(id) + 1;
                if (used + l > cap) {
                    char *nb = (char *)realloc(id_buf, (cap + l) * 2);
                    if (!nb) cli_fatal("out of memory");
                    id_buf = nb;
                    cap = (cap + l) * 2;
                }
                memcpy(id_buf + used, id, l);
                off[(size_t)i * qp.k + r] = used;
                used += l;
            }
        for (uint32_t i = 0; i < nq; i++)
            for (uint32_t r = 0; r < nhits[i]; r++) hit_ids[(size_t)i * qp.k + r] = id_buf + off[(size_t)i * qp.k + r];
        free(off);
    }

    if (!no_output) {
        for (uint32_t i = 0; i < nq; i++)
            for (uint32_t r = 0; r < nhits[i]; r++) {
                size_t at = (size_t)i * qp.k + r;
                const char *pid = hit_ids[at];
                float sc = hits[at].score;
                if (strcmp(format, "trec") == 0) {
                    printf("%s Q0 %s %u %.7g pefa-%s\n", qids.ids[i], pid, r + 1, (double)sc, mode_name);
                } else if (strcmp(format, "jsonl") == 0) {
                    fputs("{\"query\":", stdout);
                    json_str(stdout, qids.ids[i]);
                    printf(",\"rank\":%u,\"passage\":", r + 1);
                    json_str(stdout, pid);
                    printf(",\"score\":%.7g", (double)sc);
                    if (explain) {
                        fputs(",\"explain\":[", stdout);
                        for (uint32_t e = 0; e < ncontrib[at]; e++) {
                            const pefa_contrib *ct = &contrib[at * MAX_EXPLAIN + e];
                            char qid[ID_MAX];
                            if (pefa_idmap_id(im, PEFA_IDS_QUERIES, ct->query_row, qid, sizeof qid))
                                cli_fatal("%s", pefa_last_error_detail());
                            fputs(e ? ",{\"training_query\":" : "{\"training_query\":", stdout);
                            json_str(stdout, qid);
                            printf(",\"similarity\":%.6g,\"y\":%.6g,\"contribution\":%.6g}", (double)ct->similarity,
                                   (double)ct->y, (double)ct->contribution);
                        }
                        fputc(']', stdout);
                    }
                    fputs("}\n", stdout);
                } else {
                    printf("%s\t%u\t%s\t%.7g", qids.ids[i], r + 1, pid, (double)sc);
                    if (explain) {
                        fputc('\t', stdout);
                        for (uint32_t e = 0; e < ncontrib[at]; e++) {
                            const pefa_contrib *ct = &contrib[at * MAX_EXPLAIN + e];
                            char qid[ID_MAX];
                            if (pefa_idmap_id(im, PEFA_IDS_QUERIES, ct->query_row, qid, sizeof qid))
                                cli_fatal("%s", pefa_last_error_detail());
                            printf("%s%s=%.6g", e ? "," : "", qid, (double)ct->contribution);
                        }
                        if (!ncontrib[at]) fputc('-', stdout);
                    }
                    fputc('\n', stdout);
                }
            }
        if (fflush(stdout) || ferror(stdout)) cli_fatal("writing results to stdout failed");
    }
    fprintf(stderr, "pefa-query: mode=%s%s queries=%u k=%u threads=%u seconds=%.3f qps=%.1f ms_per_query=%.4f\n",
            mode_name, qp.exact ? " exact" : "", nq, qp.k, threads, secs, secs > 0 ? nq / secs : 0.0,
            nq ? 1000.0 * secs * threads / nq : 0.0);
    if (qrels_path) {
        tin_qrels qr;
        metrics m;
        if (tin_qrels_read(qrels_path, &qr, err, sizeof err)) cli_fatal("%s", err);
        evaluate(&qr, &qids, hit_ids, nhits, qp.k, &m);
        fprintf(stderr, "recall@10=%.4f recall@20=%.4f recall@100=%.4f ndcg@10=%.4f queries=%u%s\n",
                m.n ? m.r10 / m.n : 0, m.n ? m.r20 / m.n : 0, m.n ? m.r100 / m.n : 0, m.n ? m.ndcg10 / m.n : 0, m.n,
                qp.k < 100 ? " (k < 100: recall@100 counts only the hits returned)" : "");
        tin_qrels_free(&qr);
    }
    free(hit_ids);
    free(id_buf);
    free(hits);
    free(nhits);
    free(contrib);
    free(ncontrib);
    free(jobs);
    free(tid);
    tin_idlist_free(&qids);
    tin_matrix_close(&tq);
    pefa_idmap_close(im);
    pefa_index_close(ix);
    return 0;
}
