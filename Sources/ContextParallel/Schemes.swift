// The context-parallel attention schemes (docs/spec.md §8.2–8.4): causal attention of a (packed) sequence whose
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
//   usp      two levels (docs/spec.md §8.2): Ulysses groups of U consecutive ranks inside ring groups strided by
//            U; Ulysses all-to-all, then zigzag ring attention among the R = W/U ring ranks, then back.
// Every scheme uses QwenAttention's `blockwiseAttention` for its local blocks. Work is counted as
// score entries that pass the causal/sequence mask of each call, summed over query heads; FLOPs are
// that times 4·D (QKᵀ and PV, 2 per multiply-add).
// What it is not: overlapped (sends and compute alternate), or a mask other than causal-per-sequence.
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
    public init(
        strategy: CPStrategy, world: Int, heads: Int, kvHeads: Int, cuSeqlens: [Int],
        ulysses: Int? = nil, split: Split? = nil
    ) throws {
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
            guard u >= 1, world % u == 0 else {
                throw ShardingError.badWorld("Ulysses degree \(u) does not divide world \(world)")
            }
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
    /// ulysses / usp:         (U − 1) · n · 4 · [ (h + 2·h_kv)·D  +  h·(D + 1) ]  +  (R − 1) · 2 · h_kv · (T/R) · D · 4
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

/// Runs `plan`'s scheme on one rank: q (H, n, D), k/v (Hkv, n, D) = this rank's tokens
/// (`Sharding.shard(x, plan.layouts[rank])`) → this rank's rows of full causal attention. `path`
/// picks the local kernel: `.blockwise` (default) or `.naive` (QwenAttention's full-score reference).
public func contextParallelAttention(
    q: Tensor, k: Tensor, v: Tensor, plan: CPPlan, comm: Communicator,
    compute: Compute = .fast(threads: 1)
) -> CPResult {
    precondition(
        comm.worldSize == plan.world,
        "contextParallelAttention: communicator has \(comm.worldSize) ranks, plan \(plan.world)")
    switch plan.strategy {
    case .ring, .zigzag:
        return ringAttentionForward(q: q, k: k, v: v, layouts: plan.layouts, comm: comm, compute: compute)
    case .llama3: return llama3AttentionForward(q: q, k: k, v: v, layouts: plan.layouts, comm: comm, compute: compute)
    case .ulysses, .usp: return uspAttentionForward(q: q, k: k, v: v, plan: plan, comm: comm, compute: compute)
    }
}
