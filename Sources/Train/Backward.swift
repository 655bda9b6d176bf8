// Backward through the whole Eagle 2.5: one packed step's loss and the gradient of every trainable parameter, keyed
// by its checkpoint name (docs/spec.md §11.2). The forward here is the inference forward written out op by op with what
// each op's backward needs kept on a tape; the model is the same (its logits equal `EagleModel.forward`'s, a test
// checks), the parameters are the same declarations (`EagleParameters`), only held as a flat, mutable dictionary.
//
// Per decoder layer (x (T, C), positions restart at 0 in each packed sample, attention only within a sample):
//     n1 = rms(x)·w_in           q|k|v = n1·W_{q|k|v}ᵀ + b     q, k ← RoPE(q, k)
//     o = attn(q, k, v) per sample, causal        x1 = x + o·W_oᵀ
//     n2 = rms(x1)·w_post        a = silu(n2·W_gᵀ) ∘ (n2·W_uᵀ)     x2 = x1 + a·W_dᵀ
// and backward in the reverse order: dW = dyᵀ·input for every product, RMSNorm, SwiGLU, RoPE and the attention
// backward from chapter 12's kernels (the attention one recomputes P block by block from the forward's lse).
// Loss: Σ over supervised positions of cross-entropy(logits_t, label_t) ÷ their count, through chapter 12's fused
// linear + cross-entropy (the (T, V) logits are never held). The LM head's gradient and the embedding rows'
// gradients add up in one tensor when the head is tied.
// Vision (when the step has tiles and vision or connector learns): patch conv (im2col · Wᵀ) + positions, SigLIP
// layers (LayerNorm, bidirectional attention per tile, GELU-tanh MLP), post-LayerNorm (select_layer −1), pixel
// shuffle (a permutation, whose backward is the inverse one), mlp1 (LayerNorm, Linear, exact GELU, Linear); the
// visual tokens' gradient is the spliced rows' gradient.
// What is kept for backward (the memory ledger): per decoder layer x, n1, q|k|v as one product (q and k rotated),
// the attention output o and its lse (H·T), x1, n2, gate, up and their product; per vision layer the same set with
// LayerNorm's x̂ and rstd. The attention probabilities are never kept: the backward recomputes them from the lse.
// q_proj, k_proj and v_proj run as one product on their stacked weights (and so do their gradients).
// Threads: sgemm's own, and `TrainingModel.threads` for the rest — attention shared out over the packed samples
// (decoder) or the tiles (tower), LayerNorm and the vision GELU split by rows.
// What it is not (yet): activation recomputation (checkpointing), mixed precision.
import Connector
import Dispatch
import Eagle
import FusedKernels
import PatchEmbed
import Qwen2
import QwenAttention
import SafeTensors
import SigLIP2
import Tensor

/// One training step's batch, fully resolved: ids (T) with samples packed back to back, `positions` restarting at
/// 0 in each sample, `boundaries` = [0, t1, …, T] (cu_seqlens), `labels` aligned (labels[t] is the token to predict
/// at t, −100 where nothing is supervised), and the tiles of every sample in order.
public struct PackedBatch: Sendable {
    public var ids: [Int]
    public var positions: [Int]
    public var boundaries: [Int]
    public var labels: [Int]
    public var pixelValues: Tensor?

    public init(ids: [Int], positions: [Int], boundaries: [Int], labels: [Int], pixelValues: Tensor? = nil) {
        self.ids = ids; self.positions = positions; self.boundaries = boundaries; self.labels = labels
        self.pixelValues = pixelValues
    }

    /// Supervised positions.
    public var supervised: Int { labels.filter { $0 != PackedBatch.ignore }.count }
    public static let ignore = -100
    var segments: [Range<Int>] { zip(boundaries, boundaries.dropFirst()).map { $0..<$1 } }
}

/// Which parts learn (`eaglet train --train vision,connector,language`); frozen parts get no gradient work.
public struct TrainableParts: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let vision = TrainableParts(rawValue: 1)
    public static let connector = TrainableParts(rawValue: 2)
    public static let language = TrainableParts(rawValue: 4)
    public static let all: TrainableParts = [.vision, .connector, .language]
}

