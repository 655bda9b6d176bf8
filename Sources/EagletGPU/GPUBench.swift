// `eaglet-gpu bench` / `eaglet-bench gpu`: real-size shapes on the GPU mirror against PyTorch eager on
// the same card, fp32 and bf16 — the SigLIP So400m tower on one 448 px tile (27 layers, C = 1152,
// 16 heads, MLP 4304, T = 1024) and one Qwen2.5-7B-shaped decoder layer (C = 3584, 28 heads over 4 kv
// heads of 128, MLP 18944) prefilling 4096 tokens. Random weights (seeded); timings are the median of
// `repeats` runs after one warm-up, each ended by a device synchronise. PyTorch runs first, in its own
// process (Fixtures/generate/bench_gpu_torch.py), so the two never share the card's memory.
// What it is not: a correctness check (gpu-check is), or a tuned kernel contest: Eaglet's GPU path
// materialises the (H, T, S) scores, PyTorch uses its fused SDPA kernels.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import _Essentials
#if canImport(Glibc)
import Glibc
#endif
import PatchEmbed
import Qwen2
import QwenAttention
import SigLIP2
import Tensor

public enum GPUBench {
    public struct Row {
        public var name: String
        public var precision: GPUPrecision
        public var eagletSeconds: Double
        public var torchSeconds: Double?
        public var flops: Double
    }

    /// So400m: 27 layers of width 1152, 16 heads, MLP 4304, T = 1024 (448 px at patch 14).
    static let vision = (layers: 27, c: 1152, heads: 16, mlp: 4304, tokens: 1024)
    /// Qwen2.5-7B: width 3584, 28 heads over 4 kv heads, head dim 128, MLP 18944.
    static let decoder = (c: 3584, heads: 28, kvHeads: 4, d: 128, mlp: 18944)

    static func visionFLOPs() -> Double {
        let v = vision
        let t = Double(v.tokens), c = Double(v.c), i = Double(v.mlp)
        return Double(v.layers) * (2 * t * (4 * c * c + 2 * c * i) + 4 * t * t * c)
    }

    static func decoderFLOPs(tokens: Int) -> Double {
        let s = decoder
        let t = Double(tokens), c = Double(s.c), kv = Double(s.kvHeads * s.d), i = Double(s.mlp)
        return 2 * t * (c * c + 2 * c * kv + c * c + 3 * c * i) + 4 * t * t * c // attention counted as materialised
    }

    static func linear(_ gpu: GPU, out n: Int, in k: Int, bias: Bool, seed: UInt64, precision: GPUPrecision) throws
        -> GPULinear
    {
        try GPULinear(
            gpu: gpu, weight: Tensor.seeded([n, k], seed: seed, scale: 0.02).storage,
            bias: bias ? Tensor.seeded([n], seed: seed + 1, scale: 0.02).storage : nil, out: n, in: k,
            precision: precision)
    }

    static func median(_ x: [Double]) -> Double { let s = x.sorted(); return s[s.count / 2] }

    /// Seconds for the So400m tower on one tile (one layer's weights run 27 times: same work, less upload).
    public static func visionTower(_ gpu: GPU, precision: GPUPrecision, repeats: Int) throws -> Double {
        let v = vision
        let ones = try gpu.upload([Float](repeating: 1, count: v.c)), zeros = try gpu.zeros(v.c)
        let layer = GPUSiglipLayer(
            ln1w: ones, ln1b: zeros, ln2w: ones, ln2b: zeros,
            q: try linear(gpu, out: v.c, in: v.c, bias: true, seed: 1, precision: precision),
            k: try linear(gpu, out: v.c, in: v.c, bias: true, seed: 3, precision: precision),
            v: try linear(gpu, out: v.c, in: v.c, bias: true, seed: 5, precision: precision),
            o: try linear(gpu, out: v.c, in: v.c, bias: true, seed: 7, precision: precision),
            fc1: try linear(gpu, out: v.mlp, in: v.c, bias: true, seed: 9, precision: precision),
            fc2: try linear(gpu, out: v.c, in: v.mlp, bias: true, seed: 11, precision: precision))
        let x0 = try gpu.upload(Tensor.seeded([v.tokens, v.c], seed: 13, scale: 1).storage)
        var times = [Double]()
        for r in 0...repeats {
            try gpu.synchronize()
            let t0 = Date()
            var x = x0
            for _ in 0..<v.layers {
                x = try layer(
                    gpu, x, tokens: v.tokens, width: v.c, heads: v.heads, eps: 1e-6, precision: precision, naive: false)
            }
            try gpu.synchronize()
            if r > 0 { times.append(Date().timeIntervalSince(t0)) }
        }
        return median(times)
    }

