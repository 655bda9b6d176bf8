// Decode attention that reads the KV cache once per kv head (docs/gpu.md, chapter 14): one query token, S keys.
//
// KernelsBF16.swift's `decode_split` gives every query head its own blocks, so the G = H/Hkv query heads of a kv
// group read the same keys and values G times (7 for Qwen2.5-7B: 401–529 GB/s of KV where SDPA reads 1.3–2.8 TB/s).
// Here one block of G warps owns a (split of the keys, kv head) pair: the block copies 64 keys and their values at
// a time into shared memory, once, and each warp runs the same online softmax as `decode_split` for its own query
// head over them — 8 keys a step, a quarter of D = 128 per lane, scores summed over the 4 lanes of a key by
// shuffles. Each warp writes its head's partial (o unnormalised, m in the log2 domain, l) in `decode_split`'s
// layout, so `decode_combine` merges the splits unchanged. Shared rows are 20 × 16 bytes apart and a row's 16-byte
// chunks are stored quarter-minor, so the 8 lanes of one load phase (2 keys × 4 quarters) hit 32 different banks.
// `decode_split_gqa_pipe` is the same with 32-key tiles in two shared stages, the next tile's cp.async copies in
// flight during this tile's softmax (EAGLET_DECODE=gqa-pipe).
// What it is not: for G > 8 (one warp per head, 256 threads at most) — `GPU.decodeAttention` keeps `decode_split`.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Which decode attention kernel runs (`GPU.decodeKernel`; EAGLET_DECODE names one by its raw value).
public enum DecodeKernel: String, Sendable, CaseIterable {
    /// `decode_split` (KernelsBF16.swift): blocks of 128 threads per query head, so a kv head's keys are read once for
    /// each of its query heads.
    case perHead = "per-head"
    /// `decode_split_gqa`: one block of G = H/Hkv warps per (split, kv head), each 64-key tile read once.
    case gqa
    /// `decode_split_gqa_pipe`: the same with 32-key tiles in two stages, the next tile's copies in flight.
    case gqaPipe = "gqa-pipe"

    /// The kernel `GPU.decodeAttention` runs unless EAGLET_DECODE names another.
    public static let `default` = DecodeKernel.gqa

    var module: String { self == .perHead ? KernelSourceBF16.module : KernelSourceDecode.module }
    var entry: String {
        switch self {
        case .perHead: return "decode_split"
        case .gqa: return "decode_split_gqa"
        case .gqaPipe: return "decode_split_gqa_pipe"
        }
    }

    /// Splits of S keys: about `perSM` blocks per multiprocessor and at least `minKeys` keys a split — 4 and 256 for
    /// `decode_split`, whose blocks are per query head; 3 (the pipelined one, at 110 registers a thread: 2) and one
    /// 64-key tile for the GQA kernels, whose G-warp blocks are per kv head.
    func splits(keys s: Int, heads h: Int, kvHeads hkv: Int, multiprocessors: Int = 132) -> Int {
        let (perSM, minKeys, blocksPerSplit) =
            switch self {
            case .perHead: (4, 256, h)
            case .gqa: (3, KernelSourceDecode.tileKeys, hkv)
            case .gqaPipe: (2, KernelSourceDecode.tileKeys, hkv)
            }
        return max(1, min((s + minKeys - 1) / minKeys, (perSM * multiprocessors + blocksPerSplit - 1) / blocksPerSplit))
    }

    /// Blocks (splits, H or Hkv) and threads a block (128, or a warp per query head of a kv group).
    func launch(splits n: Int, heads h: Int, kvHeads hkv: Int) -> (grid: (Int, Int, Int), block: (Int, Int, Int)) {
        self == .perHead ? ((n, h, 1), (128, 1, 1)) : ((n, hkv, 1), (32 * (h / hkv), 1, 1))
    }
}

enum KernelSourceDecode {
    static let module = "eaglet_decode"
    /// Keys a block stages at once (`decode_split_gqa`; the pipelined one stages 32 twice), and the most query heads
    /// per kv head (warps per block).
    static let tileKeys = 64, maxGroup = 8

