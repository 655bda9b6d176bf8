// eaglet-bench cp: context-parallel attention on threads against the single-rank kernel, and the bytes
// each scheme moves against chapter 13's formula. Seeded q (H, T, D), k/v (Hkv, T, D), causal. Each case
// runs in a child process with one BLAS thread per rank; the single-rank case uses one BLAS thread too,
// so "speed-up" is what W ranks on this machine's cores buy (on a 2-core machine, at most ~2×).
import ArgumentParser
import Eaglet
import Foundation

struct CPBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cp", abstract: "Context parallelism: W thread ranks vs single-rank attention; bytes vs formula.")

    @Option(help: "Sequence length T (divisible by 2W).")
    var seq: Int = 4096
    @Option(help: "Comma-separated world sizes.")
    var worlds: String = "2,4"
    @Option(help: "Query heads H.")
    var heads: Int = 8
    @Option(name: .customLong("kv-heads"), help: "Key/value heads.")
    var kvHeads: Int = 2
    @Option(name: .customLong("head-dim"), help: "Head dimension D.")
    var headDim: Int = 64
    @Option(help: "Timed repeats per case.")
    var repeats: Int = 3
    @OptionGroup var common: CommonOptions

    func run() throws {
        let me = Bundle.main.executablePath ?? CommandLine.arguments[0]
        func child(_ variant: String) -> (BenchResult, Int)? {
            guard
                let out = runProcess(
                    me,
                    [
                        "_case", "cp", "--variant", variant, "--size", String(seq), "--repeats", String(repeats),
                        "--threads", "1", "--shape", "\(heads),\(kvHeads),\(headDim)"
                    ],
                    environment: ["OPENBLAS_NUM_THREADS": "1"])
            else { return nil }
            let lines = out.split(separator: "\n")
            guard let last = lines.last, let r = try? JSONDecoder().decode(BenchResult.self, from: Data(last.utf8))
            else { return nil }
            let bytes = lines.first { $0.hasPrefix("bytes ") }.flatMap { Int($0.dropFirst(6)) } ?? 0
            return (r, bytes)
        }
        FileHandle.standardError.write(Data("single rank T=\(seq)…\n".utf8))
        guard let single = child("single") else { throw ValidationError("single-rank case failed") }
        var results = [single.0]
        var lines = [String]()
        for w in worlds.split(separator: ",").compactMap({ Int($0) }) {
            for s in CPStrategy.allCases {
                guard let plan = try? CPPlan(strategy: s, world: w, heads: heads, kvHeads: kvHeads, cuSeqlens: [0, seq])
                else {
                    lines.append("\(s) W=\(w): not possible for this shape"); continue
                }
                FileHandle.standardError.write(Data("\(s) W=\(w)…\n".utf8))
                guard let (r, bytes) = child("\(s):\(w)") else { lines.append("\(s) W=\(w): case failed"); continue }
                results.append(r)
                lines.append(
                    String(
                        format:
                            "%@ W=%d: %.3f s vs single rank %.3f s (speed-up %.2f×); bytes per rank %d, formula %d%@",
                        s.rawValue, w, r.medianSeconds, single.0.medianSeconds,
                        single.0.medianSeconds / r.medianSeconds,
                        bytes, plan.forwardBytesPerRank(headDim: headDim),
                        bytes == plan.forwardBytesPerRank(headDim: headDim) ? "" : "  MISMATCH"))
            }
        }
        printTable(results)
        print("")
        for l in lines { print(l) }
        if common.csv {
            try appendCSV(results, to: common.csvPath, machine: machineDescription(blasCore: BLAS.coreName))
            FileHandle.standardError.write(Data("appended \(results.count) rows to \(common.csvPath)\n".utf8))
        }
    }
}

/// The child side: variant "single" or "STRATEGY:W"; shape "H,Hkv,D". Prints "bytes N"
/// (max over ranks) and then the JSON result (rate: attention GFLOP/s, visible scores × 4·D).
func runCPCase(variant: String, size t: Int, repeats: Int, shape: String) throws {
    let dims = shape.split(separator: ",").compactMap { Int($0) }
    guard dims.count == 3 else { throw ValidationError("cp case: --shape must be H,Hkv,D") }
    let (h, hkv, d) = (dims[0], dims[1], dims[2])
    let q = Tensor.seeded([h, t, d], seed: 1), k = Tensor.seeded([hkv, t, d], seed: 2),
        v = Tensor.seeded([hkv, t, d], seed: 3)
    let flops = Double(h) * Double(t) * Double(t + 1) / 2 * 4 * Double(d)
    var bytes = 0
    let seconds: Double
    if variant == "single" {
        seconds = medianTime(repeats: repeats) { _ = try? fullAttention(q: q, k: k, v: v, cuSeqlens: [0, t]) }
    } else {
        let parts = variant.split(separator: ":")
        guard parts.count == 2, let s = CPStrategy(rawValue: String(parts[0])), let w = Int(parts[1]) else {
            throw ValidationError("cp case: bad variant \(variant)")
        }
        let plan = try CPPlan(strategy: s, world: w, heads: h, kvHeads: hkv, cuSeqlens: [0, t])
        let shards = plan.layouts.map { (Sharding.shard(q, $0), Sharding.shard(k, $0), Sharding.shard(v, $0)) }
        seconds = medianTime(repeats: repeats) {
            let b = ThreadWorld.run(world: w) { comm -> Int in
                let (qs, ks, vs) = shards[comm.rank]
                _ = contextParallelAttention(q: qs, k: ks, v: vs, plan: plan, comm: comm)
                return comm.bytesSent
            }
            bytes = b.max() ?? 0
        }
    }
    print("bytes \(bytes)")
    let r = BenchResult(
        name: "cp", variant: variant, size: "T\(t)xH\(h)xKV\(hkv)xD\(d)", threads: 1, medianSeconds: seconds,
        rate: flops / seconds / 1e9, unit: "GFLOP/s", peakRSSBytes: peakRSSBytes())
    print(String(decoding: try JSONEncoder().encode(r), as: UTF8.self))
}
