// Flash attention for Hopper (sm_90a), compiled by NVRTC as its own module beside KernelsBF16.swift: the
// same algorithm as `flash_forward` there (online softmax in the log2 domain, causal tiles skipped, GQA, LSE
// out), with the two products on warpgroup tensor-core instructions (wgmma) instead of mma.sync.
//
// A block of two computing warpgroups owns 128 query rows of one head; warpgroup w owns 64 of them and keeps
// its (64, 128) output accumulator and its rows' running max m and sum l in registers. Keys and values stream
// through shared memory 128 at a time, two tiles in flight — in the default variant (`ws-tma`) copied by the
// Tensor Memory Accelerator on one thread of a third, producer warpgroup — and for each tile a warpgroup runs
//     S (64×128, fp32) = Q_w·Kᵀ        8 × wgmma m64n128k16, Q and K read from shared memory,
//     the softmax of FlashAttention-2 on S in registers (rows shared by the 4 lanes of a quad),
//     O (64×128, fp32) += bf16(P)·V   8 × wgmma m64n128k16, P straight from registers, V from shared memory.
// wgmma reads shared memory through a 64-bit descriptor (start address, the byte offsets between 8-row
// groups and between 64-column halves, and the swizzle mode): every tile is stored as two column halves of
// 64 bf16 (128-byte rows), and within each group of 8 rows the 16-byte chunk c of row r sits at c ⊕ (r mod 8)
// — the 128-byte swizzle the descriptor names — so both the cp.async stores and the tensor cores' reads fall in
// different banks. Q and K are "K-major" operands (the reduced dimension, d, contiguous); V is read
// transposed ("MN-major": its columns d are the product's N). Shared memory written by cp.async is fenced to
// the async proxy before the barrier that precedes the wgmma reading it.
//
// D must be 128 (Qwen2.5's head dim from 1.5B up); other head dims run on `flash_forward`. The mma.sync kernel
// stays the portable path and, with `attention_naive`, the reference this one is checked against.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

enum KernelSourceHopper {
    static let module = "eaglet_hopper"

    /// Query rows per block and keys per tile.
    static let blockRows = 128, tileKeys = 128

    /// The kernel's variants, by the name EAGLET_FLASH gives: entry point, threads per block, K/V stages, and
    /// whether K and V arrive by TMA (then the launch passes their two tensor maps after the usual arguments).
    /// wg: two warpgroups that load and compute; ws: a producer warpgroup beside them (ws3: three stages;
    /// -pp: the two computing warpgroups take turns issuing their products); -tma: the producer is one thread
    /// issuing tensor-memory copies (cp.async.bulk.tensor) instead of 128 threads issuing cp.async.
    static let variants: [String: (entry: String, threads: Int, stages: Int, tma: Bool)] = [
        "wg": ("flash_attention_wg_d128", 256, 2, false), "ws": ("flash_attention_ws_d128", 384, 2, false),
        "ws-pp": ("flash_attention_ws_pp_d128", 384, 2, false), "ws3": ("flash_attention_ws3_d128", 384, 3, false),
        "ws3-pp": ("flash_attention_ws3_pp_d128", 384, 3, false),
        "ws-tma": ("flash_attention_ws_tma_d128", 384, 2, true),
        "ws-tma-pp": ("flash_attention_ws_tma_pp_d128", 384, 2, true),
        "ws3-tma": ("flash_attention_ws3_tma_d128", 384, 3, true)
    ]
    /// The variant used unless EAGLET_FLASH names another.
    static let defaultVariant = "ws-tma"
    /// The variant this process runs: EAGLET_FLASH's, when it names one, else the default (read once).
    static let variantInUse: String = {
        let asked = ProcessInfo.processInfo.environment["EAGLET_FLASH"] ?? ""
        return variants[asked] != nil ? asked : defaultVariant
    }()

    /// The module and program that hold `variant`: `wg` is in `source`, the others in `warpSpecializedProgram`.
    static func program(for variant: String) -> (module: String, source: String) {
        variant == "wg" ? (module, source) : (warpSpecializedModule, warpSpecializedProgram)
    }

