/*
 * gc.h - removing id maps that no index names (prefix gc_), for
 * `pefa-dump --gc DIR`. A build never removes an id map (format [I4]): the
 * index it replaced may live on under another name. This is the explicit
 * command that does, under these rules (format [I5]):
 *
 *   - a candidate is a regular file in DIR named <name>.<32 hex>.ids;
 *   - every other regular file in DIR is tried as an index: one that does not
 *     start with the pefa magic is not an index; one that opens names its id
 *     map in META idmap.file, and that id map is kept;
 *   - a file that starts with the magic but cannot be opened or whose META
 *     cannot be read (damaged, truncated, newer format), or a file that cannot
 *     be read at all, might name any id map: then NOTHING is removed, and the
 *     file is named with the reason (exit 1);
 *   - candidates are removed while holding the build lock <name>.lock when it
 *     exists (a build holds it from start to commit); a candidate whose lock
 *     is held is kept, and the indexes are read only after the locks are
 *     taken, so an index committed meanwhile is seen;
 *   - a writer's temporary file <name>.tmp.XXXXXX (a regular file starting
 *     with GC_TMP_ZEROS zero bytes) is removed when no build holds
 *     <name>.lock and it has not changed for GC_TMP_AGE seconds.
 */
#ifndef PEFA_TOOLS_GC_H
#define PEFA_TOOLS_GC_H

/* A writer's temporary file <name>.tmp.XXXXXX (what a killed build leaves)
 * is removed when no build holds <name>.lock and it has not changed for this
 * many seconds (format [I5]). */
#define GC_TMP_AGE 600
/* ... and only if it starts with this many zero bytes, as a pefa writer's
 * temporary file does before its commit (the header placeholder and the
 * padding to the first section): any other file of that name is the user's */
#define GC_TMP_ZEROS 4096

/* Removes (or with dry_run only lists) the unreferenced id maps of dir,
 * printing one line per id map on stdout. Returns 0, or 1 after printing
 * an error on stderr (nothing removed, or a removal failed). */
int gc_idmaps(const char *dir, int dry_run);

#endif
