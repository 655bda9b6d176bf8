// Eagle 2.5 on the GPU: the same weights as the CPU `EagleModel`, uploaded once, and the same forward —
// SigLIP tower per tile → select_layer → pixel shuffle → mlp1 → splice at <IMG_CONTEXT> → Qwen2 with a
// KV cache → lm_head — written again with GPUOps (docs/spec.md §3–5, 7). Every stage can be reported to a
// `stage` callback (name, values), which is what `gpu-check` compares with the CPU.
// Shapes as on the CPU: N tiles of S×S px, P patches per tile, C_v vision width, C text width, T tokens,
// H heads over Hkv kv heads of D, V vocabulary.
// What it is not: batched, or a low-memory loader (it starts from the CPU model's fp32 weights).
import Eagle
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Qwen2
import QwenAttention
import SigLIP2
import Tensor

/// Receives a stage's name and a closure that downloads its values (called only when wanted).
public typealias GPUStageObserver = (_ stage: String, _ values: () throws -> [Float]) throws -> Void

/// One layer's keys and values on the device, (capacity, Hkv, D) each, token-major.
final class GPUKVLayer {
    let keys: GPUBuffer, values: GPUBuffer
    init(gpu: GPU, capacity: Int, rowWidth: Int, elementSize: Int) throws {
        keys = try gpu.alloc(capacity * rowWidth, elementSize: elementSize)
        values = try gpu.alloc(capacity * rowWidth, elementSize: elementSize)
    }
}

/// The decoder's cache: one `GPUKVLayer` per layer and the number of tokens held.
public final class GPUKVCache {
    let layers: [GPUKVLayer]
    public let capacity: Int
    public internal(set) var count = 0
    init(gpu: GPU, layers n: Int, capacity: Int, rowWidth: Int, elementSize: Int) throws {
        layers = try (0..<n).map { _ in
            try GPUKVLayer(gpu: gpu, capacity: capacity, rowWidth: rowWidth, elementSize: elementSize)
        }
        self.capacity = capacity
    }
}

/// Eagle's weights on the GPU and its forward pass.
public final class GPUEagle {
    public let gpu: GPU
    public let config: EagleConfig
    public let precision: GPUPrecision
    /// `.reference`: the written-out kernels (naive matmul and attention); `.fast`: cuBLAS.
    public var compute: Compute = .fast
    var naive: Bool { compute.isReference }

    let patch: GPULinear
    let positions: GPUBuffer
    let visionLayers: [GPUSiglipLayer]
    /// `.bf16`: the layers with bf16 activations (fused weights); the fp32 lists are then empty.
    let visionLayersBF16: [GPUSiglipLayerBF16]
    let textLayersBF16: [GPUQwen2LayerBF16]
    let postLNw, postLNb: GPUBuffer
    let mlpNormW, mlpNormB: GPUBuffer
    let mlpFC1, mlpFC2: GPULinear
    let embed: GPUBuffer
    let textLayers: [GPUQwen2Layer]
    let finalNorm: GPUBuffer
    let lmHead: GPULinear
    let invFreq: GPUBuffer

