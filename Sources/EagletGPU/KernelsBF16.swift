// The bf16 kernels of the GPU path, compiled by NVRTC beside Kernels.swift: flash attention and the
// elementwise passes of a layer whose activations are bf16 (docs/gpu.md, chapter 14).
//
// Flash attention, forward (Dao et al., FlashAttention-2): one block of 4 warps owns 128 query rows of
// one head; each warp owns 32 of them (two 16-row m-tiles) and keeps its (32, D) output and its rows'
// running max m and sum l in registers, re-reading its Q fragments from shared memory. Keys and values stream through shared memory 64 at a time, two
// tiles in flight (cp.async), and for each tile
//     S = Q·Kᵀ (bf16 mma.sync m16n8k16, fp32 accumulators),  m' = max(m, rowmax(S·scale)),
//     P = exp2(S·scale·log2e − m'),  l = l·2^(m − m') + rowsum(P),  O = O·2^(m − m') + bf16(P)·V.
// At the end O/l is written as bf16 and LSE = (m + log2 l)·ln 2 as fp32 (H, T): context parallelism merges
// partial attentions with it. Causal: query t sits at position p0 + t and sees keys j ≤ p0 + t; tiles past
// a block's last query are never loaded, and only tiles that cross the diagonal (or the end of the keys)
// are masked. GQA: head h reads kv head h / (H/Hkv) — K and V are never repeated. Q, K, V and out are
// token-major with row strides qs, ks, os elements (so fused qkv buffers are read in place); D ≤ 128 and
// a multiple of 8, padded to a multiple of 16 in shared memory with zeros (SigLIP's D = 72 runs as 80).
// Shared-memory rows are padded by 16 bytes so the 8 rows an ldmatrix reads fall in different banks.
// The written-out `attention_naive` kernel (Kernels.swift) stays the reference; `FlashPlan` is this
// kernel's algorithm on the CPU, tile for tile, for tests without a GPU.
// What it is not: Hopper's wgmma/TMA pipeline (FlashAttention-3) — mma.sync runs on any sm_80+ part.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

enum KernelSourceBF16 {
    static let module = "eaglet_bf16"

    /// Query rows per block, keys per tile, threads per block (the kernel's BR, BC and 32·NW).
    static let blockRows = 128, tileKeys = 64, threads = 128

    /// The head dims the flash kernel is instantiated for (D padded up to a multiple of 16).
    static func paddedHeadDim(_ d: Int) -> Int? {
        guard d > 0, d % 8 == 0, d <= 128 else { return nil }
        for p in [64, 80, 96, 128] where d <= p { return p }
        return nil
    }

    /// Dynamic shared memory of the flash kernel for padded head dim `dp`: Q (BR rows) and two stages of
    /// K and V (BC rows each), rows of dp + 8 bf16.
    static func flashSharedBytes(paddedHeadDim dp: Int) -> Int { (blockRows + 4 * tileKeys) * (dp + 8) * 2 }

    static let source = #"""
        #define NEG_INF __int_as_float(0xff800000)
        typedef unsigned short bf16;

        __device__ __forceinline__ float bf2f(bf16 u) { return __uint_as_float(((unsigned)u) << 16); }

