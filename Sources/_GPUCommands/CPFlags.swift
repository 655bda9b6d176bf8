// The flags of `eaglet cp` (threads or Open MPI) and `eaglet-gpu cp` (NCCL), declared once: one
// context-parallel scheme on seeded q, k, v; ContextParallel's `CPCheck` validates them.
import ArgumentParser
import ContextParallel

/// The scheme, world and shapes both `cp` commands take.
public struct CPFlags: ParsableArguments {
    @Option(help: "ring | zigzag | llama3 | ulysses | usp") public var strategy: String
    @Option(help: "Number of ranks W (under mpirun or over NCCL: the number of processes).") public var world: Int
    @Option(help: "Ulysses degree U for usp (default gcd(heads, W)).") public var ulysses: Int?
    @Option(help: "Sequence length T.") public var seq: Int
    @Option(help: "Query heads H.") public var heads: Int
    @Option(name: .customLong("kv-heads"), help: "Key/value heads Hkv (divides H).") public var kvHeads: Int
    @Option(name: .customLong("head-dim"), help: "Head dimension D.") public var headDim: Int
    @Option(help: "Seed of the seeded q, k, v.") public var seed: UInt64 = 0
    @Flag(help: "Print one JSON line.") public var json = false

    public init() {}

    /// The validated check: seeded inputs and the full-attention reference (a `CPCheckError` naming the flag
    /// otherwise).
    public func check() throws -> CPCheck {
        try CPCheck(
            strategy: strategy, world: world, ulysses: ulysses, seq: seq, heads: heads, kvHeads: kvHeads,
            headDim: headDim, seed: seed)
    }
}
