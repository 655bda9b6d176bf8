// BF16 and fp32 kernels with the vector path chosen once, at the first call, from what the CPU reports (cpuid through
// the compiler's __builtin_cpu_supports). BF16 → fp32 is a 16-bit left shift of the bits, so every path widens
// exactly; the paths differ only in the order the products are summed.
#include "ckernels.h"
#include "x86_helpers.h"
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static inline float widen(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void gemv_plain(const uint16_t *w, long rows, long cols, const float *x, float *y, int accumulate) {
    for (long r = 0; r < rows; r++) {
        const uint16_t *wr = w + r * cols;
        float s = 0;
        for (long c = 0; c < cols; c++) s += widen(wr[c]) * x[c];
        y[r] = accumulate ? y[r] + s : s;
    }
}

static void widen_plain(const uint16_t *src, float *dst, long n) {
    for (long i = 0; i < n; i++) dst[i] = widen(src[i]);
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static inline __m256 widen8(const uint16_t *p) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// Decode's gemv reads every weight once, so its speed is how well the memory system streams the rows. Measured in a
// C harness (2 threads, Xeon with AVX-512, medians of 15 interleaved passes), against the best plain read found
// (two streams, each prefetched 2 KiB ahead: `eaglet_stream_read`):
//     one row at a time, vpmovzxwd + shift                               71 %  (a single stream; the hardware
//                                                                              prefetcher restarts at every 4 KiB page)
//     two adjacent rows, the next pair prefetched                        90 %
//     rows r and h + r (two streams far apart), 2 KiB ahead              90 %
//     the same, 64-byte loads split into even and odd elements           95 %
// The last is what the vector paths do. A 32-bit lane of a 64-byte load holds two BF16 weights: the even one is the
// lane shifted left by 16, the odd one the lane with its low half cleared; x is split once per call into its even
// and odd elements to match, so each weight costs no shuffle.
#define EAGLET_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)
enum { GEMV_AHEAD = 2048 };

// x's even and odd elements below `n` (a multiple of 32), for the split loads; NULL when there is no memory for them.
static float *split_even_odd(const float *x, long n) {
    float *e = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!e) return NULL;
    for (long k = 0; k < n / 2; k++) {
        e[k] = x[2 * k];
        e[n / 2 + k] = x[2 * k + 1];
    }
    return e;
}

// Rows w0 and w1 (w1 may equal w0 for a lone last row) against x split into xe/xo: their two dot products.
__attribute__((target("avx2,fma")))
static void dot2_bf16_avx2(const uint16_t *w0, const uint16_t *w1, long cols, long main, const float *x,
                           const float *xe, const float *xo, int prefetch, float *s0, float *s1) {
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (long c = 0; c < main; c += 32) {
        if (prefetch) {
            EAGLET_PREFETCH((const char *)(w0 + c) + GEMV_AHEAD);
            EAGLET_PREFETCH((const char *)(w1 + c) + GEMV_AHEAD);
        }
        __m256 e0 = _mm256_loadu_ps(xe + c / 2), o0 = _mm256_loadu_ps(xo + c / 2);
        __m256 e1 = _mm256_loadu_ps(xe + c / 2 + 8), o1 = _mm256_loadu_ps(xo + c / 2 + 8);
        __m256i v0 = _mm256_loadu_si256((const __m256i *)(w0 + c)), v1 = _mm256_loadu_si256((const __m256i *)(w0 + c + 16));
        __m256i u0 = _mm256_loadu_si256((const __m256i *)(w1 + c)), u1 = _mm256_loadu_si256((const __m256i *)(w1 + c + 16));
        a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)), e0, a0);
        a1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v0, high)), o0, a1);
        a2 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)), e1, a2);
        a3 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v1, high)), o1, a3);
        b0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(u0, 16)), e0, b0);
        b1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(u0, high)), o0, b1);
        b2 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(u1, 16)), e1, b2);
        b3 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(u1, high)), o1, b3);
    }
    float t0 = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    float t1 = hsum256(_mm256_add_ps(_mm256_add_ps(b0, b1), _mm256_add_ps(b2, b3)));
    for (long c = main; c < cols; c++) {
        t0 += widen(w0[c]) * x[c];
        t1 += widen(w1[c]) * x[c];
    }
    *s0 = t0;
    *s1 = t1;
}

