/*
 * pefa-dump - describe pefa index files (format/pefa-format-v1.md).
 *
 *   pefa-dump [--json] [--verify] [--sections] FILE...
 *   pefa-dump --gc DIR [--dry-run]
 *
 * Without --verify it reads only the header, the directory and the META
 * section, so it answers at once whatever the file size. With --verify it
 * reads every byte (pefa_index_verify, then pefa_verify). Uses the public API only.
 *
 * Exit status: 0 success, 1 runtime failure (a file cannot be opened, META
 * is malformed, verification failed), 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pefa.h"
#include "util/cli.h"
#include "util/gc.h"

#define DUMP_NAME "pefa-dump"

typedef struct {
    int json;
    int verify;
    int sections_only;
    int headers;       /* several files: a "==> FILE <==" line before each */
    int version;
    const char *gc_dir;
    int dry_run;
} dump_opts;

static void dump_usage(FILE *out)
{
    fprintf(out,
            "Usage: " DUMP_NAME " [OPTION]... FILE...\n"
            "       " DUMP_NAME " --gc DIR [--dry-run]\n"
            "Describe pefa index files: format version, UUID, size, the META keys\n"
            "(counts, parameters, provenance) and every section.\n"
            "\n"
            "  -j, --json      one JSON object per FILE, one per line\n"
            "      --verify    also check every checksum, the padding, compressed\n"
            "                  sections and the PEFA invariants (reads the whole file);\n"
            "                  prints \"verify: OK\" or \"verify: FAILED: <detail>\"\n"
            "  -s, --sections  print only the section table\n"
            "      --gc DIR    remove the id maps (NAME.<uuid>.ids) in DIR that no index in\n"
            "                  DIR names, and list them (a build never removes one: the\n"
            "                  index it replaced may live on renamed or copied). Removes\n"
            "                  nothing if a file in DIR looks like an index but cannot be\n"
            "                  read, since it might name any of them. Also removes the\n"
            "                  temporary files a killed build left (NAME.tmp.XXXXXX: no\n"
            "                  build holds NAME.lock, unchanged for 10 minutes)\n"
            "  -n, --dry-run   with --gc: only list what would be removed\n"
            "  -h, --help      show this help and exit\n"
            "  -V, --version   show the version and exit (as in pefa-build and pefa-query)\n"
            "\n"
            "Without --verify only the header, the directory and META are read.\n"
            "Exit status: 0 OK, 1 runtime failure or failed verification, 2 bad usage.\n");
}

static void dump_error(const char *what)
{
    fprintf(stderr, DUMP_NAME ": error: %s\n", what && *what ? what : "unknown error");
}

static void dump_shape(const pefa_section_info *s, char *out, size_t cap)
{
    size_t o = 0;
    if (s->ndim == 0) {
        snprintf(out, cap, "-");
        return;
    }
    out[0] = 0;
    for (uint32_t k = 0; k < s->ndim && k < PEFA_MAX_DIMS && o < cap; k++) {
        int n = snprintf(out + o, cap - o, k ? "x%" PRIu64 : "%" PRIu64, s->shape[k]);
        if (n < 0) break;
        o += (size_t)n;
    }
}

static void dump_kind(const pefa_section_info *s, char *out, size_t cap)
{
    const char *k = pefa_kind_name(s->kind);
    if (!strcmp(k, "UNKNOWN"))
        snprintf(out, cap, "kind%u/%u", s->kind, s->target);
    else if (s->target == PEFA_TARGET_NONE)
        snprintf(out, cap, "%s", k);
    else if (!strcmp(pefa_target_name(s->target), "unknown"))
        snprintf(out, cap, "%s/%u", k, s->target);
    else
        snprintf(out, cap, "%s/%s", k, pefa_target_name(s->target));
}

static void dump_human_size(uint64_t n, char *out, size_t cap)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0) snprintf(out, cap, "%" PRIu64 " B", n);
    else snprintf(out, cap, "%.1f %s", v, units[u]);
}

/* ---- JSON ------------------------------------------------------------------- */
/* ---- one file ----------------------------------------------------------------- */
static const char *dump_err_name(int err)
{
    switch (err) {
#define DUMP_X(name, num, msg) \
    case -(num): return #name;
        PEFA_ERROR_LIST(DUMP_X)
#undef DUMP_X
    default: return "UNKNOWN";
    }
}

