// Scaled dot-product attention with grouped-query heads: the naive full-score path and the blockwise
// online-softmax path (docs/spec.md §5.2).
//
// What it is: two ways to compute, for every query head h and query row i,
//     out[h, i] = Σ_j softmax_j(q[h, i] · k[g, j] · scale + mask[i, j]) · v[g, j],  g = h ÷ (H / Hkv)
//     lse[h, i] = log Σ_j exp(q[h, i] · k[g, j] · scale + mask[i, j])
// with mask = −∞ where the key's position is after the query's (causal) and 0 elsewhere.
//   * `attentionNaive` builds the whole (T, S) score matrix per head, masks it, softmaxes it.
//   * `blockwiseAttention` walks key blocks of `keyBlock` columns per block of `queryBlock` rows and
//     keeps a running max m, running sum l and an unnormalised accumulator per row (online softmax,
//     Milakov & Gimelshein 2018; FlashAttention's forward). It never holds more than
//     queryBlock × keyBlock scores, so its extra memory is O(T·D), not O(T·S), and it returns the
//     log-sum-exp that a backward pass or a context-parallel merge needs.
// What it is not: a backward pass (FusedKernels adds it), dropout, sliding windows or padding masks.
//
// Positions: query row i sits at position `offsets.query + i`, key row j at `offsets.key + j`. The
// KV cache uses offsets.query = tokens already cached; context parallelism uses both to place chunks.
// A query row that sees no key at all (possible with offsets) gets out = 0 and lse = −∞.
import _CBLAS
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Tensor

/// Absolute positions of the first query row and the first key row (for the causal mask).
public struct AttentionOffsets: Sendable, Equatable {
    public var query: Int
    public var key: Int
    public init(query: Int = 0, key: Int = 0) { self.query = query; self.key = key }
    public static let zero = AttentionOffsets()
}

@inline(__always)
func checkAttentionShapes(_ q: Tensor, _ k: Tensor, _ v: Tensor) -> (h: Int, t: Int, d: Int, hkv: Int, s: Int) {
    precondition(
        q.rank == 3 && k.rank == 3 && v.rank == 3,
        "attention: need q (H, T, D), k/v (Hkv, S, D); got \(q.shape), \(k.shape), \(v.shape)")
    precondition(k.shape == v.shape, "attention: k \(k.shape) and v \(v.shape) differ")
    precondition(q.shape[2] == k.shape[2], "attention: head dims differ, q \(q.shape) vs k \(k.shape)")
    precondition(
        k.shape[0] > 0 && q.shape[0] % k.shape[0] == 0,
        "attention: \(q.shape[0]) query heads do not divide over \(k.shape[0]) kv heads")
    return (q.shape[0], q.shape[1], q.shape[2], k.shape[0], k.shape[1])
}

/// Attention with the full score matrix: the readable reference.
///
/// Shapes: q (H, T, D), k and v (Hkv, S, D) → out (H, T, D), lse (H, T). Query head h reads kv head
/// h ÷ (H / Hkv). `scale` defaults to D^(−1/2). Holds H·T·S floats of scores at once (one head at a time
/// here, T·S).
public func attentionNaive(
    q: Tensor, k: Tensor, v: Tensor, causal: Bool,
    offsets: AttentionOffsets = .zero, scale: Float? = nil
) -> (out: Tensor, lse: Tensor) {
    let (h, t, d, hkv, s) = checkAttentionShapes(q, k, v)
    let sc = scale ?? 1 / Float(d).squareRoot()
    let rep = h / hkv
    var out = [Float](repeating: 0, count: h * t * d)
    var lse = [Float](repeating: -.infinity, count: h * t)
    for head in 0..<h {
        let g = head / rep
        let qh = q.row(head), kh = k.row(g), vh = v.row(g)
        var scores = matmul(qh, kh, transposeB: true) * sc // (T, S)
        if causal {
            for i in 0..<t {
                for j in 0..<s where offsets.key + j > offsets.query + i { scores[flat: i * s + j] = -.infinity }
            }
        }
        for i in 0..<t {
            var m = -Float.infinity
            for j in 0..<s { m = max(m, scores.storage[i * s + j]) }
            guard m > -.infinity else { continue }
            var sum = 0.0
            for j in 0..<s { sum += Double(exp(scores.storage[i * s + j] - m)) }
            lse[head * t + i] = m + Float(log(sum))
        }
        let p = scores.softmaxLast() // fully masked rows → 0
        let o = matmul(p, vh) // (T, D)
        for i in 0..<(t * d) { out[head * t * d + i] = o.storage[i] }
    }
    return (Tensor(shape: [h, t, d], storage: out), Tensor(shape: [h, t], storage: lse))
}

