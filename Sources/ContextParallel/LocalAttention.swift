// The local building block every scheme shares: attention of a rank's query segments against one key
// block (any segments, any positions), merged into a running (out, lse) with the sigmoid update.
//
// What it is: `visibleScores` (the causal / same-sequence work between two segments), `fullAttention`
// (the single-rank reference over cu_seqlens) and `Accumulator`, which calls QwenAttention's
// `blockwiseAttention` (or, on the naive path, `attentionNaive`) with causal offsets for every visible
// (query segment, key segment) pair.
// What it is not: a new kernel — chapter 07's blockwise kernel does the arithmetic.
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

/// One rank's result: out (H, n, D) and lse (H, n) for its tokens in local order, and the score
/// entries it computed (summed over query heads).
public struct CPResult: Sendable {
    public var out: Tensor
    public var lse: Tensor
    public var scoreEntries: Int
}

/// Score entries (query, key) that pass the causal / same-sequence mask between two segments.
public func visibleScores(query q: Segment, key k: Segment) -> Int {
    guard q.sequenceStart == k.sequenceStart, k.start < q.end else { return 0 }
    var total = 0
    for p in q.start..<q.end { total += max(0, min(k.count, p - k.start + 1)) }
    return total
}

/// Causal attention of every sequence of `cuSeqlens` on one rank: q (H, T, D), k/v (Hkv, T, D) →
/// out (H, T, D), lse (H, T). The single-rank reference the schemes must reproduce (one call per
/// sequence; `path` picks the kernel).
public func fullAttention(
    q: Tensor, k: Tensor, v: Tensor, cuSeqlens: [Int],
    compute: Compute = .fast(threads: 1)
) throws -> (out: Tensor, lse: Tensor) {
    let layout = try Sharding.layouts(cuSeqlens: cuSeqlens, world: 1, split: .contiguous)[0]
    var acc = Accumulator(heads: q.shape[0], tokens: q.shape[1], headDim: q.shape[2], compute: compute)
    acc.attend(q: q, qLayout: layout, k: k, v: v, kLayout: layout)
    return (acc.outTensor, acc.lseTensor)
}

/// Running (out, lse) for a rank's query rows, merged block by block.
struct Accumulator {
    let h: Int, n: Int, d: Int
    var out: [Float]
    var lse: [Float]
    var entries = 0
    /// The local kernel: `.blockwise` (chapter 07's online softmax) or `.naive` (full scores per block).
    let compute: Compute

    init(heads: Int, tokens: Int, headDim: Int, compute: Compute) {
        h = heads; n = tokens; d = headDim; self.compute = compute
        out = [Float](repeating: 0, count: heads * tokens * headDim)
        lse = [Float](repeating: -.infinity, count: heads * tokens)
    }

    var outTensor: Tensor { Tensor(shape: [h, n, d], storage: out) }
    var lseTensor: Tensor { Tensor(shape: [h, n], storage: lse) }

    /// Local queries (layout `qLayout`) against a key block (layout `kLayout`): every visible
    /// (query segment, key segment) pair runs `blockwiseAttention` with causal offsets and is merged.
    mutating func attend(q: Tensor, qLayout: Layout, k: Tensor, v: Tensor, kLayout: Layout) {
        var qo = 0
        for qs in qLayout {
            var ko = 0
            for ks in kLayout {
                attendPair(q: q, qs: qs, qo: qo, k: k, v: v, ks: ks, ko: ko)
                ko += ks.count
            }
            qo += qs.count
        }
    }

    mutating func attendPair(q: Tensor, qs: Segment, qo: Int, k: Tensor, v: Tensor, ks: Segment, ko: Int) {
        let visible = visibleScores(query: qs, key: ks)
        guard visible > 0 else { return }
        entries += visible * h
        let qb = q.slice(dim: 1, qo..<(qo + qs.count))
        let kb = k.slice(dim: 1, ko..<(ko + ks.count)), vb = v.slice(dim: 1, ko..<(ko + ks.count))
        let offsets = AttentionOffsets(query: qs.start, key: ks.start)
        let (o, l) =
            compute.isReference
            ? attentionNaive(q: qb, k: kb, v: vb, causal: true, offsets: offsets)
            : blockwiseAttention(q: qb, k: kb, v: vb, causal: true, offsets: offsets)
        let rows = qs.count
        out.withUnsafeMutableBufferPointer { O in
            lse.withUnsafeMutableBufferPointer { L in
                o.storage.withUnsafeBufferPointer { B in
                    l.storage.withUnsafeBufferPointer { BL in
                        for head in 0..<h {
                            mergeRowsSigmoid(
                                out: O.baseAddress! + (head * n + qo) * d, lse: L.baseAddress! + head * n + qo,
                                blockOut: B.baseAddress! + head * rows * d, blockLse: BL.baseAddress! + head * rows,
                                rows: rows, d: d)
                        }
                    }
                }
            }
        }
    }
}
