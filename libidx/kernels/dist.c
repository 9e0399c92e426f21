/*
 * dist.c - inner-product kernels (f32 query x f32/f16 row) with runtime CPU
 * dispatch, and IEEE binary16 <-> binary32 conversion.
 *
 * The SIMD kernels are compiled with per-function target attributes so the
 * library itself needs no -m flags; the best supported set is chosen once
 * (pthread_once) on first use; pefa_kernel_select() can override the choice.
 */
#include "kernels/dist.h"

#include "common/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define PEFA_X86 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define PEFA_X86 0
#endif

/* ---- portable half <-> float ------------------------------------------------ */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t out;
    if (exp == 0x1f) {                 /* inf / nan */
        out = sign | 0x7f800000u | (man << 13);
        if (man)
            out |= 0x00400000u;        /* keep NaN quiet */
    } else if (exp != 0) {             /* normal */
        out = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {             /* +-0 */
        out = sign;
    } else {                           /* subnormal: value = man * 2^-24 */
        float f = (float)man * (1.0f / 16777216.0f);
        out = sign | f32_bits(f);
    }
    return bits_f32(out);
}

static uint16_t float_to_half(float f)
{
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) {           /* inf / nan */
        if (ax > 0x7f800000u)
            return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
        return (uint16_t)(sign | 0x7c00u);
    }
    if (ax >= 0x477ff000u)             /* rounds to >= 65520 -> inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) {            /* below smallest normal half (2^-14) */
        if (ax < 0x33000000u)          /* < 2^-25: rounds to zero */
            return (uint16_t)sign;
        /* subnormal half: mantissa = round(|f| * 2^24), ties to even */
        uint32_t e = ax >> 23;         /* 102..112 */
        uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e;     /* 14..24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u)))
            q++;
        return (uint16_t)(sign | q);
    }
    /* normal: rebias exponent, round mantissa to 10 bits, ties to even;
     * a carry into the exponent is correct (and can reach inf only above
     * the guard tested earlier). */
    uint32_t r = ax - 0x38000000u;     /* exp - 112 */
    uint32_t lsb = (r >> 13) & 1u;
    r += 0x0fffu + lsb;
    return (uint16_t)(sign | (r >> 13));
}

static void f32_to_f16_scalar(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = float_to_half(src[i]);
}

static void f16_to_f32_scalar(const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = half_to_float(src[i]);
}

/* ---- scalar kernels ---------------------------------------------------------- */

static float dot_f32_scalar(const float *a, const void *bv, size_t dim)
{
    const float *b = bv;
    float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
    size_t i = 0;
    for (; i + 4 <= dim; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < dim; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static float dot_f16_scalar(const float *a, const void *bv, size_t dim)
{
    const unsigned char *b = bv;
    float s0 = 0.f, s1 = 0.f;
    size_t i = 0;
    for (; i + 2 <= dim; i += 2) {
        uint16_t h0, h1;
        memcpy(&h0, b + 2 * i, 2);
        memcpy(&h1, b + 2 * i + 2, 2);
        s0 += a[i] * half_to_float(h0);
        s1 += a[i + 1] * half_to_float(h1);
    }
    if (i < dim) {
        uint16_t h;
        memcpy(&h, b + 2 * i, 2);
        s0 += a[i] * half_to_float(h);
    }
    return s0 + s1;
}

/* <v, c> of int8 query codes v and row codes c; qsum (= sum of v) is used by
 * kernels that work on c + 128 */
static int32_t dot_i8_scalar(const int8_t *v, int32_t qsum, const int8_t *c, size_t dim)
{
    int32_t s = 0;
    (void)qsum;
    for (size_t i = 0; i < dim; i++)
        s += (int32_t)v[i] * c[i];
    return s;
}

/* ---- x86 SIMD kernels -------------------------------------------------------- */
#if PEFA_X86

/* VNNI multiplies unsigned by signed bytes: the row codes are turned into
 * c + 128 (xor 0x80) and 128 * sum(v) is taken back off */
__attribute__((target("avx512f,avx512bw,avx512vnni")))
static int32_t dot_i8_vnni(const int8_t *v, int32_t qsum, const int8_t *c, size_t dim)
{
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i acc = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= dim; i += 64)
        acc = _mm512_dpbusd_epi32(acc, _mm512_xor_si512(_mm512_loadu_si512((const void *)(c + i)), flip),
                                  _mm512_loadu_si512((const void *)(v + i)));
    if (i < dim) { /* masked tail: v is 0 there, so c + 128 does not count */
        __mmask64 m = ((__mmask64)1 << (dim - i)) - 1;
        acc = _mm512_dpbusd_epi32(acc, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, c + i), flip),
                                  _mm512_maskz_loadu_epi8(m, v + i));
    }
    return _mm512_reduce_add_epi32(acc) - 128 * qsum;
}

