// `eaglet-gpu cp`: `eaglet cp` on GPUs — chapter 13's schemes as device programs (EagletGPU's CPDevice.swift): each
// rank runs the flash kernel on its shard, merges by log-sum-exp and exchanges bf16 rows on a second stream. The
// same flags and validation as `eaglet cp` (ContextParallel's `CPCheck.plan`), checked against the flash kernel run
// once over the whole sequence (`GPUCPCheck`), and the same JSON keys plus the device's. Two ways to run the ranks:
//   over NCCL, one process per GPU: --rank R (or OMPI_COMM_WORLD_RANK under mpirun), --device (default its local
//   rank) and --id-file PATH, where rank 0 writes NCCL's unique id and the others wait for it; rank 0 prints;
//   --ranks-on-one-gpu: W threads in this process sharing one GPU, exchanging by device copies — every scheme's
//   program on the kernels where only one GPU is lent (its times share that GPU: no scaling figure).
// Without a GPU or without libnccl: one line naming what was looked for, exit code 1.
import ArgumentParser
import ContextParallel
import Eagle
import EagletGPU
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Qwen2
import Tensor
import _Essentials

public struct GPUContextParallelCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cp",
        abstract: "eaglet cp on GPUs: each rank's flash kernel, LSE merge and exchanges on its device; rank 0 prints.",
        discussion: """
            Over NCCL: start W processes, each with the same flags and --id-file and its own --rank (or under \
            mpirun, which sets OMPI_COMM_WORLD_RANK): rank 0 writes NCCL's unique id to the file (which must not \
            exist yet), the others wait for it (--id-timeout seconds). Each process opens GPU --device (default: \
            OMPI_COMM_WORLD_LOCAL_RANK under mpirun, else the rank; pass 0 when CUDA_VISIBLE_DEVICES gives each \
            process one GPU). libnccl.so.2 is looked for in EAGLET_NCCL_LIBRARY, the CUDA folders and the \
            nvidia-nccl Python wheels. NCCL_NVLS_ENABLE=0 unless set. With --ranks-on-one-gpu the W ranks are \
            threads of this process sharing one GPU (device copies instead of NCCL): the same device program, \
            checked on one GPU; its times share that GPU. Every rank's out and lse are compared with the flash \
            kernel run once over all T tokens (skip with --no-reference).
            """)

    @OptionGroup var cp: CPFlags
    @OptionGroup var ranks: GPURankFlags
    @Flag(name: .customLong("no-reference"), help: "Skip the one-GPU reference (a sequence too long for one GPU).")
    var noReference = false

    public init() {}

    public func run() throws {
        try reporting("cp") {
            try ranks.validate()
            let check = try GPUCPCheck(
                strategy: cp.strategy, world: cp.world, ulysses: cp.ulysses, seq: cp.seq, heads: cp.heads,
                kvHeads: cp.kvHeads, headDim: cp.headDim, seed: cp.seed)
            try run(check)
        }
    }

    /// The reference on this process's GPU, then every rank's program; rank 0 prints the JSON line (and without
    /// --json the GPU and how the ranks ran).
    func run(_ check: GPUCPCheck) throws {
        let ranks = try self.ranks.open(world: cp.world, plan: check.plan, command: "cp")
        let ref = noReference ? nil : try check.reference(on: ranks.gpu, repeats: self.ranks.repeats)
        let refRows = ref.map { (out: $0.out, lse: $0.lse) }
        let repeats = self.ranks.repeats
        guard let stats = try ranks.run({ try check.runRank(backend: $0, reference: refRows, repeats: repeats) })
        else { return }
        print(
            try check.report(
                stats, transport: ranks.transport, onOneGPU: ranks.onOneGPU, device: ranks.gpu.name,
                flash: ranks.gpu.flashKernel(headDim: check.headDim), singleSeconds: ref?.seconds,
                overlap: ranks.overlap))
        if !cp.json { print(ranks.summary) }
    }
}

