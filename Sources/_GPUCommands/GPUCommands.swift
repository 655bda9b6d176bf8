// The GPU subcommands, shared by `eaglet gpu-check` and the self-contained `eaglet-gpu` executable so
// both run the same code (docs/cli.md, docs/gpu.md). Without a GPU every command fails with one line
// naming the library or device that was looked for, exit code 1.
import ArgumentParser
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
import Imaging
import Synth
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
    @Option(
        help:
            "Tolerance row: exact, fp32-op, fp32-matmul, fp32-block, bf16 (default: fp32-block, bf16 with --precision bf16)."
    )
    var tolerance: String?
    @Option(help: "fp32, or bf16 weights, activations and KV cache on the GPU.") var precision = "fp32"
    @Option(help: "Also write the report as JSON to this file.") var json: String?

    public init() {}

    public func run() throws {
        var report: GPUCheckReport? = nil
        try reporting("gpu-check") {
            guard let prec = GPUPrecision(rawValue: precision) else {
                throw GPUError.unsupported("precision must be fp32 or bf16, not \(precision)")
            }
            let name = tolerance ?? (prec == .bf16 ? "bf16" : "fp32-block")
            guard let tol = Tolerance.named(name) else {
                throw GPUError.unsupported(
                    "no tolerance row \"\(name)\" (\(Tolerance.table.map(\.name).joined(separator: ", ")))")
            }
            report = try GPUCheck.run(
                model: model, image: image, prompt: prompt, maxNewTokens: maxNewTokens,
                compute: naive ? .reference : .fast, tolerance: tol, precision: prec)
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
                    "cpu_seconds": r.cpuSeconds, "gpu_seconds": r.gpuSeconds, "passed": r.passed,
                    "precision": precision, "kernels_fnv1a64": GPUKernels.sourceHash,
                    "bf16_kernels_fnv1a64": GPUKernels.bf16SourceHash,
                    "hopper_kernels_fnv1a64": GPUKernels.hopperSourceHash
                ]
                try JSON.serialize(obj).write(to: URL(fileURLWithPath: path))
            }
        }
        if report?.passed == false { throw ExitCode(2) }
    }
}

public struct GPUGenerateCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Greedy generation with the whole model on the GPU.",
        discussion: """
            A prompt is --prompt (with an optional --image), or for timing at real sizes a synthetic one: \
            --prompt-tokens N seeded text ids, plus --tiles N random pixel_values tiles spliced in as one image \
            (N·tokens-per-tile <IMG_CONTEXT> slots; 512 tiles of Eagle2.5-8B fill 128K tokens). --json prints one \
            line: {"prompt_tokens", "visual_tokens", "ttft_seconds", "decode_tokens_per_second", "tokens", \
            "device_peak_bytes"}.
            """)

    @Option(help: "Checkpoint folder.") var model: String
    @Option(help: "A PNG or JPEG (optional).") var image: String?
    @Option(help: "The question.") var prompt: String?
    @Option(name: .customLong("prompt-tokens"), help: "A synthetic prompt of N seeded text token ids instead.")
    var promptTokens: Int?
    @Option(help: "Random pixel_values tiles spliced into the synthetic prompt (with --prompt-tokens).") var tiles = 0
    @Option(name: .customLong("max-new-tokens")) var maxNewTokens = 32
    @Option(help: "fp32, or bf16 weights, activations and KV cache.") var precision = "fp32"
    @Flag(help: "Print one line of JSON with the timings.") var json = false

    public init() {}

    public func run() throws {
        try reporting("generate") {
            guard let prec = GPUPrecision(rawValue: precision) else {
                throw GPUError.unsupported("precision must be fp32 or bf16, not \(precision)")
            }
            guard (prompt == nil) != (promptTokens == nil) else {
                throw GPUError.unsupported("give --prompt TEXT or --prompt-tokens N (not both)")
            }
            let gpu = try GPU.open()
            let pipeline = try EaglePipeline(directory: model)
            let config = pipeline.model.config
            var ids: [Int], pixels: Tensor?
            if let n = promptTokens {
                guard n > 0, tiles >= 0, tiles <= 4096 else {
                    throw GPUError.unsupported("--prompt-tokens must be positive and --tiles at most 4096")
                }
                let m = tiles * config.tokensPerTile
                ids = GPUGenerateCommand.syntheticIDs(
                    count: n, vocabulary: config.text.vocabSize, avoiding: config.imageTokenIndex)
                ids.insert(contentsOf: [Int](repeating: config.imageTokenIndex, count: m), at: min(16, n))
                let s = config.tileSize
                pixels = tiles > 0 ? Tensor.seeded([tiles, 3, s, s], seed: 7, scale: 1) : nil
            } else {
                let images = try image.map { [try RGBImage.load($0)] } ?? []
                let prepared = try pipeline.prepare(images: images, question: prompt ?? "")
                ids = prepared.ids; pixels = prepared.pixelValues
            }
            let g = try GPUEagle(gpu: gpu, model: pipeline.model, precision: prec)
            let r = try g.generateGreedy(
                ids: ids, pixelValues: pixels, maxNewTokens: maxNewTokens, stopTokens: pipeline.stopTokens)
            let visual = (pixels?.shape[0] ?? 0) * config.tokensPerTile
            if json {
                let obj: [String: Any] = [
                    "prompt_tokens": ids.count, "visual_tokens": visual, "ttft_seconds": r.timeToFirstToken,
                    "decode_tokens_per_second": r.tokensPerSecond, "tokens": r.tokens, "device": gpu.summary,
                    "device_peak_bytes": gpu.peakBytes, "precision": prec.rawValue
                ]
                print(String(decoding: try JSON.serialize(obj), as: UTF8.self))
            } else {
                print((try? pipeline.tokenizer?.decode(r.tokens, skipSpecialTokens: true)) ?? "\(r.tokens)")
            }
            printToStandardError(gpu.summary + " " + r.summary(promptTokens: ids.count, visualTokens: visual))
        }
    }

    /// N ids spread over the vocabulary by a fixed rule (never `<IMG_CONTEXT>`), the same on every run.
    static func syntheticIDs(count n: Int, vocabulary v: Int, avoiding image: Int) -> [Int] {
        let span = max(2, min(v, 150_000))
        return (0..<n).map { i in
            let id = (i &* 7919 &+ 13) % span
            return id == image ? (id + 1) % span : id
        }
    }
}

