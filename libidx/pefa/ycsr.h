/*
 * ycsr.h - internal: the relevance matrix Y (training queries x passages).
 *
 * In memory while building: plain CSR (u64 rowptr, u32 cols, f32 vals), rows
 * sorted by column, duplicates summed. On disk: Y_ROWPTR (u64 byte offsets)
 * + Y_ROWS (per row: varint nnz, varint column gaps, a value tag, values);
 * format/pefa-format-v1.md "Y_ROWS" and docs/y-encoding.md.
 */
#ifndef PEFA_YCSR_H
#define PEFA_YCSR_H

#include <stddef.h>
#include <stdint.h>

#include "pefa.h"

typedef struct {
    uint32_t n_rows, n_cols;
    uint64_t nnz;
    uint64_t *rowptr; /* n_rows + 1 */
    uint32_t *cols;
    float *vals;
} ycsr;

/* CSR from triplets; rows/cols checked against n_rows/n_cols (BAD_INPUT),
 * values must be finite. */
int pefa__ycsr_from_pairs(const pefa_pair *pairs, uint64_t n, uint32_t n_rows, uint32_t n_cols, ycsr *y);
/* transpose (CSC of y as a CSR of y^T) */
int pefa__ycsr_transpose(const ycsr *y, ycsr *t);
void pefa__ycsr_free(ycsr *y);

/* Encodes y into rowptr (u64[n_rows+1], allocated) and rows (bytes). */
int pefa__ycsr_encode(const ycsr *y, uint64_t **rowptr, uint8_t **rows, uint64_t *rows_len);

/* Decodes row i of an encoded Y into cols/vals (room for max entries).
 * Returns nnz of the row (may exceed max: then only max are written), or a
 * negative error (CORRUPT) if the bytes are malformed, out of bounds, a
 * column >= n_cols, or columns not increasing. Never reads outside
 * rows[0..rows_len) nor rowptr[0..n_rows]. */
int64_t pefa__ycsr_decode_row(const uint64_t *rowptr, uint32_t n_rows, const uint8_t *rows,
                        uint64_t rows_len, uint32_t n_cols, uint32_t i, uint32_t *cols, float *vals,
                        uint32_t max);

#endif
