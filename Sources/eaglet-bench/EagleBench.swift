// `eaglet-bench eagle`: the end-to-end model on the demo question of the trained tiny checkpoint —
// time to first token (vision + connector + prefill + first sample) and decode tokens/s — Eaglet vs the
// PyTorch reference (Fixtures/generate/eagle_reference.py) on the same checkpoint, in the same run.
import ArgumentParser
import Eaglet
import Foundation

struct EagleBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eagle",
        abstract: "Tiny Eagle end to end: time to first token and tokens/s vs the PyTorch reference.")

    @OptionGroup var common: CommonOptions

    func run() throws {
        var results = [BenchResult]()
        for t in common.threadCounts {
            for variant in ["ttft", "decode"] {
                if let r = runCase(["eagle", "--variant", variant, "--size", "0", "--repeats", "5"], threads: t) {
                    results.append(r)
                }
                if !common.noTorch,
                    let r = runTorch(["eagle", "--size", variant == "ttft" ? "0" : "1", "--repeats", "5"], threads: t)
                {
                    results.append(r)
                }
            }
        }
        printTable(results)
        for t in common.threadCounts {
            let row = results.filter { $0.threads == t }
            func get(_ v: String, _ kind: String) -> BenchResult? { row.first { $0.variant == v && $0.size == kind } }
            if let a = get("eaglet", "ttft"), let b = get("torch", "ttft") {
                print(
                    String(
                        format: "threads=%d  time to first token: Eaglet %.1f ms, PyTorch %.1f ms (%.1f× faster)", t,
                        a.medianSeconds * 1000, b.medianSeconds * 1000, b.medianSeconds / a.medianSeconds))
            }
            if let a = get("eaglet", "decode"), let b = get("torch", "decode") {
                print(
                    String(
                        format: "threads=%d  decode: Eaglet %.0f tokens/s, PyTorch %.0f tokens/s (%.1f×)", t, a.rate,
                        b.rate, a.rate / b.rate))
            }
        }
        if common.csv {
            try appendCSV(results, to: common.csvPath, machine: machineDescription(blasCore: BLAS.coreName))
        }
    }
}

/// Child: `variant` ttft (prepare + first token) or decode (tokens/s after the first).
func eagleCase(variant: String, repeats: Int, threads: Int) throws -> BenchResult {
    guard
        let repo = torchScript().map({
            URL(fileURLWithPath: $0).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .path
        })
    else {
        throw ValidationError("run from inside the repository")
    }
    let dir = "\(repo)/Fixtures/tiny-eagle"
    let p = try EaglePipeline(directory: dir)
    let demo =
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/demo.json")))
        as? [String: Any]
    let image = try RGBImage.load("\(dir)/demo.png")
    let question = demo?["question"] as? String ?? "What color is the circle?"
    var times = [Double](), rates = [Double]()
    for _ in 0..<(repeats + 1) {
        let t0 = Date()
        let prep = try p.prepare(images: [image], question: question)
        let r = try p.generate(ids: prep.ids, pixelValues: prep.pixelValues, maxNewTokens: variant == "ttft" ? 1 : 32)
        times.append(variant == "ttft" ? Date().timeIntervalSince(t0) : r.totalSeconds - r.timeToFirstToken)
        rates.append(r.tokensPerSecond)
    }
    times.removeFirst(); rates.removeFirst() // warm-up
    let med = times.sorted()[times.count / 2]
    let rate = variant == "ttft" ? 1 / med : rates.sorted()[rates.count / 2]
    return BenchResult(
        name: "eagle", variant: "eaglet", size: variant, threads: threads, medianSeconds: med,
        rate: rate, unit: variant == "ttft" ? "1/s" : "tokens/s", peakRSSBytes: peakRSSBytes())
}
