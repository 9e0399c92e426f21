/*
 * pefa-tune - the leave-one-out tuning grid of an index, as a table or JSON.
 *
 *   pefa-tune INDEX [--tune-queries N] [--tune-metric M] [--tune-label-check on|off] [--seed N]
 *             [--threads N] [--json]
 *
 * Reads the index (P, Q, Z, |S_j|, Y) and writes nothing: the same
 * computation pefa-build --tune ran, so with the defaults (the index's own
 * tuning sample, metric and seed) it shows how the recorded choice was made.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pefa.h"
#include "util/cli.h"

static void usage(void)
{
    printf("Usage: pefa-tune INDEX [options]\n"
           "\n"
           "Scores every setting of the tuning grid by leave-one-out over the index's training\n"
           "queries (ERM; PEFA-XS lambda 0..1; PEFA-XL lambda 0..0.9 x k 4..64) and prints the\n"
           "table, the chosen setting marked with '*'. Writes nothing.\n"
           "\n"
           "  --tune-queries N   training queries (default: as the index was tuned, else 2000)\n"
           "  --tune-metric M    recall@100, recall@10 or ndcg@10 (default: as the index was tuned,\n"
           "                     else recall@100)\n"
           "  --tune-label-check C  on: choose ERM when ERM finds the tuning queries' own relevant\n"
           "                     passages no better than the other tuning queries'; off: report\n"
           "                     the check only (default: as the index was tuned, else on)\n"
           "  --seed N           sampling and bootstrap seed (default: the index's build seed)\n"
           "  --threads N        threads (default: all CPUs)\n"
           "  --json             one JSON object on stdout\n"
           "  -q, --quiet        no progress on stderr\n"
           "  -h, --help, -V, --version\n");
}

typedef struct {
    const char *index_path;
    int json, quiet;
    pefa_tune_params tp;
} tune_opts;

static void parse_args(int argc, char **argv, tune_opts *o)
{
    static const struct option opts[] = {
        {"tune-queries", required_argument, 0, 'n'}, {"tune-metric", required_argument, 0, 'm'},
        {"seed", required_argument, 0, 's'},         {"threads", required_argument, 0, 't'},
        {"json", no_argument, 0, 'j'},               {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},               {"version", no_argument, 0, 'V'},
        {"tune-label-check", required_argument, 0, 'L'},
        {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qhV", opts, NULL)) != -1) {
        switch (c) {
        case 'n': o->tp.n_queries = (uint32_t)cli_parse_u64("--tune-queries", optarg, 1, UINT32_MAX); break;
        case 'm':
            if ((o->tp.metric = pefa_metric_parse(optarg)) < 0)
                cli_usage_error("--tune-metric: '%s' is not recall@100, recall@10 or ndcg@10", optarg);
            break;
        case 's':
            o->tp.seed = cli_parse_u64("--seed", optarg, 0, UINT64_MAX);
            o->tp.set |= PEFA_SET_SEED;
            break;
        case 'L':
            o->tp.label_check = cli_parse_on_off("--tune-label-check", optarg) ? PEFA_LABEL_CHECK_ON
                                                                               : PEFA_LABEL_CHECK_OFF;
            break;
        case 't': o->tp.threads = (uint32_t)cli_parse_u64("--threads", optarg, 1, PEFA_MAX_THREADS); break;
        case 'j': o->json = 1; break;
        case 'q': o->quiet = 1; break;
        case 'h': usage(); exit(0);
        case 'V': cli_version(); exit(0);
        case ':': cli_usage_error("option '%s' needs an argument", argv[optind - 1]);
        default: cli_usage_error("unrecognized option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) cli_usage_error(optind >= argc ? "missing INDEX" : "more than one INDEX given");
    o->index_path = argv[optind];
}

static const char *mode_name(int mode)
{
    return mode == PEFA_MODE_XS ? "xs" : mode == PEFA_MODE_XL ? "xl" : "erm";
}

/* "xl lambda 0.1 k 4" */
static const char *setting_text(const pefa_tune_setting *s, char *buf, size_t cap)
{
    if (s->mode == PEFA_MODE_XL) snprintf(buf, cap, "xl lambda %.1f k %u", (double)s->lambda, s->knn);
    else if (s->mode == PEFA_MODE_XS) snprintf(buf, cap, "xs lambda %.1f", (double)s->lambda);
    else snprintf(buf, cap, "erm");
    return buf;
}

