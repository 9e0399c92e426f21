/*
 * pefa.h - the one public header of libidx, the pefa library.
 *
 * pefa turns a frozen embedding model plus search logs into a better
 * retriever (PEFA, Chang et al., WSDM 2024) and serves it from one
 * memory-mapped index file. This header has these parts:
 *
 *   0. conventions   versions, limits, errors, structs that can grow
 *   1. utilities     f16 conversion, file digests, SIMD kernel choice
 *   2. container     the versioned file format: writer, reader, verify, META
 *   3. PEFA: build   an index from embeddings and relevance pairs
 *   4. PEFA: search  ERM, PEFA-XS, PEFA-XL; one query or a batch; explain
 *   5. id maps       users' string ids <-> rows, in LMDB beside the index
 *
 * The on-disk format is specified in format/pefa-format-v1.md; the layers
 * behind this header are drawn in docs/architecture.md.
 *
 * ---- Conventions -------------------------------------------------------------
 * Errors: every function that can fail returns 0 (PEFA_OK) or a negative
 * pefa_error. After a failure, pefa_last_error_detail() gives one line naming
 * the file or field and the problem; it is kept per thread until that
 * thread's next failure.
 *
 * Threads: a pefa_index is immutable once opened (its lazily built caches are
 * guarded internally): every function taking a pefa_index may be called from
 * any number of threads at once, except pefa_index_close, which needs every
 * other use (searchers, id maps, views) to have ended. A pefa_searcher and a
 * pefa_writer belong to one thread at a time. A pefa_idmap may be shared.
 *
 * Lifetimes: a pointer into an index (section data, META strings, names)
 * stays valid until pefa_index_close; static strings (names, strerror) live
 * forever; nothing the library returns is freed by the caller unless the
 * function says so.
 *
 * Structs that can grow (pefa_build_input, pefa_build_params, pefa_build_stats,
 * pefa_query_params, pefa_model_info) start with `uint32_t size`: the caller
 * sets it to sizeof the struct as it was compiled (the _INIT macros do; from
 * C++, zero-initialise and set .size), or leaves it 0, which means the
 * layout of library 0.2. The library reads and
 * writes only that many bytes, so a caller built against an older header
 * keeps working, and fields it does not know take their defaults.
 * A zero-filled params struct means "every default": each field documents
 * what 0 means. The few fields for which 0 is a meaningful value (lambda,
 * seed) are used only when their bit is in `set`.
 *
 * ABI: while the version is 0.x, every minor release may change the ABI and
 * the shared library's SONAME carries major.minor (libpefa.so.0.2). From 1.0
 * on, releases only add (functions, struct fields at the end, enum values)
 * and the SONAME is libpefa.so.1.
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

/* ---- 0. versions, limits, errors ---------------------------------------------- */
#define PEFA_VERSION_MAJOR 0
#define PEFA_VERSION_MINOR 2
#define PEFA_VERSION_PATCH 0
#define PEFA_VERSION_NUMBER (PEFA_VERSION_MAJOR * 10000 + PEFA_VERSION_MINOR * 100 + PEFA_VERSION_PATCH)
/* on-disk format version this library writes (and the newest major it reads) */
#define PEFA_FORMAT_MAJOR 1
#define PEFA_FORMAT_MINOR 2

PEFA_API unsigned pefa_version_number(void);
PEFA_API const char *pefa_version_string(void);

/* Limits (each defined here once and used everywhere in the library and tools) */
#define PEFA_MAX_ID_BYTES 511u    /* an external id: 1..511 bytes (pefa_id_check) */
#define PEFA_MAX_DIM 65536u       /* embedding dimension */
#define PEFA_MAX_M 2048u          /* HNSW degree M (level 0 holds up to 2M) */
#define PEFA_MAX_K 100000u        /* hits per query */
#define PEFA_MAX_THREADS 256u     /* build / batch threads */

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

/* Static text for an error code (never NULL). Thread-safe. */
PEFA_API const char *pefa_strerror(int err);
/* The calling thread's last failure, with context ("idx.pefa: section 3
 * (VECTORS/passages): checksum mismatch"); "" if none. Valid until the
 * thread's next failing call. */
PEFA_API const char *pefa_last_error_detail(void);

/* element types (the same numbers are used on disk) */
enum { PEFA_TYPE_BYTES = 0, PEFA_TYPE_F32 = 1, PEFA_TYPE_F16 = 2, PEFA_TYPE_I8 = 3,
       PEFA_TYPE_U32 = 4, PEFA_TYPE_U64 = 5 };
PEFA_API const char *pefa_type_name(uint8_t elem); /* "f32", ...; "unknown" */
PEFA_API size_t pefa_type_size(uint8_t elem);      /* bytes per element; 0 for unknown */