/// Blockwise (online-softmax) attention: the same result as `attentionNaive` without ever holding the
/// (T, S) score matrix. The forward kernel that the fused backward and context parallelism reuse.
///
/// Shapes: q (H, T, D), k and v (Hkv, S, D) → out (H, T, D), lse (H, T) (natural log; −∞ for a row
/// that sees no key). Per block of ≤ `queryBlock` rows and ≤ `keyBlock` keys:
///     s = q_blk · k_blkᵀ · scale (masked),  m' = max(m, rowmax s),  p = exp(s − m'),
///     l = l·exp(m − m') + Σ p,  acc = acc·exp(m − m') + p · v_blk,  m = m'
/// and finally out = acc / l, lse = m + log l. Under `causal`, key blocks wholly after a query block
/// are skipped. Extra memory: queryBlock·(keyBlock + D + 2) floats.
public func blockwiseAttention(
    q: Tensor, k: Tensor, v: Tensor, causal: Bool,
    offsets: AttentionOffsets = .zero, scale: Float? = nil,
    queryBlock: Int = 64, keyBlock: Int = 256
) -> (out: Tensor, lse: Tensor) {
    let (h, t, d, hkv, s) = checkAttentionShapes(q, k, v)
    var out = [Float](repeating: 0, count: h * t * d)
    var lse = [Float](repeating: -.infinity, count: h * t)
    q.storage.withUnsafeBufferPointer { Q in
        k.storage.withUnsafeBufferPointer { K in
            v.storage.withUnsafeBufferPointer { V in
                out.withUnsafeMutableBufferPointer { O in
                    lse.withUnsafeMutableBufferPointer { L in
                        guard let qp = Q.baseAddress, let kp = K.baseAddress, let vp = V.baseAddress,
                            let op = O.baseAddress, let lp = L.baseAddress
                        else { return }
                        blockwiseAttentionKernel(
                            q: qp, heads: h, tokens: t, headDim: d,
                            k: kp, v: vp, kvHeads: hkv, keys: s, kvHeadStride: s * d,
                            causal: causal, offsets: offsets, scale: scale ?? 1 / Float(d).squareRoot(),
                            queryBlock: queryBlock, keyBlock: keyBlock, out: op, lse: lp)
                    }
                }
            }
        }
    }
    return (Tensor(shape: [h, t, d], storage: out), Tensor(shape: [h, t], storage: lse))
}