    /// Uploads `model`'s weights (fp32 from the CPU model; `.bf16` keeps bf16 copies of the matrices and runs
    /// the layers with bf16 activations and a bf16 KV cache).
    public init(gpu: GPU, model: EagleModel, precision: GPUPrecision = .fp32) throws {
        try gpu.loadKernels()
        if precision == .bf16 { try gpu.loadKernelsBF16() }
        _ = try gpu.cublas() // create the handle now, not inside the first timed product
        self.gpu = gpu; config = model.config; self.precision = precision
        func up(_ t: Tensor) throws -> GPUBuffer { try gpu.upload(t.storage) }
        func lin(_ w: Tensor, _ b: Tensor?) throws -> GPULinear {
            try GPULinear(
                gpu: gpu, weight: w.storage, bias: b?.storage, out: w.shape[0], in: w.count / w.shape[0],
                precision: precision)
        }
        let vm = model.visionModel
        patch = try lin(vm.embeddings.patchEmbedding.weight, vm.embeddings.patchEmbedding.bias)
        positions = try up(vm.embeddings.positionEmbedding)
        let bf = precision == .bf16
        visionLayersBF16 = try (bf ? vm.layers : []).map { l in
            let a = l.selfAttn
            return try GPUSiglipLayerBF16(
                gpu: gpu, ln1: (l.layerNorm1.weight.storage, l.layerNorm1.bias.storage),
                ln2: (l.layerNorm2.weight.storage, l.layerNorm2.bias.storage),
                q: (a.qProj.weight.storage, a.qProj.bias.storage), k: (a.kProj.weight.storage, a.kProj.bias.storage),
                v: (a.vProj.weight.storage, a.vProj.bias.storage),
                o: (a.outProj.weight.storage, a.outProj.bias.storage),
                fc1: (l.mlp.fc1.weight.storage, l.mlp.fc1.bias.storage),
                fc2: (l.mlp.fc2.weight.storage, l.mlp.fc2.bias.storage), width: vm.config.hiddenSize,
                intermediate: l.mlp.fc1.weight.shape[0])
        }
        visionLayers = try (bf ? [] : vm.layers).map { l in
            GPUSiglipLayer(
                ln1w: try up(l.layerNorm1.weight), ln1b: try up(l.layerNorm1.bias),
                ln2w: try up(l.layerNorm2.weight), ln2b: try up(l.layerNorm2.bias),
                q: try lin(l.selfAttn.qProj.weight, l.selfAttn.qProj.bias),
                k: try lin(l.selfAttn.kProj.weight, l.selfAttn.kProj.bias),
                v: try lin(l.selfAttn.vProj.weight, l.selfAttn.vProj.bias),
                o: try lin(l.selfAttn.outProj.weight, l.selfAttn.outProj.bias),
                fc1: try lin(l.mlp.fc1.weight, l.mlp.fc1.bias), fc2: try lin(l.mlp.fc2.weight, l.mlp.fc2.bias))
        }
        postLNw = try up(vm.postLayernorm.weight); postLNb = try up(vm.postLayernorm.bias)
        mlpNormW = try up(model.mlp1.normWeight); mlpNormB = try up(model.mlp1.normBias)
        mlpFC1 = try lin(model.mlp1.fc1Weight, model.mlp1.fc1Bias)
        mlpFC2 = try lin(model.mlp1.fc2Weight, model.mlp1.fc2Bias)
        let lm = model.languageModel
        embed = try up(lm.embedTokens)
        textLayersBF16 = try (bf ? lm.layers : []).map { l in
            let a = l.selfAttn
            return try GPUQwen2LayerBF16(
                gpu: gpu, inputNorm: l.inputLayernorm.weight.storage, postNorm: l.postAttentionLayernorm.weight.storage,
                q: a.qProj, k: a.kProj, v: a.vProj, o: a.oProj, gate: l.mlp.gateProj, up: l.mlp.upProj,
                down: l.mlp.downProj)
        }
        textLayers = try (bf ? [] : lm.layers).map { l in
            GPUQwen2Layer(
                inputNorm: try up(l.inputLayernorm.weight), postNorm: try up(l.postAttentionLayernorm.weight),
                q: try lin(l.selfAttn.qProj.weight, l.selfAttn.qProj.bias),
                k: try lin(l.selfAttn.kProj.weight, l.selfAttn.kProj.bias),
                v: try lin(l.selfAttn.vProj.weight, l.selfAttn.vProj.bias),
                o: try lin(l.selfAttn.oProj.weight, l.selfAttn.oProj.bias),
                gate: try lin(l.mlp.gateProj.weight, nil), up: try lin(l.mlp.upProj.weight, nil),
                down: try lin(l.mlp.downProj.weight, nil))
        }
        finalNorm = try up(lm.norm.weight)
        lmHead = try lin(lm.lmHead.weight, lm.lmHead.bias)
        invFreq = try gpu.upload(lm.rope.invFreq)
    }

    // MARK: Vision

