/*
 * pefa.h - the one public header of libidx, the pefa library.
 *
 * pefa turns a frozen embedding model plus search logs into a better
 * retriever (PEFA, Chang et al., WSDM 2024) and serves it from one
 * memory-mapped index file. This header has four parts:
 *
 *   1. errors        one enum, pefa_strerror(), a per-thread detail message
 *   2. container     the versioned file format: writer, reader, verify
 *   3. id maps       users' string ids <-> rows, in LMDB beside the index
 *   4. PEFA          build an index from embeddings and qrels; search it
 *
 * All functions that can fail return 0 (PEFA_OK) or a negative pefa_error.
 * After a failure, pefa_last_error_detail() gives a one-line explanation
 * naming the file and the problem (kept per thread until the next failure).
 *
 * The on-disk format is specified in format/pefa-format-v1.md.
 */
#ifndef PEFA_H
#define PEFA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(PEFA_STATIC_ONLY)
#define PEFA_API __attribute__((visibility("default")))
#else
#define PEFA_API
#endif

/* ---- version ------------------------------------------------------------ */
#define PEFA_VERSION_MAJOR 0
#define PEFA_VERSION_MINOR 1
#define PEFA_VERSION_PATCH 0
#define PEFA_VERSION_NUMBER (PEFA_VERSION_MAJOR * 10000 + PEFA_VERSION_MINOR * 100 + PEFA_VERSION_PATCH)
/* on-disk format version this library writes (and the newest major it reads) */
#define PEFA_FORMAT_MAJOR 1
#define PEFA_FORMAT_MINOR 0

PEFA_API unsigned pefa_version_number(void);
PEFA_API const char *pefa_version_string(void);

/* ---- 1. errors ------------------------------------------------------------ */
#define PEFA_ERROR_LIST(X)                                                         \
    X(OK, 0, "success")                                                            \
    X(NOMEM, 1, "out of memory")                                                   \
    X(IO, 2, "input/output error")                                                 \
    X(NOT_PEFA, 3, "not a pefa index file")                                        \
    X(VERSION, 4, "unsupported pefa format version or feature")                    \
    X(TRUNCATED, 5, "file is truncated or has trailing bytes")                     \
    X(CORRUPT, 6, "file is corrupt")                                               \
    X(CHECKSUM, 7, "checksum mismatch")                                            \
    X(INVALID_ARG, 8, "invalid argument")                                          \
    X(NOT_FOUND, 9, "not found")                                                   \
    X(MISMATCH, 10, "files do not belong together")                                \
    X(BAD_INPUT, 11, "bad input data")                                             \
    X(STATE, 12, "call not valid in this state")

typedef enum {
#define PEFA_X_ENUM(name, num, msg) PEFA_ERR_##name = -(num),
    PEFA_ERROR_LIST(PEFA_X_ENUM)
#undef PEFA_X_ENUM
} pefa_error;
#define PEFA_OK PEFA_ERR_OK

/* Static text for an error code (never NULL). */
PEFA_API const char *pefa_strerror(int err);
/* The calling thread's last failure, with context ("idx.pefa: section 3
 * (VECTORS/passages): checksum mismatch"); "" if none. */
PEFA_API const char *pefa_last_error_detail(void);

/* ---- 2. container ------------------------------------------------------------
 * A pefa file is a header, sections at 4096-byte aligned offsets, and a
 * directory describing them. Sections are raw (used in place, zero copy) or
 * zstd-compressed (decompressed on demand, once, then cached). */

/* section kinds (format/ section catalogue) */
enum {
    PEFA_KIND_META = 1,            /* bytes: "key=value\n" lines */
    PEFA_KIND_VECTORS = 2,         /* f32/f16 [rows, dim]; target says which set */
    PEFA_KIND_Y_ROWPTR = 3,        /* u64 [n_queries + 1]: byte offsets into Y_ROWS */
    PEFA_KIND_Y_ROWS = 4,          /* bytes: delta-varint encoded rows of Y */
    PEFA_KIND_HNSW_INFO = 5,       /* bytes: 64-byte graph record; target = vector set */
    PEFA_KIND_HNSW_L0 = 6,         /* u32 [n, 1 + M0] */
    PEFA_KIND_HNSW_UPPER_IDS = 7,  /* u32 [n_upper] */
    PEFA_KIND_HNSW_UPPER_OFFS = 8, /* u64 [n_upper + 1] */
    PEFA_KIND_HNSW_UPPER_ADJ = 9   /* u32 [len] */
};
/* section targets: which vector set a VECTORS / HNSW_* section is about */
enum {
    PEFA_TARGET_NONE = 0,
    PEFA_TARGET_PASSAGES = 1,   /* P, unit rows */
    PEFA_TARGET_QUERIES = 2,    /* Q, training queries, unit rows */
    PEFA_TARGET_XS = 3,         /* [e_j, sqrt(1-|e_j|^2)], e_j = lam p_j + (1-lam) z_j: dim + 1 columns */
    PEFA_TARGET_XS_Z = 4        /* z_j = normalise(sum_i Y_ij q_i) */
};
enum { PEFA_CODEC_RAW = 0, PEFA_CODEC_ZSTD = 1 };
/* element types (same numbers on disk) */
enum { PEFA_TYPE_BYTES = 0, PEFA_TYPE_F32 = 1, PEFA_TYPE_F16 = 2, PEFA_TYPE_I8 = 3,
       PEFA_TYPE_U32 = 4, PEFA_TYPE_U64 = 5 };
