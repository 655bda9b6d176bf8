// Ring and zigzag ring attention (docs/spec.md §8.3): keys and values travel around the ring, queries stay.
//
// What it is: at step s rank r holds the (k, v) of src = (r − s) mod W, attends its queries to every
// visible pair of segments (causal offsets place them) and merges; then passes the block to r + 1.
// On the zigzag split the visible pairs are exactly `zigzagStepBlocks` (tested), which balances work.
// What it is not: overlapped — send and compute alternate. The backward is in Backward.swift.
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

/// The zigzag per-step block rule of docs/spec.md §8.3 for rank r at ring step s (kv from src = (r − s) mod W):
/// (query half, key half, causal) triples; half 0 = chunk r (or c_src), half 1 = chunk 2W−1−r (or
/// c_{2W−1−src}).
///   s = 0: both halves against both halves, causal (pairs (0,0), (1,0), (1,1));
///   src < r: both query halves against key half 0, non-causal;
///   src > r: query half 1 against both key halves, non-causal.
public func zigzagStepBlocks(rank r: Int, step s: Int, world w: Int) -> [(queryHalf: Int, keyHalf: Int, causal: Bool)] {
    let src = (r - s + w) % w
    if s == 0 { return [(0, 0, true), (1, 0, false), (1, 1, true)] }
    if src < r { return [(0, 0, false), (1, 0, false)] }
    return [(1, 0, false), (1, 1, false)]
}

/// Ring attention forward among the ranks of `comm` (ring or zigzag, by the layouts): q (h, n, D) and
/// k/v (hkv, n, D) hold this rank's tokens in `layouts[comm.rank]` order.
public func ringAttentionForward(
    q: Tensor, k: Tensor, v: Tensor, layouts: [Layout], comm: Communicator,
    compute: Compute = .fast(threads: 1)
) -> CPResult {
    let w = comm.worldSize, r = comm.rank
    let hkv = k.shape[0], d = k.shape[2]
    var acc = Accumulator(heads: q.shape[0], tokens: q.shape[1], headDim: d, compute: compute)
    var kv = k.storage + v.storage
    for step in 0..<w {
        let src = (r - step + w) % w
        let nk = Sharding.tokenCount(layouts[src]), half = hkv * nk * d
        let kb = Tensor(shape: [hkv, nk, d], storage: Array(kv[0..<half]))
        let vb = Tensor(shape: [hkv, nk, d], storage: Array(kv[half..<(2 * half)]))
        acc.attend(q: q, qLayout: layouts[r], k: kb, v: vb, kLayout: layouts[src])
        if step < w - 1 { kv = comm.sendRecv(kv, to: (r + 1) % w, from: (r - 1 + w) % w) }
    }
    return CPResult(out: acc.outTensor, lse: acc.lseTensor, scoreEntries: acc.entries)
}
