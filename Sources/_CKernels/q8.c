// q8_0: blocks of 32 int8 values with one fp16 scale each (llama.cpp's quantization rule; its blocks repacked in
// groups of 8 so that 8 scales load at once, see ckernels.h), the widening ahead of sgemm, and the decode dot
// product. The weight row and the activation are both quantized, so
// each block's 32 products sum exactly in int32 (AVX2: vpmaddubsw + vpmaddwd on |w| and x·sign(w); AVX-512 VNNI:
// vpdpbusd on two blocks at once); the block sums are scaled by d_w·d_x and added in fp32. The path is the one
// `eaglet_kernel_path` chose (ckernels.c), so EAGLET_KERNEL_PATH=plain|avx2 compares them on one machine.
#include "ckernels.h"
#include "x86_helpers.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Row r of a (rows, cols) matrix starts at r·nb·34 bytes (nb = cols/32); its group j (blocks 8j ..< 8j + g) at
// j·272 within the row: g fp16 scales, then g × 32 int8 values.
enum { BLOCK_BYTES = 34, GROUP_BYTES = 8 * 34 };
static inline const uint8_t *row_at(const uint8_t *w, long cols, long r) { return w + r * (cols / 32) * BLOCK_BYTES; }

// The bytes 2 KiB past two rows' groups (the gemv paths' two streams, see ckernels.c).
static inline void prefetch_groups(const uint8_t *g0, const uint8_t *g1) {
    for (long o = 0; o < GROUP_BYTES; o += 64) {
        __builtin_prefetch(g0 + 2048 + o, 0, 3);
        __builtin_prefetch(g1 + 2048 + o, 0, 3);
    }
}
static inline int group_len(long nb, long j) { long g = nb - 8 * j; return g < 8 ? (int)g : 8; }
static inline uint16_t scale_of(const uint8_t *group, int k) { uint16_t d; memcpy(&d, group + 2 * k, 2); return d; }
static inline const int8_t *quants_of(const uint8_t *group, int g, int k) {
    return (const int8_t *)(group + 2 * g + 32 * k);
}

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

static void gemv_q8_plain(const uint8_t *w, long cols, long r0, long n, const int8_t *xq, const float *xd, float *y,
                          int accumulate) {
    long nb = cols / 32;
    for (long r = 0; r < n; r++) {
        const uint8_t *row = row_at(w, cols, r0 + r);
        float s = 0;
        for (long j = 0; j * 8 < nb; j++) {
            const uint8_t *grp = row + j * GROUP_BYTES;
            int g = group_len(nb, j);
            for (int k = 0; k < g; k++) {
                const int8_t *q = quants_of(grp, g, k), *x = xq + 32 * (8 * j + k);
                int32_t t = 0;
                for (int i = 0; i < 32; i++) t += (int32_t)q[i] * (int32_t)x[i];
                s += (float)t * (eaglet_f16_to_f32(scale_of(grp, k)) * xd[8 * j + k]);
            }
        }
        y[r] = accumulate ? y[r] + s : s;
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

// One group (up to 8 blocks) of two rows against the same activations: the float sums into a0/a1 (row 0), b0/b1.
__attribute__((target("avx2,fma,f16c")))
static inline void group2_avx2(const uint8_t *g0, const uint8_t *g1, int g, const int8_t *x, const float *xd,
                               __m256 *a0, __m256 *a1, __m256 *b0, __m256 *b1) {
    __m256 xs = _mm256_loadu_ps(xd);
    // The groups' scales times the activation's: 8 lanes (those past g unused).
    __m256 s0 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g0)), xs);
    __m256 s1 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g1)), xs);
    for (int k = 0; k < g; k++) {
        __m256i lane = _mm256_set1_epi32(k);
        __m256 p0 = _mm256_cvtepi32_ps(dot_block_avx2(quants_of(g0, g, k), x + 32 * k));
        __m256 p1 = _mm256_cvtepi32_ps(dot_block_avx2(quants_of(g1, g, k), x + 32 * k));
        if (k & 1) {
            *a1 = _mm256_fmadd_ps(p0, _mm256_permutevar8x32_ps(s0, lane), *a1);
            *b1 = _mm256_fmadd_ps(p1, _mm256_permutevar8x32_ps(s1, lane), *b1);
        } else {
            *a0 = _mm256_fmadd_ps(p0, _mm256_permutevar8x32_ps(s0, lane), *a0);
            *b0 = _mm256_fmadd_ps(p1, _mm256_permutevar8x32_ps(s1, lane), *b0);
        }
    }
}

