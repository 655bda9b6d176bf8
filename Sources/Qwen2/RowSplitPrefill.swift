// Prefill with the prompt's tokens split over threads (spec §5; docs/benchmarks.md "lm").
//
// What it is: with N threads, token rows [p·T/N, (p+1)·T/N) belong to worker p, which runs every decoder
// layer on its rows alone — RMSNorm, the q/k/v products, RoPE, attention, o_proj, the SwiGLU MLP, both
// residuals — with OpenBLAS held to one thread. Rows of a layer are independent except in attention,
// where a query reads the keys and values of every earlier row, some computed by another worker. So the
// workers meet at one barrier per layer, after each has written its rows' keys and values into the
// layer's (Hkv, T, D) buffers; with causal attention a worker reads keys only up to its last row.
// Why: threading each product inside OpenBLAS left everything between the products on one core and
// made the two cores meet at every one of the seven products of a layer; measured, the second core gave
// 1.47× (docs/benchmarks.md). The arithmetic is the serial path's, but residuals ride on sgemm's β = 1,
// so results equal it within fp32-block, not bit for bit.
// What it is not: used for decode (one row), for prompts shorter than 32 rows a worker, when a cache
// already holds tokens, or when the caller asks for every layer's output (those take the serial path).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import QwenAttention
import Tensor
import _Essentials

/// The buffers every worker writes its own rows of (and reads others' keys and values from, after the
/// barrier): the hidden states (T, C) and each layer's keys and values (Hkv, T, D).
struct SharedBuffers: @unchecked Sendable {
    let hidden: UnsafeMutablePointer<Float>
    let keys: [UnsafeMutablePointer<Float>], values: [UnsafeMutablePointer<Float>]
}

extension Qwen2ForCausalLM {
    /// Rows per worker below which the split does not pay (the products get too thin).
    static let minimumRowsPerWorker = 32

    /// How many workers a prefill of `t` tokens would use with `threads` threads (1: the serial path).
    static func rowSplitWorkers(tokens t: Int, threads: Int) -> Int {
        max(1, min(threads, t / minimumRowsPerWorker))
    }