/// The pointer form of `blockwiseAttention`: q is (H, T, D) dense; kv head g's rows start at
/// `k + g·kvHeadStride` (so a KV cache with spare capacity can be read in place); out (H, T, D) and
/// lse (H, T) are written.
public func blockwiseAttentionKernel(
    q: UnsafePointer<Float>, heads h: Int, tokens t: Int, headDim d: Int,
    k: UnsafePointer<Float>, v: UnsafePointer<Float>, kvHeads hkv: Int, keys s: Int,
    kvHeadStride: Int, causal: Bool, offsets: AttentionOffsets, scale: Float,
    queryBlock: Int, keyBlock: Int,
    out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>
) {
    let rep = h / hkv
    let bq = max(1, queryBlock), bk = max(1, keyBlock)
    var scores = [Float](repeating: 0, count: bq * bk)
    var acc = [Float](repeating: 0, count: bq * d)
    var m = [Float](repeating: 0, count: bq)
    var l = [Float](repeating: 0, count: bq)
    scores.withUnsafeMutableBufferPointer { S in
        acc.withUnsafeMutableBufferPointer { A in
            m.withUnsafeMutableBufferPointer { M in
                l.withUnsafeMutableBufferPointer { Lsum in
                    let sp = S.baseAddress!, ap = A.baseAddress!
                    for head in 0..<h {
                        let g = head / rep
                        let kh = k + g * kvHeadStride, vh = v + g * kvHeadStride
                        var q0 = 0
                        while q0 < t {
                            let rows = min(bq, t - q0)
                            let qBlock = q + (head * t + q0) * d
                            for i in 0..<rows { M[i] = -.infinity; Lsum[i] = 0 }
                            for i in 0..<(rows * d) { ap[i] = 0 }
                            // Keys any row of this block may see: kpos ≤ last query position.
                            let kEnd = causal ? max(0, min(s, offsets.query + q0 + rows - offsets.key)) : s
                            var k0 = 0
                            while k0 < kEnd {
                                let cols = min(bk, kEnd - k0)
                                if rows == 1 {
                                    cblas_sgemv(
                                        CblasRowMajor, CblasNoTrans, Int32(cols), Int32(d), scale,
                                        kh + k0 * d, Int32(d), qBlock, 1, 0, sp, 1)
                                } else {
                                    cblas_sgemm(
                                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(cols), Int32(d),
                                        scale, qBlock, Int32(d), kh + k0 * d, Int32(d), 0, sp, Int32(cols))
                                }
                                for i in 0..<rows {
                                    let row = sp + i * cols
                                    // keys j with offsets.key + k0 + j > offsets.query + q0 + i are masked: they get
                                    // p = 0 and take no part in the max
                                    let visible =
                                        causal ? min(cols, max(0, offsets.query + q0 + i - offsets.key - k0 + 1)) : cols
                                    if visible < cols { for j in visible..<cols { row[j] = 0 } }
                                    let mx = max(M[i], rowMax(row, visible))
                                    if mx == -.infinity { // nothing visible yet in this row
                                        for j in 0..<visible { row[j] = 0 }
                                        continue
                                    }
                                    let corr = exp(M[i] - mx) // 0 when M[i] = −∞
                                    let sum = expInPlaceAndSum(row, visible, minus: mx)
                                    Lsum[i] = Lsum[i] * corr + sum
                                    M[i] = mx
                                    if corr != 1 { let a = ap + i * d; for c in 0..<d { a[c] *= corr } }
                                }
                                if rows == 1 {
                                    cblas_sgemv(
                                        CblasRowMajor, CblasTrans, Int32(cols), Int32(d), 1,
                                        vh + k0 * d, Int32(d), sp, 1, 1, ap, 1)
                                } else {
                                    cblas_sgemm(
                                        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(d), Int32(cols),
                                        1, sp, Int32(cols), vh + k0 * d, Int32(d), 1, ap, Int32(d))
                                }
                                k0 += cols
                            }
                            for i in 0..<rows {
                                let o = out + (head * t + q0 + i) * d
                                if Lsum[i] > 0 {
                                    let inv = 1 / Lsum[i]
                                    for c in 0..<d { o[c] = ap[i * d + c] * inv }
                                    lse[head * t + q0 + i] = M[i] + log(Lsum[i])
                                } else {
                                    for c in 0..<d { o[c] = 0 }
                                    lse[head * t + q0 + i] = -.infinity
                                }
                            }
                            q0 += rows
                        }
                    }
                }
            }
        }
    }
}
