/*
 * format.h - internal to the container: byte layout of the header and the
 * directory of format v1 (format/pefa-format-v1.md, sections 3 and 4).
 * Fields are read and written with the helpers of common/bytes.h.
 */
#ifndef PEFA_FORMAT_H
#define PEFA_FORMAT_H

#include <stdint.h>

#include "common/bytes.h"

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
/* header flag bits 0..31 are "must understand" [H5]; this reader knows
 * PEFA_FILE_FLAG_METRIC_IP (pefa.h) */
#define PEFA_HFLAGS_REQUIRED_MASK 0x00000000FFFFFFFFull
#define PEFA_HFLAGS_KNOWN 0x0000000000000001ull
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

#endif