    /// One tile (3, S, S) → its select_layer features (P, C_v) on the device. Stages: "vision.embeddings",
    /// "vision.layers.i", "vision.post_layernorm" (prefixed by `tag`).
    public func visionFeatures(tile pixels: [Float], tag: String = "", stage: GPUStageObserver? = nil) throws
        -> GPUBuffer
    {
        let vc = config.vision
        let s = config.tileSize, p = vc.patchSize, c = vc.hiddenSize
        let t = (s / p) * (s / p)
        let px = try gpu.upload(pixels)
        let cols = try gpu.im2col(px, channels: vc.numChannels, height: s, width: s, patch: p)
        let x = try gpu.linear(cols, rows: t, patch, naive: naive)
        try gpu.addInPlace(x, positions, count: t * c)
        var states = [x]
        try stage?(tag + "vision.embeddings") { try self.gpu.download(x) }
        var h = x
        if precision == .bf16 {
            // bf16 through the encoder layers; the kept states come back to fp32 for post_layernorm and mlp1.
            var hb = try gpu.bf16(x)
            for (i, l) in visionLayersBF16.enumerated() {
                hb = try l(gpu, hb, tokens: t, width: c, heads: vc.numAttentionHeads, eps: vc.layerNormEps)
                let f = try gpu.alloc(t * c)
                try gpu.runBF16("bf16_to_f32", elements: t * c, [.ptr(hb), .ptr(f), .int64(Int64(t * c))])
                states.append(f)
                try stage?(tag + "vision.layers.\(i)") { try self.gpu.download(f) }
            }
            h = states[states.count - 1]
        }
        for (i, l) in visionLayers.enumerated() {
            h = try l(
                gpu, h, tokens: t, width: c, heads: vc.numAttentionHeads, eps: vc.layerNormEps, precision: precision,
                naive: naive)
            states.append(h)
            try stage?(tag + "vision.layers.\(i)") { try self.gpu.download(h) }
        }
        let post = try gpu.layerNorm(h, rows: t, width: c, weight: postLNw, bias: postLNb, eps: vc.layerNormEps)
        try stage?(tag + "vision.post_layernorm") { try self.gpu.download(post) }
        if config.selectLayer == -1 { return post }
        let n = states.count
        let i = config.selectLayer >= 0 ? config.selectLayer : n + config.selectLayer
        guard i >= 0 && i < n else { throw SelectLayerError.outOfRange(selectLayer: config.selectLayer, layers: n - 1) }
        return states[i]
    }

    /// pixel_values (N, 3, S, S) → visual tokens (N·P/4, C) on the device. Stages: per tile as above
    /// ("tile.n."), then "connector.pixel_shuffle" and "connector.mlp1".
    public func visualTokens(pixelValues: Tensor, stage: GPUStageObserver? = nil) throws -> (GPUBuffer, Int) {
        let n = pixelValues.shape[0], per = pixelValues.count / max(n, 1)
        let side = config.patchesPerSide, cv = config.vision.hiddenSize, c = config.text.hiddenSize
        let p = side * side
        let feats = try gpu.alloc(n * p * cv)
        for i in 0..<n {
            let tile = Array(pixelValues.storage[(i * per)..<((i + 1) * per)])
            let f = try visionFeatures(tile: tile, tag: n > 1 ? "tile.\(i)." : "", stage: stage)
            try gpu.copy(from: f.pointer, to: feats.at(i * p * cv), bytes: p * cv * 4)
        }
        let shuffled = try gpu.pixelShuffle(feats, tiles: n, rows: side, columns: side, width: cv)
        let m = n * p / 4
        try stage?("connector.pixel_shuffle") { try self.gpu.download(shuffled) }
        let normed = try gpu.layerNorm(shuffled, rows: m, width: 4 * cv, weight: mlpNormW, bias: mlpNormB, eps: 1e-5)
        let h = try gpu.linear(normed, rows: m, mlpFC1, naive: naive)
        try gpu.gelu(h, count: m * c, tanh: false)
        let y = try gpu.linear(h, rows: m, mlpFC2, naive: naive)
        try stage?("connector.mlp1") { try self.gpu.download(y) }
        return (y, m)
    }

    // MARK: Language model

    /// An empty cache for `capacity` tokens.
    public func makeCache(capacity: Int) throws -> GPUKVCache {
        let tc = config.text
        return try GPUKVCache(
            gpu: gpu, layers: tc.numHiddenLayers, capacity: capacity, rowWidth: tc.numKeyValueHeads * tc.headDim,
            elementSize: precision == .bf16 ? 2 : 4)
    }

