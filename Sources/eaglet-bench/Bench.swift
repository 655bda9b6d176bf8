// eaglet-bench: speed and memory of Eaglet, as ratios against its own naive paths and against PyTorch
// in the same run. Names: matmul (now); vision, lm, tokenizer, video, fused, cp, gpu as their issues
// land. Build in release: `make bench` or `swift run -c release eaglet-bench matmul`.
import ArgumentParser
import _Essentials
import Eaglet
import Foundation

@main
struct Bench: ParsableCommand {
    /// Tunes the allocator for tensor buffers (see `reuseFreedTensorMemory`), then parses and runs.
    static func main() {
        BLAS.restartIfMisdetected() // Debian's OpenBLAS 0.3.21 and recent CPUs (see BLAS.betterCoreType)
        reuseFreedTensorMemory()
        main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "eaglet-bench",
        abstract: "Eaglet's benchmarks: each case in its own process, speed and peak memory side by side.",
        subcommands: [
            MatmulBench.self, TilerBench.self, VisionBench.self, LMBench.self, TokenizerBench.self, EagleBench.self,
            CPBench.self, VideoBench.self, FusedBench.self, DTypeBench.self, RealSizeBench.self, TrainBench.self,
            ServeBench.self,
            GPUBenchCase.self, Case.self
        ]
    )
}

/// Options every benchmark shares.
struct CommonOptions: ParsableArguments {
    @Option(help: "Comma-separated BLAS thread counts.")
    var threads: String = "1,2"
    @Flag(help: "Append the rows to docs/benchmarks.csv (or --csv-path).")
    var csv = false
    @Option(help: "CSV file to append to.")
    var csvPath: String = "docs/benchmarks.csv"
    @Flag(help: "Skip the PyTorch comparison even if python3 with torch is available.")
    var noTorch = false

    var threadCounts: [Int] { threads.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 } }
}

/// Finds Fixtures/generate/`name` (a PyTorch twin of a benchmark) from the current folder upward.
func torchScript(_ name: String = "bench_torch.py") -> String? {
    var url = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    while true {
        let p = url.appendingPathComponent("Fixtures/generate/" + name).path
        if FileManager.default.fileExists(atPath: p) { return p }
        if url.path == "/" { return nil }
        url.deleteLastPathComponent()
    }
}

/// Runs the PyTorch twin of a case; nil when python3 or torch is missing.
func runTorch(_ arguments: [String], threads: Int) -> BenchResult? {
    guard let script = torchScript() else { return nil }
    guard let out = runProcess("/usr/bin/env", ["python3", script] + arguments + ["--threads", String(threads)]),
        let line = out.split(separator: "\n").last
    else { return nil }
    return try? JSONDecoder().decode(BenchResult.self, from: Data(line.utf8))
}

struct MatmulBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matmul", abstract: "Square fp32 matmul: naive triple loop vs OpenBLAS sgemm (vs PyTorch).")

    @Option(help: "Comma-separated matrix sizes n (n×n · n×n).")
    var sizes: String = "256,512,1024,2048"
    @OptionGroup var common: CommonOptions

    func run() throws {
        let ns = sizes.split(separator: ",").compactMap { Int($0) }
        var results = [BenchResult]()
        let torchAvailable =
            !common.noTorch && runTorch(["matmul", "--size", "64", "--repeats", "1"], threads: 1) != nil
        for t in common.threadCounts {
            for n in ns {
                for variant in ["naive", "sgemm"] {
                    FileHandle.standardError.write(Data("matmul \(variant) n=\(n) threads=\(t)…\n".utf8))
                    let repeats = variant == "naive" && n >= 1024 ? 1 : 5
                    if let r = runCase(
                        ["matmul", "--variant", variant, "--size", String(n), "--repeats", String(repeats)], threads: t)
                    {
                        results.append(r)
                    }
                }
                if torchAvailable, let r = runTorch(["matmul", "--size", String(n), "--repeats", "5"], threads: t) {
                    results.append(r)
                }
            }
        }
        printTable(results)
        print("")
        // Side by side, and the growth fit t ≈ a·n³ + b·n² per variant (LAPACKE dgels).
        for t in common.threadCounts {
            for n in ns {
                let row = results.filter { $0.threads == t && $0.size == "\(n)x\(n)x\(n)" }
                let naive = row.first { $0.variant == "naive" }, fast = row.first { $0.variant == "sgemm" }
                let torch = row.first { $0.variant == "torch" }
                var line = String(
                    format: "n=%-5d threads=%d  naive %7.2f GFLOP/s  sgemm %7.1f GFLOP/s  sgemm/naive %6.1f×",
                    n, t, naive?.rate ?? .nan, fast?.rate ?? .nan, (fast?.rate ?? .nan) / (naive?.rate ?? .nan))
                if let torch {
                    line += String(
                        format: "  torch %7.1f GFLOP/s  sgemm/torch %.2f", torch.rate, (fast?.rate ?? .nan) / torch.rate
                    )
                }
                print(line)
            }
            for variant in ["naive", "sgemm"] {
                let pts = results.filter { $0.threads == t && $0.variant == variant }
                let x = pts.compactMap { Double($0.size.split(separator: "x").first ?? "") }
                if let c = leastSquaresFit(x: x, y: pts.map(\.medianSeconds), powers: [3, 2]) {
                    print(
                        String(
                            format: "fit %@ threads=%d: t ≈ %.3e·n³ + %.3e·n²  (asymptotic %.1f GFLOP/s)",
                            variant, t, c[0], c[1], 2 / c[0] / 1e9))
                }
            }
        }
        if common.csv {
            try appendCSV(results, to: common.csvPath, machine: machineDescription(blasCore: BLAS.coreName))
            FileHandle.standardError.write(Data("appended \(results.count) rows to \(common.csvPath)\n".utf8))
        }
    }
}

