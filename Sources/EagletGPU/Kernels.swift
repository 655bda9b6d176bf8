// The CUDA C++ kernels of the GPU mirror, held as a Swift string and compiled by NVRTC at run time.
//
// What it is: one plain kernel per CPU operator, written to be read beside its CPU twin: LayerNorm and
// RMSNorm (one block per row, statistics in fp32 by block reduction), GELU (tanh and erf), SiLU·up,
// RoPE (half rotation, angles p·inv_freq rounded to fp32 as transformers does), softmax rows with the
// causal mask, attention written out for one (query, head) per block, pixel shuffle, im2col, row
// gather/scatter, a naive matmul, and fp32 → bf16 rounding (to nearest, ties to even). `fmaf` is not
// used: NVRTC may fuse a·b + c on its own, which is one of the honest differences from the CPU.
// What it is not: tuned. The fast matmuls and attention products are cuBLAS (GPUOps).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
/// The kernel source and the names of its kernels, for readers and for `eaglet-gpu info`.
public enum GPUKernels {
    /// The CUDA C++ source NVRTC compiles.
    public static var source: String { KernelSource.source }
    /// FNV-1a 64 of `source` (the fp32 kernels), in hex; reports from a GPU carry it (see `bf16SourceHash`).
    public static var sourceHash: String { String(fnv1a64(KernelSource.source), radix: 16) }
    /// The bf16 kernels' source (flash attention, decode attention, the bf16 layer passes).
    public static var bf16Source: String { KernelSourceBF16.source }
    /// FNV-1a 64 of `bf16Source`, in hex: reports measured on a GPU carry it, so a report can be told apart
    /// from one made by another version of the kernels.
    public static var bf16SourceHash: String { String(fnv1a64(KernelSourceBF16.source), radix: 16) }
    /// The Hopper flash kernel's source (wgmma, compiled for sm_90a).
    public static var hopperSource: String { KernelSourceHopper.source }
    /// FNV-1a 64 of the Hopper flash kernel's source (KernelsHopper.swift), in hex, for the same purpose.
    public static var hopperSourceHash: String { String(fnv1a64(KernelSourceHopper.source), radix: 16) }
    /// The Hopper kernel's default variant (EAGLET_FLASH picks another) and the hash of the program it is in.
    public static var hopperDefaultVariant: String { KernelSourceHopper.defaultVariant }
    public static var hopperDefaultSourceHash: String { hopperSourceHash(variant: hopperDefaultVariant) }
    /// FNV-1a 64 (hex) of the program that holds Hopper variant `variant`.
    public static func hopperSourceHash(variant: String) -> String {
        String(fnv1a64(KernelSourceHopper.program(for: variant).source), radix: 16)
    }
    /// The warp-specialized variants' whole program (`hopperSource`, then their own text).
    public static var hopperWarpSpecializedSource: String { KernelSourceHopper.warpSpecializedProgram }
    /// The same for the warp-specialized variants' program (`hopperSource` followed by their own text).
    public static var hopperWarpSpecializedSourceHash: String {
        String(fnv1a64(KernelSourceHopper.warpSpecializedProgram), radix: 16)
    }
    /// Every `__global__` kernel, in source order.
    public static var names: [String] {
        KernelSource.source.components(separatedBy: "__global__ void ").dropFirst().compactMap {
            $0.split(separator: "(").first.map(String.init)
        }
    }
}

/// The CUDA text of a block-wide sum called `name`, shared by the fp32 and the bf16 NVRTC modules (each module is
/// compiled on its own, so each carries a copy under its own name; the text is written once, here).
func blockSum(named name: String) -> String {
    """
    __device__ float \(name)(float v, float* scratch) {
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        __syncthreads();
        if (lane == 0) scratch[warp] = v;
        __syncthreads();
        int warps = blockDim.x >> 5;
        v = lane < warps ? scratch[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        return v;
    }
    """
}

enum KernelSource {
    static let module = "eaglet"

    static let source = #"""
        #define NEG_INF __int_as_float(0xff800000)

