/*
 * dist.h - internal: inner-product kernels with runtime CPU dispatch.
 *
 * The first call selects the best kernel set the CPU supports (AVX-512F,
 * AVX2+FMA+F16C, else portable scalar); pefa_kernel_select() (pefa.h) can
 * override it. f16 <-> f32 conversion is public (pefa.h).
 */
#ifndef PEFA_KERNELS_DIST_H
#define PEFA_KERNELS_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "pefa.h"

/* <a, b> for f32 a (query) and a row b stored as elem (F32 or F16). */
typedef float (*pefa_dot_fn)(const float *a, const void *b, size_t dim);

/* The kernel for elem (PEFA_TYPE_F32 or PEFA_TYPE_F16), or NULL for other types. */
pefa_dot_fn pefa__dot_kernel(int elem);

/* <v, c> of int8 codes (quant.h): qsum must be the sum of v */
typedef int32_t (*pefa_dot_i8_fn)(const int8_t *v, int32_t qsum, const int8_t *c, size_t dim);
pefa_dot_i8_fn pefa__dot_i8_kernel(void);

#endif
