// `eaglet cp`: runs one context-parallel attention scheme on seeded q/k/v and reports its error against
// full attention, bytes sent and attention FLOPs per rank (chapter 13, docs/spec.md §8.2–8.4). Ranks are threads,
// or processes when started by `mpirun` (then --world must equal the process count and rank 0 prints). The check
// itself (validation, statistics, JSON) is ContextParallel's `CPCheck`, shared with `eaglet-gpu cp` (NCCL).
import ArgumentParser
import Eaglet
import Foundation
import _GPUCommands

struct ContextParallelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cp",
        abstract: "Check a context-parallel attention scheme against full attention; bytes and FLOPs per rank.")

    @OptionGroup var cp: CPFlags

    func run() throws {
        try reportingInputErrors {
            let check: CPCheck
            do {
                check = try cp.check()
            } catch let e as CPCheckError { throw InputError(description: e.description) }
            var stats: [[Double]]
            var transport = CPTransport.threads
            if MPICommunicator.launchedByMPI {
                transport = .mpi
                let comm = try MPICommunicator()
                defer { comm.finalize() }
                guard comm.worldSize == cp.world else {
                    // Every rank sees it; rank 0 alone says so, and every rank waits at a barrier until it has: a rank
                    // that left first could make mpirun stop rank 0 before its message was out (seen once in CI).
                    if comm.rank == 0 { // as reportingInputErrors writes an InputError
                        let why = "--world \(cp.world) differs from the \(comm.worldSize) processes started by mpirun"
                        FileHandle.standardError.write(Data("eaglet: \(why)\n".utf8))
                    }
                    comm.barrier()
                    throw ExitCode(1)
                }
                BLAS.setThreads(1)
                stats = CPCheck.gatherStats(check.rankStats(comm), over: comm)
                if comm.rank != 0 { return }
            } else {
                stats = ThreadWorld.run(world: cp.world) { check.rankStats($0) }
            }
            let report = check.report(stats, transport: transport)
            if cp.json {
                print(try report.jsonLine())
            } else {
                for line in report.lines { print(line) }
            }
        }
    }
}
