/*
 * build_private.h - internal: the state pefa_build's stages share
 * (build.c runs them; build_rows.c streams the row sections).
 */
#ifndef PEFA_BUILD_PRIVATE_H
#define PEFA_BUILD_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "container/container.h"
#include "hnsw/hnsw.h"
#include "pefa.h"
#include "pefa/ycsr.h"

/* rows are streamed through buffers of about this many bytes */
#define BUILD_BLOCK_BYTES (8u << 20)

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} strbuf;

/* one of the caller's row arrays */
typedef struct {
    const char *rows;
    uint8_t type;              /* f32 or f16 */
    size_t step;               /* bytes from one row to the next */
    const char *name;
    uint32_t first;            /* global row number of rows[0] (for messages) */
} build_src;

typedef struct {
    const char *out;
    pefa_build_input in;
    pefa_build_params p;
    pefa_build_stats st;
    uint32_t n_p, n_q, dim, threads;
    uint32_t p_from, n_total;  /* this build's passages: global rows [p_from, p_from + n_p) of n_total */
    int has_q;                 /* training queries given (all shards read them) */
    int store_q;               /* and stored here: unsharded, or shard 0 */
    build_src src_p, src_q;    /* the caller's rows (src_p starts at p_from) */
    double *ps, *qs;           /* 1/|row| of every passage and training query (0: all-zero row) */
    float *S;                  /* |S_j|, S_j = sum_i Y_ij q_i (XS_NORMS) */
    ycsr y, yt;                /* Y (queries x global passages) and Y^T */
    pefa_writer *w;
    strbuf meta;
    strbuf meta_tune;          /* tune.* lines, when tuned */
    char *idpath;              /* "<out>.<uuid>.ids" when ids are given */
    int committed;             /* the index was renamed into place */
    char *lockpath;            /* "<out>.lock", held from start to commit [I5] */
    int lockfd;
    int ip;                    /* similarity ip: rows as given, z_j the mean, e_j scaled ([X1]) */
    float xs_scale;            /* ip: E rows are e_j / xs_scale; cosine: 1 */
    uint8_t rows_type;         /* the VECTORS sections' type: f32, or f16 (for f16 and i8) */
    const char *stage;         /* for graph progress */
} build_ctx;

double pefa__build_now(void);
void pefa__build_progress(const build_ctx *c, const char *stage, uint64_t done, uint64_t total);

/* build_rows.c: the stages that stream rows into sections */
int pefa__build_rows(build_ctx *c);   /* P and Q: checked, normalised, written; ps/qs */
int pefa__build_z(build_ctx *c);      /* XS_Z and S from Y^T and Q */
int pefa__build_e(build_ctx *c);      /* XS (e_j and its unit column) at c->p.lambda */
int pefa__build_graphs(build_ctx *c); /* HNSW over P, E, Q read back from the file; int8 codes */

#endif