    /// Input embeddings (T, C) at positions cache.count … → the final normed hidden states (T, C); the
    /// cache grows by T. Stages: "decoder.layers.i", "decoder.norm". `layers`: only the first that many decoder
    /// layers, then the final norm (a depth study; the cache's other layers stay empty).
    public func decode(
        _ x0: GPUBuffer, tokens t: Int, cache: GPUKVCache, stage: GPUStageObserver? = nil, layers: Int? = nil
    ) throws -> GPUBuffer {
        let tc = config.text
        let c = tc.hiddenSize, h = tc.numAttentionHeads, hkv = tc.numKeyValueHeads, d = tc.headDim
        let p0 = cache.count
        guard p0 + t <= cache.capacity else {
            throw GPUError.unsupported("KV cache of \(cache.capacity) tokens is full (\(p0) + \(t))")
        }
        var x = x0
        if precision == .bf16 {
            var xb = try gpu.bf16(x0)
            for (i, l) in textLayersBF16.prefix(layers ?? textLayersBF16.count).enumerated() {
                let y = try l(
                    gpu, xb, tokens: t, width: c, heads: h, kvHeads: hkv, headDim: d, eps: tc.rmsNormEps,
                    invFreq: invFreq, keys: cache.layers[i].keys, values: cache.layers[i].values, start: p0)
                xb = y
                try stage?("decoder.layers.\(i)") { try self.gpu.downloadBF16(y) }
            }
            x = try gpu.alloc(t * c)
            try gpu.runBF16("bf16_to_f32", elements: t * c, [.ptr(xb), .ptr(x), .int64(Int64(t * c))])
        }
        for (i, l) in textLayers.prefix(layers ?? textLayers.count).enumerated() {
            let y = try l(
                gpu, x, tokens: t, width: c, heads: h, kvHeads: hkv, headDim: d, eps: tc.rmsNormEps, invFreq: invFreq,
                keys: cache.layers[i].keys, values: cache.layers[i].values, start: p0, precision: precision,
                naive: naive)
            x = y
            try stage?("decoder.layers.\(i)") { try self.gpu.download(y) }
        }
        cache.count = p0 + t
        let out = try gpu.rmsNorm(x, rows: t, width: c, weight: finalNorm, eps: tc.rmsNormEps)
        try stage?("decoder.norm") { try self.gpu.download(out) }
        return out
    }

    /// Text embeddings for `ids` with rows at <IMG_CONTEXT> replaced by `visual` (M, C), in order.
    public func embed(ids: [Int], visual: (GPUBuffer, Int)?) throws -> GPUBuffer {
        let c = config.text.hiddenSize
        let slots = try config.imageSlots(ids: ids, visualTokens: visual?.1 ?? 0)
        let e = try gpu.gatherRows(embed, ids: ids, width: c)
        if let (v, _) = visual { try gpu.scatterRows(v, into: e, rows: slots, width: c) }
        return e
    }

    /// Logits (rows, V) of normed hidden states; `lastOnly` keeps the last row.
    public func logits(_ h: GPUBuffer, tokens t: Int, lastOnly: Bool) throws -> [Float] {
        let c = config.text.hiddenSize
        if lastOnly {
            let last = try gpu.alloc(c)
            try gpu.copy(from: h.at((t - 1) * c), to: last.pointer, bytes: c * 4)
            return try gpu.download(try gpu.linear(last, rows: 1, lmHead, naive: naive))
        }
        return try gpu.download(try gpu.linear(h, rows: t, lmHead, naive: naive))
    }

    /// The GPU decoder for the one generation loop: the prompt (images spliced in) through the device KV cache.
    public struct Decoding: TokenDecoder {
        let model: GPUEagle, embeds: GPUBuffer, tokens: Int, cache: GPUKVCache

        public mutating func prefill() throws -> [Float] {
            try model.logits(try model.decode(embeds, tokens: tokens, cache: cache), tokens: tokens, lastOnly: true)
        }
        public mutating func step(_ token: Int) throws -> [Float] {
            try model.logits(
                try model.decode(try model.embed(ids: [token], visual: nil), tokens: 1, cache: cache), tokens: 1,
                lastOnly: true)
        }
    }

    /// Greedy decoding on the GPU with the KV cache, stopping at `stopTokens` or `maxNewTokens`; the time to the
    /// first token includes the vision tower.
    public func generateGreedy(ids: [Int], pixelValues: Tensor?, maxNewTokens: Int, stopTokens: Set<Int>) throws
        -> GenerationReport
    {
        let started = ContinuousClock.now
        var visual: (GPUBuffer, Int)? = nil
        if let p = pixelValues, p.shape.first ?? 0 > 0 { visual = try visualTokens(pixelValues: p) }
        var decoding = Decoding(
            model: self, embeds: try embed(ids: ids, visual: visual), tokens: ids.count,
            cache: try makeCache(capacity: ids.count + maxNewTokens + 1))
        return try generate(&decoding, maxNewTokens: maxNewTokens, stopTokens: stopTokens, started: started)
    }
}

/// One `SiglipEncoderLayer` on the device.
public struct GPUSiglipLayer {
    let ln1w, ln1b, ln2w, ln2b: GPUBuffer
    let q, k, v, o, fc1, fc2: GPULinear

