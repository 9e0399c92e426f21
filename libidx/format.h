/*
 * format.h - internal: byte layout of format v1 (format/pefa-format-v1.md).
 *
 * All integers on disk are little-endian. Fields are read with the ld/st
 * helpers below, never by casting a mapped struct, so a big-endian host
 * reads the same file correctly.
 */
#ifndef PEFA_FORMAT_H
#define PEFA_FORMAT_H

#include <stdint.h>
#include <string.h>

/* [H1] magic: 89 50 45 46 41 0D 0A 1A ("\x89PEFA\r\n\x1a") */
#define PEFA_MAGIC "\x89PEFA\r\n\x1a"
#define PEFA_MAGIC_LEN 8
#define PEFA_ENDIAN_TAG 0x0A0B0C0Du
#define PEFA_HEADER_SIZE 128u
#define PEFA_DIRENT_SIZE 128u
#define PEFA_ALIGN 4096u
#define PEFA_MAX_SECTIONS 4096u
/* header field offsets */
#define H_MAGIC 0
#define H_MAJOR 8
#define H_MINOR 10
#define H_ENDIAN 12
#define H_HDRSIZE 16
#define H_DIRENTSIZE 20
#define H_FLAGS 24
#define H_UUID 32
#define H_FILESIZE 48
#define H_DIROFF 56
#define H_NSECT 64
#define H_RESERVED0 68
#define H_DIRSUM 72
#define H_RESERVED1 80 /* 40 bytes, to 120 */
#define H_HDRSUM 120
/* header flag bits 0..31 are "must understand": none defined in v1 */
#define PEFA_HFLAGS_REQUIRED_MASK 0x00000000FFFFFFFFull
/* directory entry field offsets */
#define D_KIND 0
#define D_TARGET 4
#define D_FLAGS 8
#define D_CODEC 10
#define D_ELEM 11
#define D_NDIM 12
#define D_OFFSET 16
#define D_STORED 24
#define D_RAW 32
#define D_SHAPE 40 /* 4 x u64 */
#define D_CHECKSUM 72
#define D_RESERVED 80 /* 48 bytes, to 128 */
#define PEFA_SFLAGS_KNOWN 0x0001u

/* graph record in an HNSW_INFO section (64 bytes) */
#define G_RECORD_SIZE 64u
#define G_N 0
#define G_DIM 4
#define G_M 8
#define G_M0 12
#define G_MAXLEVEL 16
#define G_ENTRY 20
#define G_EFC 24
#define G_METRIC 28
#define G_SEED 32
#define G_NUPPER 40

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

/* Is this host little-endian? (numeric arrays are used in place only then) */
static inline int host_is_le(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

#endif
