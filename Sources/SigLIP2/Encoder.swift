// SigLIP2: the vision encoder blocks of Eagle 2.5 (docs/spec.md §3.3 and §3.4).
//
// What it is: transformers' `modeling_siglip.py` vision side, one struct per module with the same names in
// camelCase (`SiglipAttention` with qProj/kProj/vProj/outProj for q_proj/k_proj/v_proj/out_proj, `SiglipMLP`
// with fc1/fc2, `SiglipEncoderLayer` with layerNorm1/layerNorm2, `postLayernorm`), so a reader can diff them;
// the checkpoint keys themselves are spelled once, in Weights.swift. Shapes per tile: T tokens
// (1024 for a 448 px tile at patch 14), width C (1152), H heads (16) of D = C / H (72), MLP width 4304.
// Each module has a `naive` path written with whole-tensor ops (per-head copies, full (H, T, T) scores,
// libm exp and tanh) — what `Compute.reference` runs — and a fast path that works on one (T, 3C) q|k|v buffer with
// strided sgemm — no per-head copies — vectorised softmax and gelu, and residual adds folded into the
// sgemm's beta = 1. Both are tested against transformers and against each other.
// Threading of the fast path: with N = compute.threads > 1 the modules split the work themselves — rows
// for the projections, the MLP and LayerNorm, heads for scores/softmax/p·v — and hold OpenBLAS to one
// thread meanwhile, so no OpenBLAS worker spins on a core that a softmax or gelu needs. OpenBLAS's thread
// count is process-wide: each call sets the count it needs before its products, so run one tower at a time.
// What it is not: the attention pooling head (`head.*`, unused by Eagle), dropout (inference only),
// attention masks (a tile has no padding; NaFlex callers pass only valid patches). Several tiles of one
// image (`callAsFunction(tiles:)`, transformers' batch) go through the whole stack one tile after another: a
// tile's activations (a few MB a layer) stay in cache that way, where 13 tiles stacked by rows sent every norm
// and add to memory and were 8 % slower on the So400m shape (docs/benchmarks.md, "13 tiles").
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import PatchEmbed
import Tensor

/// `nn.LayerNorm(C, eps)`: y = (x − μ)/√(σ² + eps) · weight + bias over the last dimension.
public struct LayerNorm: Sendable {
    public var weight: Tensor
    public var bias: Tensor
    public var eps: Float

    public init(weight: Tensor, bias: Tensor, eps: Float) {
        self.weight = weight; self.bias = bias; self.eps = eps
    }

    /// x (…, C) → (…, C), Tensor's LayerNorm (statistics in Double).
    public func naive(_ x: Tensor) -> Tensor { x.layerNorm(weight: weight, bias: bias, eps: eps) }

    /// x (…, C) → (…, C): `naive` on the reference path; on the fast path the same arithmetic (Double
    /// statistics) on raw rows, split over `compute.threads`.
    public func callAsFunction(_ x: Tensor, compute: Compute = .fast) -> Tensor {
        if compute.isReference { return naive(x) }
        let threads = compute.threads
        let c = weight.count
        precondition(x.shape.last == c, "LayerNorm: input \(x.shape) does not end in width \(c)")
        var out = x.storage
        let rows = x.count / max(c, 1)
        out.withUnsafeMutableBufferPointer { Y in
            weight.storage.withUnsafeBufferPointer { W in
                bias.storage.withUnsafeBufferPointer { B in
                    let yp = Y.baseAddress!, wp = W.baseAddress!, bp = B.baseAddress!
                    let e = Double(eps)
                    parallelRanges(rows, parts: threads) { range in
                        for r in range {
                            let row = yp + r * c
                            var mu = 0.0
                            for i in 0..<c { mu += Double(row[i]) }
                            mu /= Double(c)
                            var v = 0.0
                            for i in 0..<c { let dv = Double(row[i]) - mu; v += dv * dv }
                            let inv = 1 / (v / Double(c) + e).squareRoot()
                            for i in 0..<c { row[i] = Float((Double(row[i]) - mu) * inv) * wp[i] + bp[i] }
                        }
                    }
                }
            }
        }
        return Tensor(shape: x.shape, storage: out)
    }
}

/// `SiglipAttention`: bidirectional multi-head self-attention with biased projections.
///
///     q, k, v = x·W_qᵀ + b_q, x·W_kᵀ + b_k, x·W_vᵀ + b_v          (T, C) each, split into H heads of D
///     o_h     = softmax(q_h · k_hᵀ · D^(−½)) · v_h                  (T, T) scores, (T, D) per head
///     out     = concat_h(o_h) · W_oᵀ + b_o                          (T, C)
public struct SiglipAttention: Sendable {
    public var qProj: SiglipLinear
    public var kProj: SiglipLinear
    public var vProj: SiglipLinear
    public var outProj: SiglipLinear
    public var numHeads: Int