    /// x + attn(ln1(x)), then + mlp(ln2(·)): (T, C) → new (T, C). Bidirectional attention, H heads.
    public func callAsFunction(
        _ gpu: GPU, _ x: GPUBuffer, tokens t: Int, width c: Int, heads: Int, eps: Float,
        precision: GPUPrecision, naive: Bool
    ) throws -> GPUBuffer {
        let a = try gpu.layerNorm(x, rows: t, width: c, weight: ln1w, bias: ln1b, eps: eps)
        let qb = try gpu.linear(a, rows: t, q, naive: naive), kb = try gpu.linear(a, rows: t, k, naive: naive)
        let vb = try gpu.linear(a, rows: t, v, naive: naive)
        let ob = try gpu.alloc(t * c)
        try gpu.attention(
            q: qb.pointer, qStride: c, k: kb.pointer, v: vb.pointer, kvStride: c, out: ob.pointer, outStride: c,
            tokens: t, keys: t, heads: heads, kvHeads: heads, headDim: c / heads, causal: false, start: 0,
            precision: precision, naive: naive)
        let h = try gpu.linear(ob, rows: t, o, naive: naive)
        try gpu.addInPlace(h, x, count: t * c)
        let b = try gpu.layerNorm(h, rows: t, width: c, weight: ln2w, bias: ln2b, eps: eps)
        let m = try gpu.linear(b, rows: t, fc1, naive: naive)
        try gpu.gelu(m, count: t * fc1.outFeatures, tanh: true)
        let y = try gpu.linear(m, rows: t, fc2, naive: naive)
        try gpu.addInPlace(y, h, count: t * c)
        return y
    }
}

/// One `Qwen2DecoderLayer` on the device, reading and extending its layer of the KV cache.
public struct GPUQwen2Layer {
    let inputNorm, postNorm: GPUBuffer
    let q, k, v, o, gate, up, down: GPULinear

    /// h + attn(rms(h)), then + mlp(rms(·)) for T tokens at positions p0 …; their keys and values are
    /// written to rows p0 ..< p0 + T of `keys`/`values` (capacity, Hkv·D) and attention reads rows 0 ..< p0 + T.
    public func callAsFunction(
        _ gpu: GPU, _ x: GPUBuffer, tokens t: Int, width c: Int, heads h: Int, kvHeads hkv: Int,
        headDim d: Int, eps: Float, invFreq: GPUBuffer, keys: GPUBuffer, values: GPUBuffer,
        start p0: Int, precision: GPUPrecision, naive: Bool
    ) throws -> GPUBuffer {
        let a = try gpu.rmsNorm(x, rows: t, width: c, weight: inputNorm, eps: eps)
        let qb = try gpu.linear(a, rows: t, q, naive: naive)
        let kb = try gpu.linear(a, rows: t, k, naive: naive), vb = try gpu.linear(a, rows: t, v, naive: naive)
        try gpu.rope(qb, tokens: t, heads: h, headDim: d, invFreq: invFreq, start: p0)
        try gpu.rope(kb, tokens: t, heads: hkv, headDim: d, invFreq: invFreq, start: p0)
        let row = hkv * d
        try gpu.copy(from: kb.pointer, to: keys.at(p0 * row), bytes: t * row * 4)
        try gpu.copy(from: vb.pointer, to: values.at(p0 * row), bytes: t * row * 4)
        let ob = try gpu.alloc(t * h * d)
        try gpu.attention(
            q: qb.pointer, qStride: h * d, k: keys.pointer, v: values.pointer, kvStride: row,
            out: ob.pointer, outStride: h * d, tokens: t, keys: p0 + t, heads: h, kvHeads: hkv, headDim: d,
            causal: true, start: p0, precision: precision, naive: naive)
        let attn = try gpu.linear(ob, rows: t, o, naive: naive)
        try gpu.addInPlace(attn, x, count: t * c)
        let b = try gpu.rmsNorm(attn, rows: t, width: c, weight: postNorm, eps: eps)
        let g = try gpu.linear(b, rows: t, gate, naive: naive), u = try gpu.linear(b, rows: t, up, naive: naive)
        try gpu.siluMul(g, u, count: t * gate.outFeatures)
        let y = try gpu.linear(g, rows: t, down, naive: naive)
        try gpu.addInPlace(y, attn, count: t * c)
        return y
    }
}