/// The model as training holds it: every parameter of `EagleParameters` in fp32, by checkpoint key.
public struct TrainingModel: Sendable {
    public let config: EagleConfig
    public let parameters: EagleParameters
    public var values: [String: Tensor]
    /// The checkpoint folder it was read from.
    public let directory: String
    /// Threads for the step's own loops — attention over the packed samples or tiles, LayerNorm, GELU — beside
    /// sgemm's (OpenBLAS's default, the core count, unless set). 1 runs every loop on the calling thread.
    public var threads: Int = BLAS.defaultThreads
    /// Attention holds a segment's whole (n, n) score block when every segment of the step has at most this many
    /// rows (`SegmentAttention`); otherwise the step's attention runs through the blockwise kernels. 0: always
    /// blockwise (the reference path).
    public var wholeSegmentRows: Int = SegmentAttention.maxRows

    /// Reads every declared parameter (widened to fp32) from a checkpoint folder.
    public init(directory: String) throws {
        let config = try EagleConfig.load(directory: directory)
        let store = try WeightStore(path: directory, format: .f32)
        try EagleWeights.check(store, config: config)
        let p = EagleParameters(config, visionPrefix: EagleWeights.visionPrefix(store))
        var values = [String: Tensor]()
        for spec in p.specs { values[spec.key] = try store.read(spec) }
        self.config = config; parameters = p; self.values = values; self.directory = directory
    }

    public subscript(_ spec: ParameterSpec) -> Tensor { values[spec.key]! }
    public subscript(optional spec: ParameterSpec?) -> Tensor? { spec.map { values[$0.key]! } }

    /// The LM head's spec: its own, or the embedding's when tied.
    var headSpec: ParameterSpec { parameters.languageModel.lmHead ?? parameters.languageModel.embedTokens }
}

/// Gradients by checkpoint key; a parameter that got none this step is absent (AdamW leaves it alone).
public typealias Gradients = [String: Tensor]

extension Gradients {
    mutating func accumulate(_ spec: ParameterSpec?, _ g: Tensor?) {
        guard let spec, let g else { return }
        if self[spec.key] == nil { self[spec.key] = g } else { self[spec.key]!.add(g) }
    }
}

/// What attention keeps for its backward besides its input (the fused qkv) and its output o.
enum AttentionKept {
    /// Every segment held whole (`SegmentAttention`): the lse of each row and head, (T, H) row-major.
    case rows(lse: [Float])
    /// A segment longer than `wholeRows`: the blockwise kernels' head-major (out, lse) per segment.
    case blocks([(out: Tensor, lse: Tensor)])

    var floats: Int {
        switch self {
        case let .rows(lse): lse.count
        case let .blocks(b): b.map { $0.out.count + $0.lse.count }.reduce(0, +)
        }
    }
}

/// Attention within each row range (segment) — the packed samples of the decoder (causal) or the tiles of the tower
/// (bidirectional) — reading q, k, v from one fused token-major qkv (T, (H + 2·Hkv)·D), q's H heads, then k's Hkv,
/// then v's: the output o (T, H·D) and what the backward needs. Segments of at most `wholeRows` rows
/// are computed in place; otherwise every segment goes through the blockwise kernels (the reference path) on
/// head-major copies.
func attendSegments(
    qkv: Tensor, segments: [Range<Int>], heads H: Int, kvHeads Hkv: Int, headDim D: Int, causal: Bool, threads: Int,
    wholeRows: Int
) -> (Tensor, AttentionKept) {
    let T = qkv.shape[0], W = (H + 2 * Hkv) * D
    var o = Tensor(shape: [T, H * D])
    guard T > 0 else { return (o, .rows(lse: [])) }
    if segments.allSatisfy({ $0.count <= wholeRows }) {
        var lse = [Float](repeating: 0, count: T * H)
        qkv.storage.withUnsafeBufferPointer { QKV in
            o.withUnsafeMutableStorage { O in
                lse.withUnsafeMutableBufferPointer { L in
                    let r = Rows(base: UnsafeMutablePointer(mutating: QKV.baseAddress!), stride: W)
                    SegmentAttention.forward(
                        q: r, k: r.columns(from: H * D), v: r.columns(from: (H + Hkv) * D),
                        out: Rows(base: O.baseAddress!, stride: H * D), lse: L.baseAddress!, segments: segments,
                        heads: H, kvHeads: Hkv, headDim: D, causal: causal, threads: threads)
                }
            }
        }
        return (o, .rows(lse: lse))
    }
    let q = columnBlock(qkv, from: 0, width: H * D), k = columnBlock(qkv, from: H * D, width: Hkv * D)
    let v = columnBlock(qkv, from: (H + Hkv) * D, width: Hkv * D)
    var kept = [(out: Tensor, lse: Tensor)?](repeating: nil, count: segments.count)
    o.withUnsafeMutableStorage { Ob in
        kept.withUnsafeMutableBufferPointer { Kb in
            let O = Ob.baseAddress!, K = Kb.baseAddress!
            SegmentAttention.forEachSegment(segments, threads: threads) { i, _ in
                let seg = segments[i]
                let r = blockwiseAttention(
                    q: headMajor(q, rows: seg, heads: H, headDim: D),
                    k: headMajor(k, rows: seg, heads: Hkv, headDim: D),
                    v: headMajor(v, rows: seg, heads: Hkv, headDim: D), causal: causal)
                scatterTokenMajor(r.out, into: O, width: H * D, rows: seg)
                K[i] = r
            }
        }
    }
    return (o, .blocks(kept.map { $0! }))
}

