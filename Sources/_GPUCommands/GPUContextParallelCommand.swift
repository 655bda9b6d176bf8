// `eaglet-gpu cp`: `eaglet cp` with one process per GPU and NCCL between them (chapter 13's schemes over
// `NCCLCommunicator`; docs/gpu.md "Context parallelism over NCCL"). The same flags, validation and JSON line
// (ContextParallel's `CPCheck`), plus who this process is: --rank R (or OMPI_COMM_WORLD_RANK under mpirun), the
// GPU it opens (--device, default its local rank), and --id-file PATH, where rank 0 writes NCCL's unique id and
// the others wait for it. Rank 0 prints. Without a GPU or without libnccl: one line naming what was looked
// for, exit code 1.
import ArgumentParser
import ContextParallel
import EagletGPU
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Tensor

public struct GPUContextParallelCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cp",
        abstract: "eaglet cp over NCCL: one process per GPU; rank 0 prints the same report.",
        discussion: """
            Start W processes, each with the same flags and --id-file and its own --rank (or under mpirun, which \
            sets OMPI_COMM_WORLD_RANK): rank 0 writes NCCL's unique id to the file (which must not exist yet), the \
            others wait for it (--id-timeout seconds). Each process opens GPU --device (default: \
            OMPI_COMM_WORLD_LOCAL_RANK under mpirun, else the rank; pass 0 when CUDA_VISIBLE_DEVICES gives each \
            process one GPU). libnccl.so.2 is looked for in EAGLET_NCCL_LIBRARY, the CUDA folders and the \
            nvidia-nccl Python wheels. NCCL_NVLS_ENABLE=0 unless set.
            """)

    @OptionGroup var cp: CPFlags
    @Option(help: "This process's rank, 0 ..< W (default: OMPI_COMM_WORLD_RANK).") var rank: Int?
    @Option(name: .customLong("id-file"), help: "Where rank 0 writes NCCL's unique id (needed for W > 1).")
    var idFile: String?
    @Option(name: .customLong("id-timeout"), help: "Seconds ranks > 0 wait for the id file.") var idTimeout = 120.0
    @Option(help: "GPU ordinal to open (default: OMPI_COMM_WORLD_LOCAL_RANK, else the rank).") var device: Int?

    public init() {}

    public func run() throws {
        try reporting("cp") {
            let check = try cp.check()
            let world = cp.world
            let env = ProcessInfo.processInfo.environment
            guard let r = rank ?? env["OMPI_COMM_WORLD_RANK"].flatMap({ Int($0) }) else {
                throw CPCheckError("--rank is needed (or start the processes with mpirun)")
            }
            guard r >= 0, r < world else { throw CPCheckError("--rank \(r) is outside 0 ..< \(world)") }
            guard world == 1 || idFile != nil else {
                throw CPCheckError("--id-file PATH is needed for W > 1 (the same path for every rank)")
            }
            let ordinal = device ?? env["OMPI_COMM_WORLD_LOCAL_RANK"].flatMap({ Int($0) }) ?? r
            guard let gpuOrdinal = Int32(exactly: ordinal), gpuOrdinal >= 0 else {
                throw CPCheckError("--device \(ordinal) is not a GPU ordinal")
            }
            let gpu = try GPU.open(ordinal: gpuOrdinal)
            let id: NCCLUniqueId
            if r == 0 {
                id = try NCCLDeviceTransport.makeUniqueId()
                if let path = idFile, world > 1 { try NCCLUniqueIdFile.publish(id, to: path) }
            } else {
                id = try NCCLUniqueIdFile.wait(at: idFile ?? "", timeout: idTimeout)
            }
            let transport = try NCCLDeviceTransport(gpu: gpu, rank: r, world: world, id: id)
            let comm = NCCLCommunicator(transport: transport)
            BLAS.setThreads(1)
            let stats = check.gatherStats(check.rankStats(comm), over: comm)
            guard r == 0 else { return }
            let report = check.report(stats, transport: .nccl)
            if cp.json {
                print(try report.jsonLine())
            } else {
                for line in report.lines { print(line) }
                print("rank 0: \(gpu.summary); NCCL \(transport.version) from \(transport.libraryPath)")
            }
        }
    }
}