    /// Seconds for one Qwen2.5-7B-shaped decoder layer prefilling `tokens` tokens (causal, KV written).
    public static func decoderLayer(_ gpu: GPU, tokens t: Int, precision: GPUPrecision, repeats: Int) throws -> Double {
        let s = decoder
        let ones = try gpu.upload([Float](repeating: 1, count: s.c))
        let kvw = s.kvHeads * s.d
        let layer = GPUQwen2Layer(
            inputNorm: ones, postNorm: ones,
            q: try linear(gpu, out: s.heads * s.d, in: s.c, bias: true, seed: 21, precision: precision),
            k: try linear(gpu, out: kvw, in: s.c, bias: true, seed: 23, precision: precision),
            v: try linear(gpu, out: kvw, in: s.c, bias: true, seed: 25, precision: precision),
            o: try linear(gpu, out: s.c, in: s.heads * s.d, bias: false, seed: 27, precision: precision),
            gate: try linear(gpu, out: s.mlp, in: s.c, bias: false, seed: 29, precision: precision),
            up: try linear(gpu, out: s.mlp, in: s.c, bias: false, seed: 31, precision: precision),
            down: try linear(gpu, out: s.c, in: s.mlp, bias: false, seed: 33, precision: precision))
        let invFreq = try gpu.upload(RotaryEmbedding(headDim: s.d, theta: 1_000_000).invFreq)
        let keys = try gpu.alloc(t * kvw), values = try gpu.alloc(t * kvw)
        let x0 = try gpu.upload(Tensor.seeded([t, s.c], seed: 35, scale: 1).storage)
        var times = [Double]()
        for r in 0...repeats {
            try gpu.synchronize()
            let t0 = Date()
            _ = try layer(
                gpu, x0, tokens: t, width: s.c, heads: s.heads, kvHeads: s.kvHeads, headDim: s.d, eps: 1e-6,
                invFreq: invFreq, keys: keys, values: values, start: 0, precision: precision, naive: false)
            try gpu.synchronize()
            if r > 0 { times.append(Date().timeIntervalSince(t0)) }
        }
        return median(times)
    }

    /// Runs PyTorch's side: `python3 script case precision repeats` printing {"seconds": …}. nil (with
    /// the reason printed) when Python, torch or the script is missing.
    static func torchSeconds(
        script: String, python: String, name: String, precision: GPUPrecision, repeats: Int,
        printLine: (String) -> Void
    ) -> Double? {
        guard FileManager.default.fileExists(atPath: script) else {
            printLine("PyTorch: no \(script); skipped"); return nil
        }
        guard let (status, text) = runCapturingOutput([python, script, name, precision.rawValue, "\(repeats)"]) else {
            printLine("PyTorch: could not start \(python)"); return nil
        }
        guard status == 0,
            let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
            let obj = (try? JSON.parse(Data(line.utf8))) as? [String: Any],
            let s = JSON.double(obj["seconds"])
        else {
            printLine("PyTorch: \(name) \(precision.rawValue) failed (status \(status)): \(text.suffix(300))")
            return nil
        }
        return s
    }

    /// The whole benchmark; prints a table and returns its rows.
    public static func run(
        precisions: [GPUPrecision] = GPUPrecision.allCases, tokens: Int = 4096, repeats: Int = 5,
        torchScript: String? = "Fixtures/generate/bench_gpu_torch.py", python: String = "python3",
        agreement: Bool = true, printLine: (String) -> Void = { print($0) }
    ) throws -> (device: String, rows: [Row]) {
        var rows = [Row]()
        var torch = [String: Double]()
        if let script = torchScript {
            for p in precisions {
                torch["vision-\(p)"] = torchSeconds(
                    script: script, python: python, name: "vision", precision: p, repeats: repeats, printLine: printLine
                )
                torch["decoder-\(p)"] = torchSeconds(
                    script: script, python: python, name: "decoder", precision: p, repeats: repeats,
                    printLine: printLine)
            }
        }
        let gpu = try GPU.open()
        try gpu.loadKernels()
        printLine("device: \(gpu.summary)")
        if agreement {
            for (name, rel, passed) in try realSizeAgreement(gpu) {
                printLine(
                    "agreement with the CPU, \(name): relative \(cFormat("%.2e", Double(rel))) "
                        + (passed ? "(within fp32-block)" : "(OUTSIDE fp32-block)"))
            }
            gpu.releasePool()
        }
        printLine(padded("case", 34) + "prec  Eaglet s   TFLOP/s  PyTorch s  TFLOP/s  PyTorch/Eaglet")
        for p in precisions {
            let v = try visionTower(gpu, precision: p, repeats: repeats)
            rows.append(
                Row(
                    name: "So400m tower, 1 tile (T=1024)", precision: p, eagletSeconds: v,
                    torchSeconds: torch["vision-\(p)"], flops: visionFLOPs()))
            printLine(format(rows.last!))
            gpu.releasePool()
            let d = try decoderLayer(gpu, tokens: tokens, precision: p, repeats: repeats)
            rows.append(
                Row(
                    name: "Qwen2.5-7B layer, prefill T=\(tokens)", precision: p, eagletSeconds: d,
                    torchSeconds: torch["decoder-\(p)"], flops: decoderFLOPs(tokens: tokens)))
            printLine(format(rows.last!))
            gpu.releasePool()
        }
        return (gpu.summary, rows)
    }

