// The context-parallel attention schemes (spec §8.2–8.4): causal attention of a (packed) sequence whose
// tokens are spread over W ranks, each rank ending with exactly the rows of full attention (and their
// log-sum-exp) for the tokens it holds.
//
// What it is, per scheme (T tokens, W ranks, n = T/W tokens per rank, H query heads, Hkv kv heads):
//   ring     contiguous split; the local (k, v) travels W−1 hops around the ring; at each step the local
//            queries attend to the visiting block (causal offsets place it) and merge with the sigmoid
//            LSE update (Merge.swift). Rank W−1 does W× the work of rank 0.
//   zigzag   the same ring on the zigzag split (rank r holds chunks r and 2W−1−r); per step only the
//            (query half, key half) pairs of `zigzagStepBlocks` are visible, which evens the work out.
//   llama3   all-gather (k, v) once; each local chunk attends causally to the prefix of its sequence
//            (zigzag split by default, contiguous optional). No merge needed.
//   ulysses  all-to-all from sequence shards (n tokens, all heads) to head shards (all T tokens, H/W
//            heads), plain causal attention per sequence, all-to-all back.
//   usp      two levels (spec §8.2): Ulysses groups of U consecutive ranks inside ring groups strided by
//            U; Ulysses all-to-all, then zigzag ring attention among the R = W/U ring ranks, then back.
// Every scheme uses QwenAttention's `blockwiseAttention` for its local blocks. Work is counted as
// score entries that pass the causal/sequence mask of each call, summed over query heads; FLOPs are
// that times 4·D (QKᵀ and PV, 2 per multiply-add).
// What it is not: overlapped (sends and compute alternate), or a mask other than causal-per-sequence.
import Foundation
import QwenAttention
import Tensor

/// Which context-parallel scheme runs.
public enum CPStrategy: String, Sendable, CaseIterable {
    case ring, zigzag, llama3, ulysses, usp
}

/// Who holds which tokens and heads, fixed before any rank starts (so every rank agrees).
public struct CPPlan: Sendable {
    public let strategy: CPStrategy
    public let world: Int
    public let heads: Int
    public let kvHeads: Int
    /// Ulysses degree U and ring degree R (U·R = W).
    public let ulysses: Int
    public let ring: Int
    /// The split of the ring level (or of llama3's all-gather).
    public let split: Split
    public let cuSeqlens: [Int]
    /// Input and output tokens of every global rank.
    public let layouts: [Layout]
    /// Tokens each ring rank attends for (after the Ulysses all-to-all): ring-level layouts, R of them.
    public let ringLayouts: [Layout]

    public var totalTokens: Int { cuSeqlens.last ?? 0 }

    /// Validates the request: lengths divisible by the split, heads divisible by the Ulysses degree, kv
    /// heads either whole per Ulysses rank or shared by all of a rank's query heads.
    public init(strategy: CPStrategy, world: Int, heads: Int, kvHeads: Int, cuSeqlens: [Int],
                ulysses: Int? = nil, split: Split? = nil) throws {
        guard world >= 1 else { throw ShardingError.badWorld("must be at least 1, got \(world)") }
        guard heads >= 1, kvHeads >= 1, heads % kvHeads == 0 else {
            throw ShardingError.badWorld("\(heads) query heads do not divide over \(kvHeads) kv heads")
        }
        self.strategy = strategy; self.world = world; self.heads = heads; self.kvHeads = kvHeads
        self.cuSeqlens = cuSeqlens
        switch strategy {
        case .ring: (self.ulysses, ring, self.split) = (1, world, .contiguous)
        case .zigzag: (self.ulysses, ring, self.split) = (1, world, .zigzag)
        case .llama3: (self.ulysses, ring, self.split) = (1, world, split ?? .zigzag)
        case .ulysses: (self.ulysses, ring, self.split) = (world, 1, .contiguous)
        case .usp:
            let u = ulysses ?? gcd(heads, world)
            guard u >= 1, world % u == 0 else { throw ShardingError.badWorld("Ulysses degree \(u) does not divide world \(world)") }
            (self.ulysses, ring, self.split) = (u, world / u, .zigzag)
        }
        let u = self.ulysses
        if u > 1 {
            guard heads % u == 0 else { throw ShardingError.headsIndivisible(heads: heads, degree: u) }
            let perRank = heads / u, group = heads / kvHeads
            guard perRank % group == 0 || group % perRank == 0 else {
                throw ShardingError.kvHeadsStraddle(heads: heads, kvHeads: kvHeads, degree: u)
            }
        }
        ringLayouts = try Sharding.layouts(cuSeqlens: cuSeqlens, world: ring, split: self.split)
        var ls = [Layout]()
        for g in 0..<world {
            ls.append(try Sharding.contiguousPiece(of: ringLayouts[g / u], index: g % u, parts: u))
        }
        layouts = ls
    }