/// The backward of `attendSegments`: the fused dqkv (T, (H + 2·Hkv)·D) from the output's gradient dO (T, H·D).
func attendSegmentsBackward(
    _ dO: Tensor, qkv: Tensor, o: Tensor, kept: AttentionKept, segments: [Range<Int>], heads H: Int, kvHeads Hkv: Int,
    headDim D: Int, causal: Bool, threads: Int
) -> Tensor {
    let T = qkv.shape[0], W = (H + 2 * Hkv) * D
    var dqkv = Tensor(shape: [T, W])
    guard T > 0 else { return dqkv }
    switch kept {
    case let .rows(lse):
        withPointers(qkv, o, dO) { QKV, O, DO in
            dqkv.withUnsafeMutableStorage { G in
                lse.withUnsafeBufferPointer { L in
                    let r = Rows(base: UnsafeMutablePointer(mutating: QKV), stride: W)
                    let g = Rows(base: G.baseAddress!, stride: W)
                    SegmentAttention.backward(
                        dOut: Rows(base: UnsafeMutablePointer(mutating: DO), stride: H * D), q: r,
                        k: r.columns(from: H * D), v: r.columns(from: (H + Hkv) * D),
                        out: Rows(base: UnsafeMutablePointer(mutating: O), stride: H * D), lse: L.baseAddress!,
                        dq: g, dk: g.columns(from: H * D), dv: g.columns(from: (H + Hkv) * D), segments: segments,
                        heads: H, kvHeads: Hkv, headDim: D, causal: causal, threads: threads)
                }
            }
        }
    case let .blocks(blocks):
        let q = columnBlock(qkv, from: 0, width: H * D), k = columnBlock(qkv, from: H * D, width: Hkv * D)
        let v = columnBlock(qkv, from: (H + Hkv) * D, width: Hkv * D)
        dqkv.withUnsafeMutableStorage { G in
            let g = G.baseAddress!
            SegmentAttention.forEachSegment(segments, threads: threads) { i, _ in
                let seg = segments[i]
                let r = blockwiseAttentionBackward(
                    q: headMajor(q, rows: seg, heads: H, headDim: D),
                    k: headMajor(k, rows: seg, heads: Hkv, headDim: D),
                    v: headMajor(v, rows: seg, heads: Hkv, headDim: D), out: blocks[i].out, lse: blocks[i].lse,
                    dOut: headMajor(dO, rows: seg, heads: H, headDim: D), causal: causal)
                scatterTokenMajor(r.dq, into: g, width: W, rows: seg)
                scatterTokenMajor(r.dk, into: g + H * D, width: W, rows: seg)
                scatterTokenMajor(r.dv, into: g + (H + Hkv) * D, width: W, rows: seg)
            }
        }
    }
    return dqkv
}

/// q_proj, k_proj and v_proj as one product: their weights stacked by rows ((H + 2·Hkv)·D, C) and their biases
/// likewise (zeros for a projection without one; nil when none has one).
func stackedProjections(_ w: [Tensor], _ b: [Tensor?]) -> (Tensor, Tensor?) {
    let weight = Tensor.concatenate(w, dim: 0)
    guard b.contains(where: { $0 != nil }) else { return (weight, nil) }
    return (weight, Tensor.concatenate(zip(w, b).map { $1 ?? Tensor(shape: [$0.shape[0]]) }, dim: 0))
}

// MARK: - decoder