    /// One So400m encoder layer (T = 1024) and one Qwen2.5-7B decoder layer (T = 256) with the same
    /// seeded weights on the CPU (SigLIP2, Qwen2 modules) and on the GPU, fp32: (case, relative, within).
    public static func realSizeAgreement(_ gpu: GPU) throws -> [(String, Float, Bool)] {
        var out = [(String, Float, Bool)]()
        do {
            let v = vision
            func w(_ n: Int, _ k: Int, _ seed: UInt64) -> (Tensor, Tensor) {
                (Tensor.seeded([n, k], seed: seed, scale: 0.02), Tensor.seeded([n], seed: seed + 1, scale: 0.02))
            }
            let q = w(v.c, v.c, 1), k = w(v.c, v.c, 3), vv = w(v.c, v.c, 5), o = w(v.c, v.c, 7)
            let f1 = w(v.mlp, v.c, 9), f2 = w(v.c, v.mlp, 11)
            let ones = Tensor(shape: [v.c], storage: [Float](repeating: 1, count: v.c)), zeros = Tensor(shape: [v.c])
            let cpu = SiglipEncoderLayer(
                layerNorm1: LayerNorm(weight: ones, bias: zeros, eps: 1e-6),
                selfAttn: SiglipAttention(
                    qProj: SiglipLinear(weight: q.0, bias: q.1), kProj: SiglipLinear(weight: k.0, bias: k.1),
                    vProj: SiglipLinear(weight: vv.0, bias: vv.1), outProj: SiglipLinear(weight: o.0, bias: o.1),
                    numHeads: v.heads),
                layerNorm2: LayerNorm(weight: ones, bias: zeros, eps: 1e-6),
                mlp: SiglipMLP(fc1: SiglipLinear(weight: f1.0, bias: f1.1), fc2: SiglipLinear(weight: f2.0, bias: f2.1))
            )
            func g(_ p: (Tensor, Tensor)) throws -> GPULinear {
                try GPULinear(gpu: gpu, weight: p.0.storage, bias: p.1.storage, out: p.0.shape[0], in: p.0.shape[1])
            }
            let gl = GPUSiglipLayer(
                ln1w: try gpu.upload(ones.storage), ln1b: try gpu.upload(zeros.storage),
                ln2w: try gpu.upload(ones.storage), ln2b: try gpu.upload(zeros.storage),
                q: try g(q), k: try g(k), v: try g(vv), o: try g(o), fc1: try g(f1), fc2: try g(f2))
            let x = Tensor.seeded([v.tokens, v.c], seed: 13, scale: 1)
            let ref = cpu(x).storage
            let got = try gpu.download(
                try gl(
                    gpu, try gpu.upload(x.storage), tokens: v.tokens, width: v.c, heads: v.heads, eps: 1e-6,
                    precision: .fp32, naive: false))
            let r = closeness(got, ref, .fp32Block)
            out.append(("So400m encoder layer, T=1024", r.maxRelative, r.passed))
        }
        do {
            let s = decoder, t = 256, kvw = s.kvHeads * s.d
            func w(_ n: Int, _ k: Int, _ seed: UInt64, bias: Bool) -> (Tensor, Tensor?) {
                (
                    Tensor.seeded([n, k], seed: seed, scale: 0.02),
                    bias ? Tensor.seeded([n], seed: seed + 1, scale: 0.02) : nil
                )
            }
            let q = w(s.heads * s.d, s.c, 21, bias: true), k = w(kvw, s.c, 23, bias: true),
                v = w(kvw, s.c, 25, bias: true)
            let o = w(s.c, s.heads * s.d, 27, bias: false)
            let gate = w(s.mlp, s.c, 29, bias: false), up = w(s.mlp, s.c, 31, bias: false),
                down = w(s.c, s.mlp, 33, bias: false)
            let ones = Tensor(shape: [s.c], storage: [Float](repeating: 1, count: s.c))
            func c(_ p: (Tensor, Tensor?)) -> Linear { Linear(weight: p.0, bias: p.1) }
            let cpu = Qwen2DecoderLayer(
                selfAttn: Qwen2Attention(
                    qProj: c(q), kProj: c(k), vProj: c(v), oProj: c(o),
                    numHeads: s.heads, numKeyValueHeads: s.kvHeads, headDim: s.d),
                mlp: Qwen2MLP(gateProj: c(gate), upProj: c(up), downProj: c(down)),
                inputLayernorm: Qwen2RMSNorm(weight: ones, eps: 1e-6),
                postAttentionLayernorm: Qwen2RMSNorm(weight: ones, eps: 1e-6))
            let rope = RotaryEmbedding(headDim: s.d, theta: 1_000_000)
            let (cos, sin) = rope.cosSin(positions: Array(0..<t))
            let x = Tensor.seeded([t, s.c], seed: 35, scale: 1)
            var core = CausalAttention(), h = x
            cpu(&h, rope: rope, cos: cos, sin: sin, layer: 0, core: &core)
            let ref = h.storage
            func g(_ p: (Tensor, Tensor?)) throws -> GPULinear {
                try GPULinear(gpu: gpu, weight: p.0.storage, bias: p.1?.storage, out: p.0.shape[0], in: p.0.shape[1])
            }
            let gl = GPUQwen2Layer(
                inputNorm: try gpu.upload(ones.storage), postNorm: try gpu.upload(ones.storage),
                q: try g(q), k: try g(k), v: try g(v), o: try g(o), gate: try g(gate), up: try g(up), down: try g(down))
            let got = try gpu.download(
                try gl(
                    gpu, try gpu.upload(x.storage), tokens: t, width: s.c, heads: s.heads, kvHeads: s.kvHeads,
                    headDim: s.d, eps: 1e-6, invFreq: try gpu.upload(rope.invFreq),
                    keys: try gpu.alloc(t * kvw), values: try gpu.alloc(t * kvw), start: 0,
                    precision: .fp32, naive: false))
            let r = closeness(got, ref, .fp32Block)
            out.append(("Qwen2.5-7B decoder layer, T=256", r.maxRelative, r.passed))
        }
        return out
    }