__attribute__((target("avx512f,avx512bw")))
static void dot2_bf16_avx512(const uint16_t *w0, const uint16_t *w1, long cols, long main, const float *x,
                             const float *xe, const float *xo, int prefetch, float *s0, float *s1) {
    const __m512i high = _mm512_set1_epi32((int)0xFFFF0000);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    for (long c = 0; c < main; c += 32) {
        if (prefetch) {
            EAGLET_PREFETCH((const char *)(w0 + c) + GEMV_AHEAD);
            EAGLET_PREFETCH((const char *)(w1 + c) + GEMV_AHEAD);
        }
        __m512 e = _mm512_loadu_ps(xe + c / 2), o = _mm512_loadu_ps(xo + c / 2);
        __m512i v = _mm512_loadu_si512((const void *)(w0 + c)), u = _mm512_loadu_si512((const void *)(w1 + c));
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), e, a0);
        a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, high)), o, a1);
        b0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(u, 16)), e, b0);
        b1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(u, high)), o, b1);
    }
    float t0 = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)), t1 = _mm512_reduce_add_ps(_mm512_add_ps(b0, b1));
    for (long c = main; c < cols; c++) {
        t0 += widen(w0[c]) * x[c];
        t1 += widen(w1[c]) * x[c];
    }
    *s0 = t0;
    *s1 = t1;
}

// Rows r and h + r together (h = rows / 2), a lone last row when rows is odd.
static void gemv_bf16_halves(int avx512, const uint16_t *w, long rows, long cols, const float *x, float *y,
                             int accumulate) {
    long main = cols / 32 * 32, h = rows / 2;
    float *xe = split_even_odd(x, main);
    if (!xe) { gemv_plain(w, rows, cols, x, y, accumulate); return; }
    const float *xo = xe + main / 2;
    for (long r = 0; r < h + rows % 2; r++) {
        int lone = r == h; // the odd last row, row 2h
        const uint16_t *w0 = w + (lone ? 2 * h : r) * cols, *w1 = lone ? w0 : w + (h + r) * cols;
        float s0, s1;
        if (avx512) dot2_bf16_avx512(w0, w1, cols, main, x, xe, xo, !lone, &s0, &s1);
        else dot2_bf16_avx2(w0, w1, cols, main, x, xe, xo, !lone, &s0, &s1);
        store_row_pair(y, r, h, lone, s0, s1, accumulate);
    }
    free(xe);
}

__attribute__((target("avx2,fma")))
static void widen_avx2(const uint16_t *src, float *dst, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, widen8(src + i));
    for (; i < n; i++) dst[i] = widen(src[i]);
}

__attribute__((target("avx512f,avx512bw")))
static inline __m512 widen16(const uint16_t *p) {
    __m256i h = _mm256_loadu_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

__attribute__((target("avx512f,avx512bw")))
static void widen_avx512(const uint16_t *src, float *dst, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, widen16(src + i));
    for (; i < n; i++) dst[i] = widen(src[i]);
}
#endif

// The streaming read decode's bounds are measured with: the two halves of the buffer read together, each prefetched
// 2 KiB ahead. Of the plain reads tried (one stream, one stream prefetched, two streams with and without), this was the
// fastest, about 10 % above a single unassisted stream, so no gemv can look better than it is by beating a weak bound.
#define STREAM_AHEAD 2048
static float stream_plain(const float *p, long n) {
    float a = 0, b = 0;
    long h = n / 2;
    for (long i = 0; i < h; i++) { a += p[i]; b += p[h + i]; }
    for (long i = 2 * h; i < n; i++) a += p[i];
    return a + b;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static float stream_avx2(const float *p, long n) {
    long h = n / 2 / 16 * 16;
    const float *q = p + h;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    for (long i = 0; i < h; i += 16) {
        EAGLET_PREFETCH((const char *)(p + i) + STREAM_AHEAD);
        EAGLET_PREFETCH((const char *)(q + i) + STREAM_AHEAD);
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
        b0 = _mm256_add_ps(b0, _mm256_loadu_ps(q + i));
        b1 = _mm256_add_ps(b1, _mm256_loadu_ps(q + i + 8));
    }
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(b0, b1)));
    for (long i = 2 * h; i < n; i++) s += p[i];
    return s;
}

