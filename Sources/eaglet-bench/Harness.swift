// The benchmark harness: every case runs in its own child process (this same executable, invoked as
// `eaglet-bench _case …`), so the peak resident memory it reports belongs to that case alone — peak RSS
// never goes down within one process. The child prints one JSON line; the parent collects, prints a
// table, and appends CSV rows to docs/benchmarks.csv with --csv.
import Foundation
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