static void dump_section_table(FILE *out, pefa_index *ix)
{
    uint32_t n = pefa_index_section_count(ix);
    fprintf(out, "%3s  %-25s %-5s %-5s %-14s %12s %12s %7s %12s %-16s %s\n", "#", "kind/target", "codec",
            "type", "shape", "stored", "raw", "ratio", "offset", "xxh3", "required");
    for (uint32_t i = 0; i < n; i++) {
        pefa_section_info s;
        char kind[64], shape[96], ratio[16];
        if (pefa_index_section_info(ix, i, &s)) continue;
        dump_kind(&s, kind, sizeof kind);
        dump_shape(&s, shape, sizeof shape);
        if (s.stored_size) snprintf(ratio, sizeof ratio, "%.2f", (double)s.raw_size / (double)s.stored_size);
        else snprintf(ratio, sizeof ratio, "-");
        fprintf(out, "%3u  %-25s %-5s %-5s %-14s %12" PRIu64 " %12" PRIu64 " %7s %12" PRIu64 " %016" PRIx64 " %s\n",
                i, kind, pefa_codec_name(s.codec), pefa_type_name(s.elem), shape, s.stored_size, s.raw_size,
                ratio, s.offset, s.checksum, (s.flags & PEFA_SECTION_REQUIRED) ? "yes" : "no");
    }
}

static void dump_meta_summary(FILE *out, pefa_index *ix)
{
    static const char *const counts[][2] = {
        {"pefa.n_passages", "passages"},     {"set.rows_total", "passages"},
        {"set.shards", "shards"},            {"pefa.n_queries", "train queries"},
        {"pefa.dim", "dimension"},           {"pefa.nnz", "nnz (Y)"},
        {"pefa.metric", "metric"},
        {"pefa.vector_type", "vector type"}, {"pefa.xs_lambda", "xs lambda"},
        {"idmap.file", "id map"},
    };
    const char *v, *lam, *knn, *metric, *score, *erm;
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (pefa_index_meta_get(ix, counts[i][0], &v) == 0) fprintf(out, "%-13s  %s\n", counts[i][1], v);
    if (pefa_index_meta_get(ix, "tune.mode", &v) != 0) return;
    if (pefa_index_meta_get(ix, "tune.lambda", &lam)) lam = "?";
    if (pefa_index_meta_get(ix, "tune.knn", &knn)) knn = "";
    if (pefa_index_meta_get(ix, "tune.metric", &metric)) metric = "?";
    if (pefa_index_meta_get(ix, "tune.score", &score)) score = "?";
    if (pefa_index_meta_get(ix, "tune.score_erm", &erm)) erm = "?";
    fprintf(out, "%-13s  %s%s%s%s%s (leave-one-out %s %s, ERM %s", "tuned", v, strcmp(v, "erm") ? " lambda " : "",
            strcmp(v, "erm") ? lam : "", *knn ? " k " : "", knn, metric, score, erm);
    if (pefa_index_meta_get(ix, "tune.label_passed", &v) == 0) { /* tuned since the label check */
        const char *on;
        int off = pefa_index_meta_get(ix, "tune.label_check", &on) == 0 && strcmp(on, "off") == 0;
        fprintf(out, "; label check %s%s", strcmp(v, "1") == 0 ? "passed" : "failed", off ? ", off" : "");
    }
    fprintf(out, ")\n");
}

/* what one file is, as read for printing */
typedef struct {
    const char *path;
    pefa_index *ix;
    pefa_file_info fi;
    char uuid[37];
    int nmeta, vrc, bad, is_set;
    char meta_err[600], verr[600];
} dump_state;

static void dump_json_meta(const dump_state *d)
{
    printf(",\"meta\":{");
    for (int i = 0; i < d->nmeta; i++) {
        const char *k, *v;
        if (pefa_index_meta_at(d->ix, i, &k, &v)) continue;
        if (i) putchar(',');
        cli_json_str(stdout, k);
        putchar(':');
        cli_json_str(stdout, v);
    }
    putchar('}');
    if (d->nmeta < 0) {
        printf(",\"meta_error\":");
        cli_json_str(stdout, d->meta_err);
    }
}

