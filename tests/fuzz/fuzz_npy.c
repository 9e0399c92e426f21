/* fuzz_npy.c - libFuzzer target: .npy / .fvecs parsing and row conversion. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    tin_matrix m;
    if (tin_matrix_parse(data, size, "fuzz.npy", &m, err, sizeof err) != 0) {
        if (err[0] == '\0' || memchr(err, '\n', strlen(err)))
            abort(); /* every failure writes one line */
        return 0;
    }
    if (m.rows == 0 || m.dim == 0 || m.dim > 65536 || !m.data)
        abort();
    /* the parsed matrix lies inside the input */
    const uint8_t *first = m.data;
    size_t elem = m.elem == 2 ? 2 : 4;
    if (first < data || (uint64_t)(first - data) + (m.rows - 1) * (uint64_t)m.row_stride +
                               (uint64_t)m.dim * elem > size)
        abort();
    float *row = malloc((size_t)m.dim * sizeof(float));
    if (!row)
        return 0;
    for (uint64_t i = 0; i < m.rows; i++)
        (void)tin_matrix_row(&m, i, row, "fuzz.npy", err, sizeof err);
    (void)tin_matrix_row(&m, m.rows, row, "fuzz.npy", err, sizeof err);
    free(row);
    return 0;
}
