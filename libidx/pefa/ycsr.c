/* ycsr.c - the relevance matrix Y: CSR in memory, delta-varint rows on disk. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "pefa/ycsr.h"

void pefa__ycsr_free(ycsr *y)
{
    free(y->rowptr);
    free(y->cols);
    free(y->vals);
    memset(y, 0, sizeof *y);
}

static int cmp_u32_f32(const void *a, const void *b)
{
    uint32_t x, y;
    memcpy(&x, a, 4);
    memcpy(&y, b, 4);
    return x < y ? -1 : x > y;
}

static int pair_cmp(const void *a, const void *b)
{
    const pefa_pair *x = (const pefa_pair *)a, *y = (const pefa_pair *)b;
    if (x->q != y->q) return x->q < y->q ? -1 : 1;
    return x->p < y->p ? -1 : x->p > y->p;
}

/* the qrels rule (pefa.h): duplicates add up, a total <= 0 is not relevant */
int pefa_pairs_merge(pefa_pair *pairs, uint64_t *n, uint64_t *left_out)
{
    uint64_t w = 0, kept = 0, out = 0;
    RETURN_ERROR_IF(!n || (*n && !pairs), PEFA_ERR_INVALID_ARG, "pefa_pairs_merge: no pairs");
    for (uint64_t i = 0; i < *n; i++)
        RETURN_ERROR_IF(!isfinite(pairs[i].y), PEFA_ERR_BAD_INPUT,
                        "relevance pair %llu (query row %u, passage row %u): value is not finite",
                        (unsigned long long)i, pairs[i].q, pairs[i].p);
    if (*n) qsort(pairs, (size_t)*n, sizeof *pairs, pair_cmp);
    for (uint64_t i = 0; i < *n; i++) {
        if (w > 0 && pairs[w - 1].q == pairs[i].q && pairs[w - 1].p == pairs[i].p) pairs[w - 1].y += pairs[i].y;
        else pairs[w++] = pairs[i];
    }
    for (uint64_t i = 0; i < w; i++) {
        if (pairs[i].y > 0) pairs[kept++] = pairs[i];
        else out++;
    }
    *n = kept;
    if (left_out) *left_out = out;
    return 0;
}

int pefa__ycsr_from_pairs(const pefa_pair *pairs, uint64_t n, uint32_t n_rows, uint32_t n_cols, ycsr *y)
{
    uint64_t i, *fill = NULL;
    uint32_t *tmp = NULL; /* (col, val bits) interleaved per entry for sorting */
    memset(y, 0, sizeof *y);
    y->n_rows = n_rows;
    y->n_cols = n_cols;
    for (i = 0; i < n; i++) {
        RETURN_ERROR_IF(pairs[i].q >= n_rows, PEFA_ERR_BAD_INPUT, "relevance pair %llu: query row %u >= %u",
                        (unsigned long long)i, pairs[i].q, n_rows);
        RETURN_ERROR_IF(pairs[i].p >= n_cols, PEFA_ERR_BAD_INPUT, "relevance pair %llu: passage row %u >= %u",
                        (unsigned long long)i, pairs[i].p, n_cols);
        RETURN_ERROR_IF(!isfinite(pairs[i].y), PEFA_ERR_BAD_INPUT, "relevance pair %llu: value is not finite",
                        (unsigned long long)i);
    }
    y->rowptr = (uint64_t *)calloc((size_t)n_rows + 1, sizeof(uint64_t));
    fill = (uint64_t *)calloc((size_t)n_rows + 1, sizeof(uint64_t));
    tmp = (uint32_t *)malloc((n ? n : 1) * 2 * sizeof(uint32_t));
    if (!y->rowptr || !fill || !tmp) goto nomem;
    for (i = 0; i < n; i++) y->rowptr[pairs[i].q + 1]++;
    for (i = 0; i < n_rows; i++) y->rowptr[i + 1] += y->rowptr[i];
    memcpy(fill, y->rowptr, ((size_t)n_rows + 1) * sizeof(uint64_t));
    for (i = 0; i < n; i++) {
        uint64_t at = fill[pairs[i].q]++;
        tmp[2 * at] = pairs[i].p;
        memcpy(&tmp[2 * at + 1], &pairs[i].y, 4);
    }
    /* sort each row by column, sum duplicates, compact */
    y->cols = (uint32_t *)malloc((n ? n : 1) * sizeof(uint32_t));
    y->vals = (float *)malloc((n ? n : 1) * sizeof(float));
    if (!y->cols || !y->vals) goto nomem;
    {
        uint64_t out = 0;
        for (uint32_t r = 0; r < n_rows; r++) {
            uint64_t b = y->rowptr[r], e = y->rowptr[r + 1];
            qsort(tmp + 2 * b, (size_t)(e - b), 2 * sizeof(uint32_t), cmp_u32_f32);
            y->rowptr[r] = out;
            for (uint64_t j = b; j < e; j++) {
                float v;
                memcpy(&v, &tmp[2 * j + 1], 4);
                if (out > y->rowptr[r] && y->cols[out - 1] == tmp[2 * j]) {
                    y->vals[out - 1] += v;
                } else {
                    y->cols[out] = tmp[2 * j];
                    y->vals[out] = v;
                    out++;
                }
            }
        }
        y->rowptr[n_rows] = out;
        y->nnz = out;
    }
    free(fill);
    free(tmp);
    return 0;
nomem:
    free(fill);
    free(tmp);
    pefa__ycsr_free(y);
    return pefa__set_error(PEFA_ERR_NOMEM, "relevance matrix: out of memory (%llu pairs)", (unsigned long long)n);
}