public struct GPUSynthCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write a seeded random Eagle 2.5 checkpoint on this host (the same code as `eaglet synth`).")

    @Option(help: "eagle2.5-8b, eagle2-1b or tiny.") var preset: String
    @Option(help: "The folder to write.") var out: String
    @Option(help: "Vision layers instead of the preset's.") var visionLayers: Int?
    @Option(help: "Language-model layers instead of the preset's.") var textLayers: Int?
    @Option(help: "Seed of the values.") var seed: UInt64 = 0
    @Option(help: "Qwen's tokenizer.json, for a tokenizer.json with Eagle's added tokens (make qwen-vocab).")
    var qwenTokenizer: String?

    public init() {}

    public func run() throws {
        try reporting("synth") {
            guard let p = EagleSynth.Preset(rawValue: preset) else { throw EagleSynthError.unknownPreset(preset) }
            let synth = try EagleSynth(
                preset: p, visionLayers: visionLayers, textLayers: textLayers, dtype: .bf16, seed: seed,
                shardBytes: EagleSynth.defaultShardBytes)
            let r = try synth.write(to: out, qwenTokenizer: qwenTokenizer)
            printToStandardError(
                "synth: \(p.rawValue), \(r.parameterCount) parameters, \(r.tensorBytes) bytes of bf16 in \(out)")
        }
    }
}

public struct GPUBenchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "So400m tower, a Qwen2.5-7B layer and causal attention at T tokens: Eaglet GPU vs PyTorch eager.")

    @Option(help: "Prefill tokens for the decoder layer and the attention alone, comma-separated (4096,32768,131072).")
    var tokens = "4096"
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
            let counts = try GPUBench.tokenCounts(tokens)
            let r = try GPUBench.run(
                precisions: precs, tokens: counts, repeats: repeats,
                torchScript: torchScript == "none" ? nil : torchScript, python: python, agreement: !noAgreement)
            if let csv { try GPUBench.appendCSV(r.rows, device: r.device, to: csv) }
        }
    }
}

public struct GPUInfoCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Find the GPU, NVRTC and cuBLAS; compile the kernels; print what was found.")

    @Option(
        help: ArgumentHelp(
            "Print the CUDA source NVRTC compiles (fp32, bf16, hopper or hopper-ws) and its fnv1a64 hash on stderr, and exit; needs no GPU.",
            valueName: "kernels"))
    var printSource: String?

    public init() {}

    public func run() throws {
        if let which = printSource {
            let sources = [
                "fp32": (GPUKernels.source, GPUKernels.sourceHash),
                "bf16": (GPUKernels.bf16Source, GPUKernels.bf16SourceHash),
                "hopper": (GPUKernels.hopperSource, GPUKernels.hopperSourceHash),
                "hopper-ws": (GPUKernels.hopperWarpSpecializedSource, GPUKernels.hopperWarpSpecializedSourceHash)
            ]
            guard let (text, hash) = sources[which] else {
                throw ValidationError("--print-source takes fp32, bf16, hopper or hopper-ws, not \(which)")
            }
            print(text)
            _ = "fnv1a64 \(hash)\n".withCString { write(2, $0, strlen($0)) }
            return
        }
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