struct DecoderTape {
    var x: Tensor, n1: Tensor, rstd1: Tensor
    var qkv: Tensor // (T, (H + 2·Hkv)·D), q and k rotated
    var attn: AttentionKept
    var o: Tensor, x1: Tensor, n2: Tensor, rstd2: Tensor
    var gate: Tensor, up: Tensor, act: Tensor
}

extension TrainingModel {
    /// The layer's q_proj, k_proj, v_proj stacked (`stackedProjections`).
    func qkvProjection(_ q: LinearParameters, _ k: LinearParameters, _ v: LinearParameters) -> (Tensor, Tensor?) {
        stackedProjections(
            [self[q.weight], self[k.weight], self[v.weight]],
            [self[optional: q.bias], self[optional: k.bias], self[optional: v.bias]])
    }

    /// Splits the stacked projection's gradients back into q_proj's, k_proj's and v_proj's.
    func accumulateQKV(
        _ r: (dx: Tensor?, dw: Tensor?, db: Tensor?), _ projections: [LinearParameters], grads: inout Gradients
    ) {
        var row = 0
        for p in projections {
            let n = self[p.weight].shape[0]
            if let dw = r.dw { grads.accumulate(p.weight, rowBlock(dw, row..<(row + n))) }
            if let db = r.db, p.bias != nil { grads.accumulate(p.bias, rowBlock(db, row..<(row + n))) }
            row += n
        }
    }

    func decoderLayerForward(
        _ x: Tensor, layer l: Qwen2LayerParameters, cos: Tensor, sin: Tensor, segments: [Range<Int>]
    ) -> (Tensor, DecoderTape) {
        let c = config.text, (H, Hkv, D) = (c.numAttentionHeads, c.numKeyValueHeads, c.headDim)
        let (n1, rstd1) = rmsNormFused(x, weight: self[l.inputLayernorm.weight], eps: c.rmsNormEps)
        let (wqkv, bqkv) = qkvProjection(l.qProj, l.kProj, l.vProj)
        var qkv = linearForward(n1, wqkv, bqkv, threads: threads)
        qkv.withUnsafeMutableStorage { QKV in // q's heads then k's: H + Hkv blocks of D at the start of each row
            ropeRows(QKV.baseAddress!, rowStride: (H + 2 * Hkv) * D, heads: H + Hkv, cos: cos, sin: sin, sign: 1)
        }
        let (o, attn) = attendSegments(
            qkv: qkv, segments: segments, heads: H, kvHeads: Hkv, headDim: D, causal: true, threads: threads,
            wholeRows: wholeSegmentRows)
        var x1 = linearForward(o, self[l.oProj.weight], nil, threads: threads) // + x below: no copy of x
        x1.add(x, threads: threads)
        let (n2, rstd2) = rmsNormFused(x1, weight: self[l.postAttentionLayernorm.weight], eps: c.rmsNormEps)
        let gate = linearForward(n2, self[l.gateProj.weight], nil, threads: threads),
            up = linearForward(n2, self[l.upProj.weight], nil, threads: threads)
        let act = swigluFused(gate: gate, up: up, threads: threads)
        var x2 = linearForward(act, self[l.downProj.weight], nil, threads: threads)
        x2.add(x1, threads: threads)
        return (
            x2,
            DecoderTape(
                x: x, n1: n1, rstd1: rstd1, qkv: qkv, attn: attn, o: o, x1: x1, n2: n2, rstd2: rstd2, gate: gate,
                up: up, act: act)
        )
    }