__attribute__((target("avx2")))
static int32_t dot_i8_avx2(const int8_t *v, int32_t qsum, const int8_t *c, size_t dim)
{
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    int32_t s;
    (void)qsum;
    for (; i + 16 <= dim; i += 16) {
        __m256i a = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(v + i)));
        __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(c + i)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
    }
    __m128i lo = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    lo = _mm_add_epi32(lo, _mm_shuffle_epi32(lo, 0x4e));
    lo = _mm_add_epi32(lo, _mm_shuffle_epi32(lo, 0xb1));
    s = _mm_cvtsi128_si32(lo);
    for (; i < dim; i++)
        s += (int32_t)v[i] * c[i];
    return s;
}

__attribute__((target("avx512f")))
static float dot_f32_avx512(const float *a, const void *bv, size_t dim)
{
    const float *b = bv;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i + 16 <= dim) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        i += 16;
    }
    if (i < dim) {
        __mmask16 m = (__mmask16)((1u << (dim - i)) - 1u);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f")))
static float dot_f16_avx512(const float *a, const void *bv, size_t dim)
{
    const unsigned char *b = bv;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m512 b0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(b + 2 * i)));
        __m512 b1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(b + 2 * i + 32)));
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), b0, s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), b1, s1);
    }
    if (i + 16 <= dim) {
        __m512 b0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(b + 2 * i)));
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), b0, s0);
        i += 16;
    }
    if (i < dim) {
        size_t r = dim - i;
        __mmask16 m = (__mmask16)((1u << r) - 1u);
        __m256i hv;
        if (r >= 8) {
            /* 8 halves directly, the rest through a small buffer */
            uint16_t tmp[8] = {0};
            memcpy(tmp, b + 2 * i + 16, 2 * (r - 8));
            hv = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(const void *)tmp),
                                  _mm_loadu_si128((const __m128i *)(const void *)(b + 2 * i)));
        } else {
            uint16_t tmp[8] = {0};
            memcpy(tmp, b + 2 * i, 2 * r);
            hv = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)tmp));
        }
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_cvtph_ps(hv), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx2,fma")))
static float hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 0x55));
    return _mm_cvtss_f32(lo);
}

static const int32_t tail_mask_tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

__attribute__((target("avx2,fma")))
static float dot_f32_avx2(const float *a, const void *bv, size_t dim)
{
    const float *b = bv;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    if (i + 8 <= dim) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        i += 8;
    }
    if (i < dim) {
        __m256i m = _mm256_loadu_si256((const __m256i *)(const void *)(tail_mask_tab + 8 - (dim - i)));
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
    }
    return hsum256(_mm256_add_ps(s0, s1));
}

__attribute__((target("avx2,fma,f16c")))
static float dot_f16_avx2(const float *a, const void *bv, size_t dim)
{
    const unsigned char *b = bv;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        __m256 b0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(b + 2 * i)));
        __m256 b1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(b + 2 * i + 16)));
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), b0, s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), b1, s1);
    }
    if (i + 8 <= dim) {
        __m256 b0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(b + 2 * i)));
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), b0, s0);
        i += 8;
    }
    if (i < dim) {
        size_t r = dim - i;
        uint16_t tmp[8] = {0};
        memcpy(tmp, b + 2 * i, 2 * r);
        __m256i m = _mm256_loadu_si256((const __m256i *)(const void *)(tail_mask_tab + 8 - r));
        __m256 b0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)tmp));
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), b0, s1);
    }
    return hsum256(_mm256_add_ps(s0, s1));
}

__attribute__((target("avx2,f16c")))
static void f32_to_f16_f16c(const float *src, uint16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(void *)(dst + i), h);
    }
    for (; i < n; i++)
        dst[i] = float_to_half(src[i]);
}

