// Small vector helpers shared by the kernels' translation units (not part of the module's interface).
#ifndef EAGLET_X86_HELPERS_H
#define EAGLET_X86_HELPERS_H

/// The gemv kernels read rows r and h + r together (h = rows / 2) and the odd last row, row 2h, alone (r == h):
/// their dot products s0, s1 stored, or added to y with `accumulate`.
static inline void store_row_pair(float *y, long r, long h, int lone, float s0, float s1, int accumulate) {
    if (lone) { y[2 * h] = accumulate ? y[2 * h] + s0 : s0; return; }
    y[r] = accumulate ? y[r] + s0 : s0;
    y[h + r] = accumulate ? y[h + r] + s1 : s1;
}

#if defined(__x86_64__)
#include <immintrin.h>

/// The sum of an AVX vector's 8 floats.
__attribute__((target("avx2,fma")))
static inline float hsum256(__m256 a) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}
#endif
#endif