    /// Rows in docs/benchmarks.csv's format (name, variant, size, threads, median_seconds, rate, unit,
    /// peak_rss_bytes, machine, date), appended to `path` (the header written when the file is new).
    public static func appendCSV(_ rows: [Row], device: String, to path: String) throws {
        let date = todayUTC()
        var text =
            FileManager.default.fileExists(atPath: path)
            ? "" : "name,variant,size,threads,median_seconds,rate,unit,peak_rss_bytes,machine,date\n"
        for r in rows {
            let size = r.name.replacing(",", with: ";")
            for (variant, secs) in [
                ("eaglet-" + r.precision.rawValue, r.eagletSeconds), ("pytorch-" + r.precision.rawValue, r.torchSeconds)
            ] {
                guard let secs else { continue }
                text += "gpu,\(variant),\(size),0,\(secs),\(r.flops / secs / 1e12),TFLOP/s,0,\"\(device)\",\(date)\n"
            }
        }
        guard appendToFile(path, text) else { throw GPUError.unsupported("cannot write \(path)") }
    }

    static func format(_ r: Row) -> String {
        let tf = { (s: Double) -> String in cFormat("%8.1f", r.flops / s / 1e12) }
        var line: String = padded(r.name, 34) + r.precision.rawValue + "  "
        line += cFormat("%8.4f", r.eagletSeconds) + "  " + tf(r.eagletSeconds)
        if let t = r.torchSeconds {
            let ratio: String = cFormat("%6.2f", t / r.eagletSeconds) + "×"
            line += "  " + cFormat("%9.4f", t) + "  " + tf(t) + "  " + ratio
        } else {
            line += "          —         —       —"
        }
        return line
    }
}