#define PEFA_SECTION_REQUIRED 0x0001u
#define PEFA_MAX_DIMS 4

typedef struct {
    uint32_t kind;
    uint32_t target;
    uint16_t flags;                 /* PEFA_SECTION_REQUIRED */
    uint8_t codec;                  /* PEFA_CODEC_* */
    uint8_t elem;                   /* PEFA_TYPE_* */
    uint32_t ndim;                  /* 0 = opaque bytes */
    uint64_t shape[PEFA_MAX_DIMS];
    /* filled in by the library: */
    uint64_t offset, stored_size, raw_size, checksum;
} pefa_section_info;

typedef struct {
    uint16_t major, minor;
    uint64_t flags;
    uint8_t uuid[16];
    uint64_t file_size;
    uint32_t n_sections;
} pefa_file_info;

typedef struct pefa_writer pefa_writer;
typedef struct pefa_index pefa_index;

/* Writer: streams sections to "<path>.tmp.XXXXXX" in the same directory;
 * commit writes the directory and header, fsyncs, renames over path and
 * fsyncs the directory. Until commit succeeds, path is untouched; on any
 * error the temporary file is removed by abort (and by commit's failure).
 * Errors: NOMEM, IO (detail names the path and errno text), INVALID_ARG. */
PEFA_API int pefa_writer_open(const char *path, pefa_writer **out);
/* The random UUID the file will carry (to bind side files to it). */
PEFA_API void pefa_writer_uuid(const pefa_writer *w, uint8_t uuid[16]);
/* Starts a section: kind, target, flags, codec, elem, ndim, shape are read
 * from desc (offset/sizes/checksum ignored). STATE if a section is already
 * open; INVALID_ARG if the (kind, target) pair was used, ndim > 4, or the
 * codec, type or flags are unknown. A zstd section with a shape is streamed
 * (its size is pledged); an opaque one (ndim 0) is buffered until end. */
PEFA_API int pefa_writer_begin(pefa_writer *w, const pefa_section_info *desc);
PEFA_API int pefa_writer_write(pefa_writer *w, const void *data, size_t len);
/* Ends the section; INVALID_ARG if the bytes written disagree with the shape;
 * NOMEM if zstd fails (it fails only for lack of memory). */
PEFA_API int pefa_writer_end(pefa_writer *w);
/* begin + write + end */
PEFA_API int pefa_writer_add(pefa_writer *w, const pefa_section_info *desc, const void *data,
                             size_t len);
PEFA_API int pefa_writer_commit(pefa_writer *w); /* frees w in every case */
PEFA_API void pefa_writer_abort(pefa_writer *w); /* removes the temporary file, frees w */

/* Reader. Open maps the file read-only and validates the header and the
 * directory only (magic, version, checksums of header and directory, exact
 * file length, every section's bounds, alignment, overlap, and sizes
 * consistent with shape and type): O(number of sections), no section data is
 * read. Errors: IO (cannot open/map), NOT_PEFA (bad magic), VERSION (newer
 * major, required flag or required section kind not understood), TRUNCATED
 * (length differs from the header's), CORRUPT, CHECKSUM (header/directory).
 * The returned index is immutable and safe to share between threads. */
PEFA_API int pefa_index_open(const char *path, pefa_index **out);
PEFA_API void pefa_index_close(pefa_index *ix);
PEFA_API const char *pefa_index_path(const pefa_index *ix);
PEFA_API void pefa_index_file_info(const pefa_index *ix, pefa_file_info *out);
PEFA_API uint32_t pefa_index_section_count(const pefa_index *ix);
/* INVALID_ARG if i is out of range */
PEFA_API int pefa_index_section_info(const pefa_index *ix, uint32_t i, pefa_section_info *out);
/* index of the section (kind, target), or -1 */
PEFA_API int pefa_index_find(const pefa_index *ix, uint32_t kind, uint32_t target);
/* Section bytes: raw sections point into the mapping (zero copy); zstd ones
 * are checksum-checked, decompressed once (thread-safe) and cached until
 * close. Errors: INVALID_ARG, NOMEM, CHECKSUM, CORRUPT (zstd stream bad or
 * its size differs from raw_size). */
