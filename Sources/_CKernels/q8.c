// q8_0: blocks of 32 int8 values with one fp16 scale each (llama.cpp's layout and quantization rule), the
// widening ahead of sgemm, and the decode dot product. The weight row and the activation are both quantized, so
// each block's 32 products sum exactly in int32 (AVX2: vpmaddubsw + vpmaddwd on |w| and x·sign(w); AVX-512 VNNI:
// vpdpbusd on two blocks at once); the block sums are scaled by d_w·d_x and added in fp32. The path is the one
// `eaglet_kernel_path` chose (ckernels.c), so EAGLET_KERNEL_PATH=plain|avx2 compares them on one machine.
#include "ckernels.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

_Static_assert(sizeof(eaglet_block_q8_0) == 34, "a q8_0 block is 34 bytes");

float eaglet_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
    if (e == 0) {
        float f = (float)m * 5.9604644775390625e-8f; // m · 2^-24: zero or a subnormal half, exact in fp32
        memcpy(&u, &f, 4);
        u |= sign;
    } else if (e == 31) {
        u = sign | 0x7f800000u | (m << 13);
    } else {
        u = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t eaglet_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00;       // NaN
    if (a >= 0x477ff000u) return sign | 0x7c00;      // ≥ 65520 rounds to infinity
    if (a < 0x38800000u) {                           // below 2^-14: a subnormal half (or zero)
        float v;
        memcpy(&v, &a, 4);
        return sign | (uint16_t)nearbyintf(v * 16777216.0f); // v / 2^-24, to nearest even; 1024 is 2^-14, right
    }
    uint32_t h = (((a >> 23) - 112) << 10) | ((a & 0x7fffff) >> 13), rest = a & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++; // a carry into the exponent is still correct
    return sign | (uint16_t)h;
}

// ---- plain C: the reference twin of the vector paths ----

static float quantize_block_plain(const float *x, int8_t *q) {
    float amax = 0;
    for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
    float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    for (int i = 0; i < 32; i++) q[i] = (int8_t)roundf(x[i] * id);
    return d;
}

static void gemv_q8_plain(const eaglet_block_q8_0 *w, long rows, long cols, const int8_t *xq, const float *xd,
                          float *y, int accumulate) {
    long nb = cols / 32;
    for (long r = 0; r < rows; r++) {
        const eaglet_block_q8_0 *wr = w + r * nb;
        float s = 0;
        for (long b = 0; b < nb; b++) {
            int32_t t = 0;
            for (int i = 0; i < 32; i++) t += (int32_t)wr[b].qs[i] * (int32_t)xq[32 * b + i];
            s += (float)t * (eaglet_f16_to_f32(wr[b].d) * xd[b]);
        }
        y[r] = accumulate ? y[r] + s : s;
    }
}

static void dequantize_plain(const eaglet_block_q8_0 *src, float *dst, long n) {
    for (long b = 0; b < n / 32; b++) {
        float d = eaglet_f16_to_f32(src[b].d);
        for (int i = 0; i < 32; i++) dst[32 * b + i] = d * (float)src[b].qs[i];
    }
}

#if defined(__x86_64__)
// ---- AVX2 (+ FMA, F16C: every AVX2 CPU has both) ----

// roundf(v) for |v| ≤ 127 without a rounding-mode dependence: floor(|v|) + floor(2·frac(|v|)), sign restored.
__attribute__((target("avx2,fma")))
static inline __m256i round_away(__m256 v) {
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    __m256 a = _mm256_andnot_ps(signbit, v), fl = _mm256_floor_ps(a);
    __m256 b = _mm256_add_ps(fl, _mm256_floor_ps(_mm256_mul_ps(_mm256_set1_ps(2.0f), _mm256_sub_ps(a, fl))));
    return _mm256_cvttps_epi32(_mm256_or_ps(b, _mm256_and_ps(v, signbit)));
}

__attribute__((target("avx2,fma")))
static float quantize_block_avx2(const float *x, int8_t *q) {
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16),
           v3 = _mm256_loadu_ps(x + 24);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(signbit, v0), _mm256_andnot_ps(signbit, v1)),
                             _mm256_max_ps(_mm256_andnot_ps(signbit, v2), _mm256_andnot_ps(signbit, v3)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    float d = _mm_cvtss_f32(h) / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    __m256 vid = _mm256_set1_ps(id);
    __m256i i0 = round_away(_mm256_mul_ps(v0, vid)), i1 = round_away(_mm256_mul_ps(v1, vid)),
            i2 = round_away(_mm256_mul_ps(v2, vid)), i3 = round_away(_mm256_mul_ps(v3, vid));
    // packs work within 128-bit lanes: the dwords come out as 0,2,4,6,1,3,5,7 of the wanted order.
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)q, p);
    return d;
}