    /// dx from dx2, adding the layer's weight gradients into `grads` when `weights`. Takes the tape (its gate and up
    /// become dgate and dup in place).
    func decoderLayerBackward(
        _ dx2: consuming Tensor, tape t: consuming DecoderTape, layer l: Qwen2LayerParameters, cos: Tensor, sin: Tensor,
        segments: [Range<Int>], weights: Bool, grads: inout Gradients
    ) -> Tensor {
        let c = config.text, (H, Hkv, D) = (c.numAttentionHeads, c.numKeyValueHeads, c.headDim)
        // MLP: x2 = x1 + down(swiglu(gate(n2), up(n2)))
        let down = linearBackward(
            dx2, x: t.act, w: self[l.downProj.weight], bias: false, weights: weights, threads: threads)
        grads.accumulate(weights ? l.downProj.weight : nil, down.dw)
        var dGate = Tensor(shape: [0]), dUp = Tensor(shape: [0])
        swap(&dGate, &t.gate); swap(&dUp, &t.up) // moved out of the tape, not copied
        swigluBackwardFused(dOut: down.dx!, gate: &dGate, up: &dUp, threads: threads)
        var g = linearBackward(
            dGate, x: t.n2, w: self[l.gateProj.weight], bias: false, weights: weights, threads: threads)
        let u = linearBackward(dUp, x: t.n2, w: self[l.upProj.weight], bias: false, weights: weights, threads: threads)
        grads.accumulate(weights ? l.gateProj.weight : nil, g.dw)
        grads.accumulate(weights ? l.upProj.weight : nil, u.dw)
        var dn2 = g.dx.take()!
        dn2.add(u.dx!, threads: threads)
        let post = rmsNormBackwardFused(
            dy: dn2, x: t.x1, weight: self[l.postAttentionLayernorm.weight], rstd: t.rstd2)
        if weights { grads.accumulate(l.postAttentionLayernorm.weight, post.dweight) }
        var dx1 = dx2
        dx1.add(post.dx, threads: threads)
        // Attention: x1 = x + o_proj(attn(rope(q), rope(k), v)), q|k|v = n1·W_qkvᵀ + b
        let op = linearBackward(dx1, x: t.o, w: self[l.oProj.weight], bias: false, weights: weights, threads: threads)
        grads.accumulate(weights ? l.oProj.weight : nil, op.dw)
        var dqkv = attendSegmentsBackward(
            op.dx!, qkv: t.qkv, o: t.o, kept: t.attn, segments: segments, heads: H, kvHeads: Hkv, headDim: D,
            causal: true, threads: threads)
        dqkv.withUnsafeMutableStorage { G in
            ropeRows(G.baseAddress!, rowStride: (H + 2 * Hkv) * D, heads: H + Hkv, cos: cos, sin: sin, sign: -1)
        }
        let (wqkv, _) = qkvProjection(l.qProj, l.kProj, l.vProj)
        let qkvb = linearBackward(dqkv, x: t.n1, w: wqkv, bias: true, weights: weights, threads: threads)
        if weights { accumulateQKV(qkvb, [l.qProj, l.kProj, l.vProj], grads: &grads) }
        let pre = rmsNormBackwardFused(dy: qkvb.dx!, x: t.x, weight: self[l.inputLayernorm.weight], rstd: t.rstd1)
        if weights { grads.accumulate(l.inputLayernorm.weight, pre.dweight) }
        dx1.add(pre.dx, threads: threads)
        return dx1
    }
}

// MARK: - vision

struct VisionLayerTape {
    var x: Tensor, ln1: LayerNormTape, h1: Tensor
    var qkv: Tensor // (N·P, 3C)
    var attn: AttentionKept
    var o: Tensor, x1: Tensor, ln2: LayerNormTape, h2: Tensor, f1: Tensor, a: Tensor
}

struct VisionTape {
    var patches: Tensor // im2col of every tile, (N·P, 3·p·p)
    var layers: [VisionLayerTape]
    var post: LayerNormTape?
    var shuffledLN: LayerNormTape, shuffledNormed: Tensor, m1: Tensor, m1a: Tensor
    var tiles: Int
}

