// Qwen2's self-attention layer (transformers `Qwen2Attention`, docs/spec.md §5.2) and the attention cores it
// plugs in.
//
// What it is: for hidden states x (T, C) at positions p (T):
//     q = x·W_qᵀ + b_q (T, H·D),  k = x·W_kᵀ + b_k (T, Hkv·D),  v = x·W_vᵀ + b_v (T, Hkv·D)
//     q, k ← RoPE(q, k; p)
//     a = core(q, k, v)   (T, H·D):  a[h] = softmax(q[h]·k[g]ᵀ / √D + causal mask)·v[g],  g = h ÷ (H / Hkv)
//     y = a·W_oᵀ          (o_proj has no bias)
// The projections and RoPE are the layer's; which keys a query sees and where they live is the core's, passed
// in as a value the way transformers passes its attention interface: `CausalAttention` (a whole prompt, naive
// or blockwise by `Compute`), `CachedAttention` (the KV cache: append, then attend over every cached token),
// the row-split prefill's core (Qwen2) and the context-parallel core (ContextParallel). One layer, four cores.
// Names follow the checkpoint: q_proj, k_proj, v_proj, o_proj.
// What it is not: sliding-window attention, attention dropout, padding masks for batches.
import Dispatch
import Tensor

/// Heads of one attention layer: H query heads of width D over Hkv key/value heads.
public struct AttentionHeads: Sendable, Equatable {
    public let heads: Int, kvHeads: Int, headDim: Int
    public init(heads: Int, kvHeads: Int, headDim: Int) {
        self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
    }
}

/// What turns one layer's rotated queries, keys and values into attended values.
///
/// q (T, H·D), k and v (T, Hkv·D) arrive token-major, as the projections write them, with RoPE applied;
/// the result is (T, H·D), token-major, ready for o_proj. `layer` indexes per-layer state (a cache).
public protocol AttentionCore {
    mutating func attend(layer: Int, q: Tensor, k: Tensor, v: Tensor, heads: AttentionHeads, compute: Compute) -> Tensor
}

/// (T, G·D) token-major → (G, T, D) head-major: rows of D floats copied whole (a copy; for one token the
/// layouts coincide). `x.reshaped([T, G, D]).permuted([1, 0, 2])` in one pass.
public func headMajor(_ x: Tensor, heads g: Int, headDim d: Int) -> Tensor {
    let t = x.count / (g * d)
    if t == 1 { return x.reshaped([g, 1, d]) }
    return Tensor(shape: [g, t, d], storage: swapRowBlocks(x.storage, outer: t, inner: g, width: d))
}

/// (G, T, D) head-major → (T, G·D) token-major, the inverse of `headMajor`.
public func tokenMajor(_ x: Tensor) -> Tensor {
    let g = x.shape[0], t = x.shape[1], d = x.shape[2]
    if t == 1 { return x.reshaped([1, g * d]) }
    return Tensor(shape: [t, g * d], storage: swapRowBlocks(x.storage, outer: g, inner: t, width: d))
}

/// (A, B, W) → (B, A, W) for contiguous rows of W floats.
func swapRowBlocks(_ src: [Float], outer a: Int, inner b: Int, width w: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: src.count) { out, written in
        src.withUnsafeBufferPointer { S in
            let sp = S.baseAddress!, op = out.baseAddress!
            for i in 0..<a {
                for j in 0..<b { (op + (j * a + i) * w).initialize(from: sp + (i * b + j) * w, count: w) }
            }
        }
        written = src.count
    }
}

/// Causal attention over one whole sequence at positions 0 ..< T: `attentionNaive` (full (H, T, T) scores) on
/// the reference path, `blockwiseAttention` (online softmax, O(T) extra memory) on the fast path.
public struct CausalAttention: AttentionCore, Sendable {
    public init() {}
    public mutating func attend(layer: Int, q: Tensor, k: Tensor, v: Tensor, heads s: AttentionHeads, compute: Compute)
        -> Tensor
    {
        let qh = headMajor(q, heads: s.heads, headDim: s.headDim)
        let kh = headMajor(k, heads: s.kvHeads, headDim: s.headDim),
            vh = headMajor(v, heads: s.kvHeads, headDim: s.headDim)
        let out =
            compute.isReference
            ? attentionNaive(q: qh, k: kh, v: vh, causal: true).out
            : blockwiseAttention(q: qh, k: kh, v: vh, causal: true).out
        return tokenMajor(out)
    }
}

/// Attention through a KV cache: the new tokens' keys and values are appended to `cache.layers[layer]` (in
/// place), then the queries, at positions count … count + T − 1, attend to every cached token.
public struct CachedAttention: AttentionCore, Sendable {
    public var cache: KVCache
    public init(cache: KVCache) { self.cache = cache }
    public mutating func attend(layer: Int, q: Tensor, k: Tensor, v: Tensor, heads s: AttentionHeads, compute: Compute)
        -> Tensor
    {
        let offset = AttentionOffsets(query: cache.layers[layer].count, key: 0)
        cache.layers[layer].append(k: k, v: v)
        let qh = headMajor(q, heads: s.heads, headDim: s.headDim)
        return tokenMajor(Qwen2Attention.attendCached(qh, cache.layers[layer], offset: offset, compute: compute))
    }
}

/// Weights and shape of one Qwen2 attention layer.
public struct Qwen2Attention: Sendable {
    public let qProj: Linear
    public let kProj: Linear
    public let vProj: Linear
    public let oProj: Linear
    public let heads: AttentionHeads
    public var numHeads: Int { heads.heads }
    public var numKeyValueHeads: Int { heads.kvHeads }
    public var headDim: Int { heads.headDim }

