/*
 * paths.h - internal: the files an index names (its id map, a set's shards)
 * are found beside it.
 */
#ifndef PEFA_COMMON_PATHS_H
#define PEFA_COMMON_PATHS_H

/* The path of file `name` beside `base` (malloc'd; NULL when memory is
 * short): in base's directory as base is spelt. When base is a symbolic
 * link and nothing named `name` is beside the link, beside the file the
 * link resolves to, if it is there (a deploy that flips a link at an index
 * in a build directory, format [I4]). */
char *pefa__beside(const char *base, const char *name);

#endif
