/* paths.c - files beside an index (paths.h) */
#define _XOPEN_SOURCE 700 /* realpath */
#include "common/paths.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "dir of base" + name */
static char *join_beside(const char *base, const char *name)
{
    const char *slash = strrchr(base, '/');
    size_t dl = slash ? (size_t)(slash - base) + 1 : 0;
    char *p = (char *)malloc(dl + strlen(name) + 1);
    if (!p) return NULL;
    memcpy(p, base, dl);
    strcpy(p + dl, name);
    return p;
}

char *pefa__beside(const char *base, const char *name)
{
    struct stat sb;
    char *p = join_beside(base, name), *real, *q;
    if (!p || access(p, F_OK) == 0 || lstat(base, &sb) != 0 || !S_ISLNK(sb.st_mode)) return p;
    if (!(real = realpath(base, NULL))) return p;
    q = join_beside(real, name);
    free(real);
    if (q && access(q, F_OK) == 0) {
        free(p);
        return q;
    }
    free(q);
    return p; /* not there either: messages name the path as the user gave it */
}
