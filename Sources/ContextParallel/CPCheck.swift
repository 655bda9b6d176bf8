// The check behind `eaglet cp` (threads or Open MPI) and `eaglet-gpu cp` (NCCL): one context-parallel scheme on
// seeded q, k, v against single-rank full attention, with bytes sent and attention FLOPs per rank (chapter 13,
// docs/spec.md §8.2–8.4). Written once so both commands validate the same flags and print the same JSON line.
//
// What it is: `CPCheck` validates the flags (typed `CPCheckError`s naming the flag), builds q (H, T, D) and k, v
// (Hkv, T, D) from seeds 1, 2, 3 past --seed and the reference; `rankStats` runs the scheme on one rank and
// measures it; `CPCheckReport` combines every rank's statistics into the JSON fields and the text lines.
// What it is not: a benchmark (eaglet-bench cp times the schemes).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Tensor
import _Essentials

/// A `cp` flag that cannot be run, with the flag's name.
public struct CPCheckError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Which ranks ran the check: threads of one process, Open MPI processes, or NCCL processes (one per GPU).
public enum CPTransport: String, Sendable {
    case threads, mpi, nccl
}

/// One validated `cp` request with its seeded inputs and the full-attention reference.
public struct CPCheck: Sendable {
    public let strategy: CPStrategy
    public let plan: CPPlan
    public let seq: Int, heads: Int, kvHeads: Int, headDim: Int
    public let q: Tensor, k: Tensor, v: Tensor
    let refOut: Tensor, refLse: Tensor

    /// q holds T·H·D floats: requests above this are refused before anything is allocated.
    public static let elementLimit = 1 << 28

    /// Validates the flags as `eaglet cp` always has: a known strategy, positive sizes, W in 1 … 256, T·H·D at
    /// most `elementLimit` (checked for overflow), then `CPPlan`'s own rules (divisibility, Ulysses degree).
    public init(
        strategy: String, world: Int, ulysses: Int?, seq: Int, heads: Int, kvHeads: Int, headDim: Int, seed: UInt64
    ) throws {
        plan = try CPCheck.plan(
            strategy: strategy, world: world, ulysses: ulysses, seq: seq, heads: heads, kvHeads: kvHeads,
            headDim: headDim)
        self.strategy = plan.strategy; self.seq = seq; self.heads = heads; self.kvHeads = kvHeads
        self.headDim = headDim
        q = Tensor.seeded([heads, seq, headDim], seed: seed &+ 1)
        k = Tensor.seeded([kvHeads, seq, headDim], seed: seed &+ 2)
        v = Tensor.seeded([kvHeads, seq, headDim], seed: seed &+ 3)
        (refOut, refLse) = try fullAttention(q: q, k: k, v: v, cuSeqlens: [0, seq])
    }

    /// The flags' plan, or a `CPCheckError` naming the flag (the checks of `init`; `eaglet-gpu cp` passes its own
    /// `elementLimit`, its inputs living on a GPU host).
    public static func plan(
        strategy: String, world: Int, ulysses: Int?, seq: Int, heads: Int, kvHeads: Int, headDim: Int,
        elementLimit: Int = CPCheck.elementLimit
    ) throws -> CPPlan {
        guard let s = CPStrategy(rawValue: strategy) else {
            throw CPCheckError("--strategy: \"\(strategy)\" is not one of ring, zigzag, llama3, ulysses, usp")
        }
        guard seq >= 1, heads >= 1, kvHeads >= 1, headDim >= 1 else {
            throw CPCheckError("--seq, --heads, --kv-heads and --head-dim must be positive")
        }
        // Ranks are threads or processes: a world beyond 256 is a typo, not an experiment.
        guard world >= 1, world <= 256 else { throw CPCheckError("--world must be in 1 … 256 (got \(world))") }
        // An overflowing product once trapped here.
        let (th, o1) = seq.multipliedReportingOverflow(by: heads)
        let (thd, o2) = th.multipliedReportingOverflow(by: headDim)
        guard !o1, !o2, thd <= elementLimit else {
            throw CPCheckError(
                "--seq × --heads × --head-dim is \(o1 || o2 ? "past Int" : "\(thd)") elements per tensor, above the limit of \(elementLimit)"
            )
        }
        return try CPPlan(
            strategy: s, world: world, heads: heads, kvHeads: kvHeads, cuSeqlens: [0, seq], ulysses: ulysses)
    }

    /// Runs the scheme on `comm`'s rank and returns [max |Δout|, max |out_ref|, max |Δlse|, max |lse_ref|, bytes
    /// sent, score entries] against the reference rows of the tokens this rank holds.
    public func rankStats(_ comm: Communicator) -> [Double] {
        let l = plan.layouts[comm.rank]
        let r = contextParallelAttention(
            q: Sharding.shard(q, l), k: Sharding.shard(k, l), v: Sharding.shard(v, l), plan: plan, comm: comm)
        let eo = Sharding.shard(refOut, l), el = Sharding.shard(refLse, l)
        var st = [0.0, 0, 0, 0, Double(comm.bytesSent), Double(r.scoreEntries)]
        for (a, b) in zip(r.out.storage, eo.storage) {
            st[0] = max(st[0], Double(abs(a - b))); st[1] = max(st[1], Double(abs(b)))
        }
        for (a, b) in zip(r.lse.storage, el.storage) {
            st[2] = max(st[2], Double(abs(a - b))); st[3] = max(st[3], Double(abs(b)))
        }
        return st
    }