/* ---- 1. utilities -------------------------------------------------------------- */
/* IEEE binary16 <-> binary32, n values (round to nearest even). Thread-safe. */
PEFA_API void pefa_f16_to_f32(const uint16_t *src, float *dst, size_t n);
PEFA_API void pefa_f32_to_f16(const float *src, uint16_t *dst, size_t n);
/* Size and XXH3-64 of a whole file, read sequentially. IO names the path. */
PEFA_API int pefa_file_digest(const char *path, uint64_t *bytes, uint64_t *xxh3);
/* The inner-product kernels are chosen once, at first use, from what the CPU
 * supports: "avx512-vnni" (AVX-512 with VNNI for int8 codes), "avx512",
 * "avx2" (AVX2+FMA, F16C for f16 rows) or "scalar". pefa_kernel_name() says
 * which is in use. pefa_kernel_select("scalar" | "avx2" | "avx512" |
 * "avx512-vnni" | "auto") overrides the choice for the whole process;
 * INVALID_ARG if the CPU lacks it. Call it before any search or build starts:
 * it is not synchronised with running searches. */
PEFA_API const char *pefa_kernel_name(void);
PEFA_API int pefa_kernel_select(const char *name);

/* ---- 2. container ---------------------------------------------------------------
 * A pefa file is a header, sections at 4096-byte aligned offsets, and a
 * directory describing them. Sections are raw (used in place, zero copy) or
 * zstd-compressed (decompressed on demand, once, then cached). */

