// The benchmark harness: every case runs in its own child process (this same executable, invoked as
// `eaglet-bench _case …`), so the peak resident memory it reports belongs to that case alone — peak RSS
// never goes down within one process. The child prints one JSON line; the parent collects, prints a
// table, and appends CSV rows to docs/benchmarks.csv with --csv.
import Foundation
import Eaglet
import _Essentials

/// One measured case.
struct BenchResult: Codable {
    var name: String
    var variant: String
    var size: String
    var threads: Int
    var medianSeconds: Double
    /// Work rate: GFLOP/s, GB/s or MB/s according to `unit`.
    var rate: Double
    var unit: String
    var peakRSSBytes: Int
}

/// Peak resident set size of this process so far (VmHWM), in bytes.
func peakRSSBytes() -> Int { peakResidentBytes() }

/// Monotonic seconds.
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// Median of `repeats` timings of `body` (after `warmup` untimed runs).
func medianTime(repeats: Int, warmup: Int = 1, _ body: () -> Void) -> Double {
    for _ in 0..<warmup { body() }
    var times = [Double]()
    for _ in 0..<max(repeats, 1) {
        let t0 = now()
        body()
        times.append(now() - t0)
    }
    times.sort()
    return times[times.count / 2]
}

/// Runs `arguments` in a child process with `environment` added; returns its stdout, or nil on failure.
func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) -> String? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let out = Pipe()
    p.standardOutput = out
    do { try p.run() } catch { return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { return nil }
    return String(data: data, encoding: .utf8)
}

/// Runs one case of this executable in a child process with `threads` BLAS threads.
func runCase(_ arguments: [String], threads: Int) -> BenchResult? {
    let me = Bundle.main.executablePath ?? CommandLine.arguments[0]
    guard
        let out = runProcess(
            me, ["_case"] + arguments + ["--threads", String(threads)],
            environment: ["OPENBLAS_NUM_THREADS": String(threads)])
    else { return nil }
    guard let line = out.split(separator: "\n").last else { return nil }
    return try? JSONDecoder().decode(BenchResult.self, from: Data(line.utf8))
}

/// A description of this machine for the CSV: CPU model, core count, OpenBLAS kernel family.
func machineDescription(blasCore: String) -> String {
    var model = "unknown CPU"
    if let s = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
        let line = s.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
        let colon = line.firstIndex(of: ":")
    {
        model = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) cores, OpenBLAS \(blasCore)"
}

func today() -> String {
    let f = DateFormatter()
    f.dateFormat = "yyyy-MM-dd"
    f.timeZone = TimeZone(identifier: "UTC")
    return f.string(from: Date())
}