        extern "C" {

        // Sum (or max) over a block of blockDim.x threads (a multiple of 32, at most 1024); every thread gets it.
        \#(blockSum(named: "block_sum"))

        __device__ float block_max(float v, float* scratch) {
            for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
            int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
            __syncthreads();
            if (lane == 0) scratch[warp] = v;
            __syncthreads();
            int warps = blockDim.x >> 5;
            v = lane < warps ? scratch[lane] : NEG_INF;
            for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
            return v;
        }

        // y[r, :] = (x[r, :] − mean) / sqrt(var + eps) · w + b, one block per row of C.
        __global__ void layer_norm(const float* x, const float* w, const float* b, float* y, int C, float eps) {
            __shared__ float scratch[32];
            const float* xr = x + (long)blockIdx.x * C;
            float* yr = y + (long)blockIdx.x * C;
            float s = 0.0f;
            for (int i = threadIdx.x; i < C; i += blockDim.x) s += xr[i];
            float mean = block_sum(s, scratch) / C;
            float v = 0.0f;
            for (int i = threadIdx.x; i < C; i += blockDim.x) { float d = xr[i] - mean; v += d * d; }
            float inv = rsqrtf(block_sum(v, scratch) / C + eps);
            for (int i = threadIdx.x; i < C; i += blockDim.x) yr[i] = (xr[i] - mean) * inv * w[i] + b[i];
        }

        // y[r, :] = x[r, :] / sqrt(mean(x²) + eps) · w, one block per row of C.
        __global__ void rms_norm(const float* x, const float* w, float* y, int C, float eps) {
            __shared__ float scratch[32];
            const float* xr = x + (long)blockIdx.x * C;
            float* yr = y + (long)blockIdx.x * C;
            float s = 0.0f;
            for (int i = threadIdx.x; i < C; i += blockDim.x) s += xr[i] * xr[i];
            float inv = rsqrtf(block_sum(s, scratch) / C + eps);
            for (int i = threadIdx.x; i < C; i += blockDim.x) yr[i] = w[i] * (xr[i] * inv);
        }

        // y[i] += b[i mod C]
        __global__ void add_bias(float* y, const float* b, long n, int C) {
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) y[i] += b[i % C];
        }