extension TrainingModel {
    /// Visual tokens (N·P/4, C) of `pixels` (N, 3, S, S), with the tape for `visionBackward`.
    func visionForward(_ pixels: Tensor) -> (Tensor, VisionTape) {
        let vc = config.vision, vp = parameters.visionModel, mp = parameters.mlp1
        let n = pixels.shape[0], C = vc.hiddenSize, H = vc.numAttentionHeads, D = C / H
        let conv = PatchConv2d(weight: self[vp.patchEmbedding], bias: self[vp.patchEmbeddingBias])
        let patches = Tensor.concatenate((0..<n).map { conv.im2col(pixels.row($0)) }, dim: 0)
        let P = patches.shape[0] / n
        var x = linearForward(
            patches, self[vp.patchEmbedding].reshaped([C, -1]), self[vp.patchEmbeddingBias], threads: threads)
        let pos = self[vp.positionEmbedding]
        x.addToEveryBlock(pos)
        let depth =
            config.selectLayer == -1
            ? vc.numHiddenLayers : (config.selectLayer + vc.numHiddenLayers + 1) % (vc.numHiddenLayers + 1)
        var layers = [VisionLayerTape]()
        let tiles = (0..<n).map { ($0 * P)..<(($0 + 1) * P) }
        for l in vp.layers.prefix(depth) {
            let (h1, ln1) = layerNormForward(
                x, weight: self[l.layerNorm1.weight], bias: self[l.layerNorm1.bias!], eps: vc.layerNormEps,
                threads: threads)
            let (wqkv, bqkv) = qkvProjection(l.qProj, l.kProj, l.vProj)
            let qkv = linearForward(h1, wqkv, bqkv, threads: threads)
            let (o, attn) = attendSegments(
                qkv: qkv, segments: tiles, heads: H, kvHeads: H, headDim: D, causal: false, threads: threads,
                wholeRows: wholeSegmentRows)
            var x1 = linearForward(o, self[l.outProj.weight], self[optional: l.outProj.bias], threads: threads)
            x1.add(x, threads: threads)
            let (h2, ln2) = layerNormForward(
                x1, weight: self[l.layerNorm2.weight], bias: self[l.layerNorm2.bias!], eps: vc.layerNormEps,
                threads: threads)
            let f1 = linearForward(h2, self[l.fc1.weight], self[optional: l.fc1.bias], threads: threads)
            let a = mapElements(f1, GeluTanh.self, grain: 1 << 14, threads: threads)
            var x2 = linearForward(a, self[l.fc2.weight], self[optional: l.fc2.bias], threads: threads)
            x2.add(x1, threads: threads)
            layers.append(
                VisionLayerTape(
                    x: x, ln1: ln1, h1: h1, qkv: qkv, attn: attn, o: o, x1: x1, ln2: ln2, h2: h2, f1: f1,
                    a: a))
            x = x2
        }
        var post: LayerNormTape? = nil
        if config.selectLayer == -1 {
            let (y, t) = layerNormForward(
                x, weight: self[vp.postLayernorm.weight], bias: self[vp.postLayernorm.bias!], eps: vc.layerNormEps,
                threads: threads)
            x = y; post = t
        }
        let shuffled = try! pixelShuffle(x.reshaped([n, P, C])).reshaped([n * P / 4, 4 * C])
        let (sn, sln) = layerNormForward(
            shuffled, weight: self[mp.norm.weight], bias: self[mp.norm.bias!], eps: 1e-5, threads: threads)
        let m1 = linearForward(sn, self[mp.fc1.weight], self[optional: mp.fc1.bias], threads: threads)
        let m1a = mapElements(m1, GeluErf.self, grain: 1 << 12, threads: threads)
        let visual = linearForward(m1a, self[mp.fc2.weight], self[optional: mp.fc2.bias], threads: threads)
        return (
            visual,
            VisionTape(
                patches: patches, layers: layers, post: post, shuffledLN: sln, shuffledNormed: sn, m1: m1, m1a: m1a,
                tiles: n)
        )
    }

