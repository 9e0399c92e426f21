/* gc.c - removing id maps that no index names (gc.h, format [I5]). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pefa.h"
#include "util/gc.h"

typedef struct {
    char *name;     /* base name */
    int keep;       /* named by an index, or its build is running */
    int lockfd;     /* the build lock we hold, or -1 */
    const char *why;
} gc_cand;

typedef struct {
    const char *dir;
    gc_cand *c;
    size_t nc, capc;
    char **files;   /* every other regular file: maybe an index */
    size_t nf, capf;
    char **tmps;    /* a writer's temporary files: <name>.tmp.XXXXXX */
    size_t nt, capt;
    int refused;
} gc_state;

/* [I1] <name>.<32 lowercase hex>.ids, name not empty */
static int is_idmap_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 + 1 + 32 + 4 || strcmp(s + n - 4, ".ids") != 0 || s[n - 4 - 32 - 1] != '.') return 0;
    for (size_t i = n - 4 - 32; i < n - 4; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

/* a writer's temporary file (container/writer.c): <name>.tmp.XXXXXX */
static int is_tmp_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 + 5 + 6 || memcmp(s + n - 11, ".tmp.", 5) != 0) return 0;
    for (size_t i = n - 6; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))) return 0;
    return 1;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = (char *)malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int push(void **arr, size_t *n, size_t *cap, size_t elsize)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        void *p = realloc(*arr, nc * elsize);
        if (!p) return -1;
        *arr = p;
        *cap = nc;
    }
    (*n)++;
    return 0;
}

static int list_dir(gc_state *g)
{
    DIR *d = opendir(g->dir);
    struct dirent *e;
    if (!d) {
        fprintf(stderr, "pefa-dump: error: %s: cannot read the directory: %s\n", g->dir, strerror(errno));
        return 1;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        char *p = join(g->dir, e->d_name);
        if (!p || stat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            free(p);
            continue;
        }
        int tmp = is_tmp_name(e->d_name), idm = !tmp && is_idmap_name(e->d_name);
        if (tmp ? push((void **)&g->tmps, &g->nt, &g->capt, sizeof *g->tmps)
                : idm ? push((void **)&g->c, &g->nc, &g->capc, sizeof *g->c)
                      : push((void **)&g->files, &g->nf, &g->capf, sizeof *g->files)) {
            free(p);
            closedir(d);
            fprintf(stderr, "pefa-dump: error: out of memory\n");
            return 1;
        }
        if (tmp) {
            g->tmps[g->nt - 1] = p;
        } else if (idm) {
            free(p);
            g->c[g->nc - 1] = (gc_cand){strdup(e->d_name), 0, -1, NULL};
        } else {
            g->files[g->nf - 1] = p;
        }
    }
    closedir(d);
    return 0;
}

/* takes the build lock of candidate c when there is one; keeps c when a
 * build holds it (its index may not be committed yet) */
