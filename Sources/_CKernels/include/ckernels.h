// Eaglet's few C kernels: the ones that need a vector instruction set chosen at run time (AVX-512, AVX2, or a
// plain loop), which Swift cannot compile per function. Each is checked against a Swift reference in the tests.
#ifndef EAGLET_CKERNELS_H
#define EAGLET_CKERNELS_H
#include <stdint.h>

/// Which code path the kernels below take on this CPU: 2 = AVX-512 (F, BW), 1 = AVX2 + FMA, 0 = plain C
/// (`EAGLET_KERNEL_PATH=plain|avx2` asks for a lower one).
int eaglet_kernel_path(void);

/// What the CPU itself offers, whatever EAGLET_KERNEL_PATH asks: 2 = AVX-512 F/BW/DQ/VL/CD (OpenBLAS's SkylakeX
/// kernels), 1 = AVX2 + FMA (its Haswell kernels), 0 = neither.
int eaglet_cpu_level(void);

/// Forces the path (for the tests that check each one on one machine): the lower of `p` and what the CPU has.
/// Returns the path now in use.
int eaglet_use_kernel_path(int p);

/// y[r] (+)= Σ_c bf16(w[r·cols + c]) · x[c] for r in 0..<rows: a BF16 matrix (rows, cols), row-major, read once
/// and widened in registers (exact: BF16 is the top half of an fp32). `accumulate` adds to y instead of storing.
void eaglet_gemv_bf16(const uint16_t *w, long rows, long cols, const float *x, float *y, int accumulate);

/// row[j] ← e^(row[j] − m) for j < n, in place, with exactly the arithmetic of Swift's `fastExp` (so the values are
/// bit for bit those of the scalar loop), and returns their sum: the exponentials of a softmax row.
float eaglet_exp_sum(float *row, long n, float m);

/// x[j] ← gelu_tanh(x[j] + bias[j]) for j < n, in place, with exactly the arithmetic of Swift's `fastGelu` (values
/// bit for bit those of the scalar loop): SigLIP2's fc1 bias and activation.
void eaglet_bias_gelu_tanh(float *x, const float *bias, long n);

/// The sum of n floats, read as fast as this machine streams memory (two streams, prefetched): the read that decode's
/// bandwidth bounds are measured with. The sum is returned only so the reads cannot be dropped.
float eaglet_stream_read(const float *p, long n);

/// y[r] (+)= Σ_c w[r·cols + c] · x[c] for r in 0..<rows: the same gemv for an fp32 matrix.
void eaglet_gemv_f32(const float *w, long rows, long cols, const float *x, float *y, int accumulate);

/// dst[i] = bf16(src[i]) widened to fp32, exactly, for i in 0..<n.
void eaglet_bf16_to_f32(const uint16_t *src, float *dst, long n);

/// q8_0, llama.cpp's quantization: each row cut into blocks of 32 weights w_i ≈ d·q_i, d an IEEE half (fp16 bits),
/// q_i int8 in [-127, 127]; 34 bytes a block, 8.5 bits a weight. In memory a row (cols/32 blocks, cols·34/32 bytes)
/// is repacked in groups of up to 8 blocks — the group's 8 scales (16 bytes), then its 8 × 32 values — so the
/// kernels load 8 scales with one instruction; the last group of a row may hold fewer blocks. The bytes are those
/// of llama.cpp's blocks, only reordered (eaglet_q8_0_block gathers one back).
enum { EAGLET_Q8_GROUP = 8 };

/// Quantizes a (rows, cols) fp32 matrix (cols a multiple of 32) into `out` (rows·cols/32·34 bytes) exactly as ggml's
/// reference does: d = max|x|/127 (fp32), q = roundf(x · (1/d)) (half away from zero; 0 when d = 0), d stored
/// rounded to fp16. Every path gives the same bytes.
void eaglet_quantize_q8_0(const float *x, long rows, long cols, uint8_t *out);

/// Block b of row r as llama.cpp stores it: the fp16 scale (2 bytes, little-endian) then the 32 int8 values.
void eaglet_q8_0_block(const uint8_t *w, long cols, long r, long b, uint8_t out[34]);

/// dst = d·q for rows r0 ..< r0 + n of a q8_0 matrix (n·cols floats): the widening ahead of sgemm.
void eaglet_q8_0_to_f32(const uint8_t *w, long cols, long r0, long n, float *dst);

/// An activation row quantized for `eaglet_gemv_q8_0`: n values (n a multiple of 32) into q (n int8) and one fp32
/// scale per 32 (d, n/32 floats), with the same rule as the weights but the scale kept in fp32. The kernels read d
/// in groups of 8: allocate and zero it up to a multiple of 8.
void eaglet_quantize_row_q8(const float *x, long n, int8_t *q, float *d);

/// y[r] (+)= Σ_b fp16(d_w,b)·xd[b] · Σ_i q_w,i·xq[32b + i] for rows r0 ..< r0 + n of a q8_0 matrix (rows of cols
/// values, cols a multiple of 32) against an activation quantized by `eaglet_quantize_row_q8`; y points at row r0's
/// output. The 32-term integer sums are exact on every path; only the float sum's order differs.
void eaglet_gemv_q8_0(const uint8_t *w, long cols, long r0, long n, const int8_t *xq, const float *xd, float *y,
                      int accumulate);

/// Whether any of the n little-endian floating-point values at p (elemBytes 2, 4 or 8; kind 1 = BF16, 2 = F16,
/// 0 = IEEE of that size) is NaN or ±Inf, i.e. has an all-ones exponent. A loop the compiler vectorises.
int eaglet_any_nonfinite(const void *p, long n, int elemBytes, int kind);

/// IEEE half (bits) → fp32, exactly; fp32 → half, rounding to nearest even (overflow → ±inf).
float eaglet_f16_to_f32(uint16_t h);
uint16_t eaglet_f32_to_f16(float f);

/// Whether this CPU has AVX-512 VNNI (the q8_0 dot's 512-bit path uses it when the kernel path is AVX-512).
int eaglet_has_vnni(void);

#endif
