// eaglet-bench lm: the Qwen2 decoder at Qwen2.5-0.5B shape (hidden 896, 24 layers, 14 heads over 2 KV
// heads, intermediate 4864, vocab 151936, tied embeddings, seeded random weights): prefill of 512 tokens
// (last-token logits) and greedy decode of 64 tokens, Eaglet vs PyTorch Qwen2ForCausalLM (fp32, same
// thread count) in the same run; decode also as a fraction of the memory-bandwidth bound
//     bound (tokens/s) = streaming-read bandwidth / bytes of all weights (lm_head included)
// with the bandwidth measured in the same run: the faster of a multi-threaded streaming sum (`streamRead`) and
// OpenBLAS `cblas_sasum` over 1 GiB. With `--pairs N` the three run N times in alternation, the bandwidth between
// decode repetitions, and the medians, spreads and per-pair ratios are printed. Plus the
// peak memory of naive vs blockwise attention at T = 16K, each in its own process.
import ArgumentParser
import Eaglet
import _CBLAS
import Foundation

struct LMBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm",
        abstract:
            "Qwen2.5-0.5B-shaped prefill + greedy decode vs PyTorch and the bandwidth bound; attention memory at 16K.")

    @Option(help: "Comma-separated thread counts (BLAS threads; the same for PyTorch).")
    var threads: String = "2"
    @Option(help: "Prompt length for the prefill.")
    var prompt: Int = 512
    @Option(help: "Greedy decode steps.")
    var steps: Int = 64
    @Option(help: "Decoder layers (24 for Qwen2.5-0.5B; fewer for a quick run).")
    var layers: Int = 24
    @Option(help: "Sequence length of the attention-memory cases (0 skips them).")
    var attentionTokens: Int = 16384
    @Option(
        help:
            "Pairs of repetitions, timed in alternation (bandwidth, Eaglet, PyTorch; …), each in its own process; the medians, spreads and per-pair ratios are printed."
    )
    var pairs: Int = 1
    @Flag(help: "Skip the PyTorch comparison.")
    var noTorch = false
    @Flag(help: "Append the rows to docs/benchmarks.csv.")
    var csv = false

    func run() throws {
        var results = [BenchResult]()
        var tokens = [String: [Int]]()
        let threadCounts = threads.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
        // Per thread count and pair: (bandwidth GB/s, Eaglet prefill s, Eaglet decode tok/s, PyTorch prefill s,
        // PyTorch decode tok/s). The bandwidth is measured in every pair, between the decode repetitions.
        var perPair = [Int: [(bw: Double, ep: Double, ed: Double, tp: Double, td: Double)]]()
        for t in threadCounts {
            for p in 0..<max(1, pairs) {
                let of = pairs > 1 ? " [pair \(p + 1)/\(pairs)]" : ""
                note("bandwidth threads=\(t)…" + of)
                let bw = childLines(
                    ["_case", "lm", "--variant", "bandwidth", "--size", "1024", "--threads", String(t)], threads: t
                ).results
                note("eaglet lm threads=\(t) (prompt \(prompt), \(steps) steps, \(layers) layers)…" + of)
                let e = childLines(
                    [
                        "_case", "lm", "--variant", "eaglet", "--size", String(prompt), "--steps", String(steps),
                        "--layers", String(layers), "--threads", String(t)
                    ], threads: t)
                tokens["eaglet\(t)"] = e.tokens
                var torchRows = [BenchResult]()
                if !noTorch, let script = torchScript() {
                    note("torch lm threads=\(t)…" + of)
                    let r = childLines(
                        [
                            "python3", script, "lm", "--size", String(prompt), "--steps", String(steps),
                            "--layers", String(layers), "--threads", String(t)
                        ], threads: t, executable: "/usr/bin/env")
                    torchRows = r.results
                    tokens["torch\(t)"] = r.tokens
                }
                if p == max(1, pairs) - 1 { results += bw + e.results + torchRows } // the table: the last pair
                func value(_ rows: [BenchResult], _ name: String, rate: Bool) -> Double {
                    guard let r = rows.first(where: { $0.name == name }) else { return .nan }
                    return rate ? r.rate : r.medianSeconds
                }
                perPair[t, default: []].append(
                    (
                        bw: bw.first?.rate ?? .nan, ep: value(e.results, "lm-prefill", rate: false),
                        ed: value(e.results, "lm-decode", rate: true), tp: value(torchRows, "lm-prefill", rate: false),
                        td: value(torchRows, "lm-decode", rate: true)
                    ))
            }
        }
        if attentionTokens > 0 {
            for variant in ["blockwise", "naive"] {
                note("attention \(variant) T=\(attentionTokens)…")
                let t = threadCounts.first ?? 1
                results +=
                    childLines(
                        [
                            "_case", "lm", "--variant", "attention-" + variant, "--size", String(attentionTokens),
                            "--threads", String(t)
                        ], threads: t
                    ).results
            }
        }
        printTable(results)
        print("")
        let weightBytes = Double(qwen05Config(layers: layers).parameterCount) * 4
        for t in threadCounts {
            let runs = perPair[t] ?? []
            let median = PairedTiming.median
            let bwMedian = median(runs.map(\.bw)), bound = bwMedian * 1e9 / weightBytes
            print(
                String(
                    format: "threads=%d: weights %.2f GB; streaming read %.1f GB/s → bound %.2f tokens/s", t,
                    weightBytes / 1e9, bwMedian, bound))
            let ep = median(runs.map(\.ep)), tp = median(runs.map(\.tp))
            print(
                String(
                    format: "  prefill %d tokens: eaglet %.2f s, torch %.2f s, eaglet/torch speed %.2f×", prompt,
                    ep, tp, tp / ep))
            // Each decode against the bound measured in its own pair.
            let eShare = median(runs.map { $0.ed / ($0.bw * 1e9 / weightBytes) })
            let tShare = median(runs.map { $0.td / ($0.bw * 1e9 / weightBytes) })
            let ed = median(runs.map(\.ed)), td = median(runs.map(\.td))
            print(
                String(
                    format:
                        "  decode: eaglet %.2f tok/s (%.0f%% of bound), torch %.2f tok/s (%.0f%% of bound), eaglet/torch %.2f×",
                    ed, 100 * eShare, td, 100 * tShare, ed / td))
            if runs.count > 1 {
                var prefill = PairedTiming(), decode = PairedTiming()
                prefill.eaglet = runs.map(\.ep); prefill.torch = runs.map(\.tp)
                decode.eaglet = runs.map { 1 / $0.ed }; decode.torch = runs.map { 1 / $0.td } // seconds a token
                print("  prefill, medians (min–max): " + prefill.summary())
                print("  decode s/token, medians (min–max): " + decode.summary())
                let shares = runs.map { 100 * $0.ed / ($0.bw * 1e9 / weightBytes) }
                print(
                    String(
                        format: "  decode share of each pair's bound: median %.0f%% (%.0f–%.0f%%); read %.1f–%.1f GB/s",
                        median(shares), shares.min() ?? .nan, shares.max() ?? .nan, runs.map(\.bw).min() ?? .nan,
                        runs.map(\.bw).max() ?? .nan))
            }
            if let a = tokens["eaglet\(t)"], let b = tokens["torch\(t)"] {
                let same = zip(a, b).prefix { $0 == $1 }.count
                print("  greedy tokens: eaglet and torch agree on the first \(same) of \(min(a.count, b.count))")
            }
        }
        let attn = results.filter { $0.name == "attention" }
        if let b = attn.first(where: { $0.variant == "blockwise" }),
            let n = attn.first(where: { $0.variant == "naive" })
        {
            print(
                String(
                    format: "attention T=%d: blockwise peak %.0f MiB, %.2f s; naive peak %.0f MiB, %.2f s",
                    attentionTokens, Double(b.peakRSSBytes) / 1_048_576, b.medianSeconds,
                    Double(n.peakRSSBytes) / 1_048_576, n.medianSeconds))
        }
        if csv {
            try appendCSV(results, to: "docs/benchmarks.csv", machine: machineDescription(blasCore: BLAS.coreName))
        }
    }

    func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

    /// Runs a child and parses every JSON line: BenchResults, and a {"tokens": [...]} line.
    func childLines(_ args: [String], threads: Int, executable: String? = nil) -> (
        results: [BenchResult], tokens: [Int]?
    ) {
        let exe = executable ?? (Bundle.main.executablePath ?? CommandLine.arguments[0])
        guard
            let out = runProcess(
                exe, args, environment: ["OPENBLAS_NUM_THREADS": String(threads), "OMP_NUM_THREADS": String(threads)])
        else {
            note("  (case failed: \(args.joined(separator: " ")))")
            return ([], nil)
        }
        var results = [BenchResult](), tokens: [Int]? = nil
        for line in out.split(separator: "\n") {
            let data = Data(line.utf8)
            if let r = try? JSONDecoder().decode(BenchResult.self, from: data) {
                results.append(r)
            } else if let t = try? JSONDecoder().decode(TokensLine.self, from: data) {
                tokens = t.tokens
            }
        }
        return (results, tokens)
    }
}

