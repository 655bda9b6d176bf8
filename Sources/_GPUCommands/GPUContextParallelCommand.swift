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
import EagletGPU
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
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
    @Flag(name: .customLong("ranks-on-one-gpu"), help: "Run the W ranks as threads sharing one GPU (no NCCL).")
    var ranksOnOneGPU = false
    @Option(help: "Timed runs after one warm-up run (the median is printed).") var repeats = 3
    @Flag(name: .customLong("no-reference"), help: "Skip the one-GPU reference (a sequence too long for one GPU).")
    var noReference = false
    @Option(help: "This process's rank, 0 ..< W (default: OMPI_COMM_WORLD_RANK).") var rank: Int?
    @Option(name: .customLong("id-file"), help: "Where rank 0 writes NCCL's unique id (needed for W > 1).")
    var idFile: String?
    @Option(name: .customLong("id-timeout"), help: "Seconds ranks > 0 wait for the id file.") var idTimeout = 120.0
    @Option(
        help: "GPU ordinal to open (default: OMPI_COMM_WORLD_LOCAL_RANK, else the rank; 0 with --ranks-on-one-gpu).")
    var device: Int?

    public init() {}

    public func run() throws {
        try reporting("cp") {
            guard repeats >= 1, repeats <= 100 else { throw CPCheckError("--repeats must be in 1 … 100") }
            let check = try GPUCPCheck(
                strategy: cp.strategy, world: cp.world, ulysses: cp.ulysses, seq: cp.seq, heads: cp.heads,
                kvHeads: cp.kvHeads, headDim: cp.headDim, seed: cp.seed)
            if ranksOnOneGPU { try runOnOneGPU(check) } else { try runOverNCCL(check) }
        }
    }

    func gpuOrdinal(_ ordinal: Int) throws -> Int32 {
        guard let o = Int32(exactly: ordinal), o >= 0 else {
            throw CPCheckError("--device \(ordinal) is not a GPU ordinal")
        }
        return o
    }

    /// The JSON line; without --json also the GPU and how the ranks ran.
    func emit(_ report: String, gpu: GPU, extra: String) {
        print(report)
        if !cp.json { print("\(gpu.summary); \(extra)") }
    }

    /// W rank threads, each with the GPU open (the primary context current) and a LocalDeviceExchange.
    func runOnOneGPU(_ check: GPUCPCheck) throws {
        let ordinal = try gpuOrdinal(device ?? 0)
        let gpu = try GPU.open(ordinal: ordinal)
        let ref = noReference ? nil : try check.reference(on: gpu, repeats: repeats)
        let refRows = ref.map { (out: $0.out, lse: $0.lse) }
        try gpu.loadContextParallelKernels()
        let board = LocalDeviceBoard(world: check.plan.world)
        let repeats = self.repeats
        let stats = ThreadWorld.run(world: check.plan.world) { comm -> [Double] in
            do {
                let g = try GPU.open(ordinal: ordinal)
                let backend = try GPUCPBackend(gpu: g, exchanges: LocalDeviceExchange(rank: comm.rank, board: board))
                return try check.runRank(backend: backend, reference: refRows, repeats: repeats)
            } catch {
                printToStandardError("eaglet: cp: rank \(comm.rank): \(error)")
                Glibc.exit(1)
            }
        }
        let report = try check.report(
            stats, transport: .threads, onOneGPU: true, device: gpu.name, flash: gpu.hopperFlashVariant,
            singleSeconds: ref?.seconds)
        emit(report, gpu: gpu, extra: "\(check.plan.world) ranks as threads on this one GPU")
    }

    /// This process is one rank of W over NCCL.
    func runOverNCCL(_ check: GPUCPCheck) throws {
        let world = cp.world
        let env = ProcessInfo.processInfo.environment
        guard let r = rank ?? env["OMPI_COMM_WORLD_RANK"].flatMap({ Int($0) }) else {
            throw CPCheckError("--rank is needed (or start the processes with mpirun, or pass --ranks-on-one-gpu)")
        }
        guard r >= 0, r < world else { throw CPCheckError("--rank \(r) is outside 0 ..< \(world)") }
        guard world == 1 || idFile != nil else {
            throw CPCheckError("--id-file PATH is needed for W > 1 (the same path for every rank)")
        }
        let gpu = try GPU.open(
            ordinal: try gpuOrdinal(device ?? env["OMPI_COMM_WORLD_LOCAL_RANK"].flatMap({ Int($0) }) ?? r))
        let id: NCCLUniqueId
        if r == 0 {
            id = try NCCLDeviceTransport.makeUniqueId()
            if let path = idFile, world > 1 { try NCCLUniqueIdFile.publish(id, to: path) }
        } else {
            id = try NCCLUniqueIdFile.wait(at: idFile ?? "", timeout: idTimeout)
        }
        let transport = try NCCLDeviceTransport(gpu: gpu, rank: r, world: world, id: id)
        let ref = noReference ? nil : try check.reference(on: gpu, repeats: repeats)
        let backend = try GPUCPBackend(gpu: gpu, exchanges: NCCLDeviceExchange(transport: transport))
        let mine = try check.runRank(backend: backend, reference: ref.map { ($0.out, $0.lse) }, repeats: repeats)
        let stats = CPCheck.gatherStats(mine, over: NCCLCommunicator(transport: transport))
        guard r == 0 else { return }
        let report = try check.report(
            stats, transport: .nccl, onOneGPU: false, device: gpu.name, flash: gpu.hopperFlashVariant,
            singleSeconds: ref?.seconds)
        emit(report, gpu: gpu, extra: "NCCL \(transport.version) from \(transport.libraryPath)")
    }
}
