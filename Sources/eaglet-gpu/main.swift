// eaglet-gpu: the GPU mirror as a self-contained executable for a GPU host with no Swift toolchain and
// none of Debian's libraries (docs/gpu.md): gpu-check, generate, the GPU benchmarks and context parallelism over NCCL. `make gpu-binary`
// builds it with the Swift standard library and OpenBLAS, libpng, libjpeg linked statically.
import ArgumentParser
import _GPUCommands

struct EagletGPUCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eaglet-gpu",
        abstract: "Eaglet's CPU model mirrored on an NVIDIA GPU: check it, generate with it, time it.",
        subcommands: [
            GPUCheckCommand.self, GPUGenerateCommand.self, GPUBenchCommand.self, GPUSynthCommand.self,
            GPUInfoCommand.self, GPUContextParallelCommand.self, GPUContextParallelPrefillCommand.self
        ])
}

EagletGPUCommand.main()
