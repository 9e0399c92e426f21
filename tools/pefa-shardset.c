/*
 * pefa-shardset - ties the shards of one build into a set.
 *
 *   pefa-shardset -o SET.pefaset FILE_0 ... FILE_N-1
 *
 * The shards (pefa-build --shard I/N, in any order) must be every shard of
 * one build: the same N, contiguous rows, the same inputs and parameters.
 * The manifest records each file's name (it must sit in the manifest's
 * directory), UUID, size and XXH3, so pefa-dump --verify SET checks that
 * every shard is present, intact and belongs; pefa-query SET answers like
 * the unsharded index.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pefa.h"
#include "util/cli.h"

static void usage(void)
{
    printf("Usage: pefa-shardset -o SET.pefaset FILE_0 ... FILE_N-1\n"
           "\n"
           "Writes the manifest of a shard set (atomically). The shard files must be in the\n"
           "manifest's directory and stay there: the set names them relative to it.\n"
           "\n"
           "  -o, --output FILE   the manifest; an existing file there is replaced only if it is\n"
           "                      a manifest (never an index or a shard of any set)\n"
           "  -h, --help, -V, --version\n");
}

/* -o replaces a manifest, nothing else: not an index, and so not a shard of
 * another set (what is not a pefa file at all, pefa_output_check refuses) */
static void check_not_index(const char *out)
{
    pefa_index *ix;
    const char *v;
    int manifest;
    if (pefa_index_open(out, &ix) != 0) return;
    manifest = pefa_index_meta_get(ix, "set.shards", &v) == 0;
    pefa_index_close(ix);
    if (!manifest)
        cli_usage_error("-o %s is a pefa index, not a set's manifest: not replacing it (a manifest replaces only a "
                        "manifest)", out);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    const char *out = NULL;
    int c, rc;
    cli_prog = "pefa-shardset";
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:hV", opts, NULL)) != -1) {
        if (c == 'o') out = optarg;
        else if (c == 'h') usage(), exit(0);
        else if (c == 'V') cli_version(), exit(0);
        else if (c == ':') cli_usage_error("option '%s' needs an argument", argv[optind - 1]);
        else cli_usage_error("unrecognized option '%s'", argv[optind - 1]);
    }
    if (!out || !*out) cli_usage_error("missing -o SET.pefaset");
    if (optind >= argc) cli_usage_error("no shard files given");
    cli_check_not_input(out, "shard", (const char *const *)(argv + optind), (size_t)(argc - optind));
    if (pefa_output_check(out, 0) != 0) cli_usage_error("-o %s", pefa_last_error_detail());
    check_not_index(out);
    /* INVALID_ARG: the files given cannot make this set (a shard outside the
     * manifest's directory): bad usage */
    if ((rc = pefa_set_write(out, (const char *const *)(argv + optind), (uint32_t)(argc - optind))) != 0) {
        if (rc == PEFA_ERR_INVALID_ARG) cli_usage_error("%s", pefa_last_error_detail());
        cli_fatal("%s", pefa_last_error_detail());
    }
    fprintf(stderr, "pefa-shardset: wrote %s (%d shards)\n", out, argc - optind);
    return 0;
}
