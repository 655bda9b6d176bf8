// eaglet-bench dtypes: decode's product, y = W·x for one token, on the same (R, C) weights held as fp32, BF16 and
// q8_0, each against the machine's streaming read of the same number of bytes (the bound a memory-bound gemv
// cannot beat). Chapter 15's bandwidth argument and its plot of speed against bytes per weight come from here.
//
//     bytes per weight   fp32 4, bf16 2, q8_0 34/32
//     GB/s               bytes of W ÷ median seconds of one product (threads as given)
//     of bound           GB/s ÷ streaming read GB/s of a buffer of the same size
//     weights/s          R·C ÷ seconds: the figure decode's tokens/s scales with (tokens/s ≈ weights/s ÷ model size)
// Each format runs in its own child process (`_case dtypes <format>`), so its peak RSS is its own.
import ArgumentParser
import Eaglet
import Foundation
import _CKernels
import _Essentials

struct DTypeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dtypes",
        abstract: "Decode's gemv on the same weights as fp32, BF16 and q8_0 vs the streaming read bound.")

    @Option(help: "Rows of W (Eagle2.5-8B's MLP: 18944).") var rows: Int = 18944
    @Option(help: "Columns of W (Eagle2.5-8B's hidden size: 3584).") var cols: Int = 3584
    @Option(help: "Copies of W read in turn, so the bytes read exceed the last-level cache.") var copies: Int = 4
    @Option(help: "Comma-separated thread counts.") var threads: String = "1,2"
    @Option(help: "Timed repeats (median).") var repeats: Int = 9
    @Flag(help: "Append the rows to docs/benchmarks.csv.") var csv = false

    func run() throws {
        print(machineDescription(blasCore: ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "auto"))
        print("CPU vector extensions: \(cpuVectorExtensions()); kernel path \(KernelPath.current)")
        print(
            cFormat(
                "W (%d, %d) × %d copies = %.2f G weights a pass", rows, cols, copies,
                Double(rows * cols * copies) / 1e9))
        print("| format | threads | bytes/weight | MB read | ms/pass | GB/s | stream GB/s | of bound | G weights/s |")
        print("|---|---|---|---|---|---|---|---|---|")
        var results = [BenchResult]()
        for t in threads.split(separator: ",").compactMap({ Int($0) }) {
            for format in ["f32", "bf16", "q8_0"] {
                let shape = ["--size", "0", "--shape", "\(rows)x\(cols)x\(copies)", "--repeats", "\(repeats)"]
                guard let r = runCase(["dtypes", "--variant", format] + shape, threads: t),
                    let s = runCase(["dtypes", "--variant", "stream:\(format)"] + shape, threads: t)
                else {
                    print("| \(format) | \(t) | case failed |"); continue
                }
                let bytesPerWeight = bytesPerWeight(format)
                let weights = Double(rows * cols * copies), mb = weights * bytesPerWeight / 1e6
                print(
                    "| \(format) | \(t) | "
                        + cFormat(
                            "%.4g | %.0f | %.2f | %.1f | %.1f | %.0f %% | %.2f |", bytesPerWeight, mb,
                            r.medianSeconds * 1e3, r.rate, s.rate, 100 * r.rate / s.rate,
                            weights / r.medianSeconds / 1e9))
                results += [r, s]
            }
        }
        if csv {
            try appendCSV(
                results, to: "docs/benchmarks.csv",
                machine: machineDescription(
                    blasCore: ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "auto"))
        }
    }
}

/// Bytes a weight takes held as `format` (f32, bf16, native = BF16, q8_0: 34 bytes per 32).
func bytesPerWeight(_ format: String) -> Double { format == "f32" ? 4 : format == "q8_0" ? 34.0 / 32 : 2 }

/// The x86 vector extensions the kernels care about, as the CPU reports them.
func cpuVectorExtensions() -> String {
    guard let s = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
        let line = s.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
    else { return "unknown" }
    let flags = Set(line.split(separator: " ").map(String.init))
    let wanted = ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16"]
    return wanted.filter(flags.contains).joined(separator: " ")
}

/// `_case dtypes <format | stream:format>`: one product over `copies` matrices, or a streaming read of as many bytes.
func runDTypeCase(variant: String, shape: String, repeats: Int, threads: Int) throws {
    let dims = shape.split(separator: "x").compactMap { Int($0) }
    guard dims.count == 3 else { throw ValidationError("--size must be RxCxN") }
    let (R, C, N) = (dims[0], dims[1], dims[2])
    let x = Tensor.seeded([1, C], seed: 11, scale: 1)
    func emit(_ seconds: Double, bytes: Double) {
        let r = BenchResult(
            name: "dtypes", variant: variant, size: shape, threads: threads, medianSeconds: seconds,
            rate: bytes / seconds / 1e9, unit: "GB/s", peakRSSBytes: peakRSSBytes())
        print(String(decoding: try! JSONEncoder().encode(r), as: UTF8.self))
    }
    let format = variant.hasPrefix("stream:") ? String(variant.dropFirst(7)) : variant
    let bytes = Double(R * C * N) * bytesPerWeight(format)
    if variant.hasPrefix("stream:") {
        let n = Int(bytes / 4)
        let data = [Float](repeating: 1, count: n)
        let t = data.withUnsafeBufferPointer { buf in medianTime(repeats: repeats) { streamRead(buf, threads: threads) }
        }
        return emit(t, bytes: bytes)
    }
    let layers: [Linear] = (0..<N).map { i in
        let w = Tensor.seeded([R, C], seed: UInt64(100 + i), scale: 0.05)
        switch format {
        case "bf16": return Linear(bf16: BF16Matrix(narrowing: w))
        case "q8_0": return Linear(stored: .q8_0(Q8Matrix(quantizing: w, threads: threads)))
        default: return Linear(weight: w)
        }
    }
    let compute = Compute.fast(threads: threads)
    let t = medianTime(repeats: repeats) { for l in layers { _ = l(x, compute: compute) } }
    emit(t, bytes: bytes)
}

/// The streaming read every bound is measured with (lm, dtypes, realsize): the buffer split into `threads` contiguous
/// parts, each summed by `eaglet_stream_read` (two streams, software-prefetched: the fastest plain read found; a
/// four-accumulator SIMD16 loop, the bound before 2026-12-05, read about a quarter slower, so the prefetching gemv
/// kernels came out above it).
@inline(never)
func streamRead(_ buf: UnsafeBufferPointer<Float>, threads: Int) {
    let n = buf.count, parts = max(1, threads)
    nonisolated(unsafe) let base = buf.baseAddress!
    let sink = UnsafeMutablePointer<Float>.allocate(capacity: parts)
    defer { sink.deallocate() }
    nonisolated(unsafe) let out = sink
    DispatchQueue.concurrentPerform(iterations: parts) { p in
        let lo = (n / 64) * p / parts * 64, hi = p == parts - 1 ? n : (n / 64) * (p + 1) / parts * 64
        out[p] = eaglet_stream_read(base + lo, hi - lo)
    }
    precondition(sink[0] >= 0)
}