    /// The kv heads that Ulysses rank j's query heads [j·H/U, (j+1)·H/U) read.
    public func kvHeadRange(ulyssesRank j: Int) -> Range<Int> {
        let perRank = heads / ulysses, group = heads / kvHeads
        let first = (j * perRank) / group, last = ((j + 1) * perRank - 1) / group
        return first..<(last + 1)
    }

    /// Bytes each rank sends in the forward, as derived in chapter 13 (n = T/W tokens per rank, D = head
    /// dim, 4 bytes per float; h = H/U query heads and h_kv kv heads per Ulysses rank):
    ///     ring, zigzag, llama3:  (W − 1) · 2 · Hkv · n · D · 4
    ///     ulysses / usp:         (U − 1) · n · 4 · [ (h + 2·h_kv)·D  +  h·(D + 1) ]  +  (R − 1) · 2 · h_kv · (T/R) · D · 4
    public func forwardBytesPerRank(headDim d: Int) -> Int {
        let n = totalTokens / world
        switch strategy {
        case .ring, .zigzag, .llama3:
            return (world - 1) * 2 * kvHeads * n * d * 4
        case .ulysses, .usp:
            let h = heads / ulysses, hkv = kvHeadRange(ulyssesRank: 0).count
            let a2a = (ulysses - 1) * n * 4 * ((h + 2 * hkv) * d + h * (d + 1))
            return a2a + (ring - 1) * 2 * hkv * (totalTokens / ring) * d * 4
        }
    }

    /// Bytes each rank sends in the backward.
    ///     ring, zigzag: the kv again for W − 1 hops and the dk/dv accumulators for W hops (the last one
    ///                   home): (W − 1)·2·Hkv·n·D·4 + W·2·Hkv·n·D·4 (0 for W = 1);
    ///     llama3:       all-gather kv plus reduce-scatter dk/dv: 2·(W − 1)·2·Hkv·n·D·4.
    /// Nil for the schemes without a backward here (ulysses, usp).
    public func backwardBytesPerRank(headDim d: Int) -> Int? {
        let n = totalTokens / world
        switch strategy {
        case .ring, .zigzag: return world == 1 ? 0 : (2 * world - 1) * 2 * kvHeads * n * d * 4
        case .llama3: return 2 * (world - 1) * 2 * kvHeads * n * d * 4
        case .ulysses, .usp: return nil
        }
    }
}

func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

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
/// out (H, T, D), lse (H, T). The single-rank reference the schemes must reproduce.
public func fullAttention(q: Tensor, k: Tensor, v: Tensor, cuSeqlens: [Int]) throws -> (out: Tensor, lse: Tensor) {
    let layout = try Sharding.layouts(cuSeqlens: cuSeqlens, world: 1, split: .contiguous)[0]
    var acc = Accumulator(heads: q.shape[0], tokens: q.shape[1], headDim: q.shape[2])
    acc.attend(q: q, qLayout: layout, k: k, v: v, kLayout: layout)
    return (acc.outTensor, acc.lseTensor)
}

/// Running (out, lse) for a rank's query rows, merged block by block.
struct Accumulator {
    let h: Int, n: Int, d: Int
    var out: [Float]
    var lse: [Float]
    var entries = 0

    init(heads: Int, tokens: Int, headDim: Int) {
        h = heads; n = tokens; d = headDim
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
        let (o, l) = blockwiseAttention(q: qb, k: kb, v: vb, causal: true,
                                        offsets: AttentionOffsets(query: qs.start, key: ks.start))
        let rows = qs.count
        out.withUnsafeMutableBufferPointer { O in lse.withUnsafeMutableBufferPointer { L in
            o.storage.withUnsafeBufferPointer { B in l.storage.withUnsafeBufferPointer { BL in
                for head in 0..<h {
                    mergeRowsSigmoid(out: O.baseAddress! + (head * n + qo) * d, lse: L.baseAddress! + head * n + qo,
                                     blockOut: B.baseAddress! + head * rows * d, blockLse: BL.baseAddress! + head * rows,
                                     rows: rows, d: d)
                }
            }}
        }}
    }
}