/* section kinds (format/ section catalogue) */
enum {
    PEFA_KIND_META = 1,            /* bytes: "key=value\n" lines */
    PEFA_KIND_VECTORS = 2,         /* f32/f16 [rows, columns]; target says which set */
    PEFA_KIND_Y_ROWPTR = 3,        /* u64 [n_queries + 1]: byte offsets into Y_ROWS */
    PEFA_KIND_Y_ROWS = 4,          /* bytes: delta-varint encoded rows of Y */
    PEFA_KIND_HNSW_INFO = 5,       /* bytes: 64-byte graph record; target = vector set */
    PEFA_KIND_HNSW_L0 = 6,         /* u32 [n, 1 + M0] */
    PEFA_KIND_HNSW_UPPER_IDS = 7,  /* u32 [n_upper] */
    PEFA_KIND_HNSW_UPPER_OFFS = 8, /* u64 [n_upper + 1] */
    PEFA_KIND_HNSW_UPPER_ADJ = 9,  /* u32 [len] */
    PEFA_KIND_XS_NORMS = 10,       /* f32 [n_passages]: |S_j|, S_j = sum_i Y_ij q_i (format 1.1) */
    PEFA_KIND_CODES = 11,          /* i8 [rows, columns]: int8 codes of VECTORS/target (format 1.2) */
    PEFA_KIND_CODE_SCALES = 12     /* f32 [columns]: their per-dimension scales (format 1.2) */
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

/* header flags (format [H5]: bits 0..31 must be understood by a reader) */
#define PEFA_FILE_FLAG_METRIC_IP 0x1u /* raw inner product: rows stored as given,
                                         queries not normalised (META pefa.metric=ip) */

typedef struct {
    uint16_t major, minor;
    uint64_t flags;                 /* PEFA_FILE_FLAG_* */
    uint8_t uuid[16];               /* RFC 4122 byte order, as printed */
    uint64_t file_size;
    uint32_t n_sections;
} pefa_file_info;

typedef struct pefa_writer pefa_writer;
typedef struct pefa_index pefa_index;

/* Writer: streams sections to "<path>.tmp.XXXXXX" in the same directory.
 * Commit writes the directory and header, fsyncs, renames the temporary file
 * over path (the one commit point) and fsyncs the directory. Before the
 * rename, path is untouched and any failure removes the temporary file. If
 * the rename succeeded but the directory fsync fails, commit returns IO with
 * a detail saying the file is in place but may not survive a power loss.
 * Open, and commit again just before its rename, refuse a path where
 * something other than a regular file exists (see pefa_output_check).
 * Errors: NOMEM, IO (detail names the path and errno text), INVALID_ARG. */
PEFA_API int pefa_writer_open(const char *path, pefa_writer **out);
/* The random (version 4) UUID the file will carry, to bind side files to it. */
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
/* What an index file may replace: the one rule, for every writer of index
 * files. A path where a directory, device, FIFO or socket exists is never
 * replaced, with or without force (a symlink is judged by what it points
 * to): INVALID_ARG naming the path and what is there. Every writer applies
 * this half itself (pefa_writer_open and commit, hence pefa_build and
 * pefa_set_write). pefa_output_check, for the tools and bindings that write
 * index files, adds the other half: an existing regular file that is not a
 * pefa index (or cannot be read to tell) is refused with NOT_PEFA unless
 * replace_non_index is set. 0 when nothing is there or a pefa index (even a
 * damaged one) is; call it before the work that leads to the write. */
PEFA_API int pefa_output_check(const char *path, int replace_non_index);

/* Reader. Open maps the file read-only and validates the header and the
 * directory only (magic, version, checksums of header and directory, exact
 * file length, every section's bounds, alignment, overlap, and sizes
 * consistent with shape and type): O(number of sections), no section data is
 * read. Errors: IO (cannot open/map), NOT_PEFA (bad magic), VERSION (newer
 * major, required flag or required section kind not understood), TRUNCATED
 * (length differs from the header's), CORRUPT, CHECKSUM (header/directory).
 * A file replaced by rename keeps serving from the old mapping; a file
 * truncated or rewritten in place makes readers fault (SIGBUS): deploy by
 * copy to a temporary name, verify, rename (README, "Deploying"). */
PEFA_API int pefa_index_open(const char *path, pefa_index **out);
PEFA_API void pefa_index_close(pefa_index *ix);
PEFA_API const char *pefa_index_path(const pefa_index *ix);
PEFA_API void pefa_index_file_info(const pefa_index *ix, pefa_file_info *out);
PEFA_API uint32_t pefa_index_section_count(const pefa_index *ix);
/* INVALID_ARG if i is out of range */
PEFA_API int pefa_index_section_info(const pefa_index *ix, uint32_t i, pefa_section_info *out);
/* index (>= 0) of the understood section (kind, target), or NOT_FOUND */
PEFA_API int pefa_index_find(const pefa_index *ix, uint32_t kind, uint32_t target);
/* Section bytes: raw sections point into the mapping (zero copy); zstd ones
 * are checksum-checked, decompressed once (thread-safe) and cached until
 * close. Errors: INVALID_ARG, VERSION (kind or codec not understood), NOMEM,
 * CHECKSUM, CORRUPT (zstd stream bad or its size differs from raw_size). */
PEFA_API int pefa_index_section_data(pefa_index *ix, uint32_t i, const void **data,
                                     uint64_t *size);
/* Container verification: every section checksum, zero padding between
 * sections, zstd sections decompress to raw_size. Reads the whole file; knows
 * nothing of what the sections mean (pefa_verify checks that). On failure
 * *bad_section (if not NULL) is the failing section, or -1 for
 * header/directory/padding. */
PEFA_API int pefa_index_verify(pefa_index *ix, int *bad_section);

/* Metadata (the META section: "key=value" lines), parsed on first use.
 * meta_count returns the number of keys (>= 0) or an error (CORRUPT). */
PEFA_API int pefa_index_meta_count(pefa_index *ix);
PEFA_API int pefa_index_meta_at(pefa_index *ix, int i, const char **key, const char **value);
/* 0 and *value, NOT_FOUND if the key is absent, or the error that META has
 * (CORRUPT, CHECKSUM, NOMEM). */
PEFA_API int pefa_index_meta_get(pefa_index *ix, const char *key, const char **value);

PEFA_API const char *pefa_kind_name(uint32_t kind);
PEFA_API const char *pefa_target_name(uint32_t target);
PEFA_API const char *pefa_codec_name(uint8_t codec);

/* ---- 3. PEFA: build ------------------------------------------------------------
 * With the cosine metric (the default) rows are L2-normalised (a zero row
 * stays zero) into the library's own storage (in double: any finite f32 row
 * normalises); with PEFA_SIMILARITY_IP they are copied as given, so a row's
 * squared norm must be at most FLT_MAX (else inner products overflow to inf)
 * and, stored as f16, its values at most 65504: BAD_INPUT naming the row
 * otherwise. The caller's arrays are read, never written. Y is given as
 * (query row, passage row, value) triplets, values > 0 (pefa_pairs_merge
 * makes them so from raw judgements); duplicates add up. */
enum {
    PEFA_SIMILARITY_COSINE = 0, /* rows and queries L2-normalised: scores are cosines */
    PEFA_SIMILARITY_IP = 1      /* raw inner product: norms carry signal (format 12.2) */
};
typedef struct {
    uint32_t q, p;
    float y;
} pefa_pair;
/* The qrels rule, for callers that turn relevance judgements into pairs
 * (pefa-build and Python's pefa.build use it): a (query, passage) pair's
 * relevance is the sum of its judgements, and a pair whose total is <= 0 is
 * not relevant, so it is left out (never given a weight that would push its
 * passage down). Sorts pairs[0..*n) by (q, p), sums duplicates and keeps the
 * pairs with a total > 0 at the front, in place; *n gets how many were kept
 * and *left_out (if not NULL) how many distinct pairs were left out.
 * BAD_INPUT (naming the pair) if a value is NaN or infinite. */
PEFA_API int pefa_pairs_merge(pefa_pair *pairs, uint64_t *n, uint64_t *left_out);

typedef struct {
    uint32_t size;                  /* sizeof(pefa_build_input) or 0 */
    const void *passages;           /* n_passages rows of dim values */
    uint8_t passages_type;          /* PEFA_TYPE_F32 (0 = f32) or PEFA_TYPE_F16 */
    uint64_t passages_stride;       /* bytes from row to row; 0 = packed */
    uint32_t n_passages;
    uint32_t dim;
    const void *queries;            /* training queries, or NULL */
    uint8_t queries_type;
    uint64_t queries_stride;
    uint32_t n_queries;
    const pefa_pair *pairs;         /* relevance triplets (rows); NULL if n_pairs == 0 */
    uint64_t n_pairs;
    const char *const *passage_ids; /* NULL: external ids are row numbers; each id must
                                       pass pefa_id_check (BAD_INPUT names the row) */
    const char *const *query_ids;   /* NULL: row numbers; as passage_ids */
    const char *const *meta_keys;   /* extra provenance written into META */
    const char *const *meta_values;
    uint32_t n_meta;
    const char *passages_name;      /* names in messages (e.g. the file); NULL: "passages" */
    const char *queries_name;       /* NULL: "training queries" */
} pefa_build_input;
#define PEFA_BUILD_INPUT_INIT {.size = sizeof(pefa_build_input)}

/* Progress: called with a stage name, done and total units; the build calls
 * it from its worker threads, one call at a time (never concurrently). */
typedef void (*pefa_progress_fn)(void *ctx, const char *stage, uint64_t done, uint64_t total);

#define PEFA_SET_LAMBDA 0x1u        /* .lambda is given (0 is a valid lambda) */
#define PEFA_SET_SEED 0x2u          /* .seed is given (0 is a valid seed) */
/* pefa_query_params only: the field is given even when it holds its
 * default 0, so that a mode which does not use it refuses it */
#define PEFA_SET_KNN_NORM 0x4u      /* .knn_norm is given (PEFA_KNN_V0 too) */
#define PEFA_SET_XL_SCORING 0x8u    /* .xl_scoring is given (PEFA_XL_EXACT too) */

typedef struct {
    uint32_t size;           /* sizeof(pefa_build_params) or 0 */
    uint32_t set;            /* PEFA_SET_LAMBDA | PEFA_SET_SEED */
    float lambda;            /* PEFA-XS mixing weight fixed in the XS graph; default 0.5 */
    uint32_t M;              /* HNSW max degree (level 0 gets 2M), 2..PEFA_MAX_M; 0 = 32 */
    uint32_t ef_construction;/* 0 = 500 */
    uint64_t seed;           /* default 42; one thread + a seed = the same file content */
    uint32_t threads;        /* 0 = all online CPUs */
    uint8_t vector_type;     /* 0 or PEFA_TYPE_F32: f32 storage; PEFA_TYPE_F16; PEFA_TYPE_I8: f16
                                rows plus int8 codes the graphs are searched on (each search's
                                final beam is re-scored from the f16 rows) */
    uint8_t y_codec;         /* PEFA_CODEC_RAW (0, mapped in place) or PEFA_CODEC_ZSTD */
    uint8_t no_graphs;       /* 1: no HNSW graphs (exact search only) */
    pefa_progress_fn progress;
    void *progress_ctx;
    /* leave-one-out tuning of mode, lambda and k (section 4b) */
    uint8_t tune;            /* 1: tune after the build; the index then defaults to the winner */
    uint32_t tune_queries;   /* training queries to tune on; 0 = 2000 */
    int tune_metric;         /* PEFA_METRIC_*; 0 = recall@100 */
    /* one shard of a set (section 4c): passages [n*i/count, n*(i+1)/count);
     * shard 0 also holds the training queries and Y. 0 or 1 = no shards */
    uint32_t shard_count;
    uint32_t shard_index;
    /* appended after the 0.2 layout (a 0.2 caller passes a smaller size: cosine) */
    uint8_t similarity;         /* PEFA_SIMILARITY_COSINE (0) or PEFA_SIMILARITY_IP */
    int tune_label_check;       /* PEFA_LABEL_CHECK_*; 0 = on (section 4b) */
} pefa_build_params;
#define PEFA_BUILD_PARAMS_INIT {.size = sizeof(pefa_build_params)}

typedef struct {
    uint32_t size;           /* set by the caller: sizeof(pefa_build_stats) or 0 */
    double seconds_normalise, seconds_y, seconds_xs, seconds_graphs, seconds_write, seconds_total;
    uint64_t nnz;            /* distinct (query, passage) pairs in Y */
    uint64_t zero_passages, zero_queries; /* all-zero rows found */
    uint64_t passages_without_queries;   /* XS rows with z = 0 */
    uint64_t file_bytes, idmap_bytes;
    uint8_t uuid[16];
    double seconds_tune;     /* 0 unless params.tune */
} pefa_build_stats;
#define PEFA_BUILD_STATS_INIT {.size = sizeof(pefa_build_stats)}

/* Builds an index file at out_path (and, when ids are given, its id map
 * "<out_path>.<uuid>.ids" beside it), atomically: on failure nothing new is
 * left at out_path or beside it. p may be NULL (every default); st may be
 * NULL. The build never removes any other file (old id maps are removed only
 * by `pefa-dump --gc`, format [I5]). For its whole duration it holds an
 * exclusive flock(2) on "<out_path>.lock" (created, and removed at the end);
 * a second build of the same out_path, from any thread or process, fails at
 * once with STATE instead of waiting. Errors: INVALID_ARG (dims, counts,
 * types, pair rows out of range; out_path names a directory, device, FIFO
 * or socket: pefa_output_check), BAD_INPUT (NaN/Inf, duplicate or bad ids;
 * detail names the row), STATE (out_path is being built), NOMEM, IO. */
PEFA_API int pefa_build(const char *out_path, const pefa_build_input *in,
                        const pefa_build_params *p, pefa_build_stats *st);

/* ---- 4. PEFA: search -------------------------------------------------------------- */
enum {
    PEFA_MODE_DEFAULT = 0,   /* the index's default: its tuned setting (pefa-build --tune), else ERM */
    PEFA_MODE_ERM = 1,       /* <q, p_j>: one search over P */
    PEFA_MODE_XS = 2,        /* <q, e_j>: one search over the XS vectors */
    PEFA_MODE_XL = 3         /* lam <q,p_j> + (1-lam) sum_{i in kNN(q)} w_i Y_ij */
};
enum { PEFA_KNN_V0 = 0, PEFA_KNN_V1 = 1 };         /* w_i = <q,q_i>/k  or  <q,q_i> */
enum { PEFA_XL_EXACT = 0, PEFA_XL_SPARSE_ADD = 1 };

/* Defaults (what 0 means in pefa_query_params) */
#define PEFA_DEFAULT_K 10u
#define PEFA_DEFAULT_EF 300u
#define PEFA_DEFAULT_XL_LAMBDA 0.1f
#define PEFA_DEFAULT_KNN 32u
#define PEFA_DEFAULT_TOPK_P 500u
/* PEFA-XS search (not exact) scores <q, e_j> exactly over the union of: the
 * XS graph's top k (beam max(k, 2 ef/3)), the passage graph's top k (beam
 * max(k, ef/3)), and the passages of the PEFA_XS_KNN nearest training
 * queries (beam PEFA_XS_KNN_EF). The last two find what a graph over mixed-norm e_j misses
 * on noisy logs (docs/benchmarks.md, "PEFA-XS at scale"). */
#define PEFA_XS_KNN 8u
#define PEFA_XS_KNN_EF 64u

typedef struct {
    uint32_t size;     /* sizeof(pefa_query_params) or 0 */
    uint32_t set;      /* PEFA_SET_LAMBDA | PEFA_SET_KNN_NORM | PEFA_SET_XL_SCORING */
    int mode;          /* PEFA_MODE_*; 0 = the index's default. A field the mode does
                          not use must be left 0 (pefa_query_params_resolve) */
    uint32_t k;        /* hits wanted; 0 = 10 */
    uint32_t ef;       /* HNSW beam; the beam used is max(ef, wanted); 0 = 300 */
    float lambda;      /* XL: weight of <q,p> (default 0.1). XS: default the build's
                          lambda; another value re-scores with the stored z vectors */
    uint32_t knn;      /* XL: neighbours among training queries; 0 = 32 */
    uint32_t topk_p;   /* XL: ERM candidates; 0 = 500 */
    int knn_norm;      /* PEFA_KNN_V0 (0, default) or V1 */
    int xl_scoring;    /* PEFA_XL_EXACT (0, default) or PEFA_XL_SPARSE_ADD */
    int exact;         /* 1: brute force over the mapped sections, no graph */
} pefa_query_params;
#define PEFA_QUERY_PARAMS_INIT {.size = sizeof(pefa_query_params)}

typedef struct {
    uint32_t row;      /* passage row */
    float score;
} pefa_hit;

typedef struct {
    uint32_t size;     /* set by the caller: sizeof(pefa_model_info) or 0 */
    uint32_t n_passages, n_queries, dim;
    uint64_t nnz;
    float xs_lambda;
    int has_xs, has_z;
    int has_graph_passages, has_graph_xs, has_graph_queries;
    uint8_t vector_type;
    /* the default setting (PEFA_MODE_DEFAULT resolves to it): the tuned one
     * when the index was built with tuning, else ERM */
    int tuned;               /* 1: the index carries a tuned setting */
    int default_mode;        /* PEFA_MODE_ERM / XS / XL */
    float default_lambda;
    uint32_t default_knn;
    /* appended after the 0.2 layout */
    uint8_t similarity;         /* PEFA_SIMILARITY_COSINE or PEFA_SIMILARITY_IP */
    float xs_scale;          /* ip: the XS rows are e_j / xs_scale (format [X1]); cosine: 1 */
    /* one shard of a set (section 4c): this file holds shard shard_index of
     * shard_count, a part of the passages only; shard_count 1 (index 0) for a
     * whole index, and for a set described as one (pefa_set_describe) */
    uint32_t shard_count;
    uint32_t shard_index;
} pefa_model_info;
#define PEFA_MODEL_INFO_INIT {.size = sizeof(pefa_model_info)}

/* Describes the PEFA content of an opened index (reads META and the
 * directory only). Errors: CORRUPT (META missing keys or inconsistent with
 * sections), VERSION. Thread-safe. */
PEFA_API int pefa_model_describe(pefa_index *ix, pefa_model_info *out);

/* The parameters a search with p would really use: the mode resolved, and
 * for the fields that mode uses every 0 replaced by its default, lambda set
 * (and PEFA_SET_LAMBDA in out->set); the fields it does not use are 0 (out
 * resolves again to itself). INVALID_ARG, with a detail "<field>: <problem>"
 * naming the field as in pefa_query_params ("mode: ..." for a mode the index
 * cannot serve), for: a value out of range; a field given that the mode does
 * not use (lambda with ERM; knn, topk_p, knn_norm or xl_scoring with ERM or
 * XS; given = not 0, or its PEFA_SET_* bit set), also when the mode is the
 * index's default; a mode the index cannot serve. pefa_search,
 * pefa_search_batch, pefa_explain and the pefa_set_ calls resolve the same
 * way. p may be NULL. Thread-safe. */
PEFA_API int pefa_query_params_resolve(pefa_index *ix, const pefa_query_params *p,
                                       pefa_query_params *out);

/* PEFA-level verification, above the container's: META keys and counts
 * against the sections, the relevance matrix (offsets, every row decodes,
 * columns in range), every graph (counts, neighbour ids, offsets), and the id
 * map the index names (its size and XXH3 recorded in META). Run after
 * pefa_index_verify, which checks the bytes. *bad_section as there. */
PEFA_API int pefa_verify(pefa_index *ix, int *bad_section);
/* pefa_verify with flags: PEFA_IDMAP_TRUSTED (section 5) checks the id map's
 * size but not its XXH3, for a host that already verified its copy (a
 * server reloading an index it was told to trust). 0 = pefa_verify.
 * INVALID_ARG for unknown flags. */
PEFA_API int pefa_verify_flags(pefa_index *ix, unsigned flags, int *bad_section);

/* A searcher holds one thread's scratch (visited set, heaps, buffers): use
 * one per thread; it may be reused for any number of searches. The index
 * must outlive it. */
typedef struct pefa_searcher pefa_searcher;
PEFA_API int pefa_searcher_new(pefa_index *ix, pefa_searcher **out);
PEFA_API void pefa_searcher_free(pefa_searcher *s);
/* Top-k passages for query q (dim floats; under the cosine metric it need not
 * be normalised: it is L2-normalised first; under PEFA_SIMILARITY_IP it is used as
 * given). p may be NULL. hits must hold k entries; *n_hits gets the count,
 * which is k unless the index has fewer passages (a graph search that reaches
 * fewer rows falls back to a scan). Errors:
 * INVALID_ARG (a value not finite: detail names it; under IP a squared norm
 * over FLT_MAX; parameters as pefa_query_params_resolve refuses them),
 * CORRUPT, NOMEM. */
PEFA_API int pefa_search(pefa_searcher *s, const float *q, const pefa_query_params *p,
                         pefa_hit *hits, uint32_t *n_hits);

/* n queries at once: row i is queries + i * stride (stride in floats, 0 =
 * dim); hits[i * k ...] and n_hits[i] receive query i's answer (k = the
 * resolved k). threads: 0 = all online CPUs, 1 = the calling thread only.
 * Searchers come from a pool kept in the index, so a batch of one costs no
 * allocation once warm. On failure no output is guaranteed and the detail
 * names the first failing query ("query 17: ..."). Thread-safe: several
 * batches may run on one index at once. */
PEFA_API int pefa_search_batch(pefa_index *ix, const float *queries, uint64_t n, uint64_t stride,
                               const pefa_query_params *p, uint32_t threads, pefa_hit *hits,
                               uint32_t *n_hits);

/* Why passages scored what they did under PEFA-XL: for each of the n_rows
 * passages, the training queries among q's k neighbours whose Y rows contain
 * it, with their contribution (1-lam) * w_i * Y_ij. One kNN search serves all
 * the passages. out receives the contributions grouped by passage in the
 * order of passage_rows, each group by decreasing contribution; *n_out gets
 * how many there are, of which at most cap were written (call again with a
 * larger buffer when *n_out > cap). INVALID_ARG if the resolved mode is not
 * XL or a row is out of range. */
typedef struct {
    uint32_t passage_row;
    uint32_t query_row;
    float similarity;    /* <q, q_i> */
    float y;             /* Y_ij */
    float contribution;  /* (1-lam) * w_i * Y_ij */
} pefa_contrib;
PEFA_API int pefa_explain(pefa_searcher *s, const float *q, const pefa_query_params *p,
                          const uint32_t *passage_rows, uint32_t n_rows, pefa_contrib *out,
                          uint32_t cap, uint32_t *n_out);

/* ---- 4b. PEFA: leave-one-out tuning ------------------------------------------------
 * Which mode, lambda and k serve this index best, chosen from the training
 * queries alone: each tuning query is scored against a model without it
 * (and without its duplicates: training queries whose vector has cosine >=
 * PEFA_TUNE_DUP_COSINE with it), exactly (brute force), for a grid of
 * settings: ERM; XS lambda 0, 0.1, .., 1 (re-scored with z_j recomputed
 * without the held-out queries from the stored |S_j|); XL lambda 0, .., 0.9 x
 * k 4, 8, 16, 32, 64 (v0 weights, exact scoring, candidates as at query
 * time). The setting with the best mean metric wins only if a paired
 * bootstrap says it beats ERM: the 5th percentile of its mean gain over
 * 1000 resamples of the tuning queries must be > 0; else ERM is chosen.
 * Duplicate groups count once. Format 1.1 files only (they store |S_j|).
 *
 * Label check (on by default): do the training labels follow the query text
 * at all? For each tuning query, ERM's recall@100 on its own relevant
 * passages minus its mean recall@100 on each other tuning query's relevant
 * passages (the same ERM top 100); averaged over duplicate groups, the 5th
 * percentile of the mean difference over 1000 bootstrap resamples (stream
 * seed + 2) must be > 0. If not, the labels do not follow the text (random
 * or shuffled qrels) and ERM is chosen whatever the grid says. */
enum {
    PEFA_LABEL_CHECK_DEFAULT = 0, /* build: on; pefa_tune: as the index was tuned, else on */
    PEFA_LABEL_CHECK_ON = 1,
    PEFA_LABEL_CHECK_OFF = 2      /* figures still computed, the choice ignores them */
};
enum {
    PEFA_METRIC_DEFAULT = 0,   /* pefa_tune: the metric the index was tuned for, else recall@100 */
    PEFA_METRIC_RECALL100 = 1,
    PEFA_METRIC_RECALL10 = 2,
    PEFA_METRIC_NDCG10 = 3
};
#define PEFA_TUNE_DEFAULT_QUERIES 2000u
#define PEFA_TUNE_DUP_COSINE 0.999f
PEFA_API const char *pefa_metric_name(int metric);   /* "recall@100", ...; NULL if unknown or DEFAULT */
PEFA_API int pefa_metric_parse(const char *name);    /* PEFA_METRIC_* (> 0) or INVALID_ARG */

typedef struct {
    uint32_t size;           /* sizeof(pefa_tune_params) or 0 */
    uint32_t set;            /* PEFA_SET_SEED */
    uint32_t n_queries;      /* 0: as many as the index was tuned on, else 2000 (sampled with the
                                seed when there are more) */
    int metric;              /* PEFA_METRIC_*; 0: the one the index was tuned for, else recall@100 */
    uint64_t seed;           /* default: the index's build seed (META build.seed), else 42 */
    uint32_t threads;        /* 0 = all online CPUs */
    pefa_progress_fn progress;
    void *progress_ctx;
    /* appended after the 0.2 layout */
    int label_check;         /* PEFA_LABEL_CHECK_*; 0: as the index was tuned (META tune.label_check), else on */
} pefa_tune_params;
#define PEFA_TUNE_PARAMS_INIT {.size = sizeof(pefa_tune_params)}

typedef struct {
    int mode;                /* PEFA_MODE_ERM / XS / XL */
    float lambda;            /* XS / XL */
    uint32_t knn;            /* XL */
    double score;            /* mean leave-one-out metric */
    double delta;            /* score - ERM's score */
    double delta_lo;         /* 5th percentile of delta over the bootstrap resamples */
} pefa_tune_setting;

/* Allocated by the library (new fields may be appended); free it with
 * pefa_tune_report_free. */
typedef struct {
    int metric;
    uint32_t n_queries;      /* tuning queries evaluated */
    uint32_t n_groups;       /* distinct queries among them (duplicates count once) */
    uint64_t seed;
    uint32_t n_settings;
    pefa_tune_setting *settings; /* the grid, ERM first */
    uint32_t chosen;         /* index into settings */
    double seconds;
    /* the label check (appended after the 0.2 layout) */
    int label_check;         /* PEFA_LABEL_CHECK_ON: applied to the choice; OFF: only reported */
    int label_passed;        /* 1: label_delta_lo > 0 */
    double label_own;        /* mean ERM recall@100 on the tuning queries' own relevant passages */
    double label_other;      /* the same on the other tuning queries' relevant passages */
    double label_delta_lo;   /* 5th percentile of the mean of own - other over the resamples */
    uint32_t chosen_margin;  /* the choice of the grid's bootstrap alone (== chosen unless the check failed) */
} pefa_tune_report;

/* Tunes an opened index (reads P, Q, Z, |S_j| and Y; writes nothing).
 * pefa-build --tune runs the same computation on the same stored rows and
 * records the winner in META, so pefa_tune on that index reports the same
 * choice. Errors: INVALID_ARG (no training queries or relevance pairs,
 * unknown metric, n_queries out of range), VERSION (a format 1.0 index
 * without XS_NORMS: rebuild it), NOMEM. Thread-safe. */
PEFA_API int pefa_tune(pefa_index *ix, const pefa_tune_params *p, pefa_tune_report **out);
PEFA_API void pefa_tune_report_free(pefa_tune_report *r);

/* ---- 4c. shard sets ------------------------------------------------------------------
 * A set is one index split by passage rows over several files (shards),
 * built independently (pefa_build with shard_count / shard_index, e.g. one
 * Slurm array task each) and tied together by a manifest (a small pefa file
 * written by pefa_set_write). Shard i holds global passage rows
 * [n*i/count, n*(i+1)/count), its XS vectors and graphs; shard 0 also holds
 * the training queries, their graph and Y. A pefa_set answers exactly like
 * the unsharded index built from the same inputs (in exact mode: the same
 * rows and scores): ERM and XS merge the shards' top k by score; XL finds
 * the k nearest training queries in shard 0, merges the shards' top topk_p
 * by <q, p>, and scores every candidate as the single index does.
 * pefa_set_open also opens a plain index file, as a set of one shard, so
 * tools can serve both the same way. Rows in results are global. */
typedef struct pefa_set pefa_set;
/* Opens a manifest (and every shard it lists, from the manifest's directory)
 * or a single index. Checks at open: every shard file exists, has the size
 * and UUID the manifest records, and says (META shard.*) that it is that
 * shard; the id maps are opened with flags (PEFA_IDMAP_TRUSTED) on first
 * use. Errors: IO (a shard missing: the detail names the file), MISMATCH (a
 * shard from another build or set), CORRUPT, and those of pefa_index_open.
 * Thread-safe for searches; close after every other use. */
PEFA_API int pefa_set_open(const char *path, unsigned idmap_flags, pefa_set **out);
PEFA_API void pefa_set_close(pefa_set *s);
PEFA_API uint32_t pefa_set_shard_count(const pefa_set *s);
/* shard i's index (NULL if out of range); owned by the set */
PEFA_API pefa_index *pefa_set_shard(const pefa_set *s, uint32_t i);
/* the set as one index: global counts; the flags and defaults of shard 0 */
PEFA_API int pefa_set_describe(pefa_set *s, pefa_model_info *out);
PEFA_API int pefa_set_query_params_resolve(pefa_set *s, const pefa_query_params *p, pefa_query_params *out);
/* as pefa_search_batch, over the whole set (rows are global) */
PEFA_API int pefa_set_search_batch(pefa_set *s, const float *queries, uint64_t n, uint64_t stride,
                                   const pefa_query_params *p, uint32_t threads, pefa_hit *hits,
                                   uint32_t *n_hits);
/* pefa_explain for one query over the set (global passage rows) */
PEFA_API int pefa_set_explain(pefa_set *s, const float *q, const pefa_query_params *p,
                              const uint32_t *passage_rows, uint32_t n_rows, pefa_contrib *out,
                              uint32_t cap, uint32_t *n_out);
/* ids of global rows, and rows of ids (as pefa_idmap_id / _row; which =
 * PEFA_IDS_*). Thread-safe. */
PEFA_API int pefa_set_id(pefa_set *s, int which, uint32_t row, char *buf, size_t cap, size_t *len);
PEFA_API int pefa_set_row(pefa_set *s, int which, const char *id, uint32_t *row);
/* Every shard: the manifest's size and XXH3 for its file, then
 * pefa_index_verify and pefa_verify_flags with the flags given to
 * pefa_set_open (PEFA_IDMAP_TRUSTED: the id maps' size, not their XXH3).
 * *bad_shard gets the failing shard or -1. */
PEFA_API int pefa_set_verify(pefa_set *s, int *bad_shard);
/* Writes the manifest of shards[0..n) (index files built with shard_count =
 * n, in any order) at path, atomically, after checking that they are shards
 * 0..n-1 of one build: same count, contiguous rows, and the same values for
 * the META keys that must agree (dimension, vector type, lambda, graph
 * parameters, seed, inputs). Reads each file once (XXH3). MISMATCH names the
 * shard and the key. The manifest records the shards' file names and is
 * opened with them from its own directory, so every shard must be in the
 * directory of path (compared by device and inode): INVALID_ARG names the
 * shard and the directory otherwise. */
PEFA_API int pefa_set_write(const char *path, const char *const *shards, uint32_t n);

/* ---- 5. id maps (LMDB beside the index) ------------------------------------------ */
/* The rule for external ids (format [I6]), the same in pefa_build and the
 * tools' id-list reader: 1..PEFA_MAX_ID_BYTES bytes of valid UTF-8 with no
 * space, no tab and no control character (U+0000..U+001F, U+007F..U+009F),
 * so that every id can be written as is in a TREC run (whitespace-separated
 * fields), a TSV line and a JSON string. Returns 0, or BAD_INPUT with a
 * detail saying what is wrong and at which byte (e.g. "has a space at byte
 * 3 (...)"; the caller adds which id it was). Thread-safe. */
PEFA_API int pefa_id_check(const char *id, size_t len);

typedef struct pefa_idmap pefa_idmap;
enum { PEFA_IDS_PASSAGES = 0, PEFA_IDS_QUERIES = 1 };
/* Opens the id map the index names in META ("idmap.file"), read-only and
 * lock-free, and checks that it is exactly the file the index was built with:
 * its size and XXH3-64 (recorded in META) and the UUID inside it. LMDB trusts
 * its data file, so nothing else of it is read before these checks pass.
 * Hashing costs one sequential read of the id map (about 1 s per 10 GB); a
 * host that has run pefa_verify / `pefa-dump --verify` on its copy can skip
 * it with PEFA_IDMAP_TRUSTED (the size is still checked). If the index has
 * no id map, ids are row numbers and this succeeds. Errors: IO (missing
 * file, detail names it), MISMATCH (UUID differs), CORRUPT (size),
 * CHECKSUM. The id map may be used from any number of threads; close it
 * before the index. */
#define PEFA_IDMAP_TRUSTED 0x1u
PEFA_API int pefa_idmap_open(pefa_index *ix, unsigned flags, pefa_idmap **out);
PEFA_API void pefa_idmap_close(pefa_idmap *m);
/* Rows in an id set (PEFA_IDS_*). */
PEFA_API uint32_t pefa_idmap_count(const pefa_idmap *m, int which);
/* External id of a row into buf (NUL-terminated). *len (if not NULL) gets
 * the id's length in bytes without the NUL, also when buf is too small, which
 * is INVALID_ARG; a buffer of PEFA_MAX_ID_BYTES + 1 always suffices.
 * NOT_FOUND if row is out of range. */
PEFA_API int pefa_idmap_id(pefa_idmap *m, int which, uint32_t row, char *buf, size_t cap,
                           size_t *len);
/* Row of an external id; NOT_FOUND (the detail names the id). */
PEFA_API int pefa_idmap_row(pefa_idmap *m, int which, const char *id, uint32_t *row);

#ifdef __cplusplus
}
#endif
#endif /* PEFA_H */