    public init(qProj: SiglipLinear, kProj: SiglipLinear, vProj: SiglipLinear, outProj: SiglipLinear, numHeads: Int) {
        let c = qProj.outFeatures
        precondition(c % numHeads == 0, "SiglipAttention: width \(c) is not divisible by \(numHeads) heads")
        for p in [qProj, kProj, vProj, outProj] {
            precondition(p.weight.shape == [c, c], "SiglipAttention: projection \(p.weight.shape) is not (\(c), \(c))")
        }
        self.qProj = qProj; self.kProj = kProj; self.vProj = vProj; self.outProj = outProj
        self.numHeads = numHeads
    }

    public var width: Int { qProj.outFeatures }
    public var headDim: Int { width / numHeads }
    /// D^(−½), transformers' `self.scale`.
    public var scale: Float { Float(1 / Double(headDim).squareRoot()) }

    /// Readable path: (T, C) → (T, H, D) → (H, T, D) copies, full (H, T, T) scores, softmax, back.
    public func naive(_ x: Tensor) -> Tensor {
        let t = x.shape[0], h = numHeads, d = headDim
        func heads(_ y: Tensor) -> Tensor { y.reshaped([t, h, d]).permuted([1, 0, 2]) } // (H, T, D)
        let q = heads(qProj(x)), k = heads(kProj(x)), v = heads(vProj(x))
        let scores = batchedMatmul(q, k, transposeB: true) * scale // (H, T, T)
        let probs = scores.softmaxLast()
        let o = batchedMatmul(probs, v) // (H, T, D)
        return outProj(o.permuted([1, 0, 2]).reshaped([t, h * d]))
    }