__attribute__((target("avx512f,avx512bw")))
static float stream_avx512(const float *p, long n) {
    long h = n / 2 / 16 * 16;
    const float *q = p + h;
    __m512 a = _mm512_setzero_ps(), b = a;
    for (long i = 0; i < h; i += 16) {
        EAGLET_PREFETCH((const char *)(p + i) + STREAM_AHEAD);
        EAGLET_PREFETCH((const char *)(q + i) + STREAM_AHEAD);
        a = _mm512_add_ps(a, _mm512_loadu_ps(p + i));
        b = _mm512_add_ps(b, _mm512_loadu_ps(q + i));
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(a, b));
    for (long i = 2 * h; i < n; i++) s += p[i];
    return s;
}
#endif

// The fp32 gemv: the BF16 kernels' reading pattern (rows r and h + r, each stream prefetched 2 KiB ahead) with plain loads.
static void gemv_f32_plain(const float *w, long rows, long cols, const float *x, float *y, int accumulate) {
    for (long r = 0; r < rows; r++) {
        const float *wr = w + r * cols;
        float s = 0;
        for (long c = 0; c < cols; c++) s += wr[c] * x[c];
        y[r] = accumulate ? y[r] + s : s;
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static void dot2_f32_avx2(const float *w0, const float *w1, long cols, const float *x, int prefetch, float *s0,
                          float *s1) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    long c = 0;
    for (; c + 16 <= cols; c += 16) {
        if (prefetch) {
            EAGLET_PREFETCH((const char *)(w0 + c) + GEMV_AHEAD);
            EAGLET_PREFETCH((const char *)(w1 + c) + GEMV_AHEAD);
        }
        __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c), x0, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c + 8), x1, a1);
        b0 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + c), x0, b0);
        b1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + c + 8), x1, b1);
    }
    float t0 = hsum256(_mm256_add_ps(a0, a1)), t1 = hsum256(_mm256_add_ps(b0, b1));
    for (; c < cols; c++) {
        t0 += w0[c] * x[c];
        t1 += w1[c] * x[c];
    }
    *s0 = t0;
    *s1 = t1;
}

__attribute__((target("avx512f,avx512bw")))
static void dot2_f32_avx512(const float *w0, const float *w1, long cols, const float *x, int prefetch, float *s0,
                            float *s1) {
    __m512 a0 = _mm512_setzero_ps(), b0 = a0;
    long c = 0;
    for (; c + 16 <= cols; c += 16) {
        if (prefetch) {
            EAGLET_PREFETCH((const char *)(w0 + c) + GEMV_AHEAD);
            EAGLET_PREFETCH((const char *)(w1 + c) + GEMV_AHEAD);
        }
        __m512 x0 = _mm512_loadu_ps(x + c);
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + c), x0, a0);
        b0 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + c), x0, b0);
    }
    float t0 = _mm512_reduce_add_ps(a0), t1 = _mm512_reduce_add_ps(b0);
    for (; c < cols; c++) {
        t0 += w0[c] * x[c];
        t1 += w1[c] * x[c];
    }
    *s0 = t0;
    *s1 = t1;
}

static void gemv_f32_halves(int avx512, const float *w, long rows, long cols, const float *x, float *y, int accumulate) {
    long h = rows / 2;
    for (long r = 0; r < h + rows % 2; r++) {
        int lone = r == h;
        const float *w0 = w + (lone ? 2 * h : r) * cols, *w1 = lone ? w0 : w + (h + r) * cols;
        float s0, s1;
        if (avx512) dot2_f32_avx512(w0, w1, cols, x, !lone, &s0, &s1);
        else dot2_f32_avx2(w0, w1, cols, x, !lone, &s0, &s1);
        store_row_pair(y, r, h, lone, s0, s1, accumulate);
    }
}
#endif

void eaglet_gemv_f32(const float *w, long rows, long cols, const float *x, float *y, int accumulate) {
    switch (eaglet_kernel_path()) {
#if defined(__x86_64__)
    case 2: gemv_f32_halves(1, w, rows, cols, x, y, accumulate); return;
    case 1: gemv_f32_halves(0, w, rows, cols, x, y, accumulate); return;
#endif
    default: gemv_f32_plain(w, rows, cols, x, y, accumulate);
    }
}

