// eaglet-bench fused: the kernel lab of chapter 12 — for each operator its naive and fused forward +
// backward, median time and memory side by side and as naive/fused ratios, each case in its own process.
//
// Memory is reported two ways per case: `extra` = the FusedKernels ledger's peak scratch bytes (bytes
// beyond inputs, weights and outputs/gradients, exactly what each kernel allocates) and `rss+` = the
// process's peak RSS (VmHWM) after the case minus its RSS just before the first call (includes outputs,
// OpenBLAS buffers, and the naive attention forward's (T, S) score matrix that is a plain Tensor).
// Shapes are Qwen2.5-0.5B's: C = 896, I = 4864, 14 query heads over 2 KV heads of D = 64, V = 151936.
// Growth: least-squares fits (LAPACKE dgels) of time and ledger bytes against T per variant.
import ArgumentParser
import Eaglet
import Foundation

/// One fused-bench case: the harness's BenchResult plus the two memory figures and T.
struct FusedCaseResult: Codable {
    var bench: BenchResult
    var ledgerBytes: Int
    var rssGrowthBytes: Int
    var tokens: Int
}

struct FusedBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fused",
        abstract: "Naive vs fused forward+backward: RMSNorm, SwiGLU, MLP, RoPE, linear+CE, attention.")

    @Option(help: "Comma-separated operators: rmsnorm, swiglu, mlp, rope, lce, attention.")
    var ops: String = "rmsnorm,swiglu,mlp,rope,lce,attention"
    @Option(help: "BLAS threads.")
    var threads: Int = 2
    @Option(help: "Token counts of the linear + cross-entropy cases (V = 151936, C = 896).")
    var lceSizes: String = "512,1024,2048,4096,8192"
    @Option(
        help:
            "Largest T for the naive linear + CE (3·T·V floats: 3.7 GB at 2048, 7.5 GB at 4096); a case whose estimate exceeds 80 % of MemAvailable is skipped anyway."
    )
    var lceNaiveMax: Int = 4096
    @Option(help: "Token counts of the attention cases (causal, 14 heads over 2 KV heads, D = 64).")
    var attentionSizes: String = "1024,2048,4096,8192,16384,32768"
    @Option(help: "Largest T for the naive attention (S, P, dP, dS: 4·T² floats).")
    var attentionNaiveMax: Int = 8192
    @Option(help: "Query heads of the attention cases (KV heads = heads / 7, at least 1).")
    var attentionHeads: Int = 2
    @Flag(help: "Append the rows to docs/benchmarks.csv.")
    var csv = false

    func run() throws {
        let want = Set(ops.split(separator: ",").map(String.init))
        var plan = [(op: String, t: Int, variants: [String])]()
        for (op, t) in [("rmsnorm", 8192), ("swiglu", 4096), ("mlp", 512), ("rope", 8192)] where want.contains(op) {
            plan.append((op, t, ["naive", "fused"]))
        }
        if want.contains("lce") {
            for t in lceSizes.split(separator: ",").compactMap({ Int($0) }) {
                plan.append(("lce", t, t <= lceNaiveMax ? ["naive", "fused"] : ["fused"]))
            }
        }
        if want.contains("attention") {
            for t in attentionSizes.split(separator: ",").compactMap({ Int($0) }) {
                plan.append(("attention", t, t <= attentionNaiveMax ? ["naive", "fused"] : ["fused"]))
            }
        }
        var results = [FusedCaseResult]()
        for p in plan {
            for v in p.variants {
                // Never start a case that would push a shared machine into the OOM killer.
                let need = estimatedBytes(op: p.op, variant: v, t: p.t, heads: attentionHeads)
                if Double(need) > 0.8 * Double(memAvailableBytes()) {
                    note(
                        "fused \(p.op) \(v) T=\(p.t): skipped, needs about \(need >> 20) MiB, MemAvailable \(memAvailableBytes() >> 20) MiB"
                    )
                    continue
                }
                note("fused \(p.op) \(v) T=\(p.t)…")
                let repeats = (p.op == "lce" && p.t >= 1024) || (p.op == "attention" && p.t >= 8192) ? 1 : 5
                if let r = runFusedCase(
                    [
                        "_case", "fused", "--variant", "\(p.op)-\(v)", "--size", String(p.t),
                        "--repeats", String(repeats), "--layers", String(attentionHeads)
                    ], threads: threads)
                {
                    results.append(r)
                } else {
                    note("  (case failed or ran out of memory)")
                }
            }
        }
        printTable(results.map(\.bench))
        print("")
        let mib = { (b: Int) in String(format: "%9.1f MiB", Double(b) / 1_048_576) }
        print(
            "op             T    naive s    fused s  naive/fused  | extra (ledger) naive   fused        ratio | rss+ naive    fused        ratio"
        )
        for p in plan {
            let n = results.first { $0.bench.name == p.op && $0.tokens == p.t && $0.bench.variant == "naive" }
            guard
                let f = results.first(where: {
                    $0.bench.name == p.op && $0.tokens == p.t && $0.bench.variant == "fused"
                })
            else { continue }
            var line = p.op.padding(toLength: 10, withPad: " ", startingAt: 0) + String(format: "%6d ", p.t)
            if let n {
                line += String(
                    format: "%10.4f %10.4f %8.2f×    | ", n.bench.medianSeconds, f.bench.medianSeconds,
                    n.bench.medianSeconds / f.bench.medianSeconds)
                line +=
                    "\(mib(n.ledgerBytes)) \(mib(f.ledgerBytes)) "
                    + String(format: "%7.4f", Double(f.ledgerBytes) / Double(max(n.ledgerBytes, 1)))
                line +=
                    " | \(mib(n.rssGrowthBytes)) \(mib(f.rssGrowthBytes)) "
                    + String(format: "%7.4f", Double(f.rssGrowthBytes) / Double(max(n.rssGrowthBytes, 1)))
            } else {
                line += "         —" + String(format: " %10.4f", f.bench.medianSeconds) + "         —    | "
                if p.op == "lce" { // the naive scratch is exactly 3·T·V floats (tested), so its ratio is known
                    let naiveBytes = 3 * p.t * 151_936 * 4
                    line +=
                        "\(mib(naiveBytes))*\(mib(f.ledgerBytes)) "
                        + String(format: "%7.4f", Double(f.ledgerBytes) / Double(naiveBytes))
                } else {
                    line += "            — \(mib(f.ledgerBytes))       —"
                }
                line += " |             — \(mib(f.rssGrowthBytes))"
            }
            print(line)
        }
        if want.contains("lce") {
            print("(* naive not run: its ledger figure is 3·T·V·4 bytes exactly, as the tests check)")
        }
        // Growth fits against T: linear + CE time ≈ a·T + b, memory ≈ a·T + b; attention time ≈ a·T² + b·T.
        print("")
        for op in ["lce", "attention"] where want.contains(op) {
            for v in ["naive", "fused"] {
                let pts = results.filter { $0.bench.name == op && $0.bench.variant == v }.sorted {
                    $0.tokens < $1.tokens
                }
                guard pts.count >= 2 else { continue }
                let x = pts.map { Double($0.tokens) }
                let timePowers: [Double] = op == "attention" ? [2, 1] : [1, 0]
                let memPowers: [Double] = pts.count >= 3 ? [2, 1, 0] : [1, 0]
                if let c = leastSquaresFit(x: x, y: pts.map(\.bench.medianSeconds), powers: timePowers) {
                    print(String(format: "fit %@ %@ time: %@", op, v, terms(c, timePowers, unit: "s")))
                }
                if let c = leastSquaresFit(x: x, y: pts.map { Double($0.ledgerBytes) }, powers: memPowers) {
                    print(String(format: "fit %@ %@ extra bytes (ledger): %@", op, v, terms(c, memPowers, unit: "B")))
                }
                if let c = leastSquaresFit(x: x, y: pts.map { Double($0.rssGrowthBytes) }, powers: memPowers) {
                    print(String(format: "fit %@ %@ rss+ bytes: %@", op, v, terms(c, memPowers, unit: "B")))
                }
            }
        }
        if csv {
            try appendCSV(
                results.map(\.bench), to: "docs/benchmarks.csv", machine: machineDescription(blasCore: BLAS.coreName))
            note("appended \(results.count) rows to docs/benchmarks.csv")
        }
    }
}