int pefa__ycsr_transpose(const ycsr *y, ycsr *t)
{
    uint64_t *fill;
    memset(t, 0, sizeof *t);
    t->n_rows = y->n_cols;
    t->n_cols = y->n_rows;
    t->nnz = y->nnz;
    t->rowptr = (uint64_t *)calloc((size_t)t->n_rows + 1, sizeof(uint64_t));
    t->cols = (uint32_t *)malloc((y->nnz ? y->nnz : 1) * sizeof(uint32_t));
    t->vals = (float *)malloc((y->nnz ? y->nnz : 1) * sizeof(float));
    fill = (uint64_t *)malloc(((size_t)t->n_rows + 1) * sizeof(uint64_t));
    if (!t->rowptr || !t->cols || !t->vals || !fill) {
        free(fill);
        pefa__ycsr_free(t);
        return pefa__set_error(PEFA_ERR_NOMEM, "relevance matrix transpose: out of memory");
    }
    for (uint64_t j = 0; j < y->nnz; j++) t->rowptr[y->cols[j] + 1]++;
    for (uint32_t r = 0; r < t->n_rows; r++) t->rowptr[r + 1] += t->rowptr[r];
    memcpy(fill, t->rowptr, ((size_t)t->n_rows + 1) * sizeof(uint64_t));
    for (uint32_t r = 0; r < y->n_rows; r++)
        for (uint64_t j = y->rowptr[r]; j < y->rowptr[r + 1]; j++) {
            uint64_t at = fill[y->cols[j]]++;
            t->cols[at] = r; /* rows visited in order: columns of t stay sorted */
            t->vals[at] = y->vals[j];
        }
    free(fill);
    return 0;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* reads a varint at *pos (< end); -1 if it runs past end or exceeds 64 bits */
static int get_varint(const uint8_t *p, uint64_t end, uint64_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t b;
        if (*pos >= end) return -1;
        b = p[(*pos)++];
        if (shift == 63 && (b & 0x7E)) return -1;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

int pefa__ycsr_encode(const ycsr *y, uint64_t **rowptr_out, uint8_t **rows_out, uint64_t *rows_len)
{
    uint64_t cap = 0, pos = 0;
    uint64_t *rp = (uint64_t *)malloc(((size_t)y->n_rows + 1) * sizeof(uint64_t));
    uint8_t *buf;
    for (uint32_t r = 0; r < y->n_rows; r++) cap += 11 + (y->rowptr[r + 1] - y->rowptr[r]) * 15;
    buf = (uint8_t *)malloc(cap ? (size_t)cap : 1);
    if (!rp || !buf) {
        free(rp);
        free(buf);
        return pefa__set_error(PEFA_ERR_NOMEM, "relevance matrix encoding: out of memory");
    }
    for (uint32_t r = 0; r < y->n_rows; r++) {
        uint64_t b = y->rowptr[r], e = y->rowptr[r + 1], j;
        int all_one = 1, all_int = 1;
        rp[r] = pos;
        pos += put_varint(buf + pos, e - b);
        for (j = b; j < e; j++) {
            uint64_t gap = j == b ? y->cols[j] : (uint64_t)(y->cols[j] - y->cols[j - 1] - 1);
            float v = y->vals[j];
            pos += put_varint(buf + pos, gap);
            if (v != 1.0f) all_one = 0;
            if (!(v >= 0.0f && v <= 4294967295.0f && v == floorf(v))) all_int = 0;
        }
        if (e == b) continue; /* empty row: just the count */
        if (all_one) {
            buf[pos++] = 0;
        } else if (all_int) {
            buf[pos++] = 1;
            for (j = b; j < e; j++) pos += put_varint(buf + pos, (uint64_t)y->vals[j]);
        } else {
            buf[pos++] = 2;
            for (j = b; j < e; j++) {
                uint32_t bits;
                memcpy(&bits, &y->vals[j], 4);
                for (int k = 0; k < 4; k++) buf[pos++] = (uint8_t)(bits >> (8 * k));
            }
        }
    }
    rp[y->n_rows] = pos;
    *rowptr_out = rp;
    *rows_out = buf;
    *rows_len = pos;
    return 0;
}

int64_t pefa__ycsr_decode_row(const uint64_t *rowptr, uint32_t n_rows, const uint8_t *rows,
                        uint64_t rows_len, uint32_t n_cols, uint32_t i, uint32_t *cols, float *vals,
                        uint32_t max)
{
    uint64_t pos, end, nnz, col = 0, j;
    uint8_t tag;
    if (i >= n_rows) return PEFA_ERR_INVALID_ARG;
    pos = rowptr[i];
    end = rowptr[i + 1];
    if (pos > end || end > rows_len) return PEFA_ERR_CORRUPT;
    if (get_varint(rows, end, &pos, &nnz)) return PEFA_ERR_CORRUPT;
    if (nnz > n_cols || nnz > end - pos) return PEFA_ERR_CORRUPT; /* each entry takes >= 1 byte */
    for (j = 0; j < nnz; j++) {
        uint64_t gap;
        if (get_varint(rows, end, &pos, &gap)) return PEFA_ERR_CORRUPT;
        col = j == 0 ? gap : col + 1 + gap;
        if (gap >= n_cols || col >= n_cols) return PEFA_ERR_CORRUPT;
        if (j < max) cols[j] = (uint32_t)col;
    }
    if (nnz == 0) return pos == end ? 0 : PEFA_ERR_CORRUPT;
    if (pos >= end) return PEFA_ERR_CORRUPT;
    tag = rows[pos++];
    for (j = 0; j < nnz; j++) {
        float v;
        if (tag == 0) {
            v = 1.0f;
        } else if (tag == 1) {
            uint64_t u;
            if (get_varint(rows, end, &pos, &u) || u > 0xFFFFFFFFull) return PEFA_ERR_CORRUPT;
            v = (float)u;
        } else if (tag == 2) {
            uint32_t bits;
            if (end - pos < 4) return PEFA_ERR_CORRUPT;
            bits = (uint32_t)rows[pos] | ((uint32_t)rows[pos + 1] << 8) | ((uint32_t)rows[pos + 2] << 16) |
                   ((uint32_t)rows[pos + 3] << 24);
            pos += 4;
            memcpy(&v, &bits, 4);
            if (!isfinite(v)) return PEFA_ERR_CORRUPT;
        } else {
            return PEFA_ERR_CORRUPT;
        }
        if (j < max) vals[j] = v;
    }
    if (pos != end) return PEFA_ERR_CORRUPT;
    return (int64_t)nnz;
}
