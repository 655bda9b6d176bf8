// Combining partial attention results over disjoint key sets (docs/spec.md §8.3, `update_out_and_lse`).
//
// What it is: for one query row with a running (out, lse) over keys K₁ and a block result (o_b, lse_b)
// over disjoint keys K₂, the attention over K₁ ∪ K₂ is
//     lse' = log(e^lse + e^lse_b),   out' = e^(lse − lse')·out + e^(lse_b − lse')·o_b.
// The sigmoid / log-sigmoid form computes the same without ever forming e^lse:
//     out' = out − σ(lse_b − lse)·(out − o_b),   lse' = lse − log σ(lse − lse_b)
// (σ(x) = 1 / (1 + e^(−x)), log σ(x) = min(x, 0) − log(1 + e^(−|x|))). `mergeNaiveExpSum` is the
// textbook exp-sum form, kept to show that it overflows once lse exceeds ~88 (fp32 e^x = ∞).
// A block with lse_b = −∞ (it saw no key) changes nothing; a running lse of −∞ takes the block as is.
// What it is not: a max-tracking merge (that is what the blockwise kernel does inside one call).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

@inline(__always) func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }
@inline(__always) func logSigmoid(_ x: Float) -> Float { min(x, 0) - log1p(exp(-abs(x))) }

/// Merges block rows into running rows in the sigmoid form. `out`, `blockOut`: rows × D, rows `outStride` and
/// `blockStride` floats apart (D by default: contiguous); `lse`, `blockLse`: rows, contiguous.
@inline(__always)
public func mergeRowsSigmoid(
    out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>,
    blockOut: UnsafePointer<Float>, blockLse: UnsafePointer<Float>, rows: Int, d: Int,
    outStride: Int? = nil, blockStride: Int? = nil
) {
    let so = outStride ?? d, sb = blockStride ?? d
    for i in 0..<rows {
        let lb = blockLse[i]
        if lb == -.infinity { continue }
        let o = out + i * so, b = blockOut + i * sb
        if lse[i] == -.infinity {
            for c in 0..<d { o[c] = b[c] }
            lse[i] = lb
            continue
        }
        let s = sigmoid(lb - lse[i])
        for c in 0..<d { o[c] -= s * (o[c] - b[c]) }
        lse[i] -= logSigmoid(lse[i] - lb)
    }
}

/// The sigmoid / log-sigmoid merge (docs/spec.md §8.3) on arrays: out (rows, D), lse (rows).
public func mergeSigmoid(out: inout [Float], lse: inout [Float], blockOut: [Float], blockLse: [Float], headDim d: Int) {
    precondition(
        out.count == lse.count * d && blockOut.count == out.count && blockLse.count == lse.count, "mergeSigmoid: shapes"
    )
    out.withUnsafeMutableBufferPointer { O in
        lse.withUnsafeMutableBufferPointer { L in
            blockOut.withUnsafeBufferPointer { B in
                blockLse.withUnsafeBufferPointer { BL in
                    mergeRowsSigmoid(
                        out: O.baseAddress!, lse: L.baseAddress!, blockOut: B.baseAddress!, blockLse: BL.baseAddress!,
                        rows: L.count, d: d)
                }
            }
        }
    }
}

/// The naive exp-sum merge: lse' = log(e^lse + e^lse_b), out' = (e^lse·out + e^lse_b·o_b) / e^lse'.
/// Exact on paper, ∞/NaN in fp32 once lse > ~88.7.
public func mergeNaiveExpSum(
    out: inout [Float], lse: inout [Float], blockOut: [Float], blockLse: [Float], headDim d: Int
) {
    precondition(
        out.count == lse.count * d && blockOut.count == out.count && blockLse.count == lse.count,
        "mergeNaiveExpSum: shapes")
    for i in 0..<lse.count {
        let ea = exp(lse[i]), eb = exp(blockLse[i])
        let total = ea + eb
        for c in 0..<d { out[i * d + c] = (ea * out[i * d + c] + eb * blockOut[i * d + c]) / total }
        lse[i] = log(total)
    }
}