private func terms(_ c: [Double], _ powers: [Double], unit: String) -> String {
    zip(c, powers).map { String(format: "%+.3e·T^%g", $0.0, $0.1) }.joined(separator: " ") + " \(unit)"
}

/// A generous estimate of a case's peak RSS (inputs, outputs, scratch), to skip what cannot fit.
private func estimatedBytes(op: String, variant: String, t: Int, heads: Int) -> Int {
    let naive = variant == "naive"
    switch op {
    case "lce": return (2 * 151_936 * 896 + (naive ? 3 * t * 151_936 : 256 * 151_936)) * 4 + (200 << 20)
    case "attention": return (naive ? 5 * t * t + 8 * heads * t * 64 : 8 * heads * t * 64) * 4 + (200 << 20)
    default: return 1 << 30
    }
}

/// MemAvailable from /proc/meminfo, in bytes (Int.max when unreadable).
private func memAvailableBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return .max }
    for line in s.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
        return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
    }
    return .max
}

private func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

private func runFusedCase(_ arguments: [String], threads: Int) -> FusedCaseResult? {
    let me = Bundle.main.executablePath ?? CommandLine.arguments[0]
    guard
        let out = runProcess(
            me, arguments + ["--threads", String(threads)],
            environment: ["OPENBLAS_NUM_THREADS": String(threads)]),
        let line = out.split(separator: "\n").last
    else { return nil }
    return try? JSONDecoder().decode(FusedCaseResult.self, from: Data(line.utf8))
}