        // fp32 → bf16, round to nearest even (NaN stays NaN).
        __device__ __forceinline__ bf16 f2bf(float f) {
            unsigned u = __float_as_uint(f);
            if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16)((u >> 16) | 0x40);
            u += 0x7fffu + ((u >> 16) & 1u);
            return (bf16)(u >> 16);
        }

        // Two floats → one register of two bf16 (lo in the low half), round to nearest even.
        __device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi) {
            unsigned r;
            asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
            return r;
        }

        __device__ __forceinline__ unsigned smem_addr(const void* p) {
            return (unsigned)__cvta_generic_to_shared(p);
        }

        // 16 bytes global → shared, asynchronously; bytes past `src_bytes` are zero-filled.
        __device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
            asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(smem_addr(dst)), "l"(src), "r"(src_bytes));
        }
        __device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
        __device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;" ::: "memory"); }

        // Four 8×8 bf16 matrices from shared memory; lane l gives the address of row (l mod 8) of matrix l/8.
        __device__ __forceinline__ void ldmatrix_x4(unsigned* r, const bf16* p) {
            asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                         : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)));
        }
        __device__ __forceinline__ void ldmatrix_x4_trans(unsigned* r, const bf16* p) {
            asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                         : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)));
        }

        // c (16×8, fp32) += a (16×16, bf16, row) · b (16×8, bf16, col).
        __device__ __forceinline__ void mma_bf16(float* c, const unsigned* a, const unsigned* b) {
            asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                         "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                         : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                         : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
        }

        // 2^x on the special-function unit (ex2.approx: about 2 ulp; 2^−∞ = 0).
        __device__ __forceinline__ float fast_exp2(float x) {
            float y;
            asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
            return y;
        }

        // DP: padded head dim; MW: 16-row m-tiles per warp; NW: warps. A block owns BR = 16·MW·NW query rows.
        // QREG keeps the warp's Q fragments in registers; otherwise they are re-read from shared memory.
        template <int DP, int MW, int NW, bool QREG>
        __device__ __forceinline__ void flash_forward(
            const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
            bf16* __restrict__ out, float* __restrict__ lse, int T, int S, int H, int Hkv, int D,
            int qs, int ks, int os, float scale_log2, int causal, int p0)
        {
            constexpr int BR = 16 * MW * NW, BC = 64, NT = 32 * NW, LD = DP + 8, CP = DP / 8;
            extern __shared__ __align__(16) unsigned char smem[];
            bf16* sQ = (bf16*)smem;
            bf16* sK = sQ + BR * LD;
            bf16* sV = sK + 2 * BC * LD;
            const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
            const int mb = gridDim.x - 1 - blockIdx.x; // the longest causal blocks start first
            const int h = blockIdx.y, g = h / (H / Hkv);
            const int t0 = mb * BR, chunks = D / 8;
            const int kv_end = causal ? min(S, p0 + t0 + BR) : S;
            const int tiles = (kv_end + BC - 1) / BC;

            for (int i = tid; i < BR * CP; i += NT) {
                int r = i / CP, c = i % CP, t = t0 + r;
                bool ok = t < T && c < chunks;
                cp_async16(sQ + r * LD + c * 8, ok ? q + (long)t * qs + h * D + c * 8 : q, ok ? 16 : 0);
            }
            auto load_kv = [&](int tile, int stage) {
                bf16* dk = sK + stage * BC * LD;
                bf16* dv = sV + stage * BC * LD;
                for (int i = tid; i < BC * CP; i += NT) {
                    int r = i / CP, c = i % CP, j = tile * BC + r;
                    bool ok = j < S && c < chunks;
                    long off = (long)j * ks + g * D + c * 8;
                    cp_async16(dk + r * LD + c * 8, ok ? k + off : k, ok ? 16 : 0);
                    cp_async16(dv + r * LD + c * 8, ok ? v + off : v, ok ? 16 : 0);
                }
            };
            if (tiles > 0) load_kv(0, 0);
            cp_async_commit();
            cp_async_wait_all();
            __syncthreads();

            // Warp w owns rows t0 + 16·(w·MW + i) … for its m-tiles i < MW.
            const bf16* qbase = sQ + (warp * MW * 16 + (lane & 15)) * LD + (lane >> 4) * 8;
            unsigned qf[QREG ? DP / 16 : 1][4];
            if (QREG) {
                #pragma unroll
                for (int kk = 0; kk < (QREG ? DP / 16 : 0); kk++) ldmatrix_x4(qf[kk], qbase + kk * 16);
            }

            float o[MW][DP / 8][4];
            float m[MW][2], l[MW][2];
            #pragma unroll
            for (int i = 0; i < MW; i++) {
                #pragma unroll
                for (int j = 0; j < DP / 8; j++) o[i][j][0] = o[i][j][1] = o[i][j][2] = o[i][j][3] = 0.0f;
                m[i][0] = m[i][1] = NEG_INF; l[i][0] = l[i][1] = 0.0f;
            }
            const int warp_first = t0 + warp * MW * 16;
            const int row0 = warp_first + (lane >> 2); // row of m-tile i, half r: row0 + 16·i + 8·r

            for (int n = 0; n < tiles; n++) {
                const int stage = n & 1;
                if (n + 1 < tiles) load_kv(n + 1, stage ^ 1);
                cp_async_commit();

                const bf16* Ks = sK + stage * BC * LD;
                const bf16* Vs = sV + stage * BC * LD;
                float s[MW][BC / 8][4];
                #pragma unroll
                for (int i = 0; i < MW; i++) {
                    #pragma unroll
                    for (int j = 0; j < BC / 8; j++) s[i][j][0] = s[i][j][1] = s[i][j][2] = s[i][j][3] = 0.0f;
                }
                #pragma unroll
                for (int kk = 0; kk < DP / 16; kk++) {
                    unsigned a[MW][4];
                    #pragma unroll
                    for (int i = 0; i < MW; i++) {
                        if (QREG) { a[i][0] = qf[QREG ? kk : 0][0]; a[i][1] = qf[QREG ? kk : 0][1];
                                    a[i][2] = qf[QREG ? kk : 0][2]; a[i][3] = qf[QREG ? kk : 0][3]; }
                        else ldmatrix_x4(a[i], qbase + i * 16 * LD + kk * 16);
                    }
                    #pragma unroll
                    for (int j = 0; j < BC / 8; j += 2) {
                        unsigned b[4];
                        ldmatrix_x4(b, Ks + (j * 8 + (lane & 7) + ((lane >> 4) << 3)) * LD + kk * 16 + ((lane >> 3) & 1) * 8);
                        #pragma unroll
                        for (int i = 0; i < MW; i++) { mma_bf16(s[i][j], a[i], b); mma_bf16(s[i][j + 1], a[i], b + 2); }
                    }
                }

                const int kbase = n * BC;
                if (kbase + BC > S || (causal && kbase + BC - 1 > p0 + warp_first)) {
                    #pragma unroll
                    for (int i = 0; i < MW; i++) {
                        #pragma unroll
                        for (int j = 0; j < BC / 8; j++) {
                            #pragma unroll
                            for (int e = 0; e < 4; e++) {
                                int key = kbase + j * 8 + 2 * (lane & 3) + (e & 1);
                                int row = row0 + 16 * i + (e >> 1) * 8;
                                if (key >= S || (causal && key > p0 + row)) s[i][j][e] = NEG_INF;
                            }
                        }
                    }
                }

                #pragma unroll
                for (int i = 0; i < MW; i++) {
                    #pragma unroll
                    for (int r = 0; r < 2; r++) {
                        float mx = NEG_INF;
                        #pragma unroll
                        for (int j = 0; j < BC / 8; j++) mx = fmaxf(mx, fmaxf(s[i][j][2 * r], s[i][j][2 * r + 1]));
                        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                        const float mn = fmaxf(m[i][r], mx * scale_log2);
                        const float base = mn == NEG_INF ? 0.0f : mn;
                        const float alpha = fast_exp2(m[i][r] - base);
                        m[i][r] = mn;
                        float sum = 0.0f;
                        #pragma unroll
                        for (int j = 0; j < BC / 8; j++) {
                            s[i][j][2 * r] = fast_exp2(s[i][j][2 * r] * scale_log2 - base);
                            s[i][j][2 * r + 1] = fast_exp2(s[i][j][2 * r + 1] * scale_log2 - base);
                            sum += s[i][j][2 * r] + s[i][j][2 * r + 1];
                        }
                        l[i][r] = l[i][r] * alpha + sum;
                        #pragma unroll
                        for (int j = 0; j < DP / 8; j++) { o[i][j][2 * r] *= alpha; o[i][j][2 * r + 1] *= alpha; }
                    }
                }

                #pragma unroll
                for (int kk = 0; kk < BC / 16; kk++) {
                    unsigned a[MW][4];
                    #pragma unroll
                    for (int i = 0; i < MW; i++) {
                        a[i][0] = pack_bf16x2(s[i][2 * kk][0], s[i][2 * kk][1]);
                        a[i][1] = pack_bf16x2(s[i][2 * kk][2], s[i][2 * kk][3]);
                        a[i][2] = pack_bf16x2(s[i][2 * kk + 1][0], s[i][2 * kk + 1][1]);
                        a[i][3] = pack_bf16x2(s[i][2 * kk + 1][2], s[i][2 * kk + 1][3]);
                    }
                    #pragma unroll
                    for (int j = 0; j < DP / 8; j += 2) {
                        unsigned b[4];
                        ldmatrix_x4_trans(b, Vs + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + j * 8 + (lane >> 4) * 8);
                        #pragma unroll
                        for (int i = 0; i < MW; i++) { mma_bf16(o[i][j], a[i], b); mma_bf16(o[i][j + 1], a[i], b + 2); }
                    }
                }
                cp_async_wait_all();
                __syncthreads();
            }

            #pragma unroll
            for (int i = 0; i < MW; i++) {
                #pragma unroll
                for (int r = 0; r < 2; r++) {
                    float sum = l[i][r];
                    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
                    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
                    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
                    const int row = row0 + 16 * i + 8 * r;
                    if (row < T) {
                        #pragma unroll
                        for (int j = 0; j < DP / 8; j++) {
                            int col = j * 8 + 2 * (lane & 3);
                            if (col < D)
                                *(unsigned*)(out + (long)row * os + h * D + col) =
                                    pack_bf16x2(o[i][j][2 * r] * inv, o[i][j][2 * r + 1] * inv);
                        }
                        if (lse && (lane & 3) == 0)
                            lse[(long)h * T + row] = sum > 0.0f ? (m[i][r] + log2f(sum)) * 0.6931471805599453f : NEG_INF;
                    }
                }
            }
        }

        // The entry points, one per padded head dim: 4 warps of two m-tiles each (BR = 128), Q re-read from shared
        // memory. On an H200 this shape ran causal GQA at 4K/32K/128K tokens at 164/315/320 TFLOP/s, against
        // 183/270/277 for 8 warps of one m-tile with Q in registers (docs/gpu.md): two m-tiles share every K and
        // V fragment a warp loads, which halves the shared-memory traffic per product.
        #define FLASH_ENTRY(DP) \
        extern "C" __global__ void __launch_bounds__(128, 2) flash_attention_d##DP( \
            const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse, int T, int S, int H, int Hkv, \
            int D, int qs, int ks, int os, float scale_log2, int causal, int p0) { \
            flash_forward<DP, 2, 4, false>(q, k, v, out, lse, T, S, H, Hkv, D, qs, ks, os, scale_log2, causal, p0); \
        }
        FLASH_ENTRY(64)
        FLASH_ENTRY(80)
        FLASH_ENTRY(96)
        FLASH_ENTRY(128)

        // Decode attention, split over the keys (flash-decoding): one query token per head (T = 1, at position
        // S − 1, so every key is visible), D = 128. Block (split, h) of 4 warps takes keys [split·L, (split+1)·L).
        // Four lanes share a key, each holding a quarter of q and of the output (32 values), so a warp reads 8
        // keys (8 × 512 bytes of K and V) per step with 64-byte loads per lane; the quarter dots meet by two
        // shuffles. Each 4-lane group keeps its own running max, sum and output; groups, then warps, merge at the
        // end, and the block writes its partial (o unnormalised, m in the log2 domain, l) for decode_combine.
        __device__ __forceinline__ void unpack8(uint4 r, float* f) {
            f[0] = bf2f(r.x & 0xffff); f[1] = bf2f(r.x >> 16); f[2] = bf2f(r.y & 0xffff); f[3] = bf2f(r.y >> 16);
            f[4] = bf2f(r.z & 0xffff); f[5] = bf2f(r.z >> 16); f[6] = bf2f(r.w & 0xffff); f[7] = bf2f(r.w >> 16);
        }

        extern "C" __global__ void __launch_bounds__(128) decode_split(
            const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
            float* __restrict__ part_o, float* __restrict__ part_ml, int S, int H, int Hkv, int ks,
            int keys_per_split, float scale_log2)
        {
            const int split = blockIdx.x, h = blockIdx.y, g = h / (H / Hkv), splits = gridDim.x;
            const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, sub = lane & 3, grp = lane >> 2;
            const int j0 = split * keys_per_split, j1 = min(S, j0 + keys_per_split);
            float qv[32], o[32];
            #pragma unroll
            for (int c = 0; c < 4; c++) unpack8(((const uint4*)(q + h * 128 + sub * 32))[c], qv + 8 * c);
            #pragma unroll
            for (int i = 0; i < 32; i++) o[i] = 0.0f;
            float m = NEG_INF, l = 0.0f;
            for (int base = j0 + warp * 8; base < j1; base += 32) {
                const int j = base + grp;
                const bool ok = j < j1;
                const long off = (long)(ok ? j : j0) * ks + g * 128 + sub * 32;
                uint4 kr[4], vr[4];
                #pragma unroll
                for (int c = 0; c < 4; c++) { kr[c] = ((const uint4*)(k + off))[c]; vr[c] = ((const uint4*)(v + off))[c]; }
                float dot = 0.0f;
                #pragma unroll
                for (int c = 0; c < 4; c++) {
                    float f[8];
                    unpack8(kr[c], f);
                    #pragma unroll
                    for (int e = 0; e < 8; e++) dot += qv[8 * c + e] * f[e];
                }
                dot += __shfl_xor_sync(0xffffffffu, dot, 1);
                dot += __shfl_xor_sync(0xffffffffu, dot, 2);
                const float sc = ok ? dot * scale_log2 : NEG_INF;
                const float mn = fmaxf(m, sc);
                const float b = mn == NEG_INF ? 0.0f : mn;
                const float alpha = fast_exp2(m - b), p = fast_exp2(sc - b);
                #pragma unroll
                for (int c = 0; c < 4; c++) {
                    float f[8];
                    unpack8(vr[c], f);
                    #pragma unroll
                    for (int e = 0; e < 8; e++) o[8 * c + e] = o[8 * c + e] * alpha + p * f[e];
                }
                l = l * alpha + p;
                m = mn;
            }
            // The 8 groups of the warp: lanes with the same quarter are 4, 8 and 16 apart.
            float M = m;
            #pragma unroll
            for (int off = 4; off < 32; off <<= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, off));
            const float mb = M == NEG_INF ? 0.0f : M;
            const float w = fast_exp2(m - mb);
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
            __shared__ float sm[4], sl[4], so[4][128];
            if (lane == 0) { sm[warp] = M; sl[warp] = l; }
            if (grp == 0) {
                #pragma unroll
                for (int i = 0; i < 32; i++) so[warp][sub * 32 + i] = o[i];
            }
            __syncthreads();
            const float M4 = fmaxf(fmaxf(sm[0], sm[1]), fmaxf(sm[2], sm[3]));
            const float base4 = M4 == NEG_INF ? 0.0f : M4;
            const long slot = (long)h * splits + split;
            {
                const int d = threadIdx.x;
                float acc = 0.0f;
                #pragma unroll
                for (int w4 = 0; w4 < 4; w4++) acc += so[w4][d] * fast_exp2(sm[w4] - base4);
                part_o[slot * 128 + d] = acc;
            }
            if (threadIdx.x == 0) {
                float L = 0.0f;
                for (int w4 = 0; w4 < 4; w4++) L += sl[w4] * fast_exp2(sm[w4] - base4);
                part_ml[slot * 2] = M4;
                part_ml[slot * 2 + 1] = L;
            }
        }

        // Merges the splits of decode_split: out[h] = Σ_s o_s·2^(m_s − M) / Σ_s l_s·2^(m_s − M) (bf16), and
        // lse[h] = (M + log2 Σ l_s·2^(m_s − M))·ln 2. One block of 128 threads per head.
        extern "C" __global__ void decode_combine(const float* part_o, const float* part_ml, bf16* out, float* lse,
                                                  int splits)
        {
            const int h = blockIdx.x, d = threadIdx.x;
            float M = NEG_INF;
            for (int s = 0; s < splits; s++) M = fmaxf(M, part_ml[((long)h * splits + s) * 2]);
            const float base = M == NEG_INF ? 0.0f : M;
            float acc = 0.0f, L = 0.0f;
            for (int s = 0; s < splits; s++) {
                const long slot = (long)h * splits + s;
                const float w = fast_exp2(part_ml[slot * 2] - base);
                acc += part_o[slot * 128 + d] * w;
                L += part_ml[slot * 2 + 1] * w;
            }
            out[h * 128 + d] = f2bf(L > 0.0f ? acc / L : 0.0f);
            if (lse && d == 0) lse[h] = L > 0.0f ? (M + log2f(L)) * 0.6931471805599453f : NEG_INF;
        }

        extern "C" {

        \#(blockSum(named: "block_sum_bf"))

        // y = x / sqrt(mean(x²) + eps) · w, one block per row of C; statistics in fp32, w fp32.
        __global__ void rms_norm_bf16(const bf16* x, const float* w, bf16* y, int C, float eps) {
            __shared__ float scratch[32];
            const bf16* xr = x + (long)blockIdx.x * C;
            bf16* yr = y + (long)blockIdx.x * C;
            float s = 0.0f;
            for (int i = threadIdx.x; i < C; i += blockDim.x) { float a = bf2f(xr[i]); s += a * a; }
            float inv = rsqrtf(block_sum_bf(s, scratch) / C + eps);
            for (int i = threadIdx.x; i < C; i += blockDim.x) yr[i] = f2bf(w[i] * (bf2f(xr[i]) * inv));
        }

        // y = (x − mean) / sqrt(var + eps) · w + b, one block per row of C; statistics in fp32.
        __global__ void layer_norm_bf16(const bf16* x, const float* w, const float* b, bf16* y, int C, float eps) {
            __shared__ float scratch[32];
            const bf16* xr = x + (long)blockIdx.x * C;
            bf16* yr = y + (long)blockIdx.x * C;
            float s = 0.0f;
            for (int i = threadIdx.x; i < C; i += blockDim.x) s += bf2f(xr[i]);
            float mean = block_sum_bf(s, scratch) / C;
            float var = 0.0f;
            for (int i = threadIdx.x; i < C; i += blockDim.x) { float d = bf2f(xr[i]) - mean; var += d * d; }
            float inv = rsqrtf(block_sum_bf(var, scratch) / C + eps);
            for (int i = threadIdx.x; i < C; i += blockDim.x) yr[i] = f2bf((bf2f(xr[i]) - mean) * inv * w[i] + b[i]);
        }

        // The fused projection qkv (T, (H + 2·Hkv)·D) → bias added, RoPE on q and k (half rotation, angle
        // fp32(p·inv_freq)), q to (T, H·D), k and v to rows p0 … of the cache (·, Hkv·D). One thread per pair
        // (k, k + D/2) of one head of one token.
        __global__ void qkv_bias_rope_bf16(const bf16* qkv, const float* bias, const float* inv_freq, bf16* q,
                                           bf16* kc, bf16* vc, int T, int H, int Hkv, int D, int p0) {
            int half = D / 2, heads = H + 2 * Hkv;
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= (long)T * heads * half) return;
            int kk = i % half;
            long th = i / half;
            int hh = th % heads, t = th / heads;
            long src = (long)t * heads * D + hh * D;
            float a = bf2f(qkv[src + kk]), b = bf2f(qkv[src + kk + half]);
            if (bias) { a += bias[hh * D + kk]; b += bias[hh * D + kk + half]; }
            if (hh < H + Hkv) {
                float angle = (float)(p0 + t) * inv_freq[kk];
                float c = cosf(angle), s = sinf(angle);
                float ra = a * c - b * s, rb = b * c + a * s;
                a = ra; b = rb;
            }
            bf16* dst;
            if (hh < H) dst = q + (long)t * H * D + hh * D;
            else if (hh < H + Hkv) dst = kc + (long)(p0 + t) * Hkv * D + (hh - H) * D;
            else dst = vc + (long)(p0 + t) * Hkv * D + (hh - H - Hkv) * D;
            dst[kk] = f2bf(a);
            dst[kk + half] = f2bf(b);
        }

        // gu (T, 2I) = [gate | up] → y (T, I) = silu(gate)·up.
        __global__ void silu_mul_bf16(const bf16* gu, bf16* y, long T, int I) {
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= T * I) return;
            long t = i / I;
            int c = i % I;
            float g = bf2f(gu[t * 2 * I + c]), u = bf2f(gu[t * 2 * I + I + c]);
            y[i] = f2bf(g / (1.0f + expf(-g)) * u);
        }

        // y = y + b (per column of C), then gelu_pytorch_tanh when `gelu` is set.
        __global__ void bias_act_bf16(bf16* y, const float* b, long n, int C, int gelu) {
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= n) return;
            float x = bf2f(y[i]) + (b ? b[i % C] : 0.0f);
            if (gelu) x = 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
            y[i] = f2bf(x);
        }

        // y = x + b (per column of C; b may be null): the residual a product then adds to (beta = 1).
        __global__ void residual_bias_bf16(const bf16* x, const float* b, bf16* y, long n, int C) {
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= n) return;
            y[i] = b ? f2bf(bf2f(x[i]) + b[i % C]) : x[i];
        }

        // bf16 → fp32.
        __global__ void bf16_to_f32(const bf16* x, float* y, long n) {
            long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) y[i] = bf2f(x[i]);
        }

        }
        """#
}