    /// Fast path: q|k|v written side by side into one (T, 3C) buffer by three sgemms (ldc = 3C); per
    /// head, scores = scale · q_h·k_hᵀ and o_h = p·v_h read q_h, k_h, v_h in place through the row
    /// stride 3C and write o_h straight into its D columns of the (T, C) result. Returns out_proj(o)
    /// plus `residual` if given (added by sgemm with beta = 1).
    ///
    /// Threads: with `threads` > 1, OpenBLAS is held to one thread and the work is split here instead —
    /// projections by rows, the score/softmax/p·v chain by heads, each thread with its own (T, T) score
    /// buffer — so softmax runs on a core next to an sgemm rather than against a spinning BLAS worker.
    /// The reference path is `naive` (plus `residual`).
    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil, compute: Compute = .fast) -> Tensor {
        precondition(x.rank == 2 && x.shape[1] == width, "SiglipAttention: input \(x.shape) is not (T, \(width))")
        if compute.isReference {
            let y = naive(x)
            return residual.map { $0 + y } ?? y
        }
        let threads = compute.threads
        let t = x.shape[0], c = width, d = headDim, heads = numHeads
        let parts = max(1, min(threads, t))
        let headParts = max(1, min(parts, heads))
        // Not zeroed: sgemm with β = 0 writes every element of all three before anything reads them.
        var qkv = [Float](unwrittenCount: t * 3 * c)
        var o = [Float](unwrittenCount: t * c)
        var scores = [Float](unwrittenCount: headParts * t * t)
        let alpha = scale
        let bias = qProj.bias.storage + kProj.bias.storage + vProj.bias.storage
        BLAS.use(threads: parts > 1 ? 1 : threads)
        x.storage.withUnsafeBufferPointer { X in
            qkv.withUnsafeMutableBufferPointer { QKV in
                bias.withUnsafeBufferPointer { B in
                    qProj.weight.storage.withUnsafeBufferPointer { Wq in
                        kProj.weight.storage.withUnsafeBufferPointer { Wk in
                            vProj.weight.storage.withUnsafeBufferPointer { Wv in
                                let xp = X.baseAddress!, qp = QKV.baseAddress!, bp = B.baseAddress!
                                let weights = [Wq.baseAddress!, Wk.baseAddress!, Wv.baseAddress!]
                                parallelRanges(t, parts: parts) { rows in
                                    guard !rows.isEmpty else { return }
                                    for (i, w) in weights.enumerated() {
                                        BLAS.sgemm(
                                            transB: true, m: rows.count, n: c, k: c, a: xp + rows.lowerBound * c,
                                            lda: c, b: w, ldb: c,
                                            c: qp + rows.lowerBound * 3 * c + i * c, ldc: 3 * c)
                                    }
                                    for r in rows {
                                        let row = qp + r * 3 * c; for j in 0..<(3 * c) { row[j] += bp[j] }
                                    }
                                }
                                o.withUnsafeMutableBufferPointer { O in
                                    scores.withUnsafeMutableBufferPointer { S in
                                        let op = O.baseAddress!, base = S.baseAddress!
                                        parallelRanges(headParts, parts: headParts) { part in
                                            for p in part {
                                                let sp = base + p * t * t
                                                for h in stride(from: p, to: heads, by: headParts) {
                                                    BLAS.sgemm(
                                                        transB: true, m: t, n: t, k: d, alpha: alpha,
                                                        a: qp + h * d, lda: 3 * c, b: qp + c + h * d, ldb: 3 * c,
                                                        c: sp, ldc: t)
                                                    for r in 0..<t { softmaxRow(sp + r * t, t) }
                                                    BLAS.sgemm(
                                                        m: t, n: d, k: t, a: sp, lda: t, b: qp + 2 * c + h * d,
                                                        ldb: 3 * c,
                                                        c: op + h * d, ldc: c)
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return projectAdd(Tensor(shape: [t, c], storage: o), outProj, residual: residual, threads: parts)
    }
}

/// y = x·Wᵀ + b (+ residual), the residual added by sgemm's beta = 1; rows split over `threads`
/// (OpenBLAS held to one thread while they run).
func projectAdd(_ x: Tensor, _ p: SiglipLinear, residual: Tensor?, threads: Int = 1) -> Tensor {
    let t = x.shape[0], n = p.outFeatures, k = p.inFeatures
    var out = residual?.storage ?? [Float](repeating: 0, count: t * n)
    precondition(out.count == t * n, "projectAdd: residual does not match (\(t), \(n))")
    let parts = max(1, min(threads, t))
    BLAS.use(threads: parts > 1 ? 1 : threads)
    x.storage.withUnsafeBufferPointer { X in
        p.weight.storage.withUnsafeBufferPointer { W in
            p.bias.storage.withUnsafeBufferPointer { B in
                out.withUnsafeMutableBufferPointer { Y in
                    let xp = X.baseAddress!, wp = W.baseAddress!, bp = B.baseAddress!, yp = Y.baseAddress!
                    parallelRanges(t, parts: parts) { rows in
                        guard !rows.isEmpty else { return }
                        BLAS.sgemm(
                            transB: true, m: rows.count, n: n, k: k, a: xp + rows.lowerBound * k, lda: k, b: wp,
                            ldb: k,
                            beta: residual == nil ? 0 : 1, c: yp + rows.lowerBound * n, ldc: n)
                        for r in rows { for j in 0..<n { yp[r * n + j] += bp[j] } }
                    }
                }
            }
        }
    }
    return Tensor(shape: [t, n], storage: out)
}

/// `SiglipMLP`: fc2(gelu_tanh(fc1(x))). (T, C) → (T, I) → (T, C).
public struct SiglipMLP: Sendable {
    public var fc1: SiglipLinear
    public var fc2: SiglipLinear

    public init(fc1: SiglipLinear, fc2: SiglipLinear) {
        precondition(
            fc1.outFeatures == fc2.inFeatures && fc1.inFeatures == fc2.outFeatures,
            "SiglipMLP: fc1 \(fc1.weight.shape) and fc2 \(fc2.weight.shape) do not chain")
        self.fc1 = fc1; self.fc2 = fc2
    }

    /// Readable path: sgemm, libm tanh, sgemm.
    public func naive(_ x: Tensor) -> Tensor { fc2(fc1(x).map(geluTanh)) }

    /// Fast path: fc1 by sgemm, bias + vectorised gelu fused in one pass, fc2 by sgemm with `residual`
    /// added through beta = 1. With `threads` > 1 each thread runs that whole chain on its own block of
    /// rows (OpenBLAS held to one thread): rows of an MLP are independent, so no thread waits for another.
    /// The reference path is `naive` (plus `residual`).
    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil, compute: Compute = .fast) -> Tensor {
        if compute.isReference { return residual.map { $0 + naive(x) } ?? naive(x) }
        let threads = compute.threads
        let t = x.shape[0], i = fc1.outFeatures, c = fc1.inFeatures
        precondition(x.rank == 2 && x.shape[1] == c, "SiglipMLP: input \(x.shape) is not (T, \(c))")
        var out = residual?.storage ?? [Float](repeating: 0, count: t * c)
        precondition(out.count == t * c, "SiglipMLP: residual does not match (\(t), \(c))")
        var hidden = [Float](unwrittenCount: t * i) // fc1's sgemm (β = 0) writes it all
        let parts = max(1, min(threads, t))
        BLAS.use(threads: parts > 1 ? 1 : threads)
        x.storage.withUnsafeBufferPointer { X in
            fc1.weight.storage.withUnsafeBufferPointer { W1 in
                fc1.bias.storage.withUnsafeBufferPointer { B1 in
                    fc2.weight.storage.withUnsafeBufferPointer { W2 in
                        fc2.bias.storage.withUnsafeBufferPointer { B2 in
                            hidden.withUnsafeMutableBufferPointer { Hh in
                                out.withUnsafeMutableBufferPointer { Y in
                                    let xp = X.baseAddress!, hp = Hh.baseAddress!, yp = Y.baseAddress!
                                    let b1 = B1.baseAddress!, b2 = B2.baseAddress!
                                    parallelRanges(t, parts: parts) { rows in
                                        guard !rows.isEmpty else { return }
                                        let r0 = rows.lowerBound
                                        BLAS.sgemm(
                                            transB: true, m: rows.count, n: i, k: c, a: xp + r0 * c, lda: c,
                                            b: W1.baseAddress!, ldb: c,
                                            c: hp + r0 * i, ldc: i)
                                        biasGeluRows(hp, rows: rows, cols: i, bias: b1)
                                        BLAS.sgemm(
                                            transB: true, m: rows.count, n: c, k: i, a: hp + r0 * i, lda: i,
                                            b: W2.baseAddress!, ldb: i,
                                            beta: residual == nil ? 0 : 1, c: yp + r0 * c, ldc: c)
                                        for r in rows { for j in 0..<c { yp[r * c + j] += b2[j] } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [t, c], storage: out)
    }
}

/// `SiglipEncoderLayer`, pre-norm with two residuals:
///     x = x + self_attn(layer_norm1(x))
///     x = x + mlp(layer_norm2(x))
public struct SiglipEncoderLayer: Sendable {
    public var layerNorm1: LayerNorm
    public var selfAttn: SiglipAttention
    public var layerNorm2: LayerNorm
    public var mlp: SiglipMLP

    public init(layerNorm1: LayerNorm, selfAttn: SiglipAttention, layerNorm2: LayerNorm, mlp: SiglipMLP) {
        self.layerNorm1 = layerNorm1; self.selfAttn = selfAttn; self.layerNorm2 = layerNorm2; self.mlp = mlp
    }

    /// (T, C) → (T, C) with the readable modules.
    public func naive(_ x: Tensor) -> Tensor {
        let h = x + selfAttn.naive(layerNorm1.naive(x))
        return h + mlp.naive(layerNorm2.naive(h))
    }

    /// (T, C) → (T, C): `naive` on the reference path; the fast modules, with residuals riding on the output
    /// projections, on the fast one.
    public func callAsFunction(_ x: Tensor, compute: Compute = .fast) -> Tensor {
        if compute.isReference { return naive(x) }
        let h = selfAttn(layerNorm1(x, compute: compute), residual: x, compute: compute)
        return mlp(layerNorm2(h, compute: compute), residual: h, compute: compute)
    }
}

/// Why a requested feature layer does not exist.
public enum SelectLayerError: Error, Equatable, CustomStringConvertible {
    case outOfRange(selectLayer: Int, layers: Int)
    public var description: String {
        switch self {
        case let .outOfRange(s, n):
            return
                "select_layer \(s) is out of range for a \(n)-layer vision tower (expected −1 for the post-LayerNorm output, 0…\(n) or −\(n + 1)…−2 for the residual stream)"
        }
    }
}

/// `SiglipVisionTransformer` without its pooling head: embeddings → layers → post_layernorm.
public struct SiglipVisionTransformer: Sendable {
    public var config: SiglipVisionConfig
    public var embeddings: SiglipVisionEmbeddings
    public var layers: [SiglipEncoderLayer]
    public var postLayernorm: LayerNorm

    public init(
        config: SiglipVisionConfig, embeddings: SiglipVisionEmbeddings, layers: [SiglipEncoderLayer],
        postLayernorm: LayerNorm
    ) {
        self.config = config; self.embeddings = embeddings; self.layers = layers; self.postLayernorm = postLayernorm
    }

    /// What one forward pass produced: `hiddenStates[0]` = embeddings, `hiddenStates[i]` = output of
    /// layer i (transformers' `hidden_states`), `lastHiddenState` = post_layernorm(hiddenStates[L]).
    public struct Output: Sendable {
        public var hiddenStates: [Tensor]
        public var lastHiddenState: Tensor
        public init(hiddenStates: [Tensor], lastHiddenState: Tensor) {
            self.hiddenStates = hiddenStates; self.lastHiddenState = lastHiddenState
        }
    }

    /// Runs the encoder stack on embeddings (T, C).
    public func encode(_ embeddings: Tensor, compute: Compute = .fast) -> Output {
        var states = [embeddings]
        var x = embeddings
        for layer in layers {
            x = layer(x, compute: compute)
            states.append(x)
        }
        return Output(hiddenStates: states, lastHiddenState: postLayernorm(x, compute: compute))
    }

    /// pixels (C_in, H_px, W_px) of one tile → every hidden state and the post-LN output.
    public func callAsFunction(_ pixels: Tensor, compute: Compute = .fast) -> Output {
        encode(embeddings(pixels, compute: compute), compute: compute)
    }

    /// N tiles of one image (each (C_in, H_px, W_px)), transformers' batch of N: every hidden state is (N·T, C),
    /// tile i's rows at i·T ..< (i+1)·T. Each tile goes through the whole stack alone (its activations stay in
    /// cache); its states are copied into the stacked ones as it finishes.
    public func callAsFunction(tiles pixels: [Tensor], compute: Compute = .fast) -> Output {
        precondition(!pixels.isEmpty, "SiglipVisionTransformer: no tiles")
        var states = [[Float]](), last = [Float]()
        var rows = 0, width = 0
        for (i, tile) in pixels.enumerated() {
            let out = self(tile, compute: compute)
            if i == 0 {
                rows = out.lastHiddenState.shape[0]; width = out.lastHiddenState.shape[1]
                states = out.hiddenStates.map { _ in [Float](unwrittenCount: pixels.count * rows * width) }
                last = [Float](unwrittenCount: pixels.count * rows * width)
            }
            let at = i * rows * width
            for (s, h) in out.hiddenStates.enumerated() {
                states[s].replaceSubrange(at..<at + rows * width, with: h.storage)
            }
            last.replaceSubrange(at..<at + rows * width, with: out.lastHiddenState.storage)
        }
        return Output(
            hiddenStates: states.map { Tensor(shape: [pixels.count * rows, width], storage: $0) },
            lastHiddenState: Tensor(shape: [pixels.count * rows, width], storage: last))
    }

    /// The `select_layer` features (as `features(_:selectLayer:)` takes them from a whole pass) of N tiles, each
    /// (C_in, H_px, W_px) → (N·T, C), tile i's rows at i·T ..< (i+1)·T. Each tile runs only the layers that
    /// feature needs and keeps no other hidden state — what Eagle's `extract_feature` asks of the tower
    /// (transformers keeps them all only with `output_hidden_states`).
    public func features(tiles pixels: [Tensor], selectLayer: Int, compute: Compute = .fast) throws -> Tensor {
        let depth = try Self.depth(selectLayer: selectLayer, layers: layers.count)
        var out = [Float](), rows = 0, width = 0
        for tile in pixels {
            var x = embeddings(tile, compute: compute)
            for layer in layers[..<depth] { x = layer(x, compute: compute) }
            if selectLayer == -1 { x = postLayernorm(x, compute: compute) }
            if out.isEmpty {
                rows = x.shape[0]; width = x.shape[1]
                out.reserveCapacity(pixels.count * rows * width)
            }
            out += x.storage
        }
        return Tensor(shape: [pixels.count * rows, width], storage: out)
    }

    /// The features Eagle takes (`extract_feature`): select_layer −1 → post-LN output; any other value
    /// indexes `hiddenStates` Python-style (0 = embeddings, i = output of layer i, −2 = output of layer L − 1;
    /// there is no way to ask for layer L without post-LN, as in the reference).
    public static func features(_ output: Output, selectLayer: Int) throws -> Tensor {
        if selectLayer == -1 { return output.lastHiddenState }
        return output.hiddenStates[try depth(selectLayer: selectLayer, layers: output.hiddenStates.count - 1)]
    }

    /// How many of `layers` layers select_layer's feature comes after: −1 → all L (then post-LN); i ≥ 0 → i;
    /// other negatives Python-style over the L + 1 hidden states (−2 → L − 1).
    static func depth(selectLayer: Int, layers: Int) throws -> Int {
        let d = selectLayer == -1 ? layers : selectLayer >= 0 ? selectLayer : layers + 1 + selectLayer
        guard d >= 0 && d <= layers else { throw SelectLayerError.outOfRange(selectLayer: selectLayer, layers: layers) }
        return d
    }
}
