/*
 * dist.h - internal: inner-product kernels with runtime CPU dispatch.
 *
 * The first call selects the best kernel the CPU supports (AVX-512F, AVX2+FMA,
 * F16C for f16 rows, else portable scalar). PEFA_FORCE_SCALAR=1 in the
 * environment forces the scalar path (tests compare paths).
 */
#ifndef PEFA_DIST_H
#define PEFA_DIST_H

#include <stddef.h>
#include <stdint.h>

/* element types of vector rows; the same numbers are used on disk (format/) */
enum {
    PEFA_ELEM_BYTES = 0,
    PEFA_ELEM_F32 = 1,
    PEFA_ELEM_F16 = 2,
    PEFA_ELEM_I8 = 3,
    PEFA_ELEM_U32 = 4,
    PEFA_ELEM_U64 = 5
};

/* <a, b> for f32 a (query) and a row b stored as elem (F32 or F16). */
typedef float (*pefa_dot_fn)(const float *a, const void *b, size_t dim);

/* Returns the kernel for elem (F32 or F16), or NULL for other types. */
pefa_dot_fn pefa_dot_kernel(int elem);

/* Name of the selected implementation ("avx512", "avx2", "scalar"). */
const char *pefa_dot_impl_name(void);

/* f32 <-> f16 (IEEE binary16, round to nearest even) conversion of n values */
void pefa_f32_to_f16(const float *src, uint16_t *dst, size_t n);
void pefa_f16_to_f32(const uint16_t *src, float *dst, size_t n);

#endif