/// Prints results as an aligned table.
func printTable(_ results: [BenchResult]) {
    let header = ["case", "variant", "size", "threads", "median s", "rate", "peak RSS MiB"]
    var rows = [header]
    for r in results {
        rows.append([
            r.name, r.variant, r.size, String(r.threads), String(format: "%.4f", r.medianSeconds),
            String(format: "%.2f %@", r.rate, r.unit), String(format: "%.1f", Double(r.peakRSSBytes) / 1_048_576)
        ])
    }
    let widths = (0..<header.count).map { c in rows.map { $0[c].count }.max() ?? 0 }
    for (i, row) in rows.enumerated() {
        print(
            row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  "))
        if i == 0 { print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
    }
}

/// Appends results to `path` as CSV (writing the header if the file is new).
func appendCSV(_ results: [BenchResult], to path: String, machine: String) throws {
    let header = "name,variant,size,threads,median_seconds,rate,unit,peak_rss_bytes,machine,date\n"
    var text = FileManager.default.fileExists(atPath: path) ? "" : header
    let date = today()
    for r in results {
        text +=
            "\(r.name),\(r.variant),\(r.size),\(r.threads),\(r.medianSeconds),\(r.rate),\(r.unit),\(r.peakRSSBytes),\"\(machine)\",\(date)\n"
    }
    if let h = FileHandle(forWritingAtPath: path) {
        h.seekToEndOfFile()
        h.write(Data(text.utf8))
        h.closeFile()
    } else {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

/// The processor every table is printed with: its model, cores, and the vector extensions Eaglet's kernels and
/// OpenBLAS choose from at run time (a ratio measured on one family says nothing about the other).
func cpuLine() -> String {
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let flags = Set(
        info.split(separator: "\n").first { $0.hasPrefix("flags") }.map {
            $0.split(separator: ":").last?.split(separator: " ").map(String.init) ?? []
        } ?? [])
    let vector = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_bf16"]
        .filter(flags.contains)
    return
        "CPU: \(machineDescription(blasCore: BLAS.coreName)); vector: \(vector.isEmpty ? "none of AVX2/AVX-512" : vector.joined(separator: " "))"
}

/// Eaglet and PyTorch timed in alternation — E T E T …, each repetition its own process — so that a neighbour's
/// load or the host's clock, which a shared machine changes from minute to minute, lands on both sides alike.
/// Each side's repetition is itself a median of its own timed runs; the ratio is taken pair by pair.
struct PairedTiming {
    var eaglet = [Double](), torch = [Double]()

    /// PyTorch's time ÷ Eaglet's, one per pair (> 1: Eaglet faster).
    var ratios: [Double] { zip(torch, eaglet).map { $0 / $1 } }

    static func median(_ x: [Double]) -> Double {
        let s = x.sorted()
        return s.isEmpty ? .nan : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
    }

    /// The spread of the pair ratios relative to their median: (max − min) / median.
    var ratioSpread: Double {
        let r = ratios
        guard let lo = r.min(), let hi = r.max() else { return .nan }
        return (hi - lo) / PairedTiming.median(r)
    }

    /// Above this relative spread the median ratio is printed with a warning and supports no claim.
    static let widestSupportedSpread = 0.25

    /// "Eaglet 0.512 s (0.498–0.560) | PyTorch 0.600 s (0.590–0.700) | PyTorch/Eaglet 1.17× (1.05–1.32×) over 5 pairs".
    func summary(note: String = "(>1: Eaglet faster)") -> String {
        func range(_ x: [Double], _ f: String) -> String {
            String(format: "\(f) (\(f)–\(f))", PairedTiming.median(x), x.min() ?? .nan, x.max() ?? .nan)
        }
        var s =
            "Eaglet \(range(eaglet, "%.3f")) s | PyTorch \(range(torch, "%.3f")) s | PyTorch/Eaglet \(range(ratios, "%.2f"))× over \(ratios.count) pairs \(note)"
        if ratioSpread > PairedTiming.widestSupportedSpread {
            s += String(
                format:
                    "\n           WARNING: the pair ratios spread over %.0f%% of their median; the machine was not steady enough for this ratio to support a claim",
                100 * ratioSpread)
        }
        return s
    }
}

/// Runs `pairs` alternations of `eaglet` and `torch` (each returns one repetition's result); the results of
/// the last pair are returned for the table. nil when either side fails.
func runPairs(_ pairs: Int, eaglet: () -> BenchResult?, torch: () -> BenchResult?) -> (
    PairedTiming, BenchResult, BenchResult
)? {
    var t = PairedTiming()
    var last: (BenchResult, BenchResult)? = nil
    for _ in 0..<max(1, pairs) {
        guard let e = eaglet(), let p = torch() else { return nil }
        t.eaglet.append(e.medianSeconds)
        t.torch.append(p.medianSeconds)
        last = (e, p)
    }
    guard var (e, p) = last else { return nil }
    // The table shows the medians over all pairs.
    let em = PairedTiming.median(t.eaglet), pm = PairedTiming.median(t.torch)
    e.rate *= e.medianSeconds / em
    e.medianSeconds = em
    p.rate *= p.medianSeconds / pm
    p.medianSeconds = pm
    return (t, e, p)
}
