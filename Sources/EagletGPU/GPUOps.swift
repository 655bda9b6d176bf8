// The operators of the model on the GPU, each a thin Swift call over one kernel (Kernels.swift) or one
// cuBLAS product, with the same names and shapes as the CPU operators they mirror (spec 3–5).
//
// Row-major everywhere, as on the CPU. cuBLAS is column-major, so y (M, N) = x (M, K) · Wᵀ (W: (N, K))
// is issued as the column-major product yᵀ = W·xᵀ: sgemm(T, N, m = N, n = M, k = K, W, x, y).
// Precision: `.fp32` keeps every product in fp32 (cuBLAS default math, no TF32); `.bf16` rounds the
// operands of every product to bf16 (weights once at upload, activations per call) and accumulates and
// stores in fp32, as autocast does; norms, softmax and activations stay fp32 in both.
// What it is not: fused. Each op reads and writes global memory once; the point is a second, plainly
// independent implementation and real-size timings, not peak speed.
import Foundation

/// Which operands the matrix products read.
public enum GPUPrecision: String, Sendable, CaseIterable {
    case fp32, bf16
}

/// A linear layer on the device: weight (N, K) fp32 (and its bf16 copy for `.bf16`), optional bias (N).
public struct GPULinear {
    public let weight: GPUBuffer?
    public let weightBF16: GPUBuffer?
    public let bias: GPUBuffer?
    public let outFeatures: Int
    public let inFeatures: Int

    /// Uploads `weight` (N·K values, row-major) and `bias`. With `.bf16` only the bf16 copy is kept.
    public init(gpu: GPU, weight: [Float], bias: [Float]?, out n: Int, in k: Int, precision: GPUPrecision = .fp32) throws {
        precondition(weight.count == n * k, "GPULinear: \(weight.count) weights for (\(n), \(k))")
        let w = try gpu.upload(weight)
        if precision == .bf16 {
            weightBF16 = try gpu.bf16(w); self.weight = nil
        } else {
            self.weight = w; weightBF16 = nil
        }
        self.bias = try bias.map { try gpu.upload($0) }
        outFeatures = n; inFeatures = k
    }
}

extension GPU {
    static let threads = 256

    func grid(_ n: Int) -> (Int, Int, Int) { ((n + GPU.threads - 1) / GPU.threads, 1, 1) }

    /// Compiles (or loads from the cache) the kernels of Kernels.swift.
    public func loadKernels() throws { try load(source: KernelSource.source, key: KernelSource.module) }

    func run(_ name: String, elements n: Int, _ args: [KernelArgument]) throws {
        guard n > 0 else { return }
        try launch(KernelSource.module, name, grid: grid(n), block: (GPU.threads, 1, 1), args)
    }

    /// fp32 → a new bf16 buffer (round to nearest even).
    public func bf16(_ x: GPUBuffer, count: Int? = nil) throws -> GPUBuffer {
        let n = count ?? x.count
        let y = try alloc(n, elementSize: 2)
        try run("to_bf16", elements: n, [.ptr(x), .ptr(y), .int64(Int64(n))])
        return y
    }

    /// y (M, N) = x (M, K) · Wᵀ + b through cuBLAS; `naive` uses the one-thread-per-output kernel.
    public func linear(_ x: GPUBuffer, rows m: Int, _ l: GPULinear, naive: Bool = false, into out: GPUBuffer? = nil) throws -> GPUBuffer {
        let n = l.outFeatures, k = l.inFeatures
        precondition(x.count >= m * k, "linear: input holds \(x.count) values, need \(m)·\(k)")
        let y = try out ?? alloc(m * n)
        if naive {
            guard let w = l.weight else { throw GPUError.unsupported("the naive matmul reads fp32 weights") }
            try run("matmul_naive", elements: m * n, [.ptr(x), .ptr(w), .pointer(l.bias?.pointer ?? 0), .ptr(y), .int(m), .int(n), .int(k)])
            return y
        }
        let (blas, h) = try cublas()
        var alpha: Float = 1, beta: Float = 0
        if let w = l.weight {
            let s = blas.sgemm(h, CuBLASAPI.opT, CuBLASAPI.opN, Int32(n), Int32(m), Int32(k), &alpha, w.pointer, Int32(k),
                               x.pointer, Int32(k), &beta, y.pointer, Int32(n))
            guard s == 0 else { throw GPUError.cublas(call: "cublasSgemm_v2(\(m)×\(k) · (\(n)×\(k))ᵀ)", status: s) }
        } else if let wb = l.weightBF16 {
            let xb = try bf16(x, count: m * k)
            let s = blas.gemmEx(h, CuBLASAPI.opT, CuBLASAPI.opN, Int32(n), Int32(m), Int32(k), &alpha, wb.pointer, CuBLASAPI.r16BF, Int32(k),
                                xb.pointer, CuBLASAPI.r16BF, Int32(k), &beta, y.pointer, CuBLASAPI.r32F, Int32(n),
                                CuBLASAPI.compute32F, CuBLASAPI.gemmDefault)
            guard s == 0 else { throw GPUError.cublas(call: "cublasGemmEx bf16 (\(m)×\(k) · (\(n)×\(k))ᵀ)", status: s) }
        }
        if let b = l.bias { try run("add_bias", elements: m * n, [.ptr(y), .ptr(b), .int64(Int64(m * n)), .int(n)]) }
        return y
    }