// e^(x − m) in place over a row, and the row's sum: a softmax's exponentials. The same arithmetic as Swift's `fastExp`
// (Tensor/Ops.swift: clamp to [−87.3, 88.3], n = round(x·log₂e) by the 1.5·2²³ trick, r = x − n·ln2 in two
// constants, the degree-6 Cephes polynomial, 2ⁿ from the exponent bits), operation for operation and with no fused
// multiply-adds, so every path gives Swift's value bit for bit; only the sum's order differs. In C because Swift builds
// for baseline x86-64, where its loop runs 4 lanes wide; here it is 16 (AVX-512) or 8 (AVX2).
#pragma clang fp contract(off)
static inline float exp_plain(float x) {
    float xc = x > -87.3f ? x : -87.3f;
    xc = xc < 88.3f ? xc : 88.3f;
    float t = xc * 1.4426950408889634f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float er = p * (r * r) + r + 1.0f;
    uint32_t tb;
    memcpy(&tb, &t, 4);
    uint32_t bits = (tb - 0x4B400000u + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return er * scale;
}

static float exp_sum_plain(float *row, long n, float m) {
    float s = 0;
    for (long j = 0; j < n; j++) {
        row[j] = exp_plain(row[j] - m);
        s += row[j];
    }
    return s;
}

#if defined(__x86_64__)
#define EXP_BODY(V, PS, SI, W)                                                                                      \
    V xc = PS##min_ps(PS##max_ps(x, PS##set1_ps(-87.3f)), PS##set1_ps(88.3f));                                     \
    V t = PS##add_ps(PS##mul_ps(xc, PS##set1_ps(1.4426950408889634f)), PS##set1_ps(12582912.0f));                  \
    V n = PS##sub_ps(t, PS##set1_ps(12582912.0f));                                                                  \
    V r = PS##sub_ps(xc, PS##mul_ps(n, PS##set1_ps(0.693359375f)));                                                 \
    r = PS##sub_ps(r, PS##mul_ps(n, PS##set1_ps(-2.12194440e-4f)));                                                 \
    V p = PS##set1_ps(1.9875691500e-4f);                                                                            \
    p = PS##add_ps(PS##mul_ps(p, r), PS##set1_ps(1.3981999507e-3f));                                                \
    p = PS##add_ps(PS##mul_ps(p, r), PS##set1_ps(8.3334519073e-3f));                                                \
    p = PS##add_ps(PS##mul_ps(p, r), PS##set1_ps(4.1665795894e-2f));                                                \
    p = PS##add_ps(PS##mul_ps(p, r), PS##set1_ps(1.6666665459e-1f));                                                \
    p = PS##add_ps(PS##mul_ps(p, r), PS##set1_ps(5.0000001201e-1f));                                                \
    V er = PS##add_ps(PS##add_ps(PS##mul_ps(p, PS##mul_ps(r, r)), r), PS##set1_ps(1.0f));                           \
    SI bits = PS##slli_epi32(PS##add_epi32(PS##sub_epi32(PS##castps_si##W(t), PS##set1_epi32(0x4B400000)),         \
                                           PS##set1_epi32(127)), 23);                                            \
    V e = PS##mul_ps(er, PS##castsi##W##_ps(bits));

// Both widths from one definition: V the vector type, PS its intrinsics' prefix, SI the integer vector of W bits,
// L lanes, HSUM its horizontal sum.
#define DEFINE_EXP_SUM(ISA, TARGET, V, PS, SI, W, L, HSUM)                                                           \
    __attribute__((target(TARGET))) static float exp_sum_##ISA(float *row, long n, float m) {                     \
        V acc = PS##setzero_ps(), mv = PS##set1_ps(m);                                                           \
        long j = 0;                                                                                               \
        for (; j + L <= n; j += L) {                                                                              \
            V x = PS##sub_ps(PS##loadu_ps(row + j), mv);                                                         \
            EXP_BODY(V, PS, SI, W)                                                                                \
            PS##storeu_ps(row + j, e);                                                                            \
            acc = PS##add_ps(acc, e);                                                                             \
        }                                                                                                         \
        float s = HSUM(acc);                                                                                      \
        return s + exp_sum_plain(row + j, n - j, m);                                                              \
    }