// Rows r and h + r together, each stream prefetched 2 KiB ahead a group at a time (the reading pattern of the BF16
// gemv, see ckernels.c); a lone last row pairs with itself.
__attribute__((target("avx2,fma,f16c")))
static void gemv_q8_avx2(const uint8_t *w, long cols, long r0, long n, const int8_t *xq, const float *xd, float *y,
                         int accumulate) {
    long nb = cols / 32, h = n / 2;
    for (long r = 0; r < h + n % 2; r++) {
        int lone = r == h;
        const uint8_t *row0 = row_at(w, cols, r0 + (lone ? 2 * h : r)), *row1 = lone ? row0 : row_at(w, cols, r0 + h + r);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
        for (long j = 0; j * 8 < nb; j++) {
            const uint8_t *g0 = row0 + j * GROUP_BYTES, *g1 = row1 + j * GROUP_BYTES;
            if (!lone) prefetch_groups(g0, g1);
            group2_avx2(g0, g1, group_len(nb, j), xq + 256 * j, xd + 8 * j, &a0, &a1, &b0, &b1);
        }
        float t0 = hsum256(_mm256_add_ps(a0, a1)), t1 = hsum256(_mm256_add_ps(b0, b1));
        store_row_pair(y, r, h, lone, t0, t1, accumulate);
    }
}

__attribute__((target("avx2,fma,f16c")))
static void dequantize_block_avx2(uint16_t d16, const int8_t *q, float *o) {
    __m256 d = _mm256_set1_ps(_cvtsh_ss(d16));
    __m256i v = _mm256_loadu_si256((const __m256i *)q);
    __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
    _mm256_storeu_ps(o, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
    _mm256_storeu_ps(o + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
    _mm256_storeu_ps(o + 16, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
    _mm256_storeu_ps(o + 24, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
}

// ---- AVX-512 VNNI: two blocks per vpdpbusd ----

// Two blocks of one row (64 int8 weights) against their 64 activations: vpdpbusd's 16 int32 lane sums as floats,
// lanes 0–7 the first block's, 8–15 the second's; |w| (unsigned) times x·sign(w) (signed), exact.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
static inline __m512 dot_pair_vnni(__m512i wv, __m512i xv) {
    const __m512i zero = _mm512_setzero_si512();
    __m512i sx = _mm512_mask_sub_epi8(xv, _mm512_movepi8_mask(wv), zero, xv);
    return _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, _mm512_abs_epi8(wv), sx));
}

// Rows r and h + r together (two streams far apart, sharing the activation loads), each stream's bytes prefetched
// 2 KiB ahead group by group: the reading pattern of the BF16 gemv (see ckernels.c); a lone last row pairs with
// itself, as in the AVX2 path.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
static void gemv_q8_vnni(const uint8_t *w, long cols, long r0, long n, const int8_t *xq, const float *xd, float *y,
                         int accumulate) {
    long nb = cols / 32, h = n / 2;
    // Lanes 0–7 take scale 2p, lanes 8–15 scale 2p + 1.
    const __m512i pair[4] = {
        _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
        _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3),
        _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5),
        _mm512_setr_epi32(6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7)};
    for (long r = 0; r < h + n % 2; r++) {
        int lone = r == h;
        const uint8_t *row0 = row_at(w, cols, r0 + (lone ? 2 * h : r)), *row1 = lone ? row0 : row_at(w, cols, r0 + h + r);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
        for (long j = 0; j * 8 < nb; j++) {
            int g = group_len(nb, j);
            const uint8_t *g0 = row0 + j * GROUP_BYTES, *g1 = row1 + j * GROUP_BYTES;
            if (!lone) prefetch_groups(g0, g1);
            const int8_t *x = xq + 256 * j, *q0 = quants_of(g0, g, 0), *q1 = quants_of(g1, g, 0);
            __m256 xs = _mm256_loadu_ps(xd + 8 * j);
            __m512 s0 = _mm512_castps256_ps512(_mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g0)), xs));
            __m512 s1 = _mm512_castps256_ps512(_mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g1)), xs));
            int k = 0;
            for (; k + 2 <= g; k += 2) { // two blocks a step in each row
                __m512i xv = _mm512_loadu_si512((const void *)(x + 32 * k));
                __m512 p0 = dot_pair_vnni(_mm512_loadu_si512((const void *)(q0 + 32 * k)), xv);
                __m512 p1 = dot_pair_vnni(_mm512_loadu_si512((const void *)(q1 + 32 * k)), xv);
                if (k & 2) {
                    a1 = _mm512_fmadd_ps(p0, _mm512_permutexvar_ps(pair[k / 2], s0), a1);
                    b1 = _mm512_fmadd_ps(p1, _mm512_permutexvar_ps(pair[k / 2], s1), b1);
                } else {
                    a0 = _mm512_fmadd_ps(p0, _mm512_permutexvar_ps(pair[k / 2], s0), a0);
                    b0 = _mm512_fmadd_ps(p1, _mm512_permutexvar_ps(pair[k / 2], s1), b0);
                }
            }
            if (k < g) { // an odd last block: the upper 32 lanes are zero, and take the same scale
                __m512i xv = _mm512_maskz_loadu_epi8(0xffffffffull, x + 32 * k);
                __m512 p0 = dot_pair_vnni(_mm512_maskz_loadu_epi8(0xffffffffull, q0 + 32 * k), xv);
                __m512 p1 = dot_pair_vnni(_mm512_maskz_loadu_epi8(0xffffffffull, q1 + 32 * k), xv);
                a0 = _mm512_fmadd_ps(p0, _mm512_permutexvar_ps(_mm512_set1_epi32(k), s0), a0);
                b0 = _mm512_fmadd_ps(p1, _mm512_permutexvar_ps(_mm512_set1_epi32(k), s1), b0);
            }
        }
        float t0 = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)), t1 = _mm512_reduce_add_ps(_mm512_add_ps(b0, b1));
        store_row_pair(y, r, h, lone, t0, t1, accumulate);
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