    /// LayerNorm over rows of C: (rows, C) → new (rows, C).
    public func layerNorm(_ x: GPUBuffer, rows: Int, width c: Int, weight: GPUBuffer, bias: GPUBuffer, eps: Float) throws -> GPUBuffer {
        let y = try alloc(rows * c)
        try launch(KernelSource.module, "layer_norm", grid: (rows, 1, 1), block: (GPU.threads, 1, 1),
                   [.ptr(x), .ptr(weight), .ptr(bias), .ptr(y), .int(c), .float(eps)])
        return y
    }

    /// RMSNorm over rows of C: (rows, C) → new (rows, C).
    public func rmsNorm(_ x: GPUBuffer, rows: Int, width c: Int, weight: GPUBuffer, eps: Float) throws -> GPUBuffer {
        let y = try alloc(rows * c)
        try launch(KernelSource.module, "rms_norm", grid: (rows, 1, 1), block: (GPU.threads, 1, 1),
                   [.ptr(x), .ptr(weight), .ptr(y), .int(c), .float(eps)])
        return y
    }

    /// y += x (n values).
    public func addInPlace(_ y: GPUBuffer, _ x: GPUBuffer, count n: Int) throws {
        try run("add_inplace", elements: n, [.ptr(y), .ptr(x), .int64(Int64(n))])
    }

    /// In place: gelu_pytorch_tanh (`tanh: true`) or exact erf GELU.
    public func gelu(_ y: GPUBuffer, count n: Int, tanh: Bool) throws {
        try run(tanh ? "gelu_tanh" : "gelu_erf", elements: n, [.ptr(y), .int64(Int64(n))])
    }

    /// In place: g = silu(g) ⊙ u.
    public func siluMul(_ g: GPUBuffer, _ u: GPUBuffer, count n: Int) throws {
        try run("silu_mul", elements: n, [.ptr(g), .ptr(u), .int64(Int64(n))])
    }

    /// In place RoPE on x (T, heads, D) for positions p0 …, from inv_freq (D/2).
    public func rope(_ x: GPUBuffer, tokens t: Int, heads: Int, headDim d: Int, invFreq: GPUBuffer, start p0: Int) throws {
        try run("rope", elements: t * heads * d / 2, [.ptr(x), .ptr(invFreq), .int(t), .int(heads), .int(d), .int(p0)])
    }

    /// Pixel shuffle ½: (N, R·W, C) → new (N, R/2·W/2, 4C).
    public func pixelShuffle(_ x: GPUBuffer, tiles n: Int, rows r: Int, columns w: Int, width c: Int) throws -> GPUBuffer {
        let y = try alloc(n * r * w * c)
        try run("pixel_shuffle", elements: n * r * w * c, [.ptr(x), .ptr(y), .int(n), .int(r), .int(w), .int(c)])
        return y
    }

    /// im2col of one tile (Cin, H, W) for a P×P stride-P convolution → (gh·gw, Cin·P·P).
    public func im2col(_ px: GPUBuffer, channels cin: Int, height h: Int, width w: Int, patch p: Int) throws -> GPUBuffer {
        let n = (h / p) * (w / p) * cin * p * p
        let y = try alloc(n)
        try run("im2col", elements: n, [.ptr(px), .ptr(y), .int(cin), .int(h), .int(w), .int(p)])
        return y
    }

    /// Rows of `table` (·, C) at `ids` → new (ids.count, C).
    public func gatherRows(_ table: GPUBuffer, ids: [Int], width c: Int) throws -> GPUBuffer {
        let idb = try upload(ids.map { Int32($0) })
        let y = try alloc(ids.count * c)
        try run("gather_rows", elements: ids.count * c, [.ptr(table), .ptr(idb), .ptr(y), .int(ids.count), .int(c)])
        return y
    }

    /// y[rows[r], :] = x[r, :].
    public func scatterRows(_ x: GPUBuffer, into y: GPUBuffer, rows: [Int], width c: Int) throws {
        guard !rows.isEmpty else { return }
        let idb = try upload(rows.map { Int32($0) })
        try run("scatter_rows", elements: rows.count * c, [.ptr(x), .ptr(idb), .ptr(y), .int(rows.count), .int(c)])
    }