static void dump_json_sections(const dump_state *d)
{
    uint32_t n = pefa_index_section_count(d->ix);
    printf(",\"sections\":[");
    for (uint32_t i = 0; i < n; i++) {
        pefa_section_info s;
        if (pefa_index_section_info(d->ix, i, &s)) continue;
        printf("%s{\"index\":%u,\"kind\":%u,\"kind_name\":", i ? "," : "", i, s.kind);
        cli_json_str(stdout, pefa_kind_name(s.kind));
        printf(",\"target\":%u,\"target_name\":", s.target);
        cli_json_str(stdout, pefa_target_name(s.target));
        printf(",\"codec\":\"%s\",\"type\":\"%s\",\"shape\":[", pefa_codec_name(s.codec), pefa_type_name(s.elem));
        for (uint32_t k = 0; k < s.ndim && k < PEFA_MAX_DIMS; k++) printf("%s%" PRIu64, k ? "," : "", s.shape[k]);
        printf("],\"stored_size\":%" PRIu64 ",\"raw_size\":%" PRIu64 ",\"offset\":%" PRIu64
               ",\"xxh3\":\"%016" PRIx64 "\",\"required\":%s}",
               s.stored_size, s.raw_size, s.offset, s.checksum, (s.flags & PEFA_SECTION_REQUIRED) ? "true" : "false");
    }
    putchar(']');
}

static void dump_json(const dump_state *d, const dump_opts *o)
{
    printf("{\"file\":");
    cli_json_str(stdout, d->path);
    printf(",\"format\":{\"major\":%u,\"minor\":%u},\"uuid\":\"%s\",\"file_size\":%" PRIu64 ",\"flags\":%" PRIu64
           ",\"n_sections\":%u",
           d->fi.major, d->fi.minor, d->uuid, d->fi.file_size, d->fi.flags, d->fi.n_sections);
    dump_json_meta(d);
    dump_json_sections(d);
    if (o->verify && d->vrc == 0) {
        printf(",\"verify\":{\"ok\":true}");
    } else if (o->verify) {
        printf(",\"verify\":{\"ok\":false,\"error\":\"%s\",\"section\":%d,\"detail\":", dump_err_name(d->vrc), d->bad);
        cli_json_str(stdout, d->verr);
        putchar('}');
    }
    printf("}\n");
}

static void dump_human(const dump_state *d, const dump_opts *o)
{
    char hsize[32];
    dump_human_size(d->fi.file_size, hsize, sizeof hsize);
    if (!o->sections_only) {
        printf("file           %s\n", d->path);
        printf("format         %u.%u\n", d->fi.major, d->fi.minor);
        printf("uuid           %s\n", d->uuid);
        printf("file size      %" PRIu64 " bytes (%s)\n", d->fi.file_size, hsize);
        if (d->fi.flags) printf("flags          0x%016" PRIx64 "\n", d->fi.flags);
        printf("sections       %u\n", d->fi.n_sections);
        dump_meta_summary(stdout, d->ix);
        printf("meta           %d key%s\n", d->nmeta < 0 ? 0 : d->nmeta, d->nmeta == 1 ? "" : "s");
        for (int i = 0; i < d->nmeta; i++) {
            const char *k, *v;
            if (pefa_index_meta_at(d->ix, i, &k, &v) == 0) printf("  %s=%s\n", k, v);
        }
        printf("\n");
    }
    dump_section_table(stdout, d->ix);
    if (!o->verify) return;
    if (d->vrc == 0) {
        printf("verify: OK\n");
    } else if (d->bad >= 0) {
        pefa_section_info s;
        char kind[64] = "?";
        if (pefa_index_section_info(d->ix, (uint32_t)d->bad, &s) == 0) dump_kind(&s, kind, sizeof kind);
        printf("verify: FAILED: %s [section %d %s]\n", d->verr, d->bad, kind);
    } else {
        printf("verify: FAILED: %s [%s]\n", d->verr, d->is_set ? "shard set" : "header, directory or padding");
    }
}

/* pefa_verify, or for a manifest every shard of the set (d->bad = -1: the
 * detail names the shard) */