DEFINE_EXP_SUM(avx2, "avx2,fma", __m256, _mm256_, __m256i, 256, 8, hsum256)
DEFINE_EXP_SUM(avx512, "avx512f,avx512bw", __m512, _mm512_, __m512i, 512, 16, _mm512_reduce_add_ps)
#endif

// x[j] ← gelu_tanh(x[j] + bias[j]) = y / (1 + e^(−2u)), y = x[j] + bias[j], u = √(2/π)·(y + 0.044715·y³): SigLIP2's
// MLP activation with its fc1 bias, with the operations of Swift's `fastGelu` in the same order (and `exp_plain`'s
// exp), so every path gives its value bit for bit.
static inline float gelu_plain(float y) {
    float u = 0.7978845608028654f * (y + 0.044715f * y * y * y);
    return y / (1.0f + exp_plain(-2.0f * u));
}

static void bias_gelu_plain(float *x, const float *bias, long n) {
    for (long j = 0; j < n; j++) x[j] = gelu_plain(x[j] + bias[j]);
}

#if defined(__x86_64__)
#define DEFINE_BIAS_GELU(ISA, TARGET, V, PS, SI, W, L)                                                               \
    __attribute__((target(TARGET))) static void bias_gelu_##ISA(float *row, const float *bias, long n) {           \
        long j = 0;                                                                                               \
        for (; j + L <= n; j += L) {                                                                              \
            V y = PS##add_ps(PS##loadu_ps(row + j), PS##loadu_ps(bias + j));                                      \
            V c = PS##mul_ps(PS##mul_ps(PS##mul_ps(PS##set1_ps(0.044715f), y), y), y);                            \
            V u = PS##mul_ps(PS##set1_ps(0.7978845608028654f), PS##add_ps(y, c));                                 \
            V x = PS##mul_ps(PS##set1_ps(-2.0f), u);                                                              \
            EXP_BODY(V, PS, SI, W)                                                                                \
            PS##storeu_ps(row + j, PS##div_ps(y, PS##add_ps(PS##set1_ps(1.0f), e)));                              \
        }                                                                                                         \
        bias_gelu_plain(row + j, bias + j, n - j);                                                                \
    }
DEFINE_BIAS_GELU(avx2, "avx2,fma", __m256, _mm256_, __m256i, 256, 8)
DEFINE_BIAS_GELU(avx512, "avx512f,avx512bw", __m512, _mm512_, __m512i, 512, 16)
#endif
#pragma clang fp contract(on)

static int path = -1;

int eaglet_kernel_path(void) {
    if (path < 0) {
        int p = 0;
#if defined(__x86_64__)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) p = 2;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) p = 1;
#endif
        // EAGLET_KERNEL_PATH=plain|avx2|avx512 asks for a path no better than the CPU's (to compare them on one machine).
        const char *want = getenv("EAGLET_KERNEL_PATH");
        if (want && strcmp(want, "plain") == 0) p = 0;
        else if (want && strcmp(want, "avx2") == 0 && p > 1) p = 1;
        path = p;   // a benign race: every thread computes the same value
    }
    return path;
}

