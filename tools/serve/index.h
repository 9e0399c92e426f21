/*
 * index.h - pefa-serve: one loaded index or shard set (a "generation": the
 * mappings and id maps of pefa_set_open, which also keeps the searchers)
 * with a reference count, and the slot that names the one serving now
 * (prefix srv_).
 *
 * A request takes a reference (srv_slot_acquire) and answers entirely from
 * that generation; a reload loads and verifies a new one, then swaps it in.
 * The old one is unmapped when its last request lets go (srv_index_release),
 * so no request ever sees two files or a closed one.
 */
#ifndef PEFA_SERVE_INDEX_H
#define PEFA_SERVE_INDEX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pefa.h"

/* what the path named when it was opened: a rename shows as another inode */
typedef struct {
    dev_t dev;
    ino_t ino;
    off_t size;
    long long mtime_ns;
} srv_file_id;

typedef struct srv_index srv_index;
struct srv_index {
    pefa_index *head;     /* the file at the path: the index, or the set's manifest */
    pefa_set *set;        /* what answers: the index as a set of one, or the set */
    pefa_model_info mi;   /* the whole set's counts */
    char uuid[37];
    srv_file_id id;
    double loaded_unix;   /* when it was swapped in (wall clock) */
    double load_seconds;  /* open + verify + id map */
    char *info_json;      /* GET /info (summary of pefa-dump --json) */
    size_t info_len;
    atomic_int refs;      /* the slot holds one, each request one */
};

/* Opens path (an index, or a shard set's manifest and every shard) and
 * verifies it: pefa_set_verify (every section checksum, every shard's XXH3
 * as the manifest records it, the id maps' XXH3 too unless trust_idmap:
 * then only their size). Returns 0 with *out holding one reference, or -1
 * with err naming the file. */
int srv_index_load(const char *path, int trust_idmap, srv_index **out, char *err, size_t errlen);
/* Drops a reference; the last one closes the set (its searchers, id maps
 * and mappings), logging "unmap". */
void srv_index_release(srv_index *g);

/* stat(path) as a srv_file_id; -1 if it cannot be read */
int srv_file_id_of(const char *path, srv_file_id *out);
int srv_file_id_same(const srv_file_id *a, const srv_file_id *b);

typedef struct {
    pthread_mutex_t mu;
    srv_index *cur;
} srv_slot;

void srv_slot_init(srv_slot *s, srv_index *first); /* takes first's reference */
/* the serving generation with a reference taken (release it when done) */
srv_index *srv_slot_acquire(srv_slot *s);
/* serves g from now on (takes its reference) and releases the old one */
void srv_slot_swap(srv_slot *s, srv_index *g);
void srv_slot_destroy(srv_slot *s);

#endif