    /// Multi-head attention with grouped kv heads. q (T, H, D) rows of stride `qStride` floats, k and v
    /// (S, Hkv, D) rows of stride `kvStride`, query t at position p0 + t; out (T, H, D) rows of stride
    /// `outStride`. `naive`: the written-out kernel; otherwise scores = q·kᵀ and p·v per kv group by
    /// cuBLAS strided-batched products with the (H, T, S) scores materialised, softmax by kernel.
    public func attention(q: DevicePointer, qStride: Int, k: DevicePointer, v: DevicePointer, kvStride: Int,
                          out: DevicePointer, outStride: Int, tokens t: Int, keys s: Int, heads h: Int, kvHeads hkv: Int,
                          headDim d: Int, causal: Bool, start p0: Int, precision: GPUPrecision = .fp32, naive: Bool = false) throws {
        let scale = 1 / Float(d).squareRoot()
        if naive {
            try launch(KernelSource.module, "attention_naive", grid: (t, h, 1), block: (128, 1, 1), shared: s * 4,
                       [.pointer(q), .pointer(k), .pointer(v), .pointer(out), .int(t), .int(s), .int(h), .int(hkv), .int(d),
                        .int(qStride), .int(kvStride), .int(outStride), .float(scale), .int(causal ? 1 : 0), .int(p0)])
            return
        }
        let (blas, hd) = try cublas()
        let g = h / hkv
        let scores = try alloc(h * t * s)
        var one: Float = 1, zero: Float = 0
        let f = 4
        if precision == .fp32 {
            for kv in 0..<hkv {   // scores (H, T, S): the g query heads of group kv against its keys
                let h0 = kv * g
                let st = blas.sgemmStridedBatched(hd, CuBLASAPI.opT, CuBLASAPI.opN, Int32(s), Int32(t), Int32(d), &one,
                                                  k + DevicePointer(kv * d * f), Int32(kvStride), 0,
                                                  q + DevicePointer(h0 * d * f), Int32(qStride), Int64(d), &zero,
                                                  scores.at(h0 * t * s), Int32(s), Int64(t * s), Int32(g))
                guard st == 0 else { throw GPUError.cublas(call: "cublasSgemmStridedBatched (scores)", status: st) }
            }
            try launch(KernelSource.module, "softmax_rows", grid: (h * t, 1, 1), block: (GPU.threads, 1, 1),
                       [.ptr(scores), .int(t), .int(s), .float(scale), .int(causal ? 1 : 0), .int(p0)])
            for kv in 0..<hkv {   // out (T, H, D) = p · v per head
                let h0 = kv * g
                let st = blas.sgemmStridedBatched(hd, CuBLASAPI.opN, CuBLASAPI.opN, Int32(d), Int32(t), Int32(s), &one,
                                                  v + DevicePointer(kv * d * f), Int32(kvStride), 0,
                                                  scores.at(h0 * t * s), Int32(s), Int64(t * s), &zero,
                                                  out + DevicePointer(h0 * d * f), Int32(outStride), Int64(d), Int32(g))
                guard st == 0 else { throw GPUError.cublas(call: "cublasSgemmStridedBatched (p·v)", status: st) }
            }
            return
        }
        // bf16 operands, fp32 scores and output.
        let qb = try bf16Strided(q, rows: t, stride: qStride), kb = try bf16Strided(k, rows: s, stride: kvStride)
        let vb = try bf16Strided(v, rows: s, stride: kvStride)
        for kv in 0..<hkv {
            let h0 = kv * g
            let st = blas.gemmStridedBatchedEx(hd, CuBLASAPI.opT, CuBLASAPI.opN, Int32(s), Int32(t), Int32(d), &one,
                                               kb.at(kv * d), CuBLASAPI.r16BF, Int32(kvStride), 0,
                                               qb.at(h0 * d), CuBLASAPI.r16BF, Int32(qStride), Int64(d), &zero,
                                               scores.at(h0 * t * s), CuBLASAPI.r32F, Int32(s), Int64(t * s), Int32(g),
                                               CuBLASAPI.compute32F, CuBLASAPI.gemmDefault)
            guard st == 0 else { throw GPUError.cublas(call: "cublasGemmStridedBatchedEx bf16 (scores)", status: st) }
        }
        try launch(KernelSource.module, "softmax_rows", grid: (h * t, 1, 1), block: (GPU.threads, 1, 1),
                   [.ptr(scores), .int(t), .int(s), .float(scale), .int(causal ? 1 : 0), .int(p0)])
        let pb = try bf16(scores)
        for kv in 0..<hkv {
            let h0 = kv * g
            let st = blas.gemmStridedBatchedEx(hd, CuBLASAPI.opN, CuBLASAPI.opN, Int32(d), Int32(t), Int32(s), &one,
                                               vb.at(kv * d), CuBLASAPI.r16BF, Int32(kvStride), 0,
                                               pb.at(h0 * t * s), CuBLASAPI.r16BF, Int32(s), Int64(t * s), &zero,
                                               out + DevicePointer(h0 * d * f), CuBLASAPI.r32F, Int32(outStride), Int64(d), Int32(g),
                                               CuBLASAPI.compute32F, CuBLASAPI.gemmDefault)
            guard st == 0 else { throw GPUError.cublas(call: "cublasGemmStridedBatchedEx bf16 (p·v)", status: st) }
        }
    }

    /// `rows` rows of `stride` floats starting at `p` → a bf16 buffer with the same layout.
    func bf16Strided(_ p: DevicePointer, rows: Int, stride: Int) throws -> GPUBuffer {
        let n = rows * stride
        let y = try alloc(n, elementSize: 2)
        try run("to_bf16", elements: n, [.pointer(p), .ptr(y), .int64(Int64(n))])
        return y
    }
}