    static let source = #"""
        #define NEG_INF __int_as_float(0xff800000)
        typedef unsigned short bf16;
        __device__ __forceinline__ float bf2f(bf16 u) { return __uint_as_float(((unsigned)u) << 16); }
        __device__ __forceinline__ float fast_exp2(float x) { float y; asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x)); return y; }
        __device__ __forceinline__ void unpack8(uint4 r, float* f) {
            f[0] = bf2f(r.x & 0xffff); f[1] = bf2f(r.x >> 16); f[2] = bf2f(r.y & 0xffff); f[3] = bf2f(r.y >> 16);
            f[4] = bf2f(r.z & 0xffff); f[5] = bf2f(r.z >> 16); f[6] = bf2f(r.w & 0xffff); f[7] = bf2f(r.w >> 16);
        }

        #define TK 64
        #define TP 32
        #define ROW 20

        // One warp's online softmax over `rows` staged keys and values (rows ROW uint4 apart, chunk (quarter, c) at
        // c·4 + quarter): 8 keys a step, lane (grp, sub) takes key grp's quarter sub; q, o, m, l are the lane's.
        __device__ __forceinline__ void attend_tile(const uint4* K, const uint4* V, int rows, int grp, int sub,
                                                    const float* qv, float* o, float& m, float& l, float scale_log2) {
            for (int r0 = 0; r0 < rows; r0 += 8) {
                const int r = r0 + grp;
                float dot = 0.0f;
                #pragma unroll
                for (int c = 0; c < 4; c++) {
                    float f[8];
                    unpack8(K[r * ROW + c * 4 + sub], f);
                    #pragma unroll
                    for (int e = 0; e < 8; e++) dot += qv[8 * c + e] * f[e];
                }
                dot += __shfl_xor_sync(0xffffffffu, dot, 1);
                dot += __shfl_xor_sync(0xffffffffu, dot, 2);
                const float sc = r < rows ? dot * scale_log2 : NEG_INF;
                const float mn = fmaxf(m, sc);
                const float b = mn == NEG_INF ? 0.0f : mn;
                const float alpha = fast_exp2(m - b), p = fast_exp2(sc - b);
                #pragma unroll
                for (int c = 0; c < 4; c++) {
                    float f[8];
                    unpack8(V[r * ROW + c * 4 + sub], f);
                    #pragma unroll
                    for (int e = 0; e < 8; e++) o[8 * c + e] = o[8 * c + e] * alpha + p * f[e];
                }
                l = l * alpha + p;
                m = mn;
            }
        }

        // The warp's 8 key groups merged (lanes of the same quarter are 4, 8 and 16 apart) and head h's partial
        // for this split written in decode_split's layout.
        __device__ __forceinline__ void write_partial(float* part_o, float* part_ml, long slot, int lane, int grp,
                                                      int sub, float* o, float m, float l) {
            float M = m;
            #pragma unroll
            for (int off = 4; off < 32; off <<= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, off));
            const float w = fast_exp2(m - (M == NEG_INF ? 0.0f : M));
            l *= w;
            #pragma unroll
            for (int off = 4; off < 32; off <<= 1) l += __shfl_xor_sync(0xffffffffu, l, off);
            #pragma unroll
            for (int i = 0; i < 32; i++) {
                float x = o[i] * w;
                #pragma unroll
                for (int off = 4; off < 32; off <<= 1) x += __shfl_xor_sync(0xffffffffu, x, off);
                o[i] = x;
            }
            if (grp == 0) {
                #pragma unroll
                for (int i = 0; i < 32; i++) part_o[slot * 128 + sub * 32 + i] = o[i];
            }
            if (lane == 0) { part_ml[slot * 2] = M; part_ml[slot * 2 + 1] = l; }
        }

        // The kernels' shared start: this warp's head h = g·G + warp, its split [j0, j1), q's quarter in registers.
        #define DECODE_PROLOGUE \
            const int split = blockIdx.x, g = blockIdx.y, splits = gridDim.x, G = H / Hkv; \
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, sub = lane & 3, grp = lane >> 2; \
            const int h = g * G + warp; \
            const int j0 = split * keys_per_split, j1 = min(S, j0 + keys_per_split); \
            float qv[32], o[32]; \
            _Pragma("unroll") \
            for (int c = 0; c < 4; c++) unpack8(((const uint4*)(q + h * 128 + sub * 32))[c], qv + 8 * c); \
            _Pragma("unroll") \
            for (int i = 0; i < 32; i++) o[i] = 0.0f; \
            float m = NEG_INF, l = 0.0f;

        // Grid (splits, Hkv), G = H/Hkv warps: warp w is query head g·G + w. q (1, H·128), k and v (S, ·) rows ks
        // apart; partials per (head, split) as decode_split writes them.
        extern "C" __global__ void __launch_bounds__(256) decode_split_gqa(
            const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
            float* __restrict__ part_o, float* __restrict__ part_ml, int S, int H, int Hkv, int ks,
            int keys_per_split, float scale_log2)
        {
            __shared__ uint4 sk[TK * ROW], sv[TK * ROW];
            DECODE_PROLOGUE
            for (int t0 = j0; t0 < j1; t0 += TK) {
                const int rows = min(TK, j1 - t0);
                __syncthreads();
                // Chunk cc = quarter·4 + c of key row r (16 bytes: dims quarter·32 + 8c …) lands at r·ROW + c·4 + quarter.
                for (int i = threadIdx.x; i < TK * 16; i += blockDim.x) {
                    const int r = i >> 4, cc = i & 15, at = r * ROW + (cc & 3) * 4 + (cc >> 2);
                    uint4 a = make_uint4(0, 0, 0, 0), b = a;
                    if (r < rows) {
                        const long off = (long)(t0 + r) * ks + g * 128;
                        a = ((const uint4*)(k + off))[cc];
                        b = ((const uint4*)(v + off))[cc];
                    }
                    sk[at] = a;
                    sv[at] = b;
                }
                __syncthreads();
                attend_tile(sk, sv, rows, grp, sub, qv, o, m, l, scale_log2);
            }
            write_partial(part_o, part_ml, (long)h * splits + split, lane, grp, sub, o, m, l);
        }

        // The same with the copies in flight: 32-key tiles in two shared stages, the next tile's cp.async copies
        // issued before this tile's softmax (16-byte copies, zero-filled past the split), waited for after it.
        __device__ __forceinline__ void cp16(uint4* dst, const bf16* src, bool ok) {
            const unsigned s = (unsigned)__cvta_generic_to_shared(dst);
            asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(s), "l"(src), "r"(ok ? 16 : 0));
        }

        extern "C" __global__ void __launch_bounds__(256) decode_split_gqa_pipe(
            const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
            float* __restrict__ part_o, float* __restrict__ part_ml, int S, int H, int Hkv, int ks,
            int keys_per_split, float scale_log2)
        {
            __shared__ uint4 sk[2][TP * ROW], sv[2][TP * ROW];
            DECODE_PROLOGUE
            const int tiles = j1 > j0 ? (j1 - j0 + TP - 1) / TP : 0;
            auto load = [&](int stage, int t0) {
                for (int i = threadIdx.x; i < TP * 16; i += blockDim.x) {
                    const int r = i >> 4, cc = i & 15, at = r * ROW + (cc & 3) * 4 + (cc >> 2);
                    const bool ok = t0 + r < j1;
                    const long off = (long)(ok ? t0 + r : 0) * ks + g * 128 + cc * 8;
                    cp16(&sk[stage][at], k + off, ok);
                    cp16(&sv[stage][at], v + off, ok);
                }
                asm volatile("cp.async.commit_group;");
            };
            if (tiles > 0) load(0, j0);
            for (int t = 0; t < tiles; t++) {
                if (t + 1 < tiles) {
                    load((t + 1) & 1, j0 + (t + 1) * TP);
                    asm volatile("cp.async.wait_group 1;");
                } else {
                    asm volatile("cp.async.wait_group 0;");
                }
                __syncthreads();
                attend_tile(sk[t & 1], sv[t & 1], min(TP, j1 - (j0 + t * TP)), grp, sub, qv, o, m, l, scale_log2);
                __syncthreads();
            }
            write_partial(part_o, part_ml, (long)h * splits + split, lane, grp, sub, o, m, l);
        }
        """#
}
