// `eaglet cp`: runs one context-parallel attention scheme on seeded q/k/v and reports its error against
// full attention, bytes sent and attention FLOPs per rank (chapter 13, docs/spec.md §8.2–8.4). Ranks are threads,
// or processes when started by `mpirun` (then --world must equal the process count and rank 0 prints).
import ArgumentParser
import Eaglet
import Foundation

struct ContextParallelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cp",
        abstract: "Check a context-parallel attention scheme against full attention; bytes and FLOPs per rank.")

    @Option(help: "ring | zigzag | llama3 | ulysses | usp")
    var strategy: String
    @Option(help: "Number of ranks W (under mpirun: the number of processes).")
    var world: Int
    @Option(help: "Ulysses degree U for usp (default gcd(heads, W)).")
    var ulysses: Int?
    @Option(help: "Sequence length T.")
    var seq: Int
    @Option(help: "Query heads H.")
    var heads: Int
    @Option(name: .customLong("kv-heads"), help: "Key/value heads Hkv (divides H).")
    var kvHeads: Int
    @Option(name: .customLong("head-dim"), help: "Head dimension D.")
    var headDim: Int
    @Option(help: "Seed of the seeded q, k, v.")
    var seed: UInt64 = 0
    @Flag(help: "Print one JSON line.")
    var json = false

    func run() throws {
        try reportingInputErrors {
            guard let s = CPStrategy(rawValue: strategy) else {
                throw InputError(
                    description: "--strategy: \"\(strategy)\" is not one of ring, zigzag, llama3, ulysses, usp")
            }
            guard seq >= 1, heads >= 1, kvHeads >= 1, headDim >= 1 else {
                throw InputError(description: "--seq, --heads, --kv-heads and --head-dim must be positive")
            }
            // Ranks are threads (or processes): a world beyond 256 is a typo, not an experiment.
            guard world >= 1, world <= 256 else {
                throw InputError(description: "--world must be in 1 … 256 (got \(world))")
            }
            // q is T·H·D floats: bound it before anything is allocated (an overflowing product once trapped).
            let limit = 1 << 28
            let (th, o1) = seq.multipliedReportingOverflow(by: heads)
            let (thd, o2) = th.multipliedReportingOverflow(by: headDim)
            guard !o1, !o2, thd <= limit else {
                throw InputError(
                    description:
                        "--seq × --heads × --head-dim is \(o1 || o2 ? "past Int" : "\(thd)") elements per tensor, above the limit of \(limit)"
                )
            }
            let plan = try CPPlan(
                strategy: s, world: world, heads: heads, kvHeads: kvHeads, cuSeqlens: [0, seq], ulysses: ulysses)
            let q = Tensor.seeded([heads, seq, headDim], seed: seed &+ 1)
            let k = Tensor.seeded([kvHeads, seq, headDim], seed: seed &+ 2)
            let v = Tensor.seeded([kvHeads, seq, headDim], seed: seed &+ 3)
            let ref = try fullAttention(q: q, k: k, v: v, cuSeqlens: [0, seq])
            // Per rank: [max |Δout|, max |out_ref|, max |Δlse|, max |lse_ref|, bytes, score entries].
            let body: @Sendable (Communicator) -> [Double] = { comm in
                let l = plan.layouts[comm.rank]
                let r = contextParallelAttention(
                    q: Sharding.shard(q, l), k: Sharding.shard(k, l), v: Sharding.shard(v, l), plan: plan, comm: comm)
                let eo = Sharding.shard(ref.out, l), el = Sharding.shard(ref.lse, l)
                var st = [0.0, 0, 0, 0, Double(comm.bytesSent), Double(r.scoreEntries)]
                for (a, b) in zip(r.out.storage, eo.storage) {
                    st[0] = max(st[0], Double(abs(a - b))); st[1] = max(st[1], Double(abs(b)))
                }
                for (a, b) in zip(r.lse.storage, el.storage) {
                    st[2] = max(st[2], Double(abs(a - b))); st[3] = max(st[3], Double(abs(b)))
                }
                return st
            }
            var stats: [[Double]]
            var mpi = false
            if MPICommunicator.launchedByMPI {
                mpi = true
                let comm = try MPICommunicator()
                defer { comm.finalize() }
                guard comm.worldSize == world else {
                    // Every rank sees it; rank 0 alone says so, and every rank waits at a barrier until it has: a rank
                    // that left first could make mpirun stop rank 0 before its message was out (seen once in CI).
                    if comm.rank == 0 { // as reportingInputErrors writes an InputError
                        let why = "--world \(world) differs from the \(comm.worldSize) processes started by mpirun"
                        FileHandle.standardError.write(Data("eaglet: \(why)\n".utf8))
                    }
                    comm.barrier()
                    throw ExitCode(1)
                }
                BLAS.setThreads(1)
                let mine = body(comm)
                stats = comm.allGather(mine.map { Float($0) }).map { $0.map(Double.init) }
                stats[comm.rank] = mine
                if comm.rank != 0 { return }
            } else {
                stats = ThreadWorld.run(world: world, body)
            }
            let maxAbs = stats.map { max($0[0], $0[2]) }.max() ?? 0
            let relOut = stats.map { $0[0] }.max()! / max(1e-30, stats.map { $0[1] }.max()!)
            let relLse = stats.map { $0[2] }.max()! / max(1e-30, stats.map { $0[3] }.max()!)
            let bytes = stats.map { Int($0[4]) }
            let flops = stats.map { Int($0[5]) * 4 * headDim }
            let imbalance = Double(flops.max()!) / Double(max(1, flops.min()!))
            let formula = plan.forwardBytesPerRank(headDim: headDim)
            if json {
                let obj: [String: Any] = [
                    "strategy": s.rawValue, "world": world, "ulysses": plan.ulysses, "ring": plan.ring,
                    "mpi": mpi, "max_abs_error": maxAbs, "max_rel_error": max(relOut, relLse),
                    "bytes_per_rank": bytes, "bytes_formula": formula, "flops_per_rank": flops, "imbalance": imbalance
                ]
                let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(
                    "\(s.rawValue): W=\(world) (Ulysses \(plan.ulysses) × ring \(plan.ring)), T=\(seq), H=\(heads), Hkv=\(kvHeads), D=\(headDim), \(mpi ? "MPI processes" : "threads")"
                )
                print("max abs error vs full attention: \(maxAbs)   max rel error: \(max(relOut, relLse))")
                print("bytes sent per rank: \(bytes)   (formula: \(formula))")
                print("attention FLOPs per rank: \(flops)   imbalance max/min: \(String(format: "%.4f", imbalance))")
            }
        }
    }
}