    /// Dynamic shared memory: Q (128 × 128 bf16) and `stages` stages of K and V (128 × 128 each), plus 1 KiB
    /// so the kernel can align the tiles to the swizzle's 1024-byte period, and the stages' mbarriers.
    static func sharedBytes(stages: Int) -> Int { 128 * 128 * 2 * (1 + 2 * stages) + 1024 + 32 * stages }

    static let source = #"""
        #define NEG_INF __int_as_float(0xff800000)
        typedef unsigned short bf16;

        __device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi) {
            unsigned r;
            asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
            return r;
        }
        __device__ __forceinline__ float fast_exp2(float x) {
            float y;
            asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
            return y;
        }
        __device__ __forceinline__ void cp_async16(unsigned dst, const void* src, int src_bytes) {
            asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(dst), "l"(src), "r"(src_bytes));
        }

        // The shared-memory matrix descriptor of wgmma: start address, leading and stride byte offsets (all
        // in 16-byte units) and swizzle mode 1 (128 bytes) in bits 62–63.
        __device__ __forceinline__ unsigned long long descriptor(unsigned addr, unsigned lbo, unsigned sbo) {
            return (unsigned long long)((addr & 0x3FFFF) >> 4) | ((unsigned long long)(lbo >> 4) << 16)
                 | ((unsigned long long)(sbo >> 4) << 32) | (1ull << 62);
        }

        // Byte offset of 16-byte chunk c (0–15) of row r in a tile of R rows stored as two swizzled halves.
        __device__ __forceinline__ unsigned swizzled(int r, int c, int R) {
            return (unsigned)((c >> 3) * R * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4));
        }

        #define ACC8(b) "+f"(d[b]), "+f"(d[b + 1]), "+f"(d[b + 2]), "+f"(d[b + 3]), \
                        "+f"(d[b + 4]), "+f"(d[b + 5]), "+f"(d[b + 6]), "+f"(d[b + 7])
        #define ACC64 ACC8(0), ACC8(8), ACC8(16), ACC8(24), ACC8(32), ACC8(40), ACC8(48), ACC8(56)
        #define REGS64 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
            "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
            "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
            "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

        // d (64×128 fp32, the warpgroup's accumulator fragment) (+)= A·B, A and B from shared memory, both
        // K-major. accumulate = 0 overwrites d.
        __device__ __forceinline__ void wgmma_ss(float* d, unsigned long long a, unsigned long long b, int accumulate) {
            asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                         "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " REGS64 ", %64, %65, p, 1, 1, 0, 0;\n}\n"
                         : ACC64 : "l"(a), "l"(b), "r"(accumulate));
        }
        // d += A·B with A (64×16 bf16) from registers (mma.sync's A fragment, warp i of the group rows 16i…)
        // and B from shared memory, MN-major (transposed).
        __device__ __forceinline__ void wgmma_rs(float* d, const unsigned* a, unsigned long long b) {
            asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                         "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " REGS64
                         ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
                         : ACC64 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
        }
        __device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
        __device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
        __device__ __forceinline__ void wgmma_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory"); }
        // Registers written by an asynchronous wgmma are read only after this (the compiler sees them change here).
        __device__ __forceinline__ void acc_fence(float* d) {
            #pragma unroll
            for (int i = 0; i < 64; i++) asm volatile("" : "+f"(d[i]) :: "memory");
        }

        #ifndef V_LBO
        #define V_LBO (128 * 128)   // MN-major V: from one 64-column half of d to the next
        #endif
        #ifndef V_SBO
        #define V_SBO 1024          // from one group of 8 key rows to the next
        #endif

        // Masks tile S (keys kbase …) where needed and folds it into the running softmax of rows row0 and
        // row0 + 8: P = 2^(S·scale·log2e − m') goes straight into p, the bf16 A fragments of O += P·V (keys
        // 16t … of a row in p[t]), and alpha[r] = 2^(m − m') rescales O. S is only read: an exp written back into
        // the accumulator registers would make the compiler wait for every product in flight before the softmax.
        // s[4j + e] sits at row row0 + 8·(e / 2), key kbase + 8j + 2·(lane mod 4) + e mod 2.
        __device__ __forceinline__ void online_softmax(
            const float* s, unsigned (*p)[4], float* m, float* l, float* alpha, bool mask, int kbase, int S,
            int causal, int p0, int row0, float scale_log2, int lane)
        {
            #pragma unroll
            for (int r = 0; r < 2; r++) {
                const int row = row0 + 8 * r;
                // key kbase + 8j + 2·(lane mod 4) + e is kept when below S and, if causal, at most p0 + row
                const int limit = min(S, causal ? p0 + row + 1 : S) - kbase - 2 * (lane & 3);
                auto val = [&](int j, int e) { return !mask || j * 8 + e < limit ? s[4 * j + 2 * r + e] : NEG_INF; };
                float mx = NEG_INF;
                #pragma unroll
                for (int j = 0; j < 16; j++) mx = fmaxf(mx, fmaxf(val(j, 0), val(j, 1)));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                const float mn = fmaxf(m[r], mx * scale_log2);
                const float base = mn == NEG_INF ? 0.0f : mn;
                alpha[r] = fast_exp2(m[r] - base);
                m[r] = mn;
                float sum = 0.0f;
                #pragma unroll
                for (int j = 0; j < 16; j++) {
                    const float e0 = fast_exp2(fmaf(val(j, 0), scale_log2, -base));
                    const float e1 = fast_exp2(fmaf(val(j, 1), scale_log2, -base));
                    sum += e0 + e1;
                    p[j >> 1][(j & 1) * 2 + r] = pack_bf16x2(e0, e1);
                }
                l[r] = l[r] * alpha[r] + sum;
            }
        }

        __device__ __forceinline__ void rescale(float* o, const float* alpha) {
            #pragma unroll
            for (int j = 0; j < 16; j++) {
                o[4 * j] *= alpha[0]; o[4 * j + 1] *= alpha[0]; o[4 * j + 2] *= alpha[1]; o[4 * j + 3] *= alpha[1];
            }
        }

        // S = Q_w·Kᵀ over d in 8 steps of 16 (32 bytes along a swizzled row; the second half of d at +128·128).
        __device__ __forceinline__ void issue_qk(float* s, unsigned qw, unsigned ks) {
            acc_fence(s);
            wgmma_fence();
            #pragma unroll
            for (int kk = 0; kk < 8; kk++) {
                const unsigned dq = qw + (kk >> 2) * 128 * 128 + (kk & 3) * 32;
                const unsigned dk = ks + (kk >> 2) * 128 * 128 + (kk & 3) * 32;
                wgmma_ss(s, descriptor(dq, 16, 1024), descriptor(dk, 16, 1024), kk > 0);
            }
            wgmma_commit();
        }

        // O += P·V over 128 keys in 8 steps of 16 rows of V (2048 bytes each).
        __device__ __forceinline__ void issue_pv(float* o, unsigned (*p)[4], unsigned vs) {
            acc_fence(o);
            wgmma_fence();
            #pragma unroll
            for (int t = 0; t < 8; t++) wgmma_rs(o, p[t], descriptor(vs + t * 16 * 128, V_LBO, V_SBO));
            wgmma_commit();
        }

        __device__ __forceinline__ void cp_async_fence_and_sync() {
            asm volatile("cp.async.wait_group 0;" ::: "memory");
            asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
            __syncthreads();
        }

        // A computing warpgroup's start: O = 0, m = −∞, l = 0; its first query row, this lane's rows row0 and
        // row0 + 8 (warp i of the group holds rows 16i …, a quad of lanes one row), and its 64 rows of Q.
        __device__ __forceinline__ void start_rows(
            float* o, float* m, float* l, int t0, int tid, unsigned sQ, int& first, int& row0, unsigned& qw)
        {
            #pragma unroll
            for (int i = 0; i < 64; i++) o[i] = 0.0f;
            m[0] = m[1] = NEG_INF;
            l[0] = l[1] = 0.0f;
            const int wg = tid >> 7, lane = tid & 31;
            first = t0 + wg * 64;
            row0 = first + ((tid >> 5) & 3) * 16 + (lane >> 2);
            qw = sQ + wg * 64 * 128;
        }

        // The block's 128 query rows of head h into shared memory (swizzled; rows past T zero), by n threads.
        __device__ __forceinline__ void load_q(unsigned sQ, const bf16* q, int t0, int T, int qs, int h, int tid, int n) {
            for (int i = tid; i < 128 * 16; i += n) {
                int r = i >> 4, c = i & 15, t = t0 + r;
                bool ok = t < T;
                cp_async16(sQ + swizzled(r, c, 128), ok ? q + (long)t * qs + h * 128 + c * 8 : q, ok ? 16 : 0);
            }
        }

        // O/l of rows row0 and row0 + 8 as bf16 (4 lanes of a quad hold a row's 128 columns), and the rows'
        // log-sum-exp (m + log2 l)·ln 2.
        __device__ __forceinline__ void store_rows(
            const float* o, const float* m, const float* l, bf16* __restrict__ out, float* __restrict__ lse,
            int row0, int T, int h, int os, int lane)
        {
            #pragma unroll
            for (int r = 0; r < 2; r++) {
                float sum = l[r];
                sum += __shfl_xor_sync(0xffffffffu, sum, 1);
                sum += __shfl_xor_sync(0xffffffffu, sum, 2);
                const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
                const int row = row0 + 8 * r;
                if (row < T) {
                    #pragma unroll
                    for (int j = 0; j < 16; j++) {
                        int col = j * 8 + 2 * (lane & 3);
                        *(unsigned*)(out + (long)row * os + h * 128 + col) =
                            pack_bf16x2(o[4 * j + 2 * r] * inv, o[4 * j + 2 * r + 1] * inv);
                    }
                    if (lse && (lane & 3) == 0)
                        lse[(long)h * T + row] = sum > 0.0f ? (m[r] + log2f(sum)) * 0.6931471805599453f : NEG_INF;
                }
            }
        }

        extern "C" __global__ void __launch_bounds__(256, 1) flash_attention_wg_d128(
            const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
            bf16* __restrict__ out, float* __restrict__ lse, int T, int S, int H, int Hkv, int D,
            int qs, int ks, int os, float scale_log2, int causal, int p0)
        {
            constexpr int BR = 128, BC = 128, NT = 256, TILE = 128 * 128 * 2;
            extern __shared__ __align__(16) unsigned char smem_raw[];
            const unsigned raw = (unsigned)__cvta_generic_to_shared(smem_raw);
            const unsigned sQ = (raw + 1023) & ~1023u;   // the swizzle repeats every 1024 bytes
            const unsigned sK = sQ + TILE, sV = sK + 2 * TILE;
            const int tid = threadIdx.x, lane = tid & 31;
            const int mb = gridDim.x - 1 - blockIdx.x; // the longest causal blocks start first
            const int h = blockIdx.y, g = h / (H / Hkv);
            const int t0 = mb * BR;
            const int kv_end = causal ? min(S, p0 + t0 + BR) : S;
            const int tiles = (kv_end + BC - 1) / BC;

            // A tile is 128 rows × 16 chunks of 16 bytes: 8 chunks a thread.
            load_q(sQ, q, t0, T, qs, h, tid, NT);
            auto load = [&](const bf16* src, unsigned dst, int tile) {
                for (int i = tid; i < BC * 16; i += NT) {
                    int r = i >> 4, c = i & 15, j = tile * BC + r;
                    bool ok = j < S;
                    cp_async16(dst + swizzled(r, c, BC), ok ? src + (long)j * ks + g * 128 + c * 8 : src, ok ? 16 : 0);
                }
            };

            float o[64], s[64], m[2], l[2], alpha[2];
            unsigned p[8][4], p2[8][4], qw;
            int wg_first, row0;
            start_rows(o, m, l, t0, tid, sQ, wg_first, row0, qw);
            auto needs_mask = [&](int n) { return n * BC + BC > S || (causal && n * BC + BC - 1 > p0 + wg_first); };

        #ifndef SERIAL
            // Each warpgroup overlaps its softmax of tile n with its product P_{n-1}·V_{n-1} on the tensor cores:
            // issue S_n = Q·K_nᵀ and O += P_{n-1}·V_{n-1}, wait for S_n only, compute P_n, then wait for the
            // product and rescale O. P_n goes to the other of two P buffers (the product in flight reads P_{n-1})
            // and S stays unwritten; with either in the way ptxas moves the last wait up above the softmax, and
            // the softmax runs after the product instead of beside it (seen in the SASS: cuobjdump -sass). The
            // loop takes two tiles a turn so each buffer has a fixed name. K runs one tile ahead of V: tile n's
            // step loads K_{n+1} and V_n.
            auto step = [&](int n, unsigned (*p_next)[4], unsigned (*p_prev)[4]) {
                if (n + 1 < tiles) load(k, sK + ((n + 1) & 1) * TILE, n + 1);
                load(v, sV + (n & 1) * TILE, n);
                asm volatile("cp.async.commit_group;");
                issue_qk(s, qw, sK + (n & 1) * TILE);
                if (n > 0) {
                    issue_pv(o, p_prev, sV + ((n - 1) & 1) * TILE);
                    asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
                } else {
                    wgmma_wait0();
                }
                acc_fence(s);
                online_softmax(s, p_next, m, l, alpha, needs_mask(n), n * BC, S, causal, p0, row0, scale_log2, lane);
                wgmma_wait0();
                acc_fence(o);
                rescale(o, alpha);
                cp_async_fence_and_sync();
            };
            if (tiles > 0) load(k, sK, 0);
            asm volatile("cp.async.commit_group;");
            cp_async_fence_and_sync();
            for (int n = 0; n < tiles; n += 2) {
                step(n, p, p2);
                if (n + 1 < tiles) step(n + 1, p2, p);
            }
            if (tiles > 0) {
                if (tiles & 1) issue_pv(o, p, sV + ((tiles - 1) & 1) * TILE);
                else issue_pv(o, p2, sV + ((tiles - 1) & 1) * TILE);
                wgmma_wait0();
                acc_fence(o);
            }
        #else
            // One tile at a time: S, softmax, O += P·V, each waiting for the one before.
            if (tiles > 0) { load(k, sK, 0); load(v, sV, 0); }
            asm volatile("cp.async.commit_group;");
            cp_async_fence_and_sync();
            for (int n = 0; n < tiles; n++) {
                const int stage = n & 1;
                if (n + 1 < tiles) { load(k, sK + (stage ^ 1) * TILE, n + 1); load(v, sV + (stage ^ 1) * TILE, n + 1); }
                asm volatile("cp.async.commit_group;");
                issue_qk(s, qw, sK + stage * TILE);
                wgmma_wait0();
                acc_fence(s);
                online_softmax(s, p, m, l, alpha, needs_mask(n), n * BC, S, causal, p0, row0, scale_log2, lane);
                rescale(o, alpha);
                issue_pv(o, p, sV + stage * TILE);
                wgmma_wait0();
                acc_fence(o);
                cp_async_fence_and_sync();
            }
        #endif

            store_rows(o, m, l, out, lse, row0, T, h, os, lane);
        }
        """#

    /// The warp-specialized variants (ws, ws-pp, ws3, ws3-pp), compiled after `source` as module
    /// `warpSpecializedModule` when EAGLET_FLASH names one of them.
    static let warpSpecializedModule = "eaglet_hopper_ws"
    static var warpSpecializedProgram: String { source + "\n\n" + warpSpecializedSource }

    static let warpSpecializedSource = #"""
        // mbarriers in shared memory: init (count arrivals complete a phase), arrive, and wait for the phase of
        // the given parity to complete.
        __device__ __forceinline__ void mbar_init(unsigned bar, unsigned count) {
            asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(bar), "r"(count) : "memory");
        }
        __device__ __forceinline__ void mbar_arrive(unsigned bar) {
            asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" :: "r"(bar) : "memory");
        }
        __device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
            asm volatile("{\n.reg .pred done;\nWAIT:\nmbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
                         "@!done bra WAIT;\n}\n" :: "r"(bar), "r"(parity) : "memory");
        }

        // A TMA descriptor (CUtensorMap: 128 opaque bytes from the driver's cuTensorMapEncodeTiled), passed by value
        // as a __grid_constant__ kernel parameter.
        struct __align__(64) TensorMap { unsigned long long opaque[16]; };
        // The arriving thread announces `bytes` more to land on `bar` before its phase completes.
        __device__ __forceinline__ void mbar_expect_tx(unsigned bar, unsigned bytes) {
            asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(bar), "r"(bytes) : "memory");
        }
        // One box of the tensor map (64 columns × 128 rows of bf16, 128-byte swizzled) at column x, row y into
        // shared memory at dst; its bytes count towards bar's transaction.
        __device__ __forceinline__ void tma_load(unsigned dst, const TensorMap* map, int x, int y, unsigned bar) {
            asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                         " [%0], [%1, {%2, %3}], [%4];"
                         :: "r"(dst), "l"(map), "r"(x), "r"(y), "r"(bar) : "memory");
        }

        // The same attention with a producer warpgroup: warpgroups 0 and 1 compute as above and never load;
        // warpgroup 2 streams K and V through ST stages each (2, or 3 filling 225 KiB) in the order the others
        // use them (K_0, then K_{n+1} and V_n for each tile n): with TMA one thread issues two tensor-memory
        // copies a tile (the halves of d, each a 64-column box the copy engine writes in the same 128-byte
        // swizzle the descriptors name) and announces the bytes on the stage's "full" barrier, which completes
        // when they have landed; without, 128 threads issue cp.async and each waits for its copy group, fences
        // it to the async proxy, then arrives on the "full" barrier;
        // its "empty" barrier completes when all 8 computing warps are done reading it. The computing
        // warpgroups no longer meet at a block-wide barrier every tile, so one can run its softmax while the
        // other's products use the tensor cores; with PINGPONG they take turns issuing their products (two
        // named barriers). setmaxnreg moves registers from the producer (40 a thread) to the others (232).
        template <bool PINGPONG, int ST, bool TMA>
        __device__ __forceinline__ void flash_ws(
            const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
            bf16* __restrict__ out, float* __restrict__ lse, int T, int S, int H, int Hkv,
            int qs, int ks, int os, float scale_log2, int causal, int p0, const TensorMap* kmap, const TensorMap* vmap)
        {
            constexpr int BR = 128, BC = 128, TILE = 128 * 128 * 2;
            extern __shared__ __align__(16) unsigned char smem_ws[];
            const unsigned raw = (unsigned)__cvta_generic_to_shared(smem_ws);
            const unsigned sQ = (raw + 1023) & ~1023u;
            const unsigned sK = sQ + TILE, sV = sK + ST * TILE;
            const unsigned bars = sV + ST * TILE; // fullK[ST], fullV[ST], emptyK[ST], emptyV[ST]: 8 bytes each
            const unsigned fullK = bars, fullV = bars + 8 * ST, emptyK = bars + 16 * ST, emptyV = bars + 24 * ST;
            const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
            const int mb = gridDim.x - 1 - blockIdx.x;
            const int h = blockIdx.y, g = h / (H / Hkv);
            const int t0 = mb * BR;
            const int kv_end = causal ? min(S, p0 + t0 + BR) : S;
            const int tiles = (kv_end + BC - 1) / BC;

            load_q(sQ, q, t0, T, qs, h, tid, 384);
            if (tid == 0) {
                for (int i = 0; i < ST; i++) {
                    mbar_init(fullK + 8 * i, TMA ? 1 : 128); mbar_init(fullV + 8 * i, TMA ? 1 : 128);
                    mbar_init(emptyK + 8 * i, 8); mbar_init(emptyV + 8 * i, 8);
                }
            }
            asm volatile("cp.async.commit_group;");
            cp_async_fence_and_sync();

            if (warp >= 8 && TMA) {
                asm volatile("setmaxnreg.dec.sync.aligned.u32 40;");
                // One thread issues every copy: K_0, then K_{n+1} (if any) and V_n for each tile n, each as two
                // boxes (the halves of d), announced on the stage's full barrier.
                if (tid == 256) {
                    const int items = tiles > 0 ? 2 * tiles + 1 : 0;
                    for (int it = 0; it < items; it++) {
                        const bool isK = (it & 1) || it == 0;
                        const int j = it == 0 ? 0 : (isK ? (it + 1) / 2 : (it - 2) / 2);
                        if (isK && j >= tiles) continue;
                        const int stage = j % ST, use = j / ST;
                        if (use > 0) mbar_wait((isK ? emptyK : emptyV) + 8 * stage, (use - 1) & 1);
                        const unsigned dst = (isK ? sK : sV) + stage * TILE, bar = (isK ? fullK : fullV) + 8 * stage;
                        const TensorMap* map = isK ? kmap : vmap;
                        mbar_expect_tx(bar, TILE);
                        tma_load(dst, map, g * 128, j * BC, bar);
                        tma_load(dst + TILE / 2, map, g * 128 + 64, j * BC, bar);
                    }
                }
            } else if (warp >= 8) {
                asm volatile("setmaxnreg.dec.sync.aligned.u32 40;");
                const int pt = tid - 256;
                // K_0, then for each tile n: K_{n+1} (if any) and V_n. Each copy is one cp.async group; once the
                // next is issued, the one before is waited for, fenced and announced on its full barrier.
                unsigned pending = 0;
                const int items = tiles > 0 ? 2 * tiles + 1 : 0;
                for (int it = 0; it < items; it++) {
                    // item 0: K_0; item 2n + 1: K_{n+1} (skipped past the last tile); item 2n + 2: V_n
                    const bool isK = (it & 1) || it == 0;
                    const int j = it == 0 ? 0 : (isK ? (it + 1) / 2 : (it - 2) / 2);
                    if (isK && j >= tiles) continue;
                    const int stage = j % ST, use = j / ST;
                    if (use > 0) mbar_wait((isK ? emptyK : emptyV) + 8 * stage, (use - 1) & 1);
                    const bf16* src = isK ? k : v;
                    const unsigned dst = (isK ? sK : sV) + stage * TILE;
                    #pragma unroll 4
                    for (int i = pt; i < BC * 16; i += 128) {
                        int r = i >> 4, c = i & 15, key = j * BC + r;
                        bool ok = key < S;
                        cp_async16(dst + swizzled(r, c, BC), ok ? src + (long)key * ks + g * 128 + c * 8 : src, ok ? 16 : 0);
                    }
                    asm volatile("cp.async.commit_group;");
                    if (pending) {
                        asm volatile("cp.async.wait_group 1;" ::: "memory");
                        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
                        mbar_arrive(pending);
                    }
                    pending = (isK ? fullK : fullV) + 8 * stage;
                }
                if (pending) {
                    asm volatile("cp.async.wait_group 0;" ::: "memory");
                    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
                    mbar_arrive(pending);
                }
            } else {
            asm volatile("setmaxnreg.inc.sync.aligned.u32 232;");
            const int wg = warp >> 2;
            float o[64], s[64], m[2], l[2], alpha[2];
            unsigned p[8][4], p2[8][4], qw;
            int wg_first, row0;
            start_rows(o, m, l, t0, tid, sQ, wg_first, row0, qw);
            if (PINGPONG && wg == 1 && tiles > 0) asm volatile("bar.arrive 1, 256;" ::: "memory");
            // As in the two-warpgroup kernel: two P buffers, S only read, two tiles a turn.
            auto step = [&](int n, unsigned (*p_next)[4], unsigned (*p_prev)[4]) {
                mbar_wait(fullK + 8 * (n % ST), (n / ST) & 1);
                if (n > 0) mbar_wait(fullV + 8 * ((n - 1) % ST), ((n - 1) / ST) & 1);
                if (PINGPONG) asm volatile("bar.sync %0, 256;" :: "r"(1 + wg) : "memory"); // my turn to issue
                issue_qk(s, qw, sK + (n % ST) * TILE);
                if (n > 0) {
                    issue_pv(o, p_prev, sV + ((n - 1) % ST) * TILE);
                    asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
                } else {
                    wgmma_wait0();
                }
                acc_fence(s);
                if (lane == 0) mbar_arrive(emptyK + 8 * (n % ST));
                if (PINGPONG) {
                    // the other's turn (warpgroup 1 gives none after its last tile: warpgroup 0 waits for no more)
                    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %1, 0;\n@p bar.arrive %0, 256;\n}\n"
                                 :: "r"(2 - wg), "r"((int)(wg == 0 || n + 1 < tiles)) : "memory");
                }
                const bool mask = n * BC + BC > S || (causal && n * BC + BC - 1 > p0 + wg_first);
                online_softmax(s, p_next, m, l, alpha, mask, n * BC, S, causal, p0, row0, scale_log2, lane);
                wgmma_wait0();
                acc_fence(o);
                if (n > 0 && lane == 0) mbar_arrive(emptyV + 8 * ((n - 1) % ST));
                rescale(o, alpha);
            };
            for (int n = 0; n < tiles; n += 2) {
                step(n, p, p2);
                if (n + 1 < tiles) step(n + 1, p2, p);
            }
            if (tiles > 0) {
                mbar_wait(fullV + 8 * ((tiles - 1) % ST), ((tiles - 1) / ST) & 1);
                if (tiles & 1) issue_pv(o, p, sV + ((tiles - 1) % ST) * TILE);
                else issue_pv(o, p2, sV + ((tiles - 1) % ST) * TILE);
                wgmma_wait0();
                acc_fence(o);
            }

            store_rows(o, m, l, out, lse, row0, T, h, os, lane);
            }
        }

        // The warp-specialized entry points: ws (two stages), ws3 (three), _pp with ping-pong.
        #define FLASH_WS_ENTRY(NAME, PP, ST) \
        extern "C" __global__ void __launch_bounds__(384, 1) NAME( \
            const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse, int T, int S, int H, int Hkv, \
            int D, int qs, int ks, int os, float scale_log2, int causal, int p0) { \
            flash_ws<PP, ST, false>(q, k, v, out, lse, T, S, H, Hkv, qs, ks, os, scale_log2, causal, p0, nullptr, nullptr); \
        }
        FLASH_WS_ENTRY(flash_attention_ws_d128, false, 2)
        FLASH_WS_ENTRY(flash_attention_ws_pp_d128, true, 2)
        FLASH_WS_ENTRY(flash_attention_ws3_d128, false, 3)
        FLASH_WS_ENTRY(flash_attention_ws3_pp_d128, true, 3)
        // With TMA copies (ws-tma, ws-tma-pp, ws3-tma): the K and V tensor maps follow the usual arguments.
        #define FLASH_TMA_ENTRY(NAME, PP, ST) \
        extern "C" __global__ void __launch_bounds__(384, 1) NAME( \
            const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse, int T, int S, int H, int Hkv, \
            int D, int qs, int ks, int os, float scale_log2, int causal, int p0, \
            const __grid_constant__ TensorMap kmap, const __grid_constant__ TensorMap vmap) { \
            flash_ws<PP, ST, true>(q, k, v, out, lse, T, S, H, Hkv, qs, ks, os, scale_log2, causal, p0, &kmap, &vmap); \
        }
        FLASH_TMA_ENTRY(flash_attention_ws_tma_d128, false, 2)
        FLASH_TMA_ENTRY(flash_attention_ws_tma_pp_d128, true, 2)
        FLASH_TMA_ENTRY(flash_attention_ws3_tma_d128, false, 3)
        """#
}