__attribute__((target("avx2,f16c")))
static void f16_to_f32_f16c(const uint16_t *src, float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + i))));
    for (; i < n; i++)
        dst[i] = half_to_float(src[i]);
}

#endif /* PEFA_X86 */

/* ---- dispatch ----------------------------------------------------------------
 * One table of kernels per instruction set; the best the CPU supports is
 * chosen at first use, pefa_kernel_select() may override it. */

typedef struct {
    const char *name;
    pefa_dot_fn dot_f32, dot_f16;
    pefa_dot_i8_fn dot_i8;
    void (*to_f16)(const float *, uint16_t *, size_t);
    void (*to_f32)(const uint16_t *, float *, size_t);
} kernel_set;

static const kernel_set k_scalar = {"scalar", dot_f32_scalar, dot_f16_scalar, dot_i8_scalar, f32_to_f16_scalar,
                                    f16_to_f32_scalar};
#if PEFA_X86
static const kernel_set k_avx2 = {"avx2", dot_f32_avx2, dot_f16_avx2, dot_i8_avx2, f32_to_f16_f16c,
                                  f16_to_f32_f16c};
static const kernel_set k_avx512 = {"avx512", dot_f32_avx512, dot_f16_avx512, dot_i8_avx2, f32_to_f16_f16c,
                                    f16_to_f32_f16c};
static const kernel_set k_avx512vnni = {"avx512-vnni", dot_f32_avx512, dot_f16_avx512, dot_i8_vnni, f32_to_f16_f16c,
                                        f16_to_f32_f16c};
#endif

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static const kernel_set *g_k = &k_scalar;

/* the best set this CPU runs, or the named one if it runs it (else NULL) */
static const kernel_set *kernel_find(const char *want)
{
    const kernel_set *best = &k_scalar;
    if (want && strcmp(want, "scalar") == 0) return &k_scalar;
#if PEFA_X86
    __builtin_cpu_init();
    /* F16C via CPUID.1:ECX bit 29 (not every compiler knows "f16c" as a
     * __builtin_cpu_supports string); OS YMM support is implied by avx2.
     * Both SIMD sets convert f16 with F16C. */
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    int has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29));
    int has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f");
    int has_vnni = has_avx512 && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
    if (want && strcmp(want, "avx2") == 0) return has_avx2 ? &k_avx2 : NULL;
    if (want && strcmp(want, "avx512") == 0) return has_avx512 ? &k_avx512 : NULL;
    if (want && strcmp(want, "avx512-vnni") == 0) return has_vnni ? &k_avx512vnni : NULL;
    best = has_vnni ? &k_avx512vnni : has_avx512 ? &k_avx512 : has_avx2 ? &k_avx2 : &k_scalar;
#endif
    if (want && strcmp(want, "auto") != 0) return NULL;
    return best;
}

static void dispatch_init(void)
{
    g_k = kernel_find(NULL);
}

pefa_dot_i8_fn pefa__dot_i8_kernel(void)
{
    pthread_once(&g_once, dispatch_init);
    return g_k->dot_i8;
}

pefa_dot_fn pefa__dot_kernel(int elem)
{
    pthread_once(&g_once, dispatch_init);
    if (elem == PEFA_TYPE_F32) return g_k->dot_f32;
    if (elem == PEFA_TYPE_F16) return g_k->dot_f16;
    return NULL;
}

const char *pefa_kernel_name(void)
{
    pthread_once(&g_once, dispatch_init);
    return g_k->name;
}

int pefa_kernel_select(const char *name)
{
    const kernel_set *k = name ? kernel_find(name) : NULL;
    pthread_once(&g_once, dispatch_init);
    if (!k)
        return pefa__set_error(PEFA_ERR_INVALID_ARG, "kernel '%s' is not one this CPU runs (scalar, avx2, avx512, avx512-vnni, auto)",
                               name ? name : "(null)");
    g_k = k;
    return 0;
}

void pefa_f32_to_f16(const float *src, uint16_t *dst, size_t n)
{
    pthread_once(&g_once, dispatch_init);
    g_k->to_f16(src, dst, n);
}

void pefa_f16_to_f32(const uint16_t *src, float *dst, size_t n)
{
    pthread_once(&g_once, dispatch_init);
    g_k->to_f32(src, dst, n);
}
