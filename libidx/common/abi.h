/*
 * abi.h - internal: structs that can grow (pefa.h, "Conventions").
 *
 * Each such struct starts with uint32_t size. A caller's size of 0 means the
 * layout of library 0.2 ("v1"), whose size is fixed forever by the last
 * field it had (PEFA_V1_SIZE). The library reads and writes only
 * min(caller's size, its own sizeof) bytes.
 */
#ifndef PEFA_COMMON_ABI_H
#define PEFA_COMMON_ABI_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pefa.h"

#define PEFA_V1_SIZE(type, last_field) (offsetof(type, last_field) + sizeof(((type *)0)->last_field))

/* The 0.2 ("v1") sizes, fixed forever: a struct's size field of 0 means these.
 * Fields appended after 0.2 are not named here. */
#define PEFA_V1_BUILD_INPUT PEFA_V1_SIZE(pefa_build_input, queries_name)
#define PEFA_V1_BUILD_PARAMS PEFA_V1_SIZE(pefa_build_params, shard_index)
#define PEFA_V1_BUILD_STATS PEFA_V1_SIZE(pefa_build_stats, seconds_tune)
#define PEFA_V1_QUERY_PARAMS PEFA_V1_SIZE(pefa_query_params, exact)
#define PEFA_V1_MODEL_INFO PEFA_V1_SIZE(pefa_model_info, default_knn)
#define PEFA_V1_TUNE_PARAMS PEFA_V1_SIZE(pefa_tune_params, progress_ctx)

/* bytes of a caller's struct the library may touch */
static inline size_t pefa__abi_size(uint32_t given, size_t v1_size, size_t cur)
{
    size_t n = given ? given : v1_size;
    if (n < sizeof(uint32_t)) n = sizeof(uint32_t);
    return n < cur ? n : cur;
}

/* copies a caller's input struct into dst (cur bytes, zero = defaults) */
static inline void pefa__abi_in(void *dst, size_t cur, const void *src, size_t v1_size)
{
    uint32_t given = 0;
    memset(dst, 0, cur);
    if (!src) return;
    memcpy(&given, src, sizeof given);
    memcpy(dst, src, pefa__abi_size(given, v1_size, cur));
}

/* copies the library's output struct src into the caller's dst, leaving its size */
static inline void pefa__abi_out(void *dst, const void *src, size_t v1_size, size_t cur)
{
    uint32_t given;
    size_t n;
    memcpy(&given, dst, sizeof given);
    n = pefa__abi_size(given, v1_size, cur);
    memcpy((char *)dst + sizeof given, (const char *)src + sizeof given, n - sizeof given);
}

#endif
