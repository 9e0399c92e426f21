/*
 * bytes.h - internal: little-endian field access and overflow-checked
 * arithmetic, used by every layer that reads or writes file bytes.
 *
 * All integers on disk are little-endian. Fields are read with these
 * helpers, never by casting a mapped struct, so the container's own fields
 * are read correctly on any host (format/, section 1).
 */
#ifndef PEFA_COMMON_BYTES_H
#define PEFA_COMMON_BYTES_H

#include <stdint.h>

/* Numeric sections (vectors, graphs, Y offsets) are used in place from the
 * mapping as little-endian arrays (format/, section 1): big-endian hosts
 * are refused when the library is built, not at run time. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "pefa needs a little-endian host: it uses the file's numeric sections in place"
#endif

static inline uint16_t ld16(const void *p)
{
    const uint8_t *b = (const uint8_t *)p;
    return (uint16_t)(b[0] | (b[1] << 8));
}
static inline uint32_t ld32(const void *p)
{
    const uint8_t *b = (const uint8_t *)p;
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}
static inline uint64_t ld64(const void *p)
{
    return (uint64_t)ld32(p) | ((uint64_t)ld32((const uint8_t *)p + 4) << 32);
}
static inline void st16(void *p, uint16_t v)
{
    uint8_t *b = (uint8_t *)p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}
static inline void st32(void *p, uint32_t v)
{
    uint8_t *b = (uint8_t *)p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}
static inline void st64(void *p, uint64_t v)
{
    st32(p, (uint32_t)v);
    st32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

/* a*b with overflow check: returns 0 and sets *r, or -1 on overflow */
static inline int mul_u64(uint64_t a, uint64_t b, uint64_t *r)
{
    if (a != 0 && b > UINT64_MAX / a) return -1;
    *r = a * b;
    return 0;
}
static inline int add_u64(uint64_t a, uint64_t b, uint64_t *r)
{
    if (b > UINT64_MAX - a) return -1;
    *r = a + b;
    return 0;
}

#endif