    /// The decoder over inputs embeds (T, C) at positions 0 ..< T, rows split over `workers` threads.
    /// Returns the final normed hidden states (T, C) and, per layer, the keys and values (Hkv, T, D).
    public func hiddenStatesRowSplit(_ x: Tensor, workers: Int) -> (h: Tensor, keys: [[Float]], values: [[Float]]) {
        precondition(workers >= 1 && workers <= x.shape[0], "hiddenStatesRowSplit: \(workers) workers for \(x.shape[0]) rows")
        let cfg = config
        let t = x.shape[0], c = cfg.hiddenSize, h = cfg.numAttentionHeads, hkv = cfg.numKeyValueHeads, d = cfg.headDim
        let inter = cfg.intermediateSize, qw = h * d, kvw = hkv * d
        let (cosT, sinT) = rope.cosSin(positions: Array(0..<t))
        let shared = SharedBuffers(hidden: .allocate(capacity: t * c),
                                   keys: layers.map { _ in .allocate(capacity: hkv * t * d) },
                                   values: layers.map { _ in .allocate(capacity: hkv * t * d) })
        let hidden = shared.hidden, layerKeys = shared.keys, layerValues = shared.values
        x.storage.withUnsafeBufferPointer { hidden.initialize(from: $0.baseAddress!, count: t * c) }
        defer { hidden.deallocate(); layerKeys.forEach { $0.deallocate() }; layerValues.forEach { $0.deallocate() } }
        let barrier = ThreadBarrier(parties: workers)

        let work: @Sendable (Int) -> Void = { p in
            let lo = t * p / workers, hi = t * (p + 1) / workers, n = hi - lo
            let a = UnsafeMutablePointer<Float>.allocate(capacity: n * c)
            let q = UnsafeMutablePointer<Float>.allocate(capacity: n * qw)
            let k = UnsafeMutablePointer<Float>.allocate(capacity: n * kvw), v = UnsafeMutablePointer<Float>.allocate(capacity: n * kvw)
            let qh = UnsafeMutablePointer<Float>.allocate(capacity: n * qw), oh = UnsafeMutablePointer<Float>.allocate(capacity: n * qw)
            let lse = UnsafeMutablePointer<Float>.allocate(capacity: h * n)
            let g = UnsafeMutablePointer<Float>.allocate(capacity: n * inter), u = UnsafeMutablePointer<Float>.allocate(capacity: n * inter)
            defer { [a, q, k, v, qh, oh, lse, g, u].forEach { $0.deallocate() } }
            let rows = shared.hidden + lo * c
            cosT.storage.withUnsafeBufferPointer { C in
            sinT.storage.withUnsafeBufferPointer { S in
                let cs = C.baseAddress! + lo * d, sn = S.baseAddress! + lo * d
                for (i, layer) in layers.enumerated() {
                    let attn = layer.self_attn
                    layer.input_layernorm.weight.storage.withUnsafeBufferPointer { rmsNormRows(rows, into: a, rows: n, width: c, weight: $0.baseAddress!, eps: layer.input_layernorm.eps) }
                    project(a, rows: n, attn.q_proj, into: q, accumulate: false)
                    project(a, rows: n, attn.k_proj, into: k, accumulate: false)
                    project(a, rows: n, attn.v_proj, into: v, accumulate: false)
                    RotaryEmbedding.rotate(q, tokens: n, heads: h, headDim: d, cos: cs, sin: sn)
                    RotaryEmbedding.rotate(k, tokens: n, heads: hkv, headDim: d, cos: cs, sin: sn)
                    // This worker's keys and values into the layer's (Hkv, T, D) buffers, queries to (H, n, D).
                    let kb = shared.keys[i], vb = shared.values[i]
                    for r in 0..<n {
                        for gi in 0..<hkv {
                            (kb + (gi * t + lo + r) * d).update(from: k + (r * hkv + gi) * d, count: d)
                            (vb + (gi * t + lo + r) * d).update(from: v + (r * hkv + gi) * d, count: d)
                        }
                        for hi_ in 0..<h { (qh + (hi_ * n + r) * d).update(from: q + (r * h + hi_) * d, count: d) }
                    }
                    barrier.wait()   // every earlier row's keys and values are written
                    blockwiseAttentionKernel(q: qh, heads: h, tokens: n, headDim: d, k: kb, v: vb, kvHeads: hkv, keys: hi,
                                             kvHeadStride: t * d, causal: true, offsets: AttentionOffsets(query: lo, key: 0),
                                             scale: 1 / Float(d).squareRoot(), queryBlock: 64, keyBlock: 256, out: oh, lse: lse)
                    for r in 0..<n { for hi_ in 0..<h { (q + (r * h + hi_) * d).update(from: oh + (hi_ * n + r) * d, count: d) } }
                    project(q, rows: n, attn.o_proj, into: rows, accumulate: true)          // h += o_proj(attn)
                    let mlp = layer.mlp, post = layer.post_attention_layernorm
                    post.weight.storage.withUnsafeBufferPointer { rmsNormRows(rows, into: a, rows: n, width: c, weight: $0.baseAddress!, eps: post.eps) }
                    project(a, rows: n, mlp.gate_proj, into: g, accumulate: false)
                    project(a, rows: n, mlp.up_proj, into: u, accumulate: false)
                    for j in 0..<(n * inter) { g[j] = fastSilu(g[j]) * u[j] }   // vectorised; silu's libm exp would cost ~7 %
                    project(g, rows: n, mlp.down_proj, into: rows, accumulate: true)     // h += mlp(…)
                }
                norm.weight.storage.withUnsafeBufferPointer { rmsNormRows(rows, into: rows, rows: n, width: c, weight: $0.baseAddress!, eps: norm.eps) }
            }}
        }

        BLAS.withThreads(1) { runConcurrently(workers, work) }
        let out = Tensor(shape: [t, c], storage: Array(UnsafeBufferPointer(start: hidden, count: t * c)))
        let keys = layerKeys.map { Array(UnsafeBufferPointer(start: $0, count: hkv * t * d)) }
        let values = layerValues.map { Array(UnsafeBufferPointer(start: $0, count: hkv * t * d)) }
        return (out, keys, values)
    }
}

/// y (n, C_out) = x·Wᵀ + b, or y += x·Wᵀ + b with `accumulate` (sgemm's β = 1), one BLAS thread.
func project(_ x: UnsafeMutablePointer<Float>, rows n: Int, _ l: Linear, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
    let cout = l.outFeatures, cin = l.inFeatures
    l.weight.storage.withUnsafeBufferPointer { W in
        BLAS.sgemm(transB: true, m: n, n: cout, k: cin, a: x, lda: cin, b: W.baseAddress!, ldb: cin,
                   beta: accumulate ? 1 : 0, c: y, ldc: cout)
    }
    if let b = l.bias {
        b.storage.withUnsafeBufferPointer { B in
            for r in 0..<n { let yr = y + r * cout; for j in 0..<cout { yr[j] += B[j] } }
        }
    }
}