PEFA_API int pefa_index_section_data(pefa_index *ix, uint32_t i, const void **data,
                                     uint64_t *size);
/* Checks everything: every section checksum, zero padding between sections,
 * zstd sections decompress to raw_size, and the structural invariants of the
 * PEFA sections (CSR offsets, graph neighbour ids, metadata syntax), and
 * the id map file the index names (its size and XXH3 recorded in META). On
 * failure returns the error and, if bad_section is not NULL, the index of
 * the failing section (or -1 for header/directory/padding). */
PEFA_API int pefa_index_verify(pefa_index *ix, int *bad_section);

/* Metadata (the META section: "key=value" lines). Parsed on first use. */
PEFA_API int pefa_index_meta_count(pefa_index *ix);
PEFA_API int pefa_index_meta_at(pefa_index *ix, int i, const char **key, const char **value);
/* value or NULL */
PEFA_API const char *pefa_index_meta_get(pefa_index *ix, const char *key);

PEFA_API const char *pefa_kind_name(uint32_t kind);
PEFA_API const char *pefa_target_name(uint32_t target);
PEFA_API const char *pefa_codec_name(uint8_t codec);
PEFA_API const char *pefa_type_name(uint8_t elem);
PEFA_API size_t pefa_type_size(uint8_t elem); /* 0 for unknown */

/* ---- 3. PEFA: build ----------------------------------------------------------
 * Rows are L2-normalised (a zero row stays zero). Y is given as (query row,
 * passage row, value) triplets; duplicates add up. */
typedef struct {
    uint32_t q, p;
    float y;
} pefa_pair;

typedef struct {
    float *passages;         /* n_passages x dim, normalised IN PLACE */
    uint32_t n_passages;
    uint32_t dim;
    float *queries;          /* n_queries x dim training queries, normalised in place; may be NULL */
    uint32_t n_queries;
    const pefa_pair *pairs;  /* relevance triplets (rows), may be NULL if n_pairs == 0 */
    uint64_t n_pairs;
    const char *const *passage_ids; /* NULL: external ids are row numbers */
    const char *const *query_ids;   /* NULL: row numbers */
    const char *const *meta_keys;   /* extra provenance written into META */
    const char *const *meta_values;
    uint32_t n_meta;
} pefa_build_input;

typedef void (*pefa_progress_fn)(void *ctx, const char *stage, uint64_t done, uint64_t total);

typedef struct {
    float lambda;            /* PEFA-XS mixing weight fixed in the XS graph; default 0.5 */
    uint32_t M;              /* HNSW max degree (level 0 gets 2M); default 32 */
    uint32_t ef_construction;/* default 500 */
    uint64_t seed;           /* default 42 */
    uint32_t threads;        /* 0 = all online CPUs */
    uint8_t vector_type;     /* PEFA_TYPE_F32 (default) or PEFA_TYPE_F16 storage */
    uint8_t y_codec;         /* PEFA_CODEC_RAW (default, mapped in place) or PEFA_CODEC_ZSTD */
    uint8_t no_graphs;       /* 1: no HNSW graphs (exact search only) */
    pefa_progress_fn progress;
    void *progress_ctx;
} pefa_build_params;
#define PEFA_BUILD_PARAMS_INIT {0.5f, 32, 500, 42, 0, PEFA_TYPE_F32, PEFA_CODEC_RAW, 0, NULL, NULL}

typedef struct {
    double seconds_normalise, seconds_y, seconds_xs, seconds_graphs, seconds_write, seconds_total;
    uint64_t nnz;            /* distinct (query, passage) pairs in Y */
    uint64_t zero_passages, zero_queries; /* all-zero rows found */
    uint64_t passages_without_queries;   /* XS rows with z = 0 */
    uint64_t file_bytes, idmap_bytes;
    uint8_t uuid[16];
} pefa_build_stats;

/* Builds an index file at out_path (and, when ids are given, its id map
 * "<out_path>.<uuid>.ids" beside it), atomically: on failure nothing is left
 * at out_path. Errors: INVALID_ARG (dims, counts, pair rows out of range),
 * BAD_INPUT (NaN/Inf, duplicate ids; detail names the row), NOMEM, IO. */
PEFA_API int pefa_build(const char *out_path, const pefa_build_input *in,
                        const pefa_build_params *p, pefa_build_stats *stats);

/* ---- 4. PEFA: search -------------------------------------------------------- */
enum { PEFA_MODE_ERM = 0, PEFA_MODE_XS = 1, PEFA_MODE_XL = 2 };
enum { PEFA_KNN_V0 = 0, PEFA_KNN_V1 = 1 };         /* w_i = <q,q_i>/k  or  <q,q_i> */
enum { PEFA_XL_EXACT = 0, PEFA_XL_SPARSE_ADD = 1 };