// The 8 int32 partial sums of Σ w_i·x_i over one block: |w| (unsigned) times x·sign(w) (signed), exact.
__attribute__((target("avx2,fma")))
static inline __m256i dot_block_avx2(const int8_t *w, const int8_t *x) {
    __m256i wv = _mm256_loadu_si256((const __m256i *)w), xv = _mm256_loadu_si256((const __m256i *)x);
    __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

__attribute__((target("avx2,fma,f16c")))
static void gemv_q8_avx2(const eaglet_block_q8_0 *w, long rows, long cols, const int8_t *xq, const float *xd,
                         float *y, int accumulate) {
    long nb = cols / 32;
    for (long r = 0; r < rows; r++) {
        const eaglet_block_q8_0 *wr = w + r * nb;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        long b = 0;
        for (; b + 2 <= nb; b += 2) {
            a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_block_avx2(wr[b].qs, xq + 32 * b)),
                                 _mm256_set1_ps(_cvtsh_ss(wr[b].d) * xd[b]), a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_block_avx2(wr[b + 1].qs, xq + 32 * b + 32)),
                                 _mm256_set1_ps(_cvtsh_ss(wr[b + 1].d) * xd[b + 1]), a1);
        }
        if (b < nb)
            a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_block_avx2(wr[b].qs, xq + 32 * b)),
                                 _mm256_set1_ps(_cvtsh_ss(wr[b].d) * xd[b]), a0);
        __m256 a = _mm256_add_ps(a0, a1);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        float s = _mm_cvtss_f32(h);
        y[r] = accumulate ? y[r] + s : s;
    }
}

__attribute__((target("avx2,fma,f16c")))
static void dequantize_avx2(const eaglet_block_q8_0 *src, float *dst, long n) {
    for (long b = 0; b < n / 32; b++) {
        __m256 d = _mm256_set1_ps(_cvtsh_ss(src[b].d));
        __m256i q = _mm256_loadu_si256((const __m256i *)src[b].qs);
        __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
        float *o = dst + 32 * b;
        _mm256_storeu_ps(o, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
        _mm256_storeu_ps(o + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
        _mm256_storeu_ps(o + 16, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
        _mm256_storeu_ps(o + 24, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
    }
}

// ---- AVX-512 VNNI: two blocks per vpdpbusd ----

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
static void gemv_q8_vnni(const eaglet_block_q8_0 *w, long rows, long cols, const int8_t *xq, const float *xd,
                         float *y, int accumulate) {
    long nb = cols / 32;
    const __m512i zero = _mm512_setzero_si512();
    for (long r = 0; r < rows; r++) {
        const eaglet_block_q8_0 *wr = w + r * nb;
        __m512 acc = _mm512_setzero_ps();
        long b = 0;
        for (; b + 2 <= nb; b += 2) {
            __m512i wv = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)wr[b].qs)),
                _mm256_loadu_si256((const __m256i *)wr[b + 1].qs), 1);
            __m512i xv = _mm512_loadu_si512((const void *)(xq + 32 * b));
            __m512i sx = _mm512_mask_sub_epi8(xv, _mm512_movepi8_mask(wv), zero, xv); // x·sign(w)
            __m512i s = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(wv), sx);
            __m256 s0 = _mm256_set1_ps(_cvtsh_ss(wr[b].d) * xd[b]), s1 = _mm256_set1_ps(_cvtsh_ss(wr[b + 1].d) * xd[b + 1]);
            __m512 scale = _mm512_castpd_ps(
                _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(s0)), _mm256_castps_pd(s1), 1));
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, acc);
        }
        float s = _mm512_reduce_add_ps(acc);
        if (b < nb) {
            __m256i t = dot_block_avx2(wr[b].qs, xq + 32 * b);
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
            s += (float)_mm_cvtsi128_si32(h) * (_cvtsh_ss(wr[b].d) * xd[b]);
        }
        y[r] = accumulate ? y[r] + s : s;
    }
}
#endif

static int vnni = -1;

int eaglet_has_vnni(void) {
    if (vnni < 0) {
        int v = 0;
#if defined(__x86_64__)
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") ? 1 : 0;
#endif
        vnni = v;
    }
    return vnni;
}

void eaglet_quantize_q8_0(const float *x, long n, eaglet_block_q8_0 *out) {
    int p = eaglet_kernel_path();
    for (long b = 0; b < n / 32; b++) {
        float d;
#if defined(__x86_64__)
        if (p >= 1) d = quantize_block_avx2(x + 32 * b, out[b].qs);
        else
#endif
            d = quantize_block_plain(x + 32 * b, out[b].qs);
        out[b].d = eaglet_f32_to_f16(d);
    }
}

void eaglet_quantize_row_q8(const float *x, long n, int8_t *q, float *d) {
    int p = eaglet_kernel_path();
    for (long b = 0; b < n / 32; b++) {
#if defined(__x86_64__)
        if (p >= 1) { d[b] = quantize_block_avx2(x + 32 * b, q + 32 * b); continue; }
#endif
        d[b] = quantize_block_plain(x + 32 * b, q + 32 * b);
    }
}

void eaglet_q8_0_to_f32(const eaglet_block_q8_0 *src, float *dst, long n) {
#if defined(__x86_64__)
    if (eaglet_kernel_path() >= 1) { dequantize_avx2(src, dst, n); return; }
#endif
    dequantize_plain(src, dst, n);
}

void eaglet_gemv_q8_0(const eaglet_block_q8_0 *w, long rows, long cols, const int8_t *xq, const float *xd, float *y,
                      int accumulate) {
    switch (eaglet_kernel_path()) {
#if defined(__x86_64__)
    case 2:
        if (eaglet_has_vnni()) { gemv_q8_vnni(w, rows, cols, xq, xd, y, accumulate); return; }
        gemv_q8_avx2(w, rows, cols, xq, xd, y, accumulate);
        return;
    case 1: gemv_q8_avx2(w, rows, cols, xq, xd, y, accumulate); return;
#endif
    default: gemv_q8_plain(w, rows, cols, xq, xd, y, accumulate);
    }
}