/// Who the ranks of a GPU `cp` command are: W threads on one GPU (--ranks-on-one-gpu), or this process as one rank
/// of W over NCCL.
public struct GPURankFlags: ParsableArguments {
    @Flag(name: .customLong("ranks-on-one-gpu"), help: "Run the W ranks as threads sharing one GPU (no NCCL).")
    var ranksOnOneGPU = false
    @Option(help: "Timed runs after one warm-up run (the median is printed).") var repeats = 3
    @Flag(name: .customLong("no-overlap"), help: "Attention waits for each exchange (to measure the overlap).")
    var noOverlap = false
    @Option(help: "This process's rank, 0 ..< W (default: OMPI_COMM_WORLD_RANK).") var rank: Int?
    @Option(name: .customLong("id-file"), help: "Where rank 0 writes NCCL's unique id (needed for W > 1).")
    var idFile: String?
    @Option(name: .customLong("id-timeout"), help: "Seconds ranks > 0 wait for the id file.") var idTimeout = 120.0
    @Option(
        help: "GPU ordinal to open (default: OMPI_COMM_WORLD_LOCAL_RANK, else the rank; 0 with --ranks-on-one-gpu).")
    var device: Int?

    public init() {}

    public func validate() throws {
        guard repeats >= 1, repeats <= 100 else { throw CPCheckError("--repeats must be in 1 … 100") }
    }

    /// This process's view of the ranks: W threads on this process's GPU (--ranks-on-one-gpu), or this process as
    /// one NCCL rank of W (USP's two levels split off for `plan`).
    func open(world: Int, plan: CPPlan, command: String) throws -> GPURanks {
        if ranksOnOneGPU {
            let ordinal = try ordinal(default: 0)
            return try GPURanks(
                gpu: try GPU.open(ordinal: ordinal), world: world, ordinal: ordinal, overlap: !noOverlap,
                command: command)
        }
        let (gpu, transport) = try join(world: world)
        let exchange = NCCLDeviceExchange(transport: transport)
        try exchange.splitForUSP(plan)
        return try GPURanks(gpu: gpu, world: world, nccl: exchange, overlap: !noOverlap, command: command)
    }

    /// --device, or `fallback`, as a GPU ordinal.
    func ordinal(default fallback: Int) throws -> Int32 {
        let o = device ?? fallback
        guard let g = Int32(exactly: o), g >= 0 else { throw CPCheckError("--device \(o) is not a GPU ordinal") }
        return g
    }

    /// This process's GPU and its NCCL rank of `world`: rank 0 makes the unique id and publishes it in --id-file,
    /// the others wait for the file.
    func join(world: Int) throws -> (GPU, NCCLDeviceTransport) {
        let env = ProcessInfo.processInfo.environment
        guard let r = rank ?? env["OMPI_COMM_WORLD_RANK"].flatMap({ Int($0) }) else {
            throw CPCheckError("--rank is needed (or start the processes with mpirun, or pass --ranks-on-one-gpu)")
        }
        guard r >= 0, r < world else { throw CPCheckError("--rank \(r) is outside 0 ..< \(world)") }
        guard world == 1 || idFile != nil else {
            throw CPCheckError("--id-file PATH is needed for W > 1 (the same path for every rank)")
        }
        let gpu = try GPU.open(
            ordinal: try ordinal(default: env["OMPI_COMM_WORLD_LOCAL_RANK"].flatMap({ Int($0) }) ?? r))
        let id: NCCLUniqueId
        if r == 0 {
            id = try NCCLDeviceTransport.makeUniqueId()
            if let path = idFile, world > 1 { try NCCLUniqueIdFile.publish(id, to: path) }
        } else {
            id = try NCCLUniqueIdFile.wait(at: idFile ?? "", timeout: idTimeout)
        }
        return (gpu, try NCCLDeviceTransport(gpu: gpu, rank: r, world: world, id: id))
    }
}