static void print_table(const pefa_tune_report *r)
{
    char chosen[64], margin[64];
    const char *m = pefa_metric_name(r->metric);
    printf("leave-one-out %s on %u training queries (%u distinct), seed %llu, %.2f s\n", m, r->n_queries, r->n_groups,
           (unsigned long long)r->seed, r->seconds);
    printf("  %-4s %-6s %-4s %10s %10s %12s\n", "mode", "lambda", "k", m, "delta", "delta_5%");
    for (uint32_t g = 0; g < r->n_settings; g++) {
        const pefa_tune_setting *s = &r->settings[g];
        char k[16] = "-", lam[16] = "-";
        if (s->mode == PEFA_MODE_XL) snprintf(k, sizeof k, "%u", s->knn);
        if (s->mode != PEFA_MODE_ERM) snprintf(lam, sizeof lam, "%.1f", (double)s->lambda);
        printf("%c %-4s %-6s %-4s %10.4f %+10.4f %+12.4f\n", g == r->chosen ? '*' : ' ', mode_name(s->mode), lam, k,
               s->score, s->delta, s->delta_lo);
    }
    printf("label check (%s): %s: ERM recall@100 on own labels %.4f, on other tuning queries' labels %.4f, "
           "difference %+.4f, 5%% %+.4f\n",
           r->label_check == PEFA_LABEL_CHECK_OFF ? "off" : "on", r->label_passed ? "passed" : "FAILED", r->label_own,
           r->label_other, r->label_own - r->label_other, r->label_delta_lo);
    if (r->chosen != r->chosen_margin)
        printf("chosen: %s (the label check failed: the training labels do not follow the query text; the grid "
               "alone would choose %s)\n",
               setting_text(&r->settings[r->chosen], chosen, sizeof chosen),
               setting_text(&r->settings[r->chosen_margin], margin, sizeof margin));
    else
        printf("chosen: %s%s\n", setting_text(&r->settings[r->chosen], chosen, sizeof chosen),
               r->chosen ? "" : " (no setting beats ERM in 95% of the bootstrap resamples)");
}

static void print_json(const pefa_tune_report *r)
{
    printf("{\"metric\":\"%s\",\"queries\":%u,\"distinct\":%u,\"seed\":%llu,\"seconds\":%.3f,\"chosen\":%u,"
           "\"grid\":[",
           pefa_metric_name(r->metric), r->n_queries, r->n_groups, (unsigned long long)r->seed, r->seconds, r->chosen);
    for (uint32_t g = 0; g < r->n_settings; g++) {
        const pefa_tune_setting *s = &r->settings[g];
        printf("%s{\"mode\":\"%s\",\"lambda\":%.1f,\"knn\":%u,\"score\":%.6f,\"delta\":%.6f,\"delta_lo\":%.6f}",
               g ? "," : "", mode_name(s->mode), (double)s->lambda, s->knn, s->score, s->delta, s->delta_lo);
    }
    printf("],\"chosen_margin\":%u,\"label_check\":{\"enabled\":%s,\"passed\":%s,\"own\":%.6f,\"other\":%.6f,"
           "\"delta_lo\":%.6f}}\n",
           r->chosen_margin, r->label_check == PEFA_LABEL_CHECK_OFF ? "false" : "true",
           r->label_passed ? "true" : "false", r->label_own, r->label_other, r->label_delta_lo);
}

int main(int argc, char **argv)
{
    tune_opts o;
    pefa_index *ix;
    pefa_tune_report *r;
    cli_prog = "pefa-tune";
    memset(&o, 0, sizeof o);
    o.tp.size = sizeof o.tp;
    parse_args(argc, argv, &o);
    o.tp.progress = cli_progress;
    o.tp.progress_ctx = o.quiet ? (void *)&o.quiet : NULL;
    if (pefa_index_open(o.index_path, &ix) || pefa_tune(ix, &o.tp, &r)) cli_fatal("%s", pefa_last_error_detail());
    if (o.json) print_json(r);
    else print_table(r);
    cli_check_stdout("the report", 1);
    pefa_tune_report_free(r);
    pefa_index_close(ix);
    return 0;
}