/// The zigzag per-step block rule of spec §8.3 for rank r at ring step s (kv from src = (r − s) mod W):
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
public func ringAttentionForward(q: Tensor, k: Tensor, v: Tensor, layouts: [Layout], comm: Communicator) -> CPResult {
    let w = comm.worldSize, r = comm.rank
    let hkv = k.shape[0], d = k.shape[2]
    var acc = Accumulator(heads: q.shape[0], tokens: q.shape[1], headDim: d)
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

/// Llama3-style all-gather KV forward: gather every rank's (k, v) into global order, then each local
/// segment attends to [start of its sequence, its own end) in one blockwise call.
public func llama3AttentionForward(q: Tensor, k: Tensor, v: Tensor, layouts: [Layout], comm: Communicator) -> CPResult {
    let r = comm.rank
    let hkv = k.shape[0], d = k.shape[2]
    let parts = comm.allGather(k.storage + v.storage)
    var kParts = [Tensor](), vParts = [Tensor]()
    for (j, p) in parts.enumerated() {
        let nj = Sharding.tokenCount(layouts[j]), half = hkv * nj * d
        kParts.append(Tensor(shape: [hkv, nj, d], storage: Array(p[0..<half])))
        vParts.append(Tensor(shape: [hkv, nj, d], storage: Array(p[half..<(2 * half)])))
    }
    let kFull = Sharding.unshard(kParts, layouts), vFull = Sharding.unshard(vParts, layouts)
    var acc = Accumulator(heads: q.shape[0], tokens: q.shape[1], headDim: d)
    var qo = 0
    for s in layouts[r] {
        let prefix = Segment(start: s.sequenceStart, count: s.end - s.sequenceStart, sequenceStart: s.sequenceStart)
        acc.attendPair(q: q, qs: s, qo: qo, k: kFull.slice(dim: 1, prefix.start..<prefix.end),
                       v: vFull.slice(dim: 1, prefix.start..<prefix.end), ks: prefix, ko: 0)
        qo += s.count
    }
    return CPResult(out: acc.outTensor, lse: acc.lseTensor, scoreEntries: acc.entries)
}

/// Ulysses (R = 1) or two-level Ulysses × zigzag ring (spec §8.2) forward for global rank comm.rank.
public func uspAttentionForward(q: Tensor, k: Tensor, v: Tensor, plan: CPPlan, comm: Communicator) -> CPResult {
    let u = plan.ulysses, rr = plan.ring, g = comm.rank
    let ui = g % u, ringRank = g / u
    let d = q.shape[2], n = q.shape[1], hl = plan.heads / u
    let uComm: Communicator = GroupCommunicator(parent: comm, members: (0..<u).map { ringRank * u + $0 })
    let rComm: Communicator = GroupCommunicator(parent: comm, members: (0..<rr).map { ui + u * $0 })
    // Sequence shards → head shards.
    var parts = [[Float]]()
    for j in 0..<u {
        let kvr = plan.kvHeadRange(ulyssesRank: j)
        parts.append(q.slice(dim: 0, (j * hl)..<((j + 1) * hl)).storage
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
    let res = ringAttentionForward(q: Tensor.concatenate(qs, dim: 1), k: Tensor.concatenate(ks, dim: 1),
                                   v: Tensor.concatenate(vs, dim: 1), layouts: plan.ringLayouts, comm: rComm)
    // Head shards → sequence shards (out and lse together).
    var back = [[Float]](), off = 0
    for j in 0..<u {
        back.append(res.out.slice(dim: 1, off..<(off + counts[j])).storage + res.lse.slice(dim: 1, off..<(off + counts[j])).storage)
        off += counts[j]
    }
    let home = uComm.allToAll(back)
    var outs = [Tensor](), lses = [Tensor]()
    for j in 0..<u {
        outs.append(Tensor(shape: [hl, n, d], storage: Array(home[j][0..<(hl * n * d)])))
        lses.append(Tensor(shape: [hl, n], storage: Array(home[j][(hl * n * d)...])))
    }
    return CPResult(out: Tensor.concatenate(outs, dim: 0), lse: Tensor.concatenate(lses, dim: 0), scoreEntries: res.scoreEntries)
}

/// Runs `plan`'s scheme on one rank: q (H, n, D), k/v (Hkv, n, D) = this rank's tokens
/// (`Sharding.shard(x, plan.layouts[rank])`) → this rank's rows of full causal attention.
public func contextParallelAttention(q: Tensor, k: Tensor, v: Tensor, plan: CPPlan, comm: Communicator) -> CPResult {
    precondition(comm.worldSize == plan.world, "contextParallelAttention: communicator has \(comm.worldSize) ranks, plan \(plan.world)")
    switch plan.strategy {
    case .ring, .zigzag: return ringAttentionForward(q: q, k: k, v: v, layouts: plan.layouts, comm: comm)
    case .llama3: return llama3AttentionForward(q: q, k: k, v: v, layouts: plan.layouts, comm: comm)
    case .ulysses, .usp: return uspAttentionForward(q: q, k: k, v: v, plan: plan, comm: comm)
    }
}
