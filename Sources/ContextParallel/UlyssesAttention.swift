// Ulysses all-to-all and the two-level Ulysses × ring groups of Eagle's globals.py (docs/spec.md §8.2).
//
// What it is: global rank g = ringRank·U + u. An all-to-all inside the Ulysses group (U consecutive
// ranks) turns "my n tokens × all H heads" into "the ring shard's tokens × H/U heads" (plus the kv heads
// those query heads read); zigzag ring attention runs among the R ranks with the same u (strided by U);
// a second all-to-all returns out and lse rows to the tokens' owners. Plain Ulysses is R = 1.
// What it is not: a backward (only ring, zigzag and llama3 have one here).
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

/// Ulysses (R = 1) or two-level Ulysses × zigzag ring (docs/spec.md §8.2) forward for global rank comm.rank.
public func uspAttentionForward(
    q: Tensor, k: Tensor, v: Tensor, plan: CPPlan, comm: Communicator,
    compute: Compute = .fast(threads: 1)
) -> CPResult {
    let u = plan.ulysses, rr = plan.ring, g = comm.rank
    let ui = g % u, ringRank = g / u
    let d = q.shape[2], n = q.shape[1], hl = plan.heads / u
    let uComm: Communicator = GroupCommunicator(parent: comm, members: (0..<u).map { ringRank * u + $0 })
    let rComm: Communicator = GroupCommunicator(parent: comm, members: (0..<rr).map { ui + u * $0 })
    // Sequence shards → head shards.
    var parts = [[Float]]()
    for j in 0..<u {
        let kvr = plan.kvHeadRange(ulyssesRank: j)
        parts.append(
            q.slice(dim: 0, (j * hl)..<((j + 1) * hl)).storage
                + k.slice(dim: 0, kvr).storage + v.slice(dim: 0, kvr).storage)
    }
    let got = uComm.allToAll(parts)
    let hkvl = plan.kvHeadRange(ulyssesRank: ui).count
    var qs = [Tensor](), ks = [Tensor](), vs = [Tensor](), counts = [Int]()
    for j in 0..<u {
        let nj = Sharding.tokenCount(plan.layouts[ringRank * u + j])
        counts.append(nj)
        let a = hl * nj * d, b = hkvl * nj * d
        qs.append(Tensor(shape: [hl, nj, d], storage: Array(got[j][0..<a])))
        ks.append(Tensor(shape: [hkvl, nj, d], storage: Array(got[j][a..<(a + b)])))
        vs.append(Tensor(shape: [hkvl, nj, d], storage: Array(got[j][(a + b)..<(a + 2 * b)])))
    }
    let res = ringAttentionForward(
        q: Tensor.concatenate(qs, dim: 1), k: Tensor.concatenate(ks, dim: 1),
        v: Tensor.concatenate(vs, dim: 1), layouts: plan.ringLayouts, comm: rComm, compute: compute)
    // Head shards → sequence shards (out and lse together).
    var back = [[Float]](), off = 0
    for j in 0..<u {
        back.append(
            res.out.slice(dim: 1, off..<(off + counts[j])).storage
                + res.lse.slice(dim: 1, off..<(off + counts[j])).storage)
        off += counts[j]
    }
    let home = uComm.allToAll(back)
    var outs = [Tensor](), lses = [Tensor]()
    for j in 0..<u {
        outs.append(Tensor(shape: [hl, n, d], storage: Array(home[j][0..<(hl * n * d)])))
        lses.append(Tensor(shape: [hl, n], storage: Array(home[j][(hl * n * d)...])))
    }
    return CPResult(
        out: Tensor.concatenate(outs, dim: 0), lse: Tensor.concatenate(lses, dim: 0), scoreEntries: res.scoreEntries)
}
