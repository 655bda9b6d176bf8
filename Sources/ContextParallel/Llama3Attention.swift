// Llama3-style context parallelism (docs/spec.md §8.4): all-gather k and v, then one causal call per local chunk.
//
// What it is: every rank gathers all ranks' (k, v) into global order; each local segment attends to
// the prefix [start of its sequence, its end) — the flash-attn bottom-right causal alignment. Zigzag or
// contiguous split. No LSE merge. What it is not: head-strided with prefetch (the whole kv is gathered
// at once). The backward (reduce-scatter of dk/dv) is in Backward.swift.
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

/// Llama3-style all-gather KV forward: gather every rank's (k, v) into global order, then each local
/// segment attends to [start of its sequence, its own end) in one blockwise call.
public func llama3AttentionForward(
    q: Tensor, k: Tensor, v: Tensor, layouts: [Layout], comm: Communicator,
    compute: Compute = .fast(threads: 1)
) -> CPResult {
    let r = comm.rank
    let d = k.shape[2]
    let (kFull, vFull) = allGatherKV(k: k, v: v, layouts: layouts, comm: comm)
    var acc = Accumulator(heads: q.shape[0], tokens: q.shape[1], headDim: d, compute: compute)
    var qo = 0
    for s in layouts[r] {
        let prefix = Segment(start: s.sequenceStart, count: s.end - s.sequenceStart, sequenceStart: s.sequenceStart)
        acc.attendPair(
            q: q, qs: s, qo: qo, k: kFull.slice(dim: 1, prefix.start..<prefix.end),
            v: vFull.slice(dim: 1, prefix.start..<prefix.end), ks: prefix, ko: 0)
        qo += s.count
    }
    return CPResult(out: acc.outTensor, lse: acc.lseTensor, scoreEntries: acc.entries)
}

/// All-gathers every rank's local (k, v) — (Hkv, N_r, D) each, sent as one message — and puts the pieces
/// back in global token order: (Hkv, T, D) each. Used by the Llama3 forward and backward.
func allGatherKV(k: Tensor, v: Tensor, layouts: [Layout], comm: Communicator) -> (k: Tensor, v: Tensor) {
    let hkv = k.shape[0], d = k.shape[2]
    let parts = comm.allGather(k.storage + v.storage)
    var kParts = [Tensor](), vParts = [Tensor]()
    for (j, p) in parts.enumerated() {
        let nj = Sharding.tokenCount(layouts[j]), half = hkv * nj * d
        kParts.append(Tensor(shape: [hkv, nj, d], storage: Array(p[0..<half])))
        vParts.append(Tensor(shape: [hkv, nj, d], storage: Array(p[half..<(2 * half)])))
    }
    return (Sharding.unshard(kParts, layouts), Sharding.unshard(vParts, layouts))
}