struct TokensLine: Codable { var tokens: [Int] }

/// Qwen2.5-0.5B's text config (tied embeddings, θ = 1e6), with `layers` decoder layers.
func qwen05Config(layers: Int) -> Qwen2Config {
    Qwen2Config(
        hiddenSize: 896, numHiddenLayers: layers, numAttentionHeads: 14, numKeyValueHeads: 2,
        intermediateSize: 4864, rmsNormEps: 1e-6, vocabSize: 151_936, tieWordEmbeddings: true,
        maxPositionEmbeddings: 32768, ropeTheta: 1_000_000)
}

extension Qwen2Config {
    /// Number of weights (tied head counted once).
    var parameterCount: Int {
        let (c, d, h, hkv, i, v) = (
            hiddenSize, headDim, numAttentionHeads, numKeyValueHeads, intermediateSize, vocabSize
        )
        let attn = c * h * d + h * d + 2 * (c * hkv * d + hkv * d) + h * d * c
        let layer = attn + 3 * c * i + 2 * c
        return v * c * (tieWordEmbeddings ? 1 : 2) + numHiddenLayers * layer + c
    }
}

/// The benchmark's weights: name → (shape, seed, scale), in the order bench_torch.py uses. Norm weights
/// are ones (seed 0 = ones).
func qwen05WeightSpecs(_ c: Qwen2Config) -> [(String, [Int], UInt64, Float)] {
    let (C, D, H, Hkv, I, V) = (
        c.hiddenSize, c.headDim, c.numAttentionHeads, c.numKeyValueHeads, c.intermediateSize, c.vocabSize
    )
    var specs: [(String, [Int])] = [("model.embed_tokens.weight", [V, C])]
    for l in 0..<c.numHiddenLayers {
        let p = "model.layers.\(l)."
        specs += [
            (p + "self_attn.q_proj.weight", [H * D, C]), (p + "self_attn.q_proj.bias", [H * D]),
            (p + "self_attn.k_proj.weight", [Hkv * D, C]), (p + "self_attn.k_proj.bias", [Hkv * D]),
            (p + "self_attn.v_proj.weight", [Hkv * D, C]), (p + "self_attn.v_proj.bias", [Hkv * D]),
            (p + "self_attn.o_proj.weight", [C, H * D]),
            (p + "mlp.gate_proj.weight", [I, C]), (p + "mlp.up_proj.weight", [I, C]),
            (p + "mlp.down_proj.weight", [C, I]),
            (p + "input_layernorm.weight", [C]), (p + "post_attention_layernorm.weight", [C])
        ]
    }
    specs.append(("model.norm.weight", [C]))
    return specs.enumerated().map { i, s in
        s.0.hasSuffix("norm.weight") ? (s.0, s.1, 0, 1) : (s.0, s.1, UInt64(7000 + i), 0.05)
    }
}

