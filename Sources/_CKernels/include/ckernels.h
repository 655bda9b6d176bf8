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

/// One q8_0 block, llama.cpp's layout: 32 weights w_i ≈ d·q_i, d an IEEE half (fp16 bits), q_i int8 in [-127, 127].
/// 34 bytes, so 8.5 bits a weight.
typedef struct {
    uint16_t d;
    int8_t qs[32];
} eaglet_block_q8_0;

/// Quantizes n values (n a multiple of 32) into n/32 blocks exactly as ggml's reference does: d = max|x|/127
/// (fp32), q = roundf(x · (1/d)) (half away from zero; 0 when d = 0), d stored rounded to fp16. Every path gives
/// the same bytes.
void eaglet_quantize_q8_0(const float *x, long n, eaglet_block_q8_0 *out);

/// dst[i] = d_b · q_i for the n values (n/32 blocks) of `src`: the widening ahead of sgemm.
void eaglet_q8_0_to_f32(const eaglet_block_q8_0 *src, float *dst, long n);

/// An activation row quantized for `eaglet_gemv_q8_0`: n values (n a multiple of 32) into q (n int8) and one fp32
/// scale per 32 (d, n/32 floats), with the same rule as the weights but the scale kept in fp32.
void eaglet_quantize_row_q8(const float *x, long n, int8_t *q, float *d);

/// y[r] (+)= Σ_b fp16(w_b.d)·xd[b] · Σ_i w_b.qs[i]·xq[32b + i] for r in 0..<rows: a q8_0 matrix (rows, cols), cols
/// a multiple of 32, row r being blocks r·cols/32 ..< (r + 1)·cols/32, against an activation quantized by
/// `eaglet_quantize_row_q8`. The 32-term integer sums are exact on every path; only the float sum's order differs.
void eaglet_gemv_q8_0(const eaglet_block_q8_0 *w, long rows, long cols, const int8_t *xq, const float *xd, float *y,
                      int accumulate);

/// IEEE half (bits) → fp32, exactly; fp32 → half, rounding to nearest even (overflow → ±inf).
float eaglet_f16_to_f32(uint16_t h);
uint16_t eaglet_f32_to_f16(float f);

/// Whether this CPU has AVX-512 VNNI (the q8_0 dot's 512-bit path uses it when the kernel path is AVX-512).
int eaglet_has_vnni(void);

#endif
