// The GPU subcommands, shared by `eaglet gpu-check` and the self-contained `eaglet-gpu` executable so
// both run the same code (docs/cli.md, docs/gpu.md). Without a GPU every command fails with one line
// naming the library or device that was looked for, exit code 1.
import ArgumentParser
import Eagle
import EagletGPU
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#endif
#if canImport(Glibc)
import Glibc
#endif
import Imaging
import Tensor
import _Essentials

/// One line on stderr and exit code 1 for any input or GPU error.
func reporting(_ tool: String, _ body: () throws -> Void) throws {
    do { try body() } catch let e as CleanExit { throw e } catch let e as ExitCode { throw e } catch {
        printToStandardError("\(tool): \(error)")
        throw ExitCode(1)
    }
}

public struct GPUCheckCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "gpu-check",
        abstract:
            "Run the CPU model and its GPU mirror side by side; print max |Δ| and relative error per stage and layer.",
        discussion:
            "Exit code 0 when every stage is within the fp32-block tolerance and greedy tokens are identical, 2 when not, 1 on bad input or no GPU."
    )

    @Option(help: "Checkpoint folder (config.json, model.safetensors, tokenizer.json).") var model: String
    @Option(help: "A PNG or JPEG to ask about (optional).") var image: String?
    @Option(help: "The question.") var prompt: String
    @Option(name: .customLong("max-new-tokens"), help: "Greedy tokens to generate on both.") var maxNewTokens = 16
    @Flag(help: "Use the written-out GPU kernels (naive matmul and attention) instead of cuBLAS.") var naive = false
    @Option(help: "Tolerance row: exact, fp32-op, fp32-matmul, fp32-block.") var tolerance = "fp32-block"
    @Option(help: "Also write the report as JSON to this file.") var json: String?

    public init() {}

    public func run() throws {
        var report: GPUCheckReport? = nil
        try reporting("gpu-check") {
            guard let tol = Tolerance.named(tolerance) else {
                throw GPUError.unsupported(
                    "no tolerance row \"\(tolerance)\" (exact, fp32-op, fp32-matmul, fp32-block)")
            }
            report = try GPUCheck.run(
                model: model, image: image, prompt: prompt, maxNewTokens: maxNewTokens,
                compute: naive ? .reference : .fast, tolerance: tol)
            if let path = json, let r = report {
                let rows = r.rows.map {
                    [
                        "stage": $0.stage, "values": $0.count, "max_abs": Double($0.maxAbs),
                        "relative": Double($0.relative), "passed": $0.passed
                    ] as [String: Any]
                }
                let obj: [String: Any] = [
                    "device": r.device, "model": model, "stages": rows, "cpu_tokens": r.cpuTokens,
                    "gpu_tokens": r.gpuTokens, "cpu_text": r.cpuText, "gpu_text": r.gpuText,
                    "cpu_seconds": r.cpuSeconds, "gpu_seconds": r.gpuSeconds, "passed": r.passed
                ]
                try JSON.serialize(obj).write(to: URL(fileURLWithPath: path))
            }
        }
        if report?.passed == false { throw ExitCode(2) }
    }
}

public struct GPUGenerateCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Greedy generation with the whole model on the GPU.")

    @Option(help: "Checkpoint folder.") var model: String
    @Option(help: "A PNG or JPEG (optional).") var image: String?
    @Option(help: "The question.") var prompt: String
    @Option(name: .customLong("max-new-tokens")) var maxNewTokens = 32
    @Option(help: "fp32 or bf16 matrix products.") var precision = "fp32"

    public init() {}

    public func run() throws {
        try reporting("generate") {
            guard let prec = GPUPrecision(rawValue: precision) else {
                throw GPUError.unsupported("precision must be fp32 or bf16, not \(precision)")
            }
            let gpu = try GPU.open()
            let pipeline = try EaglePipeline(directory: model)
            let images = try image.map { [try RGBImage.load($0)] } ?? []
            let prepared = try pipeline.prepare(images: images, question: prompt)
            let g = try GPUEagle(gpu: gpu, model: pipeline.model, precision: prec)
            let r = try g.generateGreedy(
                ids: prepared.ids, pixelValues: prepared.pixelValues, maxNewTokens: maxNewTokens,
                stopTokens: pipeline.stopTokens)
            print((try? pipeline.tokenizer?.decode(r.tokens, skipSpecialTokens: true)) ?? "\(r.tokens)")
            printToStandardError(
                gpu.summary + " "
                    + r.summary(
                        promptTokens: prepared.ids.count,
                        visualTokens: (prepared.pixelValues?.shape[0] ?? 0) * pipeline.model.config.tokensPerTile))
        }
    }
}

public struct GPUBenchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "So400m tower and a Qwen2.5-7B layer at 4K tokens: Eaglet GPU vs PyTorch eager, fp32 and bf16.")

    @Option(help: "Prefill tokens for the decoder layer.") var tokens = 4096
    @Option(help: "Timed runs per case (median reported).") var repeats = 5
    @Option(help: "fp32, bf16 or both.") var precision = "both"
    @Option(name: .customLong("torch-script"), help: "PyTorch twin; 'none' skips it.") var torchScript =
        "Fixtures/generate/bench_gpu_torch.py"
    @Option(help: "Python with torch and transformers.") var python = "python3"
    @Option(help: "Append the rows to this CSV (docs/benchmarks.csv's format).") var csv: String?
    @Flag(name: .customLong("no-agreement"), help: "Skip the real-size CPU vs GPU layer comparison.") var noAgreement =
        false

    public init() {}

    public func run() throws {
        try reporting("bench") {
            let precs: [GPUPrecision] =
                precision == "both"
                ? GPUPrecision.allCases
                : try [
                    GPUPrecision(rawValue: precision)
                        ?? {
                            throw GPUError.unsupported("precision must be fp32, bf16 or both, not \(precision)")
                        }()
                ]
            let r = try GPUBench.run(
                precisions: precs, tokens: tokens, repeats: repeats,
                torchScript: torchScript == "none" ? nil : torchScript, python: python, agreement: !noAgreement)
            if let csv { try GPUBench.appendCSV(r.rows, device: r.device, to: csv) }
        }
    }
}

public struct GPUInfoCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Find the GPU, NVRTC and cuBLAS; compile the kernels; print what was found.")

    public init() {}

    public func run() throws {
        try reporting("info") {
            let gpu = try GPU.open()
            print("device: \(gpu.summary)")
            try gpu.loadKernels()
            print("kernels: compiled for \(gpu.architecture) with \(gpu.nvrtcPath)")
            _ = try gpu.linear(
                try gpu.upload([1, 2] as [Float]), rows: 1,
                try GPULinear(gpu: gpu, weight: [3, 4], bias: nil, out: 1, in: 2))
            print("cuBLAS: \(gpu.cublasPath)")
        }
    }
}