/// One case, run inside a child process. Prints one JSON line.
struct Case: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "_case", shouldDisplay: false)

    @Argument var name: String
    @Option var variant: String
    @Option var size: Int
    @Option var repeats: Int = 3
    @Option var threads: Int = 1
    @Option var steps: Int = 64
    @Option var layers: Int = 24
    /// cp: "H,Hkv,D".
    @Option var shape: String = ""
    /// vision: tiles of one image in one call (the batch of `SiglipVisionTransformer(tiles:)`).
    @Option var tiles: Int = 1

    func run() throws {
        BLAS.setThreads(threads)
        switch name {
        case "matmul":
            let a = Tensor.seeded([size, size], seed: 1), b = Tensor.seeded([size, size], seed: 2)
            let t = medianTime(repeats: repeats, warmup: variant == "naive" && size >= 1024 ? 0 : 1) {
                _ = variant == "naive" ? matmulNaive(a, b, threads: threads) : matmul(a, b)
            }
            let r = BenchResult(
                name: "matmul", variant: variant, size: "\(size)x\(size)x\(size)", threads: threads,
                medianSeconds: t, rate: 2 * pow(Double(size), 3) / t / 1e9, unit: "GFLOP/s",
                peakRSSBytes: peakRSSBytes())
            print(String(decoding: try JSONEncoder().encode(r), as: UTF8.self))
        case "tiler":
            print(
                String(
                    decoding: try JSONEncoder().encode(try tilerCase(variant: variant, width: size, repeats: repeats)),
                    as: UTF8.self))
        case "vision":
            let r = try runVisionCase(variant: variant, size: size, repeats: repeats, threads: threads, tiles: tiles)
            print(String(decoding: try JSONEncoder().encode(r), as: UTF8.self))
        case "lm":
            try runLMCase(
                variant: variant, size: size, steps: steps, layers: layers, repeats: repeats, threads: threads)
        case "eagle":
            print(
                String(
                    decoding: try JSONEncoder().encode(
                        try eagleCase(variant: variant, repeats: repeats, threads: threads)), as: UTF8.self))
        case "cp": try runCPCase(variant: variant, size: size, repeats: repeats, shape: shape)
        case "tokenizer":
            print(
                String(
                    decoding: try JSONEncoder().encode(
                        try tokenizerCase(variant: variant, size: size, repeats: repeats)), as: UTF8.self))
        case "video":
            print(
                String(
                    decoding: try JSONEncoder().encode(try videoCase(variant: variant, count: size, repeats: repeats)),
                    as: UTF8.self))
        case "dtypes": try runDTypeCase(variant: variant, shape: shape, repeats: repeats, threads: threads)
        case "fused": try runFusedCase(variant: variant, size: size, repeats: repeats, threads: threads, heads: layers)
        default:
            throw ValidationError("unknown case \(name)")
        }
    }
}