    /// From the visual tokens' gradient: mlp1's gradients (when the connector learns) and the tower's (when vision
    /// learns).
    func visionBackward(_ dVisual: Tensor, tape: VisionTape, train: TrainableParts, grads: inout Gradients) {
        let vc = config.vision, vp = parameters.visionModel, mp = parameters.mlp1
        let n = tape.tiles, C = vc.hiddenSize, H = vc.numAttentionHeads, D = C / H
        let conn = train.contains(.connector), vis = train.contains(.vision)
        var f2 = linearBackward(
            dVisual, x: tape.m1a, w: self[mp.fc2.weight], bias: true, weights: conn, threads: threads)
        grads.accumulate(conn ? mp.fc2.weight : nil, f2.dw); grads.accumulate(conn ? mp.fc2.bias : nil, f2.db)
        var dm1 = f2.dx.take()!
        scaleElements(&dm1, by: tape.m1, GeluErfGrad.self, grain: 1 << 12, threads: threads)
        let f1 = linearBackward(
            dm1, x: tape.shuffledNormed, w: self[mp.fc1.weight], bias: true, weights: conn, input: vis, threads: threads
        )
        grads.accumulate(conn ? mp.fc1.weight : nil, f1.dw); grads.accumulate(conn ? mp.fc1.bias : nil, f1.db)
        guard vis else { return }
        let ln = layerNormBackward(f1.dx!, tape: tape.shuffledLN, weight: self[mp.norm.weight], threads: threads)
        if conn { grads.accumulate(mp.norm.weight, ln.dw); grads.accumulate(mp.norm.bias, ln.db) }
        var dx = pixelShuffleBackward(
            ln.dx, tiles: n, rows: config.patchesPerSide, columns: config.patchesPerSide, channels: C)
        if let post = tape.post {
            let b = layerNormBackward(dx, tape: post, weight: self[vp.postLayernorm.weight], threads: threads)
            grads.accumulate(vp.postLayernorm.weight, b.dw); grads.accumulate(vp.postLayernorm.bias, b.db)
            dx = b.dx
        }
        let P = tape.patches.shape[0] / n
        let tiles = (0..<n).map { ($0 * P)..<(($0 + 1) * P) }
        for (l, t) in zip(vp.layers.prefix(tape.layers.count), tape.layers).reversed() {
            var f2 = linearBackward(dx, x: t.a, w: self[l.fc2.weight], bias: true, threads: threads)
            grads.accumulate(l.fc2.weight, f2.dw); grads.accumulate(l.fc2.bias, f2.db)
            var df1 = f2.dx.take()! // moved out, not copied: the GELU backward scales it in place
            scaleElements(&df1, by: t.f1, GeluTanhGrad.self, grain: 1 << 14, threads: threads)
            let f1 = linearBackward(df1, x: t.h2, w: self[l.fc1.weight], bias: true, threads: threads)
            grads.accumulate(l.fc1.weight, f1.dw); grads.accumulate(l.fc1.bias, f1.db)
            let ln2 = layerNormBackward(f1.dx!, tape: t.ln2, weight: self[l.layerNorm2.weight], threads: threads)
            grads.accumulate(l.layerNorm2.weight, ln2.dw); grads.accumulate(l.layerNorm2.bias, ln2.db)
            dx.add(ln2.dx, threads: threads) // dx1 = dx + ln2's, in dx's buffer
            let op = linearBackward(dx, x: t.o, w: self[l.outProj.weight], bias: true, threads: threads)
            grads.accumulate(l.outProj.weight, op.dw); grads.accumulate(l.outProj.bias, op.db)
            let dqkv = attendSegmentsBackward(
                op.dx!, qkv: t.qkv, o: t.o, kept: t.attn, segments: tiles, heads: H, kvHeads: H, headDim: D,
                causal: false, threads: threads)
            let (wqkv, _) = qkvProjection(l.qProj, l.kProj, l.vProj)
            let qkvb = linearBackward(dqkv, x: t.h1, w: wqkv, bias: true, threads: threads)
            accumulateQKV(qkvb, [l.qProj, l.kProj, l.vProj], grads: &grads)
            let dh1 = qkvb.dx!
            let ln1 = layerNormBackward(dh1, tape: t.ln1, weight: self[l.layerNorm1.weight], threads: threads)
            grads.accumulate(l.layerNorm1.weight, ln1.dw); grads.accumulate(l.layerNorm1.bias, ln1.db)
            dx.add(ln1.dx, threads: threads)
        }
        // Embeddings: x0 = im2col(pixels)·W_patchᵀ + b + position table (the same table for every tile).
        grads.accumulate(vp.positionEmbedding, dx.sumOfBlocks(shaped: self[vp.positionEmbedding].shape))
        grads.accumulate(
            vp.patchEmbedding,
            mm(dx, tape.patches, transA: true, threads: threads).reshaped(self[vp.patchEmbedding].shape))
        grads.accumulate(vp.patchEmbeddingBias, columnSums(dx, threads: threads))
    }
}

// MARK: - the whole step

/// The loss of `batch` and the gradient of every parameter of the parts in `train`.
public struct StepResult: Sendable {
    public var loss: Float
    public var supervised: Int
    public var gradients: Gradients
    /// Bytes the forward kept for the backward (every tape tensor: the memory ledger of the step).
    public var keptBytes: Int = 0
}

extension DecoderTape {
    var bytes: Int {
        4
            * ([x, n1, rstd1, qkv, o, x1, n2, rstd2, gate, up, act].map(\.count).reduce(0, +) + attn.floats)
    }
}

extension VisionTape {
    var bytes: Int {
        var n =
            patches.count + shuffledLN.xhat.count + shuffledLN.rstd.count + shuffledNormed.count + m1.count + m1a.count
        n += (post?.xhat.count ?? 0) + (post?.rstd.count ?? 0)
        for t in layers {
            n += [t.x, t.ln1.xhat, t.h1, t.qkv, t.o, t.x1, t.ln2.xhat, t.h2, t.f1, t.a].map(\.count).reduce(0, +)
            n += t.ln1.rstd.count + t.ln2.rstd.count + t.attn.floats
        }
        return 4 * n
    }
}