        // y[i] += x[i]
        __global__ void add_inplace(float* y, const float* x, long n) {
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) y[i] += x[i];
        }

        // gelu_pytorch_tanh: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
        __global__ void gelu_tanh(float* y, long n) {
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) { float x = y[i]; y[i] = 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))); }
        }

        // exact GELU: 0.5·x·(1 + erf(x/√2))
        __global__ void gelu_erf(float* y, long n) {
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) { float x = y[i]; y[i] = 0.5f * x * (1.0f + erff(x * 0.7071067811865476f)); }
        }

        // g[i] = silu(g[i]) · u[i],  silu(x) = x / (1 + e^(−x))
        __global__ void silu_mul(float* g, const float* u, long n) {
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) { float x = g[i]; g[i] = x / (1.0f + expf(-x)) * u[i]; }
        }

        // RoPE, half rotation, in place on x (T, heads, D) token-major, token t at position p0 + t:
        // x'[k] = x[k]·cos − x[k + D/2]·sin,  x'[k + D/2] = x[k + D/2]·cos + x[k]·sin,  angle = fp32(p · inv_freq[k]).
        __global__ void rope(float* x, const float* inv_freq, int T, int heads, int D, int p0) {
            int half = D / 2;
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            long total = (long)T * heads * half;
            if (i >= total) return;
            int k = i % half;
            long th = i / half;
            int t = th / heads;
            float angle = (float)(p0 + t) * inv_freq[k];
            float c = cosf(angle), s = sinf(angle);
            float* base = x + th * D;
            float a = base[k], b = base[k + half];
            base[k] = a * c - b * s;
            base[k + half] = b * c + a * s;
        }

        // Rows of scores (rows, S) become probabilities of scale·score; row r is query (r mod T) at absolute
        // position p0 + (r mod T), and with `causal` keys j > p0 + (r mod T) get probability 0.
        __global__ void softmax_rows(float* s, int T, int S, float scale, int causal, int p0) {
            __shared__ float scratch[32];
            long r = blockIdx.x;
            float* row = s + r * S;
            int limit = causal ? min(S, p0 + (int)(r % T) + 1) : S;
            float m = NEG_INF;
            for (int j = threadIdx.x; j < limit; j += blockDim.x) m = fmaxf(m, row[j] * scale);
            m = block_max(m, scratch);
            float sum = 0.0f;
            for (int j = threadIdx.x; j < limit; j += blockDim.x) { float e = expf(row[j] * scale - m); row[j] = e; sum += e; }
            sum = block_sum(sum, scratch);
            float inv = 1.0f / sum;
            for (int j = threadIdx.x; j < S; j += blockDim.x) row[j] = j < limit ? row[j] * inv : 0.0f;
        }

        // Attention written out, one block per (query t, head h), the S scores in dynamic shared memory:
        // q (T, H, D) with row stride qs, k and v (S, Hkv, D) with row stride ks, head h reads kv head h / (H/Hkv).
        // out (T, H, D) with row stride os.
        __global__ void attention_naive(const float* q, const float* k, const float* v, float* out,
                                        int T, int S, int H, int Hkv, int D, int qs, int ks, int os,
                                        float scale, int causal, int p0) {
            extern __shared__ float p[];
            __shared__ float scratch[32];
            int t = blockIdx.x, h = blockIdx.y, g = h / (H / Hkv);
            const float* qv = q + (long)t * qs + h * D;
            int limit = causal ? min(S, p0 + t + 1) : S;
            float m = NEG_INF;
            for (int j = threadIdx.x; j < limit; j += blockDim.x) {
                const float* kv = k + (long)j * ks + g * D;
                float dot = 0.0f;
                for (int d = 0; d < D; d++) dot += qv[d] * kv[d];
                p[j] = dot * scale;
                m = fmaxf(m, p[j]);
            }
            m = block_max(m, scratch);
            float sum = 0.0f;
            for (int j = threadIdx.x; j < limit; j += blockDim.x) { p[j] = expf(p[j] - m); sum += p[j]; }
            sum = block_sum(sum, scratch);
            __syncthreads();
            for (int d = threadIdx.x; d < D; d += blockDim.x) {
                float acc = 0.0f;
                for (int j = 0; j < limit; j++) acc += p[j] * v[(long)j * ks + g * D + d];
                out[(long)t * os + h * D + d] = acc / sum;
            }
        }

        // Pixel shuffle, ratio ½: x (N, R·W, C) → y (N, R/2·W/2, 4C) with
        // y[n, i·W/2 + j] = concat(x[2i, 2j], x[2i, 2j+1], x[2i+1, 2j], x[2i+1, 2j+1]).
        __global__ void pixel_shuffle(const float* x, float* y, int N, int R, int W, int C) {
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            long total = (long)N * R * W * C;
            if (i >= total) return;
            int c = i % (4 * C);
            long tok = i / (4 * C);
            int quarter = c / C, cc = c % C;
            int j = tok % (W / 2);
            long ni = tok / (W / 2);
            int ii = ni % (R / 2);
            int n = ni / (R / 2);
            int dr = quarter / 2, dc = quarter % 2;
            y[i] = x[(((long)n * R + 2 * ii + dr) * W + 2 * j + dc) * C + cc];
        }

        // im2col for a stride-P, P×P convolution: pixels (Cin, Hpx, Wpx) → cols (gh·gw, Cin·P·P), (ci, ky, kx) order.
        __global__ void im2col(const float* px, float* cols, int Cin, int Hpx, int Wpx, int P) {
            int gh = Hpx / P, gw = Wpx / P;
            long K = (long)Cin * P * P;
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= (long)gh * gw * K) return;
            int kk = i % K;
            long patch = i / K;
            int pi = patch / gw, pj = patch % gw;
            int ci = kk / (P * P), ky = (kk / P) % P, kx = kk % P;
            cols[i] = px[((long)ci * Hpx + pi * P + ky) * Wpx + pj * P + kx];
        }

        // y[r, :] = table[ids[r], :]   (embedding lookup), C columns
        __global__ void gather_rows(const float* table, const int* ids, float* y, int rows, int C) {
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= (long)rows * C) return;
            int r = i / C, c = i % C;
            y[i] = table[(long)ids[r] * C + c];
        }

        // y[dst[r], :] = x[r, :]   (splice visual tokens into the text embeddings)
        __global__ void scatter_rows(const float* x, const int* dst, float* y, int rows, int C) {
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= (long)rows * C) return;
            int r = i / C, c = i % C;
            y[(long)dst[r] * C + c] = x[i];
        }

        // y = x·wᵀ (+ b), the textbook loop: one thread per output, x (M, K), w (N, K), y (M, N).
        __global__ void matmul_naive(const float* x, const float* w, const float* b, float* y, int M, int N, int K) {
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= (long)M * N) return;
            int m = i / N, n = i % N;
            float acc = 0.0f;
            for (int k = 0; k < K; k++) acc += x[(long)m * K + k] * w[(long)n * K + k];
            y[i] = b ? acc + b[n] : acc;
        }

        // fp32 → bf16, round to nearest even (NaN stays NaN).
        __global__ void to_bf16(const float* x, unsigned short* y, long n) {
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= n) return;
            unsigned int u = __float_as_uint(x[i]);
            if ((u & 0x7fffffffu) > 0x7f800000u) { y[i] = (unsigned short)((u >> 16) | 0x40); return; }
            u += 0x7fffu + ((u >> 16) & 1u);
            y[i] = (unsigned short)(u >> 16);
        }

        }
        """#
}
