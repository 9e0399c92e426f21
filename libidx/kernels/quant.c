/* quant.c - int8 codes of rows and queries (quant.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quant.h"
#include "pefa.h"

#define QMAX 127.0f

/* row r as f32 into buf (or in place) */
static const float *row(const void *rows, int elem, size_t stride, uint32_t r, uint32_t cols, float *buf)
{
    const char *p = (const char *)rows + (size_t)r * stride;
    if (elem == PEFA_TYPE_F32) return (const float *)(const void *)p;
    pefa_f16_to_f32((const uint16_t *)(const void *)p, buf, cols);
    return buf;
}

void pefa__quant_scales(const void *rows, int elem, size_t stride, uint32_t n, uint32_t cols, float *scales)
{
    float *buf = (float *)malloc(cols * sizeof *buf);
    memset(scales, 0, cols * sizeof *scales);
    for (uint32_t r = 0; r < n && buf; r++) {
        const float *x = row(rows, elem, stride, r, cols, buf);
        for (uint32_t c = 0; c < cols; c++)
            if (fabsf(x[c]) > scales[c]) scales[c] = fabsf(x[c]);
    }
    free(buf);
}

static int8_t code(float x, float s)
{
    float v = s > 0 ? rintf(QMAX * x / s) : 0.0f;
    return (int8_t)(v > QMAX ? QMAX : v < -QMAX ? -QMAX : v);
}

void pefa__quant_rows(const void *rows, int elem, size_t stride, uint32_t n, uint32_t cols, const float *scales,
                      int8_t *codes)
{
    float *buf = (float *)malloc(cols * sizeof *buf);
    for (uint32_t r = 0; r < n && buf; r++) {
        const float *x = row(rows, elem, stride, r, cols, buf);
        for (uint32_t c = 0; c < cols; c++) codes[(size_t)r * cols + c] = code(x[c], scales[c]);
    }
    free(buf);
}

void pefa__quant_query(const float *q, const float *scales, uint32_t cols, int8_t *v, int32_t *qsum, float *t)
{
    float m = 0;
    int32_t sum = 0;
    for (uint32_t c = 0; c < cols; c++) {
        float w = fabsf(q[c] * scales[c]);
        if (w > m) m = w;
    }
    *t = m / (QMAX * QMAX);
    for (uint32_t c = 0; c < cols; c++) {
        v[c] = m > 0 ? code(q[c] * scales[c], m) : 0;
        sum += v[c];
    }
    *qsum = sum;
}