static int verify_meaning(dump_state *d)
{
    const char *v;
    pefa_set *set;
    int rc, bad_shard;
    if (pefa_index_meta_get(d->ix, "set.shards", &v) != 0) return pefa_verify(d->ix, &d->bad);
    d->bad = -1;
    d->is_set = 1;
    if ((rc = pefa_set_open(d->path, 0, &set)) != 0) return rc;
    rc = pefa_set_verify(set, &bad_shard);
    pefa_set_close(set);
    return rc;
}

/* prints one file; returns 0, or 1 after printing an error */
static int dump_file(const char *path, const dump_opts *o)
{
    dump_state d;
    int status = 0;
    memset(&d, 0, sizeof d);
    d.path = path;
    d.bad = -1;
    if (pefa_index_open(path, &d.ix)) {
        dump_error(pefa_last_error_detail());
        return 1;
    }
    pefa_index_file_info(d.ix, &d.fi);
    cli_uuid_str(d.fi.uuid, d.uuid);
    d.nmeta = pefa_index_meta_count(d.ix);
    if (d.nmeta < 0) snprintf(d.meta_err, sizeof d.meta_err, "%s", pefa_last_error_detail());
    /* the container's bytes first, then what the sections mean; a shard
     * set's manifest: every shard it names */
    if (o->verify && ((d.vrc = pefa_index_verify(d.ix, &d.bad)) != 0 || (d.vrc = verify_meaning(&d)) != 0))
        snprintf(d.verr, sizeof d.verr, "%s", pefa_last_error_detail());
    if (o->json) dump_json(&d, o);
    else dump_human(&d, o);
    fflush(stdout);
    if (d.nmeta < 0) {
        dump_error(d.meta_err);
        status = 1;
    }
    if (d.vrc) status = 1;
    pefa_index_close(d.ix);
    return status;
}

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static int dump_usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, DUMP_NAME ": error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '" DUMP_NAME " --help' for more information.\n");
    return 2;
}

/* 0, or the exit status to return at once (help, usage error) */
static int dump_parse(int argc, char **argv, dump_opts *o)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},      {"verify", no_argument, NULL, 'v' + 256},
        {"sections", no_argument, NULL, 's'},  {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},   {"gc", required_argument, NULL, 'g' + 256},
        {"dry-run", no_argument, NULL, 'n'},   {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":jVshn", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': o->json = 1; break;
        case 'v' + 256: o->verify = 1; break;
        case 's': o->sections_only = 1; break;
        case 'n': o->dry_run = 1; break;
        case 'g' + 256: o->gc_dir = optarg; break;
        case 'V': o->version = 1; break;
        case 'h': dump_usage(stdout); return -1;
        case ':': return dump_usage_error("option '%s' needs an argument", argv[optind - 1]);
        default:
            if (optopt) {
                char opt[3] = {'-', (char)optopt, 0};
                return dump_usage_error("unknown option '%s'", opt);
            }
            return dump_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    /* -V meant --verify here before 0.2: a script passing files with it
     * must not silently skip the verification it asked for */
    if (o->version && optind < argc) return dump_usage_error("%s", "-V/--version takes no FILE (to check files: --verify)");
    if (o->version) return 0;
    if (o->gc_dir && optind < argc) return dump_usage_error("--gc DIR takes no FILE ('%s')", argv[optind]);
    if (o->dry_run && !o->gc_dir) return dump_usage_error("%s", "--dry-run goes with --gc DIR");
    if (!o->gc_dir && optind >= argc) return dump_usage_error("%s", "no FILE given");
    o->headers = argc - optind > 1 && !o->json;
    return 0;
}

int main(int argc, char **argv)
{
    dump_opts o;
    int status = 0, rc;
    memset(&o, 0, sizeof o);
    if ((rc = dump_parse(argc, argv, &o)) != 0) return rc < 0 ? 0 : rc;
    if (o.version) {
        printf(DUMP_NAME " (pefa %s, format %d.%d)\n", pefa_version_string(), PEFA_FORMAT_MAJOR, PEFA_FORMAT_MINOR);
    } else if (o.gc_dir) {
        status = gc_idmaps(o.gc_dir, o.dry_run);
    } else {
        for (int i = optind; i < argc; i++) {
            if (o.headers) printf("%s==> %s <==\n", i > optind ? "\n" : "", argv[i]);
            if (dump_file(argv[i], &o)) status = 1;
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, DUMP_NAME ": error: writing to stdout failed: %s\n", strerror(errno));
        status = 1;
    }
    return status;
}