extension TrainingModel {
    /// Forward and backward of one packed step (see the file's header for the formulas).
    public func lossAndGradients(_ batch: PackedBatch, train: TrainableParts = .all) -> StepResult {
        let tc = config.text, lp = parameters.languageModel
        let T = batch.ids.count, C = tc.hiddenSize
        let wantVisual = !train.isDisjoint(with: [.vision, .connector])
        var grads = Gradients()
        // Vision and the splice.
        var visual: (Tensor, VisionTape)? = nil
        if let pv = batch.pixelValues, pv.shape.first ?? 0 > 0 { visual = visionForward(pv) }
        let embed = self[lp.embedTokens]
        var x = Tensor(shape: [T, C])
        var imageRows = [Int]()
        x.withUnsafeMutableStorage { X in
            embed.storage.withUnsafeBufferPointer { E in
                for (t, id) in batch.ids.enumerated() {
                    if id == config.imageTokenIndex, visual != nil { imageRows.append(t); continue }
                    (X.baseAddress! + t * C).update(from: E.baseAddress! + id * C, count: C)
                }
            }
        }
        if let (v, _) = visual {
            precondition(
                v.shape[0] == imageRows.count, "\(imageRows.count) <IMG_CONTEXT> tokens for \(v.shape[0]) visual tokens"
            )
            x.withUnsafeMutableStorage { X in
                for (k, t) in imageRows.enumerated() { for j in 0..<C { X[t * C + j] = v.storage[k * C + j] } }
            }
        }
        // Decoder.
        let rope = RotaryEmbedding(headDim: tc.headDim, theta: tc.ropeTheta)
        let (cos, sin) = rope.cosSin(positions: batch.positions)
        let segments = batch.segments
        var tapes = [DecoderTape]()
        for l in lp.layers {
            let (y, tape) = decoderLayerForward(x, layer: l, cos: cos, sin: sin, segments: segments)
            tapes.append(tape); x = y
        }
        let (h, rstd) = rmsNormFused(x, weight: self[lp.norm.weight], eps: tc.rmsNormEps)
        let lce = linearCrossEntropyFused(hidden: h, weight: self[headSpec], labels: batch.labels)
        let kept = tapes.map(\.bytes).reduce(0, +) + (visual?.1.bytes ?? 0) + 4 * (x.count + rstd.count)
        let language = train.contains(.language)
        if language { grads.accumulate(headSpec, lce.gradWeight) }
        let needInput = language || (wantVisual && visual != nil)
        guard needInput else {
            return StepResult(loss: lce.loss, supervised: batch.supervised, gradients: grads, keptBytes: kept)
        }
        let fin = rmsNormBackwardFused(dy: lce.gradInput, x: x, weight: self[lp.norm.weight], rstd: rstd)
        if language { grads.accumulate(lp.norm.weight, fin.dweight) }
        var dx = fin.dx
        for l in lp.layers.reversed() {
            dx = decoderLayerBackward(
                dx, tape: tapes.removeLast(), layer: l, cos: cos, sin: sin, segments: segments, weights: language,
                grads: &grads)
        }
        // Embedding rows (not the spliced ones) and the visual tokens.
        if language {
            var dE = Tensor(shape: embed.shape)
            dE.withUnsafeMutableStorage { G in
                dx.storage.withUnsafeBufferPointer { D in
                    let spliced = Set(imageRows)
                    for (t, id) in batch.ids.enumerated() where !spliced.contains(t) {
                        for j in 0..<C { G[id * C + j] += D[t * C + j] }
                    }
                }
            }
            grads.accumulate(lp.embedTokens, dE)
        }
        if let (_, vt) = visual, wantVisual {
            let dv = Tensor(shape: [imageRows.count, C]) { G in
                dx.storage.withUnsafeBufferPointer { D in
                    for (k, t) in imageRows.enumerated() {
                        (G.baseAddress! + k * C).initialize(from: D.baseAddress! + t * C, count: C)
                    }
                }
            }
            visionBackward(dv, tape: vt, train: train, grads: &grads)
        }
        return StepResult(loss: lce.loss, supervised: batch.supervised, gradients: grads, keptBytes: kept)
    }
}