typedef struct {
    int mode;          /* PEFA_MODE_* */
    uint32_t k;        /* hits wanted; default 10 */
    uint32_t ef;       /* HNSW beam; the beam used is max(ef, wanted); default 300 */
    float lambda;      /* XL: mixing weight (default 0.1 if < 0); XS: < 0 uses the build lambda,
                          another value re-scores with the stored z vectors */
    uint32_t knn;      /* XL: neighbours among training queries; default 32 */
    uint32_t topk_p;   /* XL: ERM candidates; default 500 */
    int knn_norm;      /* PEFA_KNN_V0 (default) or V1 */
    int xl_scoring;    /* PEFA_XL_EXACT (default) or PEFA_XL_SPARSE_ADD */
    int exact;         /* 1: brute force over the mapped sections, no graph */
} pefa_query_params;
#define PEFA_QUERY_PARAMS_INIT {PEFA_MODE_ERM, 10, 300, -1.0f, 32, 500, PEFA_KNN_V0, PEFA_XL_EXACT, 0}

typedef struct {
    uint32_t row;      /* passage row */
    float score;
} pefa_hit;

typedef struct {
    uint32_t n_passages, n_queries, dim;
    uint64_t nnz;
    float xs_lambda;
    int has_xs, has_z;
    int has_graph_passages, has_graph_xs, has_graph_queries;
    uint8_t vector_type;
} pefa_model_info;

/* Describes the PEFA content of an opened index (reads META and the
 * directory only). Errors: CORRUPT (META missing keys or inconsistent with
 * sections), VERSION. */
PEFA_API int pefa_model_describe(pefa_index *ix, pefa_model_info *out);

/* A searcher holds one thread's scratch; create one per thread. The index
 * must outlive it. */
typedef struct pefa_searcher pefa_searcher;
PEFA_API int pefa_searcher_new(pefa_index *ix, pefa_searcher **out);
PEFA_API void pefa_searcher_free(pefa_searcher *s);
/* Top-k passages for query q (dim floats, need not be normalised; a NaN is
 * INVALID_ARG). hits must hold p->k entries; *n_hits gets the count (fewer
 * than k only if the index has fewer passages). Errors: INVALID_ARG (mode
 * needs sections the index lacks: detail says which), CORRUPT, NOMEM. */
PEFA_API int pefa_search(pefa_searcher *s, const float *q, const pefa_query_params *p,
                         pefa_hit *hits, uint32_t *n_hits);

/* Why passage_row scored what it did under PEFA-XL: the training queries
 * among q's neighbours whose Y rows contain the passage, with their
 * contribution (1-lam) * w_i * Y_ij. */
typedef struct {
    uint32_t query_row;
    float similarity;    /* <q, q_i> */
    float y;             /* Y_ij */
    float contribution;  /* (1-lam) * w_i * Y_ij */
} pefa_contrib;
PEFA_API int pefa_explain(pefa_searcher *s, const float *q, const pefa_query_params *p,
                          uint32_t passage_row, pefa_contrib *out, uint32_t max, uint32_t *n);

/* ---- 5. id maps (LMDB beside the index) ------------------------------------ */
typedef struct pefa_idmap pefa_idmap;
enum { PEFA_IDS_PASSAGES = 0, PEFA_IDS_QUERIES = 1 };
/* Opens the id map the index names in META ("idmap.file"), read-only and
 * lock-free, and checks that it is exactly the file the index was built with:
 * its size and XXH3-64 (recorded in META) and the UUID inside it. LMDB trusts
 * its data file, so nothing else of it is read before these checks pass.
 * Hashing costs one sequential read of the id map (about 1 s per 10 GB); a
 * host that has run pefa_index_verify / `pefa-dump --verify` on its copy can
 * skip it with PEFA_IDMAP_TRUSTED (the size is still checked). If the index
 * has no id map, ids are row numbers and this succeeds. Errors: IO (missing
 * file, detail names it), MISMATCH (UUID differs), CORRUPT (size),
 * CHECKSUM. Thread-safe. */
#define PEFA_IDMAP_TRUSTED 0x1u
PEFA_API int pefa_idmap_open(pefa_index *ix, pefa_idmap **out);
PEFA_API int pefa_idmap_open_ex(pefa_index *ix, unsigned flags, pefa_idmap **out);
PEFA_API void pefa_idmap_close(pefa_idmap *m);
/* external id of a row into buf (NUL-terminated); NOT_FOUND, INVALID_ARG if cap too small */
PEFA_API int pefa_idmap_id(pefa_idmap *m, int which, uint32_t row, char *buf, size_t cap);
/* row of an external id; NOT_FOUND */
PEFA_API int pefa_idmap_row(pefa_idmap *m, int which, const char *id, uint32_t *row);

#ifdef __cplusplus
}
#endif
#endif /* PEFA_H */
