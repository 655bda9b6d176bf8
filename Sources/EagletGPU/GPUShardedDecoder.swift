// A prefill with the sequence sharded over ranks, on GPUs: ContextParallel's ShardedQwen2 (chapter 13) with the
// bf16 decoder layer of the GPU mirror. Every rank holds the tokens of its layout; embeddings, norms, products,
// RoPE (at the tokens' positions in their sequence) and the MLP run on its own rows with the layer's own code
// (`GPUQwen2LayerBF16.project`, `rope`, `finish`), and attention is the plan's scheme as a device program
// (CPDevice.swift) on `GPUCPBackend`. A rank's final normed hidden states must equal the matching rows of the
// one-GPU prefill (`GPUEagle.decode`).
// What it is not: a KV cache for decoding after the prefill (each rank would keep its shard's keys), or the
// vision tower (text ids only).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ContextParallel

extension GPUQwen2LayerBF16 {
    /// This rank's tokens x (n, C) bf16, in `plan.layouts[rank]` order, through the layer → (n, C) bf16.
    public func contextParallel(
        _ backend: GPUCPBackend, _ x: GPUBuffer, plan: CPPlan, width c: Int, heads h: Int, kvHeads hkv: Int,
        headDim d: Int, eps: Float, invFreq: GPUBuffer
    ) throws -> GPUBuffer {
        let gpu = backend.gpu, layout = plan.layouts[backend.rank], n = Sharding.tokenCount(layout)
        let fused = try project(gpu, x, tokens: n, width: c, eps: eps)
        let q = GPUMatrix(try gpu.alloc(n * h * d, elementSize: 2), rows: n, cols: h * d)
        let k = GPUMatrix(try gpu.alloc(n * hkv * d, elementSize: 2), rows: n, cols: hkv * d)
        let v = GPUMatrix(try gpu.alloc(n * hkv * d, elementSize: 2), rows: n, cols: hkv * d)
        // The rope kernel writes key row p + t for position p + t: shifted bases put segment rows o … at rows o ….
        var o = 0
        for s in layout {
            let p = s.start - s.sequenceStart
            let shift = Int64(o - p) * Int64(hkv * d * 2)
            try rope(
                gpu, fused: fused.at(o * qkv.outFeatures), tokens: s.count, heads: h, kvHeads: hkv, headDim: d,
                invFreq: invFreq, q: q.row(o), keys: DevicePointer(bitPattern: Int64(bitPattern: k.row(0)) &+ shift),
                values: DevicePointer(bitPattern: Int64(bitPattern: v.row(0)) &+ shift), start: p)
            o += s.count
        }
        let kv = try backend.matrix(rows: n, cols: 2 * hkv * d, bf16: true, fill: nil)
        try backend.copy(k, row: 0, col: 0, to: kv, row: 0, col: 0, rows: n, cols: hkv * d)
        try backend.copy(v, row: 0, col: 0, to: kv, row: 0, col: hkv * d, rows: n, cols: hkv * d)
        let r = try deviceContextParallel(plan: plan, headDim: d, q: q, kv: kv, backend: backend)
        // The legacy default stream (bf16 rounding, products) waits for the program's blocking streams.
        let attn = try gpu.bf16(r.out.buffer)
        try backend.release()
        withExtendedLifetime((q, k, v)) {}
        return try finish(gpu, x, attention: attn, tokens: n, width: c, eps: eps)
    }
}

extension GPUEagle {
    /// This rank's final normed hidden states (n, C) fp32 for the text `ids` (all T of them; the rank reads its
    /// own), every decoder layer's attention by `plan`'s scheme on `backend` (whose GPU may be another thread's
    /// handle on this model's device: the weights are only read). bf16 models only; `layers` as in `decode`.
    public func contextParallelPrefill(ids: [Int], plan: CPPlan, backend: GPUCPBackend, layers: Int? = nil) throws
        -> GPUBuffer
    {
        guard precision == .bf16 else { throw GPUError.unsupported("the sharded prefill runs the bf16 layers") }
        let gpu = backend.gpu, tc = config.text, c = tc.hiddenSize
        let local = Sharding.positions(plan.layouts[backend.rank]).map { ids[$0] }
        var x = try gpu.bf16(try gpu.gatherRows(embed, ids: local, width: c))
        for l in textLayersBF16.prefix(layers ?? textLayersBF16.count) {
            x = try l.contextParallel(
                backend, x, plan: plan, width: c, heads: tc.numAttentionHeads, kvHeads: tc.numKeyValueHeads,
                headDim: tc.headDim, eps: tc.rmsNormEps, invFreq: invFreq)
        }
        let n = local.count
        let f = try gpu.alloc(n * c)
        try gpu.runBF16("bf16_to_f32", elements: n * c, [.ptr(x), .ptr(f), .int64(Int64(n * c))])
        return try gpu.rmsNorm(f, rows: n, width: c, weight: finalNorm, eps: tc.rmsNormEps)
    }
}
