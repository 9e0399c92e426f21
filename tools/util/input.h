/*
 * input.h - CLI-side readers of users' input files (prefix tin_).
 *
 * Every reader has a _mem form that parses bytes already in memory (what the
 * fuzzers call) and a file form that maps the file and calls it. On failure a
 * reader returns -1 and writes one line into err (errlen bytes) that names the
 * file and the problem, with a row / line number where there is one, e.g.
 *   "queries.npy: row 17 has a NaN in column 3"
 *   "qrels.tsv:12: expected 2 or 3 tab-separated fields, found 1"
 * Nothing here aborts, asserts on input, or reads outside the given bytes.
 */
#ifndef PEFA_TOOLS_INPUT_H
#define PEFA_TOOLS_INPUT_H

#include <stddef.h>
#include <stdint.h>

/* ---- dense matrices: .npy (float32 / float16, C order, 2-D) and .fvecs ---- */
typedef struct {
    const void *data;   /* first row (inside the mapping / buffer) */
    uint64_t rows;
    uint32_t dim;
    int elem;           /* PEFA_TYPE_F32 or PEFA_TYPE_F16 (pefa.h) */
    size_t row_stride;  /* bytes from one row to the next (.fvecs: 4 + 4*dim) */
    void *map;          /* owned mapping (file form) or NULL */
    size_t map_len;
} tin_matrix;

/* Parses a .npy or .fvecs image of len bytes; name is used in messages.
 * The format is told by content: .npy starts with "\x93NUMPY"; anything else
 * is tried as .fvecs. m->data points into buf (no copy). Rejects: bad magic
 * or header, dtype other than <f4 / <f2 (big-endian, f8, ints: clear message
 * naming the dtype), fortran_order True, ndim != 2, zero rows or zero dim,
 * shape that does not match len (truncated / trailing bytes), fvecs rows whose
 * dim differs. Does NOT scan values (see tin_matrix_row). */
int tin_matrix_parse(const void *buf, size_t len, const char *name, tin_matrix *m,
                     char *err, size_t errlen);
/* Maps path read-only and parses it. */
int tin_matrix_open(const char *path, tin_matrix *m, char *err, size_t errlen);
void tin_matrix_close(tin_matrix *m);
/* Converts row i to f32 into out[dim]; returns -1 with a message naming the
 * row and column if a value is NaN or infinite. */
int tin_matrix_row(const tin_matrix *m, uint64_t i, float *out, const char *name,
                   char *err, size_t errlen);

/* ---- id lists: one id per line, aligned with rows ------------------------ */
typedef struct {
    char **ids;       /* ids[i] is a NUL-terminated string inside buf */
    uint64_t n;
    char *buf;        /* owned copy of the text */
} tin_idlist;

/* One id per line, exactly as written (nothing is stripped but the line end
 * "\n" or "\r\n"); empty lines at the end of the file are ignored, an empty
 * line before the last id is an error; every id must pass pefa_id_check (no
 * space, tab or control character, valid UTF-8, 1..PEFA_MAX_ID_BYTES bytes:
 * the message names the line and the byte); duplicates are an error naming
 * both lines. */
int tin_idlist_parse(const void *buf, size_t len, const char *name, tin_idlist *l,
                     char *err, size_t errlen);
int tin_idlist_read(const char *path, tin_idlist *l, char *err, size_t errlen);
void tin_idlist_free(tin_idlist *l);
/* ids "0", "1", ... "n-1" (when the user gives no id file); -1 on OOM */
int tin_idlist_rows(uint64_t n, tin_idlist *l);

/* ---- qrels: BEIR TSV "query-id<TAB>corpus-id<TAB>score" ------------------- */
typedef struct {
    const char *qid;   /* inside buf */
    const char *pid;   /* inside buf */
    float score;       /* 1 when the column is absent */
    uint64_t line;     /* 1-based line number in the file */
} tin_qrel;

typedef struct {
    tin_qrel *rows;
    uint64_t n;
    char *buf;
} tin_qrels;

/* Header line optional (a first line whose score field is not a number, or
 * that reads "query-id\tcorpus-id..." is skipped); score optional (1); blank
 * lines skipped; score must be finite; 2 or 3 fields else error with line.
 * Duplicated (qid, pid) pairs are kept as separate rows (the caller sums). */
int tin_qrels_parse(const void *buf, size_t len, const char *name, tin_qrels *q,
                    char *err, size_t errlen);
int tin_qrels_read(const char *path, tin_qrels *q, char *err, size_t errlen);
void tin_qrels_free(tin_qrels *q);

/* ---- a string -> row hash map for ids (used by build and query) ----------- */
typedef struct tin_idhash tin_idhash;
tin_idhash *tin_idhash_new(const tin_idlist *l); /* NULL on OOM; ids must be unique */
/* row of id, or -1 if absent */
int64_t tin_idhash_get(const tin_idhash *h, const char *id);
void tin_idhash_free(tin_idhash *h);

#endif
