// Small vector helpers shared by the kernels' translation units (not part of the module's interface).
#ifndef EAGLET_X86_HELPERS_H
#define EAGLET_X86_HELPERS_H
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