// Byte offsets, within its row, of block b's scale and of its 32 values (nb blocks a row, groups of 8).
static inline long scale_offset(long b) { return b / 8 * GROUP_BYTES + 2 * (b % 8); }
static inline long values_offset(long nb, long b) {
    return b / 8 * GROUP_BYTES + 2 * group_len(nb, b / 8) + 32 * (b % 8);
}

// One block quantized on the path `p` (the AVX2 loop on both vector paths): its scale d, values into q.
static inline float quantize_block(int p, const float *x, int8_t *q) {
#if defined(__x86_64__)
    if (p >= 1) return quantize_block_avx2(x, q);
#endif
    (void)p;
    return quantize_block_plain(x, q);
}

void eaglet_quantize_q8_0(const float *x, long rows, long cols, uint8_t *out) {
    int p = eaglet_kernel_path();
    long nb = cols / 32;
    for (long r = 0; r < rows; r++) {
        uint8_t *row = out + r * nb * BLOCK_BYTES;
        for (long b = 0; b < nb; b++) {
            uint16_t h = eaglet_f32_to_f16(quantize_block(p, x + r * cols + 32 * b, (int8_t *)(row + values_offset(nb, b))));
            memcpy(row + scale_offset(b), &h, 2);
        }
    }
}

void eaglet_q8_0_block(const uint8_t *w, long cols, long r, long b, uint8_t out[34]) {
    long nb = cols / 32;
    const uint8_t *row = row_at(w, cols, r);
    memcpy(out, row + scale_offset(b), 2);
    memcpy(out + 2, row + values_offset(nb, b), 32);
}

void eaglet_quantize_row_q8(const float *x, long n, int8_t *q, float *d) {
    int p = eaglet_kernel_path();
    for (long b = 0; b < n / 32; b++) d[b] = quantize_block(p, x + 32 * b, q + 32 * b);
}

void eaglet_q8_0_to_f32(const uint8_t *w, long cols, long r0, long n, float *dst) {
    int p = eaglet_kernel_path();
    long nb = cols / 32;
    for (long r = 0; r < n; r++) {
        const uint8_t *row = row_at(w, cols, r0 + r);
        for (long b = 0; b < nb; b++) {
            uint16_t d16;
            memcpy(&d16, row + scale_offset(b), 2);
            const int8_t *q = (const int8_t *)(row + values_offset(nb, b));
            float *o = dst + r * cols + 32 * b;
#if defined(__x86_64__)
            if (p >= 1) { dequantize_block_avx2(d16, q, o); continue; }
#endif
            float d = eaglet_f16_to_f32(d16);
            for (int i = 0; i < 32; i++) o[i] = d * (float)q[i];
        }
    }
}

void eaglet_gemv_q8_0(const uint8_t *w, long cols, long r0, long n, const int8_t *xq, const float *xd, float *y,
                      int accumulate) {
    switch (eaglet_kernel_path()) {
#if defined(__x86_64__)
    case 2:
        if (eaglet_has_vnni()) { gemv_q8_vnni(w, cols, r0, n, xq, xd, y, accumulate); return; }
        gemv_q8_avx2(w, cols, r0, n, xq, xd, y, accumulate);
        return;
    case 1: gemv_q8_avx2(w, cols, r0, n, xq, xd, y, accumulate); return;
#endif
    default: gemv_q8_plain(w, cols, r0, n, xq, xd, y, accumulate);
    }
}
