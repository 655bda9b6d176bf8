// Eaglet's few C kernels: the ones that need a vector instruction set chosen at run time (AVX-512, AVX2, or a
// plain loop), which Swift cannot compile per function. Each is checked against a Swift reference in the tests.
#ifndef EAGLET_CKERNELS_H
#define EAGLET_CKERNELS_H
#include <stdint.h>

/// Which code path the kernels below take on this CPU: 2 = AVX-512 (F, BW), 1 = AVX2 + FMA, 0 = plain C
/// (`EAGLET_KERNEL_PATH=plain|avx2` asks for a lower one).
int eaglet_kernel_path(void);

/// Forces the path (for the tests that check each one on one machine): the lower of `p` and what the CPU has.
/// Returns the path now in use.
int eaglet_use_kernel_path(int p);

/// y[r] (+)= Σ_c bf16(w[r·cols + c]) · x[c] for r in 0..<rows: a BF16 matrix (rows, cols), row-major, read once
/// and widened in registers (exact: BF16 is the top half of an fp32). `accumulate` adds to y instead of storing.
void eaglet_gemv_bf16(const uint16_t *w, long rows, long cols, const float *x, float *y, int accumulate);

/// dst[i] = bf16(src[i]) widened to fp32, exactly, for i in 0..<n.
void eaglet_bf16_to_f32(const uint16_t *src, float *dst, long n);

#endif
