// The operators of the model on the GPU, each a thin Swift call over one kernel (Kernels.swift) or one
// cuBLAS product, with the same names and shapes as the CPU operators they mirror (docs/spec.md §3–5).
//
// Row-major everywhere, as on the CPU. cuBLAS is column-major, so y (M, N) = x (M, K) · Wᵀ (W: (N, K))
// is issued as the column-major product yᵀ = W·xᵀ: sgemm(T, N, m = N, n = M, k = K, W, x, y).
// Precision: `.fp32` keeps every product in fp32 (cuBLAS default math, no TF32); `.bf16` rounds the
// operands of every product to bf16 (weights once at upload, activations per call) and accumulates and
// stores in fp32, as autocast does; norms, softmax and activations stay fp32 in both.
// What it is not: fused. Each op reads and writes global memory once; the point is a second, plainly
// independent implementation and real-size timings, not peak speed.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

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

    /// A bf16 weight already on the device, no bias.
    public init(bf16 weight: GPUBuffer, out n: Int, in k: Int) {
        precondition(weight.elementSize == 2 && weight.count == n * k, "GPULinear: bf16 (\(n), \(k)) weight")
        weightBF16 = weight; self.weight = nil; bias = nil; outFeatures = n; inFeatures = k
    }

    /// Uploads `weight` (N·K values, row-major) and `bias`. With `.bf16` only the bf16 copy is kept.
    public init(gpu: GPU, weight: [Float], bias: [Float]?, out n: Int, in k: Int, precision: GPUPrecision = .fp32)
        throws
    {
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

    /// fp32 → a new bf16 buffer (round to nearest even): the first `count` elements of `x` (all by default).
    public func bf16(_ x: GPUBuffer, count: Int? = nil) throws -> GPUBuffer {
        try bf16(at: x.pointer, count: count ?? x.count)
    }

    /// `n` fp32 values starting at `p` → a new bf16 buffer with the same layout.
    func bf16(at p: DevicePointer, count n: Int) throws -> GPUBuffer {
        let y = try alloc(n, elementSize: 2)
        try run("to_bf16", elements: n, [.pointer(p), .ptr(y), .int64(Int64(n))])
        return y
    }

    /// y (M, N) = x (M, K) · Wᵀ + b through cuBLAS; `naive` uses the one-thread-per-output kernel.
    public func linear(_ x: GPUBuffer, rows m: Int, _ l: GPULinear, naive: Bool = false, into out: GPUBuffer? = nil)
        throws -> GPUBuffer
    {
        let n = l.outFeatures, k = l.inFeatures
        precondition(x.count >= m * k, "linear: input holds \(x.count) values, need \(m)·\(k)")
        let y = try out ?? alloc(m * n)
        if naive {
            guard let w = l.weight else { throw GPUError.unsupported("the naive matmul reads fp32 weights") }
            try run(
                "matmul_naive", elements: m * n,
                [.ptr(x), .ptr(w), .pointer(l.bias?.pointer ?? 0), .ptr(y), .int(m), .int(n), .int(k)])
            return y
        }
        let call = GemmCall.linear(rows: m, out: n, in: k)
        if let w = l.weight {
            try gemm(call, a: w.pointer, b: x.pointer, c: y.pointer, bf16: false)
        } else if let wb = l.weightBF16 {
            let xb = try bf16(x, count: m * k)
            try gemm(call, a: wb.pointer, b: xb.pointer, c: y.pointer, bf16: true)
            withExtendedLifetime(xb) {}
        }
        if let b = l.bias { try run("add_bias", elements: m * n, [.ptr(y), .ptr(b), .int64(Int64(m * n)), .int(n)]) }
        return y
    }

    /// LayerNorm over rows of C: (rows, C) → new (rows, C).
    public func layerNorm(_ x: GPUBuffer, rows: Int, width c: Int, weight: GPUBuffer, bias: GPUBuffer, eps: Float)
        throws -> GPUBuffer
    {
        let y = try alloc(rows * c)
        try launch(
            KernelSource.module, "layer_norm", grid: (rows, 1, 1), block: (GPU.threads, 1, 1),
            [.ptr(x), .ptr(weight), .ptr(bias), .ptr(y), .int(c), .float(eps)])
        return y
    }

    /// RMSNorm over rows of C: (rows, C) → new (rows, C).
    public func rmsNorm(_ x: GPUBuffer, rows: Int, width c: Int, weight: GPUBuffer, eps: Float) throws -> GPUBuffer {
        let y = try alloc(rows * c)
        try launch(
            KernelSource.module, "rms_norm", grid: (rows, 1, 1), block: (GPU.threads, 1, 1),
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
    public func rope(_ x: GPUBuffer, tokens t: Int, heads: Int, headDim d: Int, invFreq: GPUBuffer, start p0: Int)
        throws
    {
        try run("rope", elements: t * heads * d / 2, [.ptr(x), .ptr(invFreq), .int(t), .int(heads), .int(d), .int(p0)])
    }

    /// Pixel shuffle ½: (N, R·W, C) → new (N, R/2·W/2, 4C).
    public func pixelShuffle(_ x: GPUBuffer, tiles n: Int, rows r: Int, columns w: Int, width c: Int) throws
        -> GPUBuffer
    {
        let y = try alloc(n * r * w * c)
        try run("pixel_shuffle", elements: n * r * w * c, [.ptr(x), .ptr(y), .int(n), .int(r), .int(w), .int(c)])
        return y
    }

    /// im2col of one tile (Cin, H, W) for a P×P stride-P convolution → (gh·gw, Cin·P·P).
    public func im2col(_ px: GPUBuffer, channels cin: Int, height h: Int, width w: Int, patch p: Int) throws
        -> GPUBuffer
    {
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
    public func attention(
        q: DevicePointer, qStride: Int, k: DevicePointer, v: DevicePointer, kvStride: Int,
        out: DevicePointer, outStride: Int, tokens t: Int, keys s: Int, heads h: Int, kvHeads hkv: Int,
        headDim d: Int, causal: Bool, start p0: Int, precision: GPUPrecision = .fp32, naive: Bool = false
    ) throws {
        let scale = 1 / Float(d).squareRoot()
        if naive {
            try launch(
                KernelSource.module, "attention_naive", grid: (t, h, 1), block: (128, 1, 1), shared: s * 4,
                [
                    .pointer(q), .pointer(k), .pointer(v), .pointer(out), .int(t), .int(s), .int(h), .int(hkv), .int(d),
                    .int(qStride), .int(kvStride), .int(outStride), .float(scale), .int(causal ? 1 : 0), .int(p0)
                ])
            return
        }
        let scores = try alloc(h * t * s)
        let scoreCalls = (0..<hkv).map {
            GemmCall.attentionScores(
                group: $0, tokens: t, keys: s, heads: h, kvHeads: hkv, headDim: d, qStride: qStride, kvStride: kvStride)
        }
        let valueCalls = (0..<hkv).map {
            GemmCall.attentionValues(
                group: $0, tokens: t, keys: s, heads: h, kvHeads: hkv, headDim: d, kvStride: kvStride,
                outStride: outStride)
        }
        let bf = precision == .bf16
        // bf16: q, k, v and the probabilities are rounded to bf16 copies with the same layout.
        let qb = bf ? try bf16(at: q, count: t * qStride) : nil
        let kb = bf ? try bf16(at: k, count: s * kvStride) : nil
        let vb = bf ? try bf16(at: v, count: s * kvStride) : nil
        for c in scoreCalls { try gemm(c, a: kb?.pointer ?? k, b: qb?.pointer ?? q, c: scores.pointer, bf16: bf) }
        try launch(
            KernelSource.module, "softmax_rows", grid: (h * t, 1, 1), block: (GPU.threads, 1, 1),
            [.ptr(scores), .int(t), .int(s), .float(scale), .int(causal ? 1 : 0), .int(p0)])
        let probs = bf ? try bf16(scores) : scores
        for c in valueCalls { try gemm(c, a: vb?.pointer ?? v, b: probs.pointer, c: out, bf16: bf) }
        withExtendedLifetime((qb, kb, vb, probs, scores)) {}
    }

    /// Issues one planned product: fp32 operands through cublasSgemm(StridedBatched), bf16 operands
    /// (offsets in 2-byte elements) through cublasGemm(StridedBatched)Ex; C is always fp32.
    public func gemm(_ call: GemmCall, a: DevicePointer, b: DevicePointer, c: DevicePointer, bf16: Bool) throws {
        let (blas, h) = try cublas()
        var one: Float = 1, zero: Float = 0
        let ta = call.transA ? CuBLASAPI.opT : CuBLASAPI.opN, tb = call.transB ? CuBLASAPI.opT : CuBLASAPI.opN
        let e = DevicePointer(bf16 ? 2 : 4)
        let ap = a + DevicePointer(call.aOffset) * e, bp = b + DevicePointer(call.bOffset) * e,
            cp = c + DevicePointer(call.cOffset * 4)
        let m = Int32(call.m), n = Int32(call.n), k = Int32(call.k)
        let status: Int32
        switch (bf16, call.batch) {
        case (false, 1):
            status = blas.sgemm(
                h, ta, tb, m, n, k, &one, ap, Int32(call.lda), bp, Int32(call.ldb), &zero, cp, Int32(call.ldc))
        case (false, _):
            status = blas.sgemmStridedBatched(
                h, ta, tb, m, n, k, &one, ap, Int32(call.lda), Int64(call.strideA), bp, Int32(call.ldb),
                Int64(call.strideB), &zero, cp, Int32(call.ldc), Int64(call.strideC), Int32(call.batch))
        case (true, 1):
            status = blas.gemmEx(
                h, ta, tb, m, n, k, &one, ap, CuBLASAPI.r16BF, Int32(call.lda), bp, CuBLASAPI.r16BF, Int32(call.ldb),
                &zero, cp, CuBLASAPI.r32F, Int32(call.ldc), CuBLASAPI.compute32F, CuBLASAPI.gemmDefault)
        case (true, _):
            status = blas.gemmStridedBatchedEx(
                h, ta, tb, m, n, k, &one, ap, CuBLASAPI.r16BF, Int32(call.lda), Int64(call.strideA),
                bp, CuBLASAPI.r16BF, Int32(call.ldb), Int64(call.strideB), &zero,
                cp, CuBLASAPI.r32F, Int32(call.ldc), Int64(call.strideC), Int32(call.batch),
                CuBLASAPI.compute32F, CuBLASAPI.gemmDefault)
        }
        guard status == 0 else {
            throw GPUError.cublas(call: (bf16 ? "bf16 " : "fp32 ") + call.description, status: status)
        }
    }
}