    public init(
        qProj: Linear, kProj: Linear, vProj: Linear, oProj: Linear,
        numHeads: Int, numKeyValueHeads: Int, headDim: Int
    ) {
        precondition(
            numHeads % numKeyValueHeads == 0, "Qwen2Attention: \(numHeads) heads over \(numKeyValueHeads) kv heads")
        precondition(
            qProj.outFeatures == numHeads * headDim && kProj.outFeatures == numKeyValueHeads * headDim
                && vProj.outFeatures == numKeyValueHeads * headDim && oProj.inFeatures == numHeads * headDim,
            "Qwen2Attention: projection shapes do not match \(numHeads)×\(headDim) / \(numKeyValueHeads)×\(headDim)")
        self.qProj = qProj; self.kProj = kProj; self.vProj = vProj; self.oProj = oProj
        heads = AttentionHeads(heads: numHeads, kvHeads: numKeyValueHeads, headDim: headDim)
    }

    /// x (T, C) → the attended values (T, H·D) before o_proj: projections, RoPE at the positions of `cos`/`sin`
    /// (T, D), then `core`.
    public func attend(
        _ x: Tensor, rope: RotaryEmbedding, cos: Tensor, sin: Tensor, layer: Int,
        core: inout some AttentionCore, compute: Compute = .fast
    ) -> Tensor {
        var q: Tensor, k: Tensor, v: Tensor
        if x.shape[0] == 1 && !compute.isReference && compute.gemv == .rows { // decode: one pass over the threads
            let r = gemvGroup([qProj, kProj, vProj], x, threads: compute.threads)
            (q, k, v) = (r[0], r[1], r[2])
        } else {
            q = qProj(x, compute: compute); k = kProj(x, compute: compute); v = vProj(x, compute: compute)
        }
        rope.apply(&q, heads: heads.heads, cos: cos, sin: sin)
        rope.apply(&k, heads: heads.kvHeads, cos: cos, sin: sin)
        return core.attend(layer: layer, q: q, k: k, v: v, heads: heads, compute: compute)
    }

    /// x (T, C) → o_proj(attend(x)) (T, C).
    public func callAsFunction(
        _ x: Tensor, rope: RotaryEmbedding, cos: Tensor, sin: Tensor, layer: Int = 0,
        core: inout some AttentionCore, compute: Compute = .fast
    ) -> Tensor {
        oProj(attend(x, rope: rope, cos: cos, sin: sin, layer: layer, core: &core, compute: compute), compute: compute)
    }

    /// q (H, T, D) at positions offset.query … against every token of `c`, read in place.
    static func attendCached(_ qh: Tensor, _ c: KVCacheLayer, offset: AttentionOffsets, compute: Compute) -> Tensor {
        let t = qh.shape[1], d = qh.shape[2]
        if compute.isReference {
            let (kd, vd) = c.dense()
            return attentionNaive(q: qh, k: kd, v: vd, causal: true, offsets: offset).out
        }
        // One token (decode): its products are tiny, so the kv groups are spread over the threads instead.
        return c.keys.withUnsafeBufferPointer { K in
            c.values.withUnsafeBufferPointer { V in
                attendInPlace(
                    qh, k: K.baseAddress!, v: V.baseAddress!, kvHeads: c.kvHeads, keys: c.count,
                    kvHeadStride: c.capacity * d, offset: offset, threads: t == 1 ? compute.threads : 1)
            }
        }
    }
}

/// Causal blockwise attention of head-major queries qh (H, T, D), at positions `offset.query` …, against
/// head-major keys and values read in place: Hkv heads of `keys` rows, `kvHeadStride` floats apart (a KV cache's
/// capacity, or the row-split prefill's shared buffers). With `threads` > 1 the kv groups are spread over the
/// threads, OpenBLAS held to one. Returns (H, T, D).
public func attendInPlace(
    _ qh: Tensor, k: UnsafePointer<Float>, v: UnsafePointer<Float>, kvHeads hkv: Int, keys: Int, kvHeadStride: Int,
    offset: AttentionOffsets, threads: Int
) -> Tensor {
    let h = qh.shape[0], t = qh.shape[1], d = qh.shape[2], rep = h / hkv
    var lse = [Float](repeating: 0, count: h * t)
    return Tensor(
        shape: [h, t, d],
        overwrittenBy: { O in
            qh.storage.withUnsafeBufferPointer { Q in
                lse.withUnsafeMutableBufferPointer { L in
                    let qp = Q.baseAddress!, op = O.baseAddress!, lp = L.baseAddress!
                    func groups(_ range: Range<Int>) {
                        guard !range.isEmpty else { return }
                        let g0 = range.lowerBound
                        blockwiseAttentionKernel(
                            q: qp + g0 * rep * t * d, heads: range.count * rep, tokens: t, headDim: d,
                            k: k + g0 * kvHeadStride, v: v + g0 * kvHeadStride, kvHeads: range.count, keys: keys,
                            kvHeadStride: kvHeadStride, causal: true, offsets: offset,
                            scale: 1 / Float(d).squareRoot(), queryBlock: 64, keyBlock: 256,
                            out: op + g0 * rep * t * d, lse: lp + g0 * rep * t)
                    }
                    let parts = min(max(threads, 1), hkv)
                    if parts == 1 { groups(0..<hkv); return }
                    // nonisolated(unsafe): each iteration writes only its own kv groups' heads of O and L.
                    nonisolated(unsafe) let disjointGroups = groups
                    BLAS.use(threads: 1)
                    DispatchQueue.concurrentPerform(iterations: parts) { p in
                        disjointGroups((hkv * p / parts)..<(hkv * (p + 1) / parts))
                    }
                }
            }
        })
}