/// The ranks of one GPU `cp` run as this process sees them: its GPU (the one its threads share, or its own rank's)
/// and how a rank's program runs on it.
final class GPURanks {
    let gpu: GPU, world: Int, overlap: Bool
    /// The command's name, for the line a failing rank thread prints.
    let command: String
    /// Ranks as threads: the GPU ordinal each thread opens. Over NCCL: this rank's backend.
    private let ordinal: Int32?, backend: GPUCPBackend?, nccl: NCCLDeviceExchange?

    init(gpu: GPU, world: Int, ordinal: Int32, overlap: Bool, command: String) throws {
        self.gpu = gpu; self.world = world; self.ordinal = ordinal; self.overlap = overlap; self.command = command
        backend = nil; nccl = nil
        try gpu.loadContextParallelKernels() // once here, so the rank threads only read the compile cache
    }

    init(gpu: GPU, world: Int, nccl: NCCLDeviceExchange, overlap: Bool, command: String) throws {
        self.gpu = gpu; self.world = world; self.nccl = nccl; self.overlap = overlap; self.command = command
        ordinal = nil
        let b = try GPUCPBackend(gpu: gpu, exchanges: nccl)
        b.overlap = overlap
        backend = b
    }

    var onOneGPU: Bool { nccl == nil }
    var transport: CPTransport { onOneGPU ? .threads : .nccl }
    var summary: String {
        gpu.summary + "; "
            + (nccl.map { "NCCL \($0.transport.version) from \($0.transport.libraryPath)" }
                ?? "\(world) ranks as threads on this one GPU")
    }

    /// Every rank's `body` (its statistics as Doubles): on W threads, each with the GPU open (the primary context
    /// current) and a LocalDeviceExchange; or on this NCCL rank, gathered from all. Returns every rank's statistics
    /// where this process reports (always with threads, on rank 0 over NCCL), else nil. A rank thread that fails
    /// ends the process with one line (the others would wait for it forever).
    func run(_ body: @escaping @Sendable (GPUCPBackend) throws -> [Double]) throws -> [[Double]]? {
        if let backend, let nccl {
            let stats = CPCheck.gatherStats(try body(backend), over: NCCLCommunicator(transport: nccl.transport))
            return nccl.rank == 0 ? stats : nil
        }
        guard let ordinal else { return nil }
        let board = LocalDeviceBoard(world: world), overlap = overlap, command = command
        return ThreadWorld.run(world: world) { comm -> [Double] in
            do {
                let b = try GPUCPBackend(
                    gpu: try GPU.open(ordinal: ordinal), exchanges: LocalDeviceExchange(rank: comm.rank, board: board))
                b.overlap = overlap
                return try body(b)
            } catch {
                printToStandardError("eaglet: \(command): rank \(comm.rank): \(error)")
                Glibc.exit(1)
            }
        }
    }
}