static void lock_candidate(gc_state *g, gc_cand *c)
{
    size_t n = strlen(c->name) - (1 + 32 + 4);
    char *lp = (char *)malloc(strlen(g->dir) + n + 8);
    struct stat a, b;
    int fd;
    if (!lp) {
        c->keep = 1;
        return;
    }
    snprintf(lp, strlen(g->dir) + n + 8, "%s/%.*s.lock", g->dir, (int)n, c->name);
    fd = open(lp, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        c->keep = 1;
        c->why = "a build of its index is running";
        close(fd);
        fd = -1;
    } else if (fd >= 0 && (fstat(fd, &a) != 0 || stat(lp, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev)) {
        close(fd); /* the build that held it has finished and removed it */
        fd = -1;
    }
    c->lockfd = fd;
    free(lp);
}

/* file f: an index naming an id map (kept), not an index, or unreadable */
static void read_file(gc_state *g, const char *f)
{
    pefa_index *ix;
    const char *name;
    int rc = pefa_index_open(f, &ix);
    if (rc == PEFA_ERR_NOT_PEFA || (rc == PEFA_ERR_IO && access(f, F_OK) != 0)) return; /* not an index, or gone */
    if (rc) {
        fprintf(stderr, "pefa-dump: error: %s: %s: it may be an index naming one of the id maps\n", f,
                pefa_last_error_detail());
        g->refused = 1;
        return;
    }
    rc = pefa_index_meta_get(ix, "idmap.file", &name);
    if (rc == 0) {
        for (size_t i = 0; i < g->nc; i++)
            if (strcmp(g->c[i].name, name) == 0) g->c[i].keep = 1;
    } else if (rc != PEFA_ERR_NOT_FOUND) {
        fprintf(stderr, "pefa-dump: error: %s: %s: cannot tell which id map it names\n", f, pefa_last_error_detail());
        g->refused = 1;
    }
    pefa_index_close(ix);
}

static int remove_unnamed(gc_state *g, int dry_run)
{
    size_t removed = 0, kept = 0;
    int status = 0;
    for (size_t i = 0; i < g->nc; i++) {
        char *p = join(g->dir, g->c[i].name);
        if (g->c[i].keep || !p) {
            kept++;
            if (g->c[i].why) printf("kept %s (%s)\n", p ? p : g->c[i].name, g->c[i].why);
        } else if (dry_run) {
            printf("would remove %s\n", p);
            removed++;
        } else if (unlink(p) == 0) {
            printf("removed %s\n", p);
            removed++;
        } else {
            fprintf(stderr, "pefa-dump: error: %s: cannot remove: %s\n", p, strerror(errno));
            status = 1;
        }
        free(p);
    }
    fprintf(stderr, "pefa-dump: %s: %zu id map%s %s, %zu named by an index or in use\n", g->dir, removed,
            removed == 1 ? "" : "s", dry_run ? "unnamed (not removed: --dry-run)" : "removed", kept);
    return status;
}

/* [I5] t is what a pefa writer leaves before its commit: a regular file (not
 * a link) that starts with 4096 zero bytes (the header placeholder and the
 * padding to the first section). Anything else of that name is the user's. */
static int is_writer_tmp(const char *t, struct stat *sb)
{
    unsigned char buf[GC_TMP_ZEROS];
    size_t got = 0;
    int fd;
    if (lstat(t, sb) != 0 || !S_ISREG(sb->st_mode) || sb->st_size < (off_t)sizeof buf) return 0;
    if ((fd = open(t, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) return 0;
    while (got < sizeof buf) {
        ssize_t r = read(fd, buf + got, sizeof buf - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got < sizeof buf) return 0;
    for (size_t i = 0; i < sizeof buf; i++)
        if (buf[i]) return 0;
    return 1;
}

/* [I5] temporary file t of a writer that is gone: no build holds
 * <name>.lock and it has not changed for PEFA_GC_TMP_AGE seconds (a writer
 * without a build lock, as pefa-shardset's, writes for seconds). Returns 1
 * when a removal failed. */
static int remove_stale_tmp(const char *t, int dry_run)
{
    size_t n = strlen(t) - 11;
    char *lp = (char *)malloc(n + 6);
    struct stat sb;
    int fd = -1, busy = 0, rc = 0;
    if (!lp) return 1;
    if (!is_writer_tmp(t, &sb)) { /* not a pefa writer's: not ours to list or remove */
        free(lp);
        return 0;
    }
    snprintf(lp, n + 6, "%.*s.lock", (int)n, t);
    if ((fd = open(lp, O_RDONLY | O_CLOEXEC)) >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) busy = 1;
    if (busy || time(NULL) - sb.st_mtime < GC_TMP_AGE) {
        if (busy) printf("kept %s (a build of %.*s is running)\n", t, (int)n, t);
        else printf("kept %s (written less than %d minutes ago)\n", t, GC_TMP_AGE / 60);
    } else if (dry_run) {
        printf("would remove %s (left by a writer that is gone)\n", t);
    } else if (unlink(t) == 0) {
        printf("removed %s (left by a writer that is gone)\n", t);
    } else {
        fprintf(stderr, "pefa-dump: error: %s: cannot remove: %s\n", t, strerror(errno));
        rc = 1;
    }
    if (fd >= 0) close(fd);
    free(lp);
    return rc;
}

int gc_idmaps(const char *dir, int dry_run)
{
    gc_state g;
    int status;
    memset(&g, 0, sizeof g);
    g.dir = dir;
    if (list_dir(&g)) return 1;
    for (size_t i = 0; i < g.nc; i++) lock_candidate(&g, &g.c[i]);
    for (size_t i = 0; i < g.nf; i++) read_file(&g, g.files[i]); /* after the locks: see indexes committed meanwhile */
    if (g.refused) {
        fprintf(stderr, "pefa-dump: error: %s: no id map removed (a file above could not be read as an index; "
                        "move it away or repair it, then run --gc again)\n",
                dir);
        status = 1;
    } else {
        status = remove_unnamed(&g, dry_run);
    }
    for (size_t i = 0; i < g.nt; i++) {
        if (!g.refused && remove_stale_tmp(g.tmps[i], dry_run)) status = 1;
        free(g.tmps[i]);
    }
    free(g.tmps);
    for (size_t i = 0; i < g.nc; i++) {
        if (g.c[i].lockfd >= 0) close(g.c[i].lockfd);
        free(g.c[i].name);
    }
    for (size_t i = 0; i < g.nf; i++) free(g.files[i]);
    free(g.c);
    free(g.files);
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "pefa-dump: error: writing to stdout failed\n");
        status = 1;
    }
    return status;
}
