// eaglet-bench gpu: the GPU benchmarks of EagletGPU (the same code as `eaglet-gpu bench`): the So400m
// tower on one tile and a Qwen2.5-7B-shaped decoder layer at 4K tokens, Eaglet's GPU mirror vs PyTorch
// eager on the same card, fp32 and bf16, plus a real-size CPU vs GPU agreement check. Without a GPU it
// fails with one line naming what was looked for. Rates are TFLOP/s (attention counted as materialised).
import ArgumentParser
import Eaglet
import Foundation

struct GPUBenchCase: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gpu",
        abstract: "So400m tower and a Qwen2.5-7B layer on the GPU: Eaglet vs PyTorch eager, fp32 and bf16.")

    @Option(help: "Prefill tokens for the decoder layer and the attention alone, comma-separated (4096,32768,131072).")
    var tokens = "4096"
    @Option(help: "Timed runs per case (median reported).") var repeats = 5
    @Flag(help: "Append the rows to docs/benchmarks.csv (or --csv-path).") var csv = false
    @Option(help: "CSV file to append to.") var csvPath = "docs/benchmarks.csv"
    @Flag(help: "Skip the PyTorch comparison.") var noTorch = false

    func run() throws {
        let result: (device: String, rows: [GPUBench.Row])
        do {
            result = try GPUBench.run(
                tokens: try GPUBench.tokenCounts(tokens), repeats: repeats,
                torchScript: noTorch ? nil : "Fixtures/generate/bench_gpu_torch.py")
        } catch {
            FileHandle.standardError.write(Data("eaglet-bench gpu: \(error)\n".utf8))
            throw ExitCode(1)
        }
        if csv { try GPUBench.appendCSV(result.rows, device: result.device, to: csvPath) }
    }
}