/// The prompt both sides feed: token i = (i·7919 + 13) mod V.
func benchPrompt(_ n: Int, vocab: Int) -> [Int] { (0..<n).map { ($0 * 7919 + 13) % vocab } }

/// `_case lm` and `_case attention`, run in a child process.
func runLMCase(variant: String, size: Int, steps: Int, layers: Int, repeats: Int, threads: Int) throws {
    func emit<T: Encodable>(_ v: T) throws { print(String(decoding: try JSONEncoder().encode(v), as: UTF8.self)) }
    switch variant {
    case "bandwidth":
        // Streaming read: sum `size` MiB of floats, split over `threads` threads (`streamRead`).
        let n = size * 262_144
        let data = [Float](repeating: 1, count: n)
        let t = data.withUnsafeBufferPointer { buf in medianTime(repeats: 7) { streamRead(buf, threads: threads) } }
        // OpenBLAS's own streaming reduction (AVX-512 kernels, its threads) as a second opinion; the
        // faster of the two is the bound.
        let tBLAS = data.withUnsafeBufferPointer { buf in
            medianTime(repeats: 7) { _ = cblas_sasum(Int32(n), buf.baseAddress!, 1) }
        }
        let best = min(t, tBLAS)
        try emit(
            BenchResult(
                name: "bandwidth", variant: best == t ? "stream-read" : "stream-read(sasum)", size: "\(size)MiB",
                threads: threads,
                medianSeconds: best, rate: Double(n * 4) / best / 1e9, unit: "GB/s", peakRSSBytes: peakRSSBytes()))
    case "eaglet", "eaglet-serial":
        let config = qwen05Config(layers: layers)
        var weights = [String: Tensor]()
        for (name, shape, seed, scale) in qwen05WeightSpecs(config) {
            weights[name] =
                seed == 0 ? Tensor(shape: shape, repeating: 1) : Tensor.seeded(shape, seed: seed, scale: scale)
        }
        var model = try Qwen2ForCausalLM.load(config: config, store: WeightStore(TensorDictionary(weights)))
        model.rowSplitPrefill = variant == "eaglet" // eaglet-serial: OpenBLAS threads each product instead
        weights = [:]
        let prompt = benchPrompt(size, vocab: config.vocabSize)
        var first = 0
        let tp = medianTime(repeats: repeats, warmup: 1) {
            var cache: KVCache? = model.makeCache(capacity: size + steps + 1)
            first = argmax(
                model.forward(prompt, cache: &cache, lastOnly: true, compute: .fast(threads: threads)).storage)
        }
        try emit(
            BenchResult(
                name: "lm-prefill", variant: variant, size: "T=\(size),L=\(layers)", threads: threads,
                medianSeconds: tp,
                rate: Double(size) / tp, unit: "tok/s", peakRSSBytes: peakRSSBytes()))
        if variant == "eaglet-serial" { return }
        var cache: KVCache? = model.makeCache(capacity: size + steps + 1)
        var next = argmax(
            model.forward(prompt, cache: &cache, lastOnly: true, compute: .fast(threads: threads)).storage)
        precondition(next == first)
        var tokens = [next]
        let t0 = now()
        for _ in 0..<steps {
            next = argmax(
                model.forward([next], cache: &cache, lastOnly: true, compute: .fast(threads: threads)).storage)
            tokens.append(next)
        }
        let td = now() - t0
        try emit(
            BenchResult(
                name: "lm-decode", variant: "eaglet", size: "\(steps) steps,L=\(layers)", threads: threads,
                medianSeconds: td / Double(steps),
                rate: Double(steps) / td, unit: "tok/s", peakRSSBytes: peakRSSBytes()))
        try emit(TokensLine(tokens: tokens))
    case "gemv":
        // Where decode time goes: the lm_head-sized (V, C) matrix read by a plain streaming sum, by
        // gemvRows, and by cblas_sgemv, in one process.
        let w = Tensor.seeded([151_936, 896], seed: 5, scale: 0.05), x = Tensor.seeded([1, 896], seed: 6)
        let bytes = Double(w.count * 4)
        let read = medianTime(repeats: 9) {
            _ = w.storage.withUnsafeBufferPointer { b in
                var acc = SIMD16<Float>()
                let raw = UnsafeRawPointer(b.baseAddress!)
                for i in stride(from: 0, to: b.count - 15, by: 16) {
                    acc += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                }
                return acc.sum()
            }
        }
        let ours = medianTime(repeats: 9) { _ = Linear(weight: w)(x, compute: .fast(threads: threads)) }
        let blas = medianTime(repeats: 9) {
            _ = Linear(weight: w)(x, compute: Compute(path: .fast, threads: threads, gemv: .blas))
        }
        for (v, t) in [("stream-1thread", read), ("gemvRows", ours), ("cblas_sgemv", blas)] {
            try emit(
                BenchResult(
                    name: "gemv", variant: v, size: "151936x896", threads: threads, medianSeconds: t,
                    rate: bytes / t / 1e9, unit: "GB/s", peakRSSBytes: peakRSSBytes()))
        }
    case "attention-naive", "attention-blockwise":
        try runAttentionCase(variant: String(variant.dropFirst("attention-".count)), size: size, threads: threads)
    default:
        throw ValidationError("unknown lm variant \(variant)")
    }
}

/// `_case lm --variant attention-…`: one causal attention over T tokens (2 query heads over 1 kv head, D = 64), naive
/// or blockwise, so the peak RSS of the process is that path's.
func runAttentionCase(variant: String, size t: Int, threads: Int) throws {
    let q = Tensor.seeded([2, t, 64], seed: 1), k = Tensor.seeded([1, t, 64], seed: 2),
        v = Tensor.seeded([1, t, 64], seed: 3)
    let t0 = now()
    let r =
        variant == "naive"
        ? attentionNaive(q: q, k: k, v: v, causal: true) : blockwiseAttention(q: q, k: k, v: v, causal: true)
    let dt = now() - t0
    precondition(r.out.count == q.count)
    let flops = 2.0 * 2.0 * Double(t) * Double(t) * 64 * 2 / 2 // causal half of q·kᵀ and p·v, 2 heads
    print(
        String(
            decoding: try JSONEncoder().encode(
                BenchResult(
                    name: "attention", variant: variant, size: "T=\(t),H=2,Hkv=1,D=64", threads: threads,
                    medianSeconds: dt,
                    rate: flops / dt / 1e9, unit: "GFLOP/s", peakRSSBytes: peakRSSBytes())), as: UTF8.self))
}
