// Qwen2's self-attention layer (transformers `Qwen2Attention`, spec §5.2).
//
// What it is: for hidden states x (T, C) at positions p (T):
//     q = x·W_qᵀ + b_q (T, H·D),  k = x·W_kᵀ + b_k (T, Hkv·D),  v = x·W_vᵀ + b_v (T, Hkv·D)
//     q, k ← RoPE(q, k; p);  (with a cache: append k, v; attend over every cached token)
//     a[h] = softmax(q[h]·k[g]ᵀ / √D + causal mask)·v[g],  g = h ÷ (H / Hkv)
//     y = concat_h(a[h])·W_oᵀ          (o_proj has no bias)
// Names follow the checkpoint: q_proj, k_proj, v_proj, o_proj.
// What it is not: sliding-window attention, attention dropout, padding masks for batches.
import Dispatch
import Tensor

/// Weights and shape of one Qwen2 attention layer.
public struct Qwen2Attention: Sendable {
    public let q_proj: Linear
    public let k_proj: Linear
    public let v_proj: Linear
    public let o_proj: Linear
    public let numHeads: Int
    public let numKeyValueHeads: Int
    public let headDim: Int

    public init(q_proj: Linear, k_proj: Linear, v_proj: Linear, o_proj: Linear,
                numHeads: Int, numKeyValueHeads: Int, headDim: Int) {
        precondition(numHeads % numKeyValueHeads == 0, "Qwen2Attention: \(numHeads) heads over \(numKeyValueHeads) kv heads")
        precondition(q_proj.outFeatures == numHeads * headDim && k_proj.outFeatures == numKeyValueHeads * headDim
                     && v_proj.outFeatures == numKeyValueHeads * headDim && o_proj.inFeatures == numHeads * headDim,
                     "Qwen2Attention: projection shapes do not match \(numHeads)×\(headDim) / \(numKeyValueHeads)×\(headDim)")
        self.q_proj = q_proj; self.k_proj = k_proj; self.v_proj = v_proj; self.o_proj = o_proj
        self.numHeads = numHeads; self.numKeyValueHeads = numKeyValueHeads; self.headDim = headDim
    }

    /// x (T, C) at `positions` → (T, C). With `cache`, the new keys/values are appended first and the
    /// queries (at positions cache.count …) attend to every cached token.
    public func callAsFunction(_ x: Tensor, rope: RotaryEmbedding, cos: Tensor, sin: Tensor,
                               cache: inout KVCacheLayer?, path: AttentionPath = .blockwise) -> Tensor {
        let t = x.shape[0], h = numHeads, hkv = numKeyValueHeads, d = headDim
        let naive = path == .naive
        var q: Tensor, k: Tensor, v: Tensor
        if t == 1 && !naive && !Linear.useBLASGemv {   // decode: the three products in one pass over the threads
            let r = gemvGroup([q_proj, k_proj, v_proj], x, threads: BLAS.threads)
            (q, k, v) = (r[0], r[1], r[2])
        } else {
            q = q_proj(x, naive: naive); k = k_proj(x, naive: naive); v = v_proj(x, naive: naive)
        }
        rope.apply(&q, heads: h, cos: cos, sin: sin)
        rope.apply(&k, heads: hkv, cos: cos, sin: sin)
        // (T, H·D) → (H, T, D); for one token the two layouts coincide.
        let qh = t == 1 ? q.reshaped([h, 1, d]) : q.reshaped([t, h, d]).permuted([1, 0, 2])
        var attended: Tensor
        if cache != nil {
            let offset = AttentionOffsets(query: cache!.count, key: 0)
            cache!.append(k: k, v: v)                      // in place: no copy of the cached rows
            attended = Qwen2Attention.attendCached(qh, cache!, offset: offset, naive: naive)
        } else {
            let kh = k.reshaped([t, hkv, d]).permuted([1, 0, 2]), vh = v.reshaped([t, hkv, d]).permuted([1, 0, 2])
            attended = naive ? attentionNaive(q: qh, k: kh, v: vh, causal: true).out
                             : blockwiseAttention(q: qh, k: kh, v: vh, causal: true).out
        }
        let merged = t == 1 ? attended.reshaped([1, h * d]) : attended.permuted([1, 0, 2]).reshaped([t, h * d])
        return o_proj(merged, naive: naive)
    }

    /// q (H, T, D) at positions offset.query … against every token of `c`, read in place.
    static func attendCached(_ qh: Tensor, _ c: KVCacheLayer, offset: AttentionOffsets, naive: Bool) -> Tensor {
        let h = qh.shape[0], t = qh.shape[1], d = qh.shape[2]
        if naive {
            let (kd, vd) = c.dense()
            return attentionNaive(q: qh, k: kd, v: vd, causal: true, offsets: offset).out
        }
        var out = [Float](repeating: 0, count: h * t * d)
        var lse = [Float](repeating: 0, count: h * t)
        qh.storage.withUnsafeBufferPointer { Q in
            c.keys.withUnsafeBufferPointer { K in
                c.values.withUnsafeBufferPointer { V in
                    out.withUnsafeMutableBufferPointer { O in
                        lse.withUnsafeMutableBufferPointer { L in
                            // One token (decode): its products are tiny, so OpenBLAS is held to one thread
                            // and the kv groups are spread over the threads instead (thread wake-ups inside
                            // 2·H small sgemms a layer cost more than the products themselves).
                            let hkv = c.kvHeads, rep = h / hkv, stride = c.capacity * d
                            let parts = t == 1 ? min(BLAS.threads, hkv) : 1
                            let qp = Q.baseAddress!, kp = K.baseAddress!, vp = V.baseAddress!, op = O.baseAddress!, lp = L.baseAddress!
                            func groups(_ range: Range<Int>) {
                                guard !range.isEmpty else { return }
                                let g0 = range.lowerBound
                                blockwiseAttentionKernel(q: qp + g0 * rep * t * d, heads: range.count * rep, tokens: t, headDim: d,
                                                         k: kp + g0 * stride, v: vp + g0 * stride, kvHeads: range.count, keys: c.count,
                                                         kvHeadStride: stride, causal: true, offsets: offset,
                                                         scale: 1 / Float(d).squareRoot(), queryBlock: 64, keyBlock: 256,
                                                         out: op + g0 * rep * t * d, lse: lp + g0 * rep * t)
                            }
                            if parts == 1 { groups(0..<hkv); return }
                            BLAS.withThreads(1) {
                                DispatchQueue.concurrentPerform(iterations: parts) { p in groups((hkv * p / parts)..<(hkv * (p + 1) / parts)) }
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [h, t, d], storage: out)
    }
}