    /// Every rank's `rankStats`, indexed by rank, gathered over `comm` exactly: each Double travels as the two
    /// 32-bit halves of its bit pattern (a byte count past 2²⁴ would not survive a Float).
    public static func gatherStats(_ mine: [Double], over comm: Communicator) -> [[Double]] {
        let words = mine.flatMap {
            [
                Float(bitPattern: UInt32(truncatingIfNeeded: $0.bitPattern)),
                Float(bitPattern: UInt32($0.bitPattern >> 32))
            ]
        }
        return comm.allGather(words).map { w in
            stride(from: 0, to: w.count - 1, by: 2).map {
                Double(bitPattern: UInt64(w[$0].bitPattern) | UInt64(w[$0 + 1].bitPattern) << 32)
            }
        }
    }

    /// The report of all ranks' statistics.
    public func report(_ stats: [[Double]], transport: CPTransport) -> CPCheckReport {
        CPCheckReport(check: self, transport: transport, summary: CPRankSummary(stats, headDim: headDim))
    }
}

/// What every `cp` report states (`eaglet cp`, `eaglet-gpu cp`), from every rank's statistics [max |Δout|,
/// max |out_ref|, max |Δlse|, max |lse_ref|, bytes sent, score entries, …]: the worst absolute error, the normwise
/// relative error (out's and lse's, the larger), bytes and attention FLOPs (score entries · 4·D) per rank, and the
/// FLOP imbalance max/min.
public struct CPRankSummary: Sendable {
    public let maxAbsError: Double, maxRelError: Double
    public let bytesPerRank: [Int], flopsPerRank: [Int]
    public let imbalance: Double

    public init(_ stats: [[Double]], headDim: Int) {
        maxAbsError = stats.map { max($0[0], $0[2]) }.max() ?? 0
        let relOut = (stats.map { $0[0] }.max() ?? 0) / max(1e-30, stats.map { $0[1] }.max() ?? 0)
        let relLse = (stats.map { $0[2] }.max() ?? 0) / max(1e-30, stats.map { $0[3] }.max() ?? 0)
        maxRelError = max(relOut, relLse)
        bytesPerRank = stats.map { Int($0[4]) }
        flopsPerRank = stats.map { Int($0[5]) * 4 * headDim }
        imbalance = Double(flopsPerRank.max() ?? 0) / Double(max(1, flopsPerRank.min() ?? 1))
    }

    /// `eaglet cp`'s JSON keys: strategy, world, ulysses, ring, mpi, nccl, max_abs_error, max_rel_error,
    /// bytes_per_rank, bytes_formula, flops_per_rank, imbalance.
    public func keys(plan p: CPPlan, transport: CPTransport, bytesFormula: Int) -> [String: Any] {
        [
            "strategy": p.strategy.rawValue, "world": p.world, "ulysses": p.ulysses, "ring": p.ring,
            "mpi": transport == .mpi, "nccl": transport == .nccl, "max_abs_error": maxAbsError,
            "max_rel_error": maxRelError, "bytes_per_rank": bytesPerRank, "bytes_formula": bytesFormula,
            "flops_per_rank": flopsPerRank, "imbalance": imbalance
        ]
    }
}

/// What `cp` prints: errors against full attention, bytes and FLOPs per rank, chapter 13's byte formula.
public struct CPCheckReport: Sendable {
    public let check: CPCheck
    public let transport: CPTransport
    public let summary: CPRankSummary
    public var maxAbsError: Double { summary.maxAbsError }
    public var maxRelError: Double { summary.maxRelError }
    public var bytesPerRank: [Int] { summary.bytesPerRank }
    public var flopsPerRank: [Int] { summary.flopsPerRank }
    public var imbalance: Double { summary.imbalance }
    public var bytesFormula: Int { check.plan.forwardBytesPerRank(headDim: check.headDim) }

    /// One JSON object, keys sorted: `CPRankSummary.keys`.
    public func jsonLine() throws -> String {
        let obj = summary.keys(plan: check.plan, transport: transport, bytesFormula: bytesFormula)
        return String(decoding: try JSON.serialize(obj), as: UTF8.self)
    }

    /// The four lines of the plain report.
    public var lines: [String] {
        let p = check.plan
        let ranks = ["threads": "threads", "mpi": "MPI processes", "nccl": "NCCL processes"][transport.rawValue] ?? ""
        return [
            "\(check.strategy.rawValue): W=\(p.world) (Ulysses \(p.ulysses) × ring \(p.ring)), T=\(check.seq), H=\(check.heads), Hkv=\(check.kvHeads), D=\(check.headDim), \(ranks)",
            "max abs error vs full attention: \(maxAbsError)   max rel error: \(maxRelError)",
            "bytes sent per rank: \(bytesPerRank)   (formula: \(bytesFormula))",
            "attention FLOPs per rank: \(flopsPerRank)   imbalance max/min: \(cFormat("%.4f", imbalance))"
        ]
    }
}
