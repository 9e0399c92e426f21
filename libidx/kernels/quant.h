/*
 * quant.h - internal: int8 codes of vector rows, for graph traversal
 * (format 1.2 [Q1]): per dimension c, a scale s_c = max over rows |x_c|, and
 * code_c = round(127 x_c / s_c) in [-127, 127]. A query q is coded the
 * same way against the scales: v_c = round(q_c s_c / (127 t)) with
 * t = max_c |q_c s_c| / 127^2, so that <q, x> ~= t <v, code>. Exact scores
 * come from the full-precision rows.
 */
#ifndef PEFA_KERNELS_QUANT_H
#define PEFA_KERNELS_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* the per-dimension scales of n rows (f32 or f16, stride bytes apart) */
void pefa__quant_scales(const void *rows, int elem, size_t stride, uint32_t n, uint32_t cols, float *scales);
/* the codes of n rows against the scales, cols bytes per row */
void pefa__quant_rows(const void *rows, int elem, size_t stride, uint32_t n, uint32_t cols, const float *scales,
                      int8_t *codes);
/* a query's codes v (cols bytes), their sum, and the factor t of the scores */
void pefa__quant_query(const float *q, const float *scales, uint32_t cols, int8_t *v, int32_t *qsum, float *t);

#endif