int eaglet_cpu_level(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

int eaglet_use_kernel_path(int p) {
    path = -1;
    int best = eaglet_kernel_path();
    path = p < best ? (p < 0 ? 0 : p) : best;
    return path;
}

void eaglet_gemv_bf16(const uint16_t *w, long rows, long cols, const float *x, float *y, int accumulate) {
    switch (eaglet_kernel_path()) {
#if defined(__x86_64__)
    case 2: gemv_bf16_halves(1, w, rows, cols, x, y, accumulate); return;
    case 1: gemv_bf16_halves(0, w, rows, cols, x, y, accumulate); return;
#endif
    default: gemv_plain(w, rows, cols, x, y, accumulate);
    }
}

float eaglet_exp_sum(float *row, long n, float m) {
    switch (eaglet_kernel_path()) {
#if defined(__x86_64__)
    case 2: return exp_sum_avx512(row, n, m);
    case 1: return exp_sum_avx2(row, n, m);
#endif
    default: return exp_sum_plain(row, n, m);
    }
}

void eaglet_bias_gelu_tanh(float *x, const float *bias, long n) {
    switch (eaglet_kernel_path()) {
#if defined(__x86_64__)
    case 2: bias_gelu_avx512(x, bias, n); return;
    case 1: bias_gelu_avx2(x, bias, n); return;
#endif
    default: bias_gelu_plain(x, bias, n);
    }
}

float eaglet_stream_read(const float *p, long n) {
    switch (eaglet_kernel_path()) {
#if defined(__x86_64__)
    case 2: return stream_avx512(p, n);
    case 1: return stream_avx2(p, n);
#endif
    default: return stream_plain(p, n);
    }
}

void eaglet_bf16_to_f32(const uint16_t *src, float *dst, long n) {
    switch (eaglet_kernel_path()) {
#if defined(__x86_64__)
    case 2: widen_avx512(src, dst, n); return;
    case 1: widen_avx2(src, dst, n); return;
#endif
    default: widen_plain(src, dst, n);
    }
}

// Non-finite scan: (x & mask) == mask for any x. The vector paths test 64 (AVX-512) or 32 (AVX2) bytes a step and
// look at the accumulated flag every 4 KiB; the plain loop is their reference twin.
static int any16_plain(const uint16_t *q, long n, uint16_t mask) {
    for (long k = 0; k < n; k++) if ((q[k] & mask) == mask) return 1;
    return 0;
}

static int any32_plain(const uint32_t *q, long n, uint32_t mask) {
    for (long k = 0; k < n; k++) if ((q[k] & mask) == mask) return 1;
    return 0;
}

static int any64_plain(const uint64_t *q, long n, uint64_t mask) {
    for (long k = 0; k < n; k++) if ((q[k] & mask) == mask) return 1;
    return 0;
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw")))
static int any_avx512(const uint8_t *p, long bytes, int lane, uint32_t mask) {
    __m512i m = lane == 2 ? _mm512_set1_epi16((short)mask) : _mm512_set1_epi32((int)mask);
    long i = 0;
    for (; i + 4096 <= bytes; i += 4096) {
        __mmask64 hit = 0;
        for (long k = 0; k < 4096; k += 64) {
            __m512i v = _mm512_and_si512(_mm512_loadu_si512((const void *)(p + i + k)), m);
            hit |= lane == 2 ? _mm512_cmpeq_epi16_mask(v, m) : (__mmask64)_mm512_cmpeq_epi32_mask(v, m);
        }
        if (hit) return 1;
    }
    return lane == 2 ? any16_plain((const uint16_t *)(p + i), (bytes - i) / 2, (uint16_t)mask)
                     : any32_plain((const uint32_t *)(p + i), (bytes - i) / 4, mask);
}

__attribute__((target("avx2")))
static int any_avx2(const uint8_t *p, long bytes, int lane, uint32_t mask) {
    __m256i m = lane == 2 ? _mm256_set1_epi16((short)mask) : _mm256_set1_epi32((int)mask);
    long i = 0;
    for (; i + 4096 <= bytes; i += 4096) {
        __m256i hit = _mm256_setzero_si256();
        for (long k = 0; k < 4096; k += 32) {
            __m256i v = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(p + i + k)), m);
            hit = _mm256_or_si256(hit, lane == 2 ? _mm256_cmpeq_epi16(v, m) : _mm256_cmpeq_epi32(v, m));
        }
        if (!_mm256_testz_si256(hit, hit)) return 1;
    }
    return lane == 2 ? any16_plain((const uint16_t *)(p + i), (bytes - i) / 2, (uint16_t)mask)
                     : any32_plain((const uint32_t *)(p + i), (bytes - i) / 4, mask);
}
#endif

int eaglet_any_nonfinite(const void *p, long n, int elemBytes, int kind) {
    if (elemBytes == 8) return any64_plain((const uint64_t *)p, n, 0x7FF0000000000000ull);
    uint32_t mask = elemBytes == 4 ? 0x7F800000u : kind == 1 ? 0x7F80 : 0x7C00;
    switch (eaglet_kernel_path()) {
#if defined(__x86_64__)
    case 2: return any_avx512((const uint8_t *)p, n * elemBytes, elemBytes, mask);
    case 1: return any_avx2((const uint8_t *)p, n * elemBytes, elemBytes, mask);
#endif
    default:
        return elemBytes == 4 ? any32_plain((const uint32_t *)p, n, mask) : any16_plain((const uint16_t *)p, n, (uint16_t)mask);
    }
}