/// VmRSS of this process now, in bytes.
private func currentRSSBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
    }
    return 0
}

/// The child side: `_case fused --variant OP-naive|OP-fused --size T [--layers heads]`.
func runFusedCase(variant: String, size t: Int, repeats: Int, threads: Int, heads: Int) throws {
    let parts = variant.split(separator: "-").map(String.init)
    guard parts.count == 2, ["naive", "fused"].contains(parts[1]) else {
        throw ValidationError("fused: variant \(variant) is not OP-naive or OP-fused")
    }
    let (op, fused) = (parts[0], parts[1] == "fused")
    var body: () -> Void
    var work = 0.0, unit = "GFLOP/s"
    switch op {
    case "rmsnorm":
        let c = 896
        let x = Tensor.seeded([t, c], seed: 1), w = Tensor.seeded([c], seed: 2), dy = Tensor.seeded([t, c], seed: 3)
        body = {
            if fused {
                let f = rmsNormFused(x, weight: w, eps: 1e-6);
                _ = rmsNormBackwardFused(dy: dy, x: x, weight: w, rstd: f.rstd)
            } else {
                let f = rmsNormNaive(x, weight: w, eps: 1e-6);
                _ = rmsNormBackwardNaive(dy: dy, x: x, weight: w, rstd: f.rstd)
            }
        }
        work = Double(t) / 1e6; unit = "Mtok/s"
    case "swiglu":
        let i = 4864
        let g = Tensor.seeded([t, i], seed: 1, scale: 4), u = Tensor.seeded([t, i], seed: 2),
            da = Tensor.seeded([t, i], seed: 3)
        body = {
            if fused {
                _ = swigluFused(gate: g, up: u); var gg = g, uu = u; swigluBackwardFused(dOut: da, gate: &gg, up: &uu)
            } else {
                _ = swigluNaive(gate: g, up: u); _ = swigluBackwardNaive(dOut: da, gate: g, up: u)
            }
        }
        work = Double(t) / 1e6; unit = "Mtok/s"
    case "mlp":
        let (c, i) = (896, 4864)
        let x = Tensor.seeded([t, c], seed: 1), dy = Tensor.seeded([t, c], seed: 2)
        let wg = Tensor.seeded([i, c], seed: 3, scale: 0.03), wu = Tensor.seeded([i, c], seed: 4, scale: 0.03),
            wd = Tensor.seeded([c, i], seed: 5, scale: 0.03)
        body = {
            _ =
                fused
                ? mlpFused(x: x, gateProj: wg, upProj: wu, downProj: wd, dy: dy)
                : mlpNaive(x: x, gateProj: wg, upProj: wu, downProj: wd, dy: dy)
        }
        work = 18 * Double(t * c * i) / 1e9
    case "rope":
        let (h, hkv, d) = (14, 2, 64)
        let (cos, sin) = RotaryEmbedding(headDim: d, theta: 1_000_000).cosSin(positions: Array(0..<t))
        let q = Tensor.seeded([t, h * d], seed: 1), k = Tensor.seeded([t, hkv * d], seed: 2)
        body = {
            if fused {
                var qq = q, kk = k; ropeFused(q: &qq, k: &kk, cos: cos, sin: sin);
                ropeBackwardFused(dq: &qq, dk: &kk, cos: cos, sin: sin)
            } else {
                let r = ropeNaive(q: q, k: k, cos: cos, sin: sin);
                _ = ropeBackwardNaive(dq: r.q, dk: r.k, cos: cos, sin: sin)
            }
        }
        work = Double(t) / 1e6; unit = "Mtok/s"
    case "lce":
        let (c, v) = (896, 151_936)
        let hidden = Tensor.seeded([t, c], seed: 1), w = Tensor.seeded([v, c], seed: 2, scale: 0.05)
        let labels = (0..<t).map { $0 % 17 == 0 ? -100 : ($0 * 7919) % v }
        body = {
            _ =
                fused
                ? linearCrossEntropyFused(hidden: hidden, weight: w, labels: labels)
                : linearCrossEntropyNaive(hidden: hidden, weight: w, labels: labels)
        }
        work = 6 * Double(t) * Double(v) * Double(c) / 1e9
    case "attention":
        let d = 64, h = max(1, heads), hkv = max(1, h / 7)
        let q = Tensor.seeded([h, t, d], seed: 1), k = Tensor.seeded([hkv, t, d], seed: 2),
            v = Tensor.seeded([hkv, t, d], seed: 3)
        let dO = Tensor.seeded([h, t, d], seed: 4)
        body = {
            if fused {
                let f = blockwiseAttention(q: q, k: k, v: v, causal: true)
                _ = blockwiseAttentionBackward(q: q, k: k, v: v, out: f.out, lse: f.lse, dOut: dO, causal: true)
            } else {
                _ = attentionNaive(q: q, k: k, v: v, causal: true)
                _ = attentionBackwardNaive(q: q, k: k, v: v, dOut: dO, causal: true)
            }
        }
        work = 7 * Double(t) * Double(t) * Double(d) * Double(h) / 1e9 // causal: 7 matmuls over half the scores
    default:
        throw ValidationError("fused: unknown operator \(op)")
    }
    let before = currentRSSBytes()
    // The first call gives the memory figures and counts as one timing (a separate warm-up would double
    // the cost of the many-second cases); further runs up to `repeats` complete the median.
    let t0 = now()
    let (_, ledger) = MemoryLedger.current.measure { body() }
    var times = [now() - t0]
    for _ in 1..<max(repeats, 1) { let t1 = now(); body(); times.append(now() - t1) }
    times.sort()
    let seconds = times[times.count / 2]
    let peak = peakRSSBytes()
    let r = FusedCaseResult(
        bench: BenchResult(
            name: op, variant: fused ? "fused" : "naive", size: "T=\(t)", threads: threads,
            medianSeconds: seconds, rate: work / seconds, unit: unit, peakRSSBytes: peak),
        ledgerBytes: ledger, rssGrowthBytes: peak - before, tokens: t)
    print(String(decoding: try JSONEncoder().encode(r), as: UTF8.self))
}