/// `eaglet-gpu cp-prefill`: the decoder of a bf16 model (a synth checkpoint at real size) prefilling T seeded text
/// ids with the sequence sharded over W ranks (EagletGPU's GPUShardedDecoder.swift), every rank's final normed
/// hidden states against the one-GPU prefill's rows, with the wall time of both. Beside it, the yardstick: the
/// same one-GPU prefill with attention on the mma.sync flash kernel (64-key tiles) instead of the Hopper one (128)
/// — the same model, another valid kernel, so bf16 rounding lands elsewhere — against the same rows: the sharded
/// prefill should differ by about as much. `--layers 1,4,28` repeats the study after that many decoder layers.
public struct GPUContextParallelPrefillCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cp-prefill",
        abstract: "A model's decoder prefilling T tokens sharded over W ranks, against the one-GPU prefill.")

    @Option(help: "A checkpoint folder (bf16 weights; e.g. eaglet-gpu synth --preset eagle2.5-8b).") var model: String
    @Option(help: "ring | zigzag | llama3 | ulysses | usp") var strategy: String
    @Option(help: "Number of ranks W.") var world: Int
    @Option(help: "Ulysses degree U for usp (default gcd(heads, W)).") var ulysses: Int?
    @Option(help: "Prompt length T (seeded text ids).") var seq: Int
    @Option(help: "Decoder layers to run, comma-separated (default: all), one line each.") var layers: String?
    @OptionGroup var ranks: GPURankFlags
    @Flag(name: .customLong("no-reference"), help: "Skip the one-GPU prefill (a sequence too long for one GPU).")
    var noReference = false
    @Flag(help: "Print one JSON line per layer count.") var json = false

    public init() {}

    /// The model shared by the rank threads of one process: its weights are only read.
    // @unchecked: GPUEagle's buffers are written once, at upload, before any rank thread starts.
    final class SharedModel: @unchecked Sendable {
        let model: GPUEagle
        init(_ model: GPUEagle) { self.model = model }
    }

    /// What the one-GPU prefill gives: its rows (T, C), its median seconds, and the yardstick's error.
    struct Reference: Sendable {
        let rows: [Float], seconds: Double, otherKernelError: Double
    }

    public func run() throws {
        try reporting("cp-prefill") {
            try ranks.validate()
            let loaded = try EagleModel.load(directory: model)
            let tc = loaded.config.text
            let counts = try layers.map { try GPUBench.tokenCounts($0) } ?? [tc.numHiddenLayers]
            guard counts.allSatisfy({ $0 >= 1 && $0 <= tc.numHiddenLayers }) else {
                throw CPCheckError("--layers: each count must be in 1 … \(tc.numHiddenLayers)")
            }
            let plan = try CPCheck.plan(
                strategy: strategy, world: world, ulysses: ulysses, seq: seq, heads: tc.numAttentionHeads,
                kvHeads: tc.numKeyValueHeads, headDim: tc.headDim, elementLimit: GPUCPCheck.elementLimit)
            guard seq >= 2 else { throw CPCheckError("--seq must be at least 2") }
            let ids = GPUGenerateCommand.syntheticIDs(
                count: seq, vocabulary: tc.vocabSize, avoiding: loaded.config.imageTokenIndex)
            let ranks = try self.ranks.open(world: world, plan: plan, command: "cp-prefill")
            let g = SharedModel(try GPUEagle(gpu: ranks.gpu, model: loaded, precision: .bf16))
            let repeats = self.ranks.repeats
            for n in counts {
                let ref = noReference ? nil : try reference(g.model, ids: ids, layers: n)
                let refRows = ref?.rows
                guard
                    let stats = try ranks.run({
                        try GPUContextParallelPrefillCommand.runRank(
                            g.model, ids: ids, plan: plan, layers: n, backend: $0, reference: refRows,
                            repeats: repeats)
                    })
                else { continue }
                try emit(stats, plan: plan, layers: n, headDim: tc.headDim, ranks: ranks, ref: ref)
            }
        }
    }

    /// The one-GPU prefill (`GPUEagle.decode` with a fresh cache) through the first `layers` layers: final normed
    /// rows (T, C) and the median seconds of `repeats` timed runs after a warm-up; then the same prefill on the
    /// mma.sync flash kernel, held against those rows (max |Δ| ÷ max |ref|).
    func reference(_ g: GPUEagle, ids: [Int], layers: Int) throws -> Reference {
        var times = [Double](), rows = [Float]()
        for i in 0...ranks.repeats {
            let e = try g.embed(ids: ids, visual: nil)
            try g.gpu.synchronize()
            let t0 = ContinuousClock.now
            let out = try g.decode(e, tokens: ids.count, cache: try g.makeCache(capacity: ids.count), layers: layers)
            try g.gpu.synchronize()
            if i > 0 { times.append(secondsSince(t0)) }
            if i == ranks.repeats { rows = try g.gpu.download(out) }
            g.gpu.releasePool()
        }
        g.gpu.hopperFlashEnabled = false
        defer { g.gpu.hopperFlashEnabled = true }
        let other = try g.gpu.download(
            try g.decode(
                try g.embed(ids: ids, visual: nil), tokens: ids.count, cache: try g.makeCache(capacity: ids.count),
                layers: layers))
        g.gpu.releasePool()
        let c = closeness(other, rows, .bf16)
        return Reference(rows: rows, seconds: times.sorted()[times.count / 2], otherKernelError: Double(c.maxRelative))
    }

    /// One rank: `repeats` timed prefills after a warm-up, each between barriers. Returns [max |Δ|, max |ref|,
    /// bytes sent per prefill, median seconds].
    static func runRank(
        _ g: GPUEagle, ids: [Int], plan: CPPlan, layers: Int, backend: GPUCPBackend, reference: [Float]?, repeats: Int
    ) throws -> [Double] {
        let c = g.config.text.hiddenSize
        var times = [Double](), stats = [Double](repeating: 0, count: 4)
        for i in 0...repeats {
            try backend.exchanges.barrier()
            let (t0, bytes0) = (ContinuousClock.now, backend.bytesSent)
            let out = try g.contextParallelPrefill(ids: ids, plan: plan, backend: backend, layers: layers)
            try backend.gpu.synchronize()
            try backend.exchanges.barrier()
            if i > 0 { times.append(secondsSince(t0)) }
            stats[2] = Double(backend.bytesSent - bytes0)
            if i == repeats, let ref = reference {
                let r = closeness(
                    try backend.gpu.download(out), GPUCPCheck.rows(ref, cols: c, plan.layouts[backend.rank]), .bf16)
                stats[0] = Double(r.maxAbsDiff); stats[1] = Double(r.maxAbsRef)
            }
            backend.gpu.releasePool()
        }
        stats[3] = times.sorted()[times.count / 2]
        return stats
    }

    /// The JSON line: strategy, world, ulysses, ring, seq, layers, max_rel_error (max |Δ| over ranks ÷ max |ref|,
    /// judged at the tensor's scale as whole bf16 models are), mma_flash_max_rel_error (the yardstick), within_bf16,
    /// within_yardstick (within the bf16 row, or within 1.5× the yardstick: docs/tolerances.md),
    /// bytes_per_rank, bytes_formula (layers × deviceForwardBytesPerRank), seconds, single_gpu_seconds,
    /// scaling_efficiency (NCCL only), device, ranks_on_one_gpu, flash, overlap.
    func emit(_ stats: [[Double]], plan: CPPlan, layers: Int, headDim: Int, ranks: GPURanks, ref: Reference?) throws {
        let gpu = ranks.gpu
        let rel = (stats.map { $0[0] }.max() ?? 0) / max(1e-30, stats.map { $0[1] }.max() ?? 0)
        let seconds = stats.map { $0[3] }.max() ?? 0
        var obj: [String: Any] = [
            "strategy": plan.strategy.rawValue, "world": plan.world, "ulysses": plan.ulysses, "ring": plan.ring,
            "seq": seq, "layers": layers, "max_rel_error": rel, "within_bf16": rel <= Double(Tolerance.bf16.rtol),
            "bytes_per_rank": stats.map { Int($0[2]) },
            "bytes_formula": layers * plan.deviceForwardBytesPerRank(headDim: headDim),
            "seconds": seconds, "device": gpu.name, "ranks_on_one_gpu": ranks.onOneGPU, "reference": ref != nil,
            "flash": gpu.flashKernel(headDim: headDim), "overlap": ranks.overlap
        ]
        if let ref {
            obj["single_gpu_seconds"] = ref.seconds
            obj["mma_flash_max_rel_error"] = ref.otherKernelError
            obj["within_yardstick"] = rel <= max(Double(Tolerance.bf16.rtol), 1.5 * ref.otherKernelError)
            if !ranks.onOneGPU { obj["scaling_efficiency"] = ref.seconds / (seconds * Double(plan.world)) }
        }
        print(String(decoding: try JSON.serialize(obj), as: UTF8.self))
        if !json { print(ranks.summary) }
    }
}
