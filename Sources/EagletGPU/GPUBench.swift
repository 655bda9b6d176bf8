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

    /// "4096,32768" → [4096, 32768]; throws on anything that is not a positive count.
    public static func tokenCounts(_ list: String) throws -> [Int] {
        let counts = list.split(separator: ",").map { Int(String($0.filter { $0 != " " })) }
        guard !counts.isEmpty, counts.allSatisfy({ ($0 ?? 0) > 0 && ($0 ?? 0) <= 1 << 20 }) else {
            throw GPUError.unsupported("--tokens must be positive counts up to 1048576, comma-separated, not '\(list)'")
        }
        return counts.compactMap { $0 }
    }

    static func median(_ x: [Double]) -> Double { let s = x.sorted(); return s[s.count / 2] }

    /// Seconds for the So400m tower on one tile (one layer's weights run 27 times: same work, less upload).
    public static func visionTower(_ gpu: GPU, precision: GPUPrecision, repeats: Int) throws -> Double {
        let v = vision
        if precision == .bf16 { return try visionTowerBF16(gpu, repeats: repeats) }
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
        if precision == .bf16 { return try decoderLayerBF16(gpu, tokens: t, repeats: repeats) }
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

    static func seeded(_ n: Int, _ seed: UInt64, scale: Float = 0.02) -> [Float] {
        Tensor.seeded([n], seed: seed, scale: scale).storage
    }

    /// Times `body` (one warm-up, then the median of `repeats`, each ended by a device synchronise).
    static func timed(_ gpu: GPU, repeats: Int, _ body: () throws -> Void) throws -> Double {
        var times = [Double]()
        for r in 0...repeats {
            try gpu.synchronize()
            let t0 = Date()
            try body()
            try gpu.synchronize()
            if r > 0 { times.append(Date().timeIntervalSince(t0)) }
        }
        return median(times)
    }

    /// The tower in bf16 activations (GPUSiglipLayerBF16), the same seeded weights as the fp32 case.
    static func visionTowerBF16(_ gpu: GPU, repeats: Int) throws -> Double {
        let v = vision
        try gpu.loadKernelsBF16()
        func wb(_ n: Int, _ k: Int, _ seed: UInt64) -> ([Float], [Float]) {
            (Tensor.seeded([n, k], seed: seed, scale: 0.02).storage, seeded(n, seed + 1))
        }
        let ones = [Float](repeating: 1, count: v.c), zeros = [Float](repeating: 0, count: v.c)
        let layer = try GPUSiglipLayerBF16(
            gpu: gpu, ln1: (ones, zeros), ln2: (ones, zeros), q: wb(v.c, v.c, 1), k: wb(v.c, v.c, 3),
            v: wb(v.c, v.c, 5), o: wb(v.c, v.c, 7), fc1: wb(v.mlp, v.c, 9), fc2: wb(v.c, v.mlp, 11), width: v.c,
            intermediate: v.mlp)
        let x0 = try gpu.bf16(try gpu.upload(Tensor.seeded([v.tokens, v.c], seed: 13, scale: 1).storage))
        return try timed(gpu, repeats: repeats) {
            var x = x0
            for _ in 0..<v.layers { x = try layer(gpu, x, tokens: v.tokens, width: v.c, heads: v.heads, eps: 1e-6) }
        }
    }

    /// The Qwen2.5-7B layer in bf16 activations (GPUQwen2LayerBF16), the same seeded weights as the fp32 case.
    static func decoderLayerBF16(_ gpu: GPU, tokens t: Int, repeats: Int) throws -> Double {
        let s = decoder, kvw = s.kvHeads * s.d
        try gpu.loadKernelsBF16()
        func w(_ n: Int, _ k: Int, _ seed: UInt64) -> [Float] { Tensor.seeded([n, k], seed: seed, scale: 0.02).storage }
        let ones = [Float](repeating: 1, count: s.c)
        func lin(_ n: Int, _ k: Int, _ seed: UInt64, bias: Bool) -> Linear {
            Linear(
                weight: Tensor.seeded([n, k], seed: seed, scale: 0.02),
                bias: bias ? Tensor.seeded([n], seed: seed + 1, scale: 0.02) : nil)
        }
        let layer = try GPUQwen2LayerBF16(
            gpu: gpu, inputNorm: ones, postNorm: ones, q: lin(s.heads * s.d, s.c, 21, bias: true),
            k: lin(kvw, s.c, 23, bias: true), v: lin(kvw, s.c, 25, bias: true),
            o: lin(s.c, s.heads * s.d, 27, bias: false),
            gate: lin(s.mlp, s.c, 29, bias: false), up: lin(s.mlp, s.c, 31, bias: false),
            down: lin(s.c, s.mlp, 33, bias: false))
        let invFreq = try gpu.upload(RotaryEmbedding(headDim: s.d, theta: 1_000_000).invFreq)
        let keys = try gpu.alloc(t * kvw, elementSize: 2), values = try gpu.alloc(t * kvw, elementSize: 2)
        let x0 = try gpu.bf16(try gpu.upload(Tensor.seeded([t, s.c], seed: 35, scale: 1).storage))
        return try timed(gpu, repeats: repeats) {
            _ = try layer(
                gpu, x0, tokens: t, width: s.c, heads: s.heads, kvHeads: s.kvHeads, headDim: s.d, eps: 1e-6,
                invFreq: invFreq, keys: keys, values: values, start: 0)
        }
    }

    /// The flash kernel alone: causal GQA attention of the 7B shape (28 heads over 4 of 128) at `tokens`.
    public static func attentionAlone(_ gpu: GPU, tokens t: Int, repeats: Int) throws -> Double {
        let s = decoder
        try gpu.loadKernelsBF16()
        let q = try gpu.bf16(try gpu.upload(Tensor.seeded([t * s.heads * s.d], seed: 41, scale: 1).storage))
        let k = try gpu.bf16(try gpu.upload(Tensor.seeded([t * s.kvHeads * s.d], seed: 42, scale: 1).storage))
        let v = try gpu.bf16(try gpu.upload(Tensor.seeded([t * s.kvHeads * s.d], seed: 43, scale: 1).storage))
        let out = try gpu.alloc(t * s.heads * s.d, elementSize: 2), lse = try gpu.alloc(s.heads * t)
        return try timed(gpu, repeats: repeats) {
            try gpu.flashAttention(
                q: q.pointer, qStride: s.heads * s.d, k: k.pointer, v: v.pointer, kvStride: s.kvHeads * s.d,
                out: out.pointer, outStride: s.heads * s.d, lse: lse.pointer, tokens: t, keys: t, heads: s.heads,
                kvHeads: s.kvHeads, headDim: s.d, causal: true, start: 0)
        }
    }

    /// Causal attention FLOPs of the 7B shape, 4·T²·H·D / 2, counted the same way for both sides.
    static func attentionFLOPs(tokens: Int) -> Double {
        2 * Double(tokens) * Double(tokens) * Double(decoder.heads * decoder.d)
    }

    /// Runs PyTorch's side: `python3 script case precision repeats` printing {"seconds": …}. nil (with
    /// the reason printed) when Python, torch or the script is missing.
    static func torchSeconds(
        script: String, python: String, name: String, precision: GPUPrecision, tokens: Int, repeats: Int,
        printLine: (String) -> Void
    ) -> Double? {
        guard FileManager.default.fileExists(atPath: script) else {
            printLine("PyTorch: no \(script); skipped"); return nil
        }
        guard
            let (status, text) = runCapturingOutput([
                python, script, name, precision.rawValue, "\(repeats)", "\(tokens)"
            ])
        else {
            printLine("PyTorch: could not start \(python)"); return nil
        }
        guard status == 0,
            let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
            let obj = (try? JSON.parse(Data(line.utf8))) as? [String: Any],
            let s = JSON.double(obj["seconds"])
        else {
            printLine(
                "PyTorch: \(name) \(precision.rawValue) T=\(tokens) failed (status \(status)): \(text.suffix(300))")
            return nil
        }
        return s
    }

    /// The whole benchmark; prints a table and returns its rows.
    public static func run(
        precisions: [GPUPrecision] = GPUPrecision.allCases, tokens: [Int] = [4096], repeats: Int = 5,
        torchScript: String? = "Fixtures/generate/bench_gpu_torch.py", python: String = "python3",
        agreement: Bool = true, printLine: (String) -> Void = { print($0) }
    ) throws -> (device: String, rows: [Row]) {
        var rows = [Row]()
        // fp32 materialises the (H, T, S) scores: 28·T² floats, 60 GB at 32K tokens.
        func fits(_ p: GPUPrecision, _ t: Int) -> Bool { p == .bf16 || t <= 16384 }
        var torch = [String: Double]()
        if let script = torchScript {
            for p in precisions {
                torch["vision-\(p)"] = torchSeconds(
                    script: script, python: python, name: "vision", precision: p, tokens: 1024, repeats: repeats,
                    printLine: printLine)
                for t in tokens where fits(p, t) {
                    torch["decoder-\(p)-\(t)"] = torchSeconds(
                        script: script, python: python, name: "decoder", precision: p, tokens: t, repeats: repeats,
                        printLine: printLine)
                    if p == .bf16 {
                        torch["attention-\(t)"] = torchSeconds(
                            script: script, python: python, name: "attention", precision: p, tokens: t,
                            repeats: repeats, printLine: printLine)
                    }
                }
            }
        }
        let gpu = try GPU.open()
        try gpu.loadKernels()
        printLine("device: \(gpu.summary)")
        printLine("bf16 kernels: source fnv1a64 \(GPUKernels.bf16SourceHash)")
        try gpu.loadKernelsBF16()
        printLine(
            "flash kernel for D = 128: "
                + (gpu.usesHopperFlash(headDim: 128)
                    ? "wgmma \(gpu.hopperFlashVariant), sm_90a (source fnv1a64 \(gpu.hopperFlashSourceHash))"
                    : "mma.sync"))
        if agreement {
            for (name, rel, tolerance, passed) in try realSizeAgreement(gpu) {
                printLine(
                    "agreement with the CPU, \(name): relative \(cFormat("%.2e", Double(rel))) "
                        + (passed ? "(within \(tolerance))" : "(OUTSIDE \(tolerance))"))
            }
            gpu.releasePool()
        }
        printLine(padded("case", 38) + "prec  Eaglet s   TFLOP/s  PyTorch s  TFLOP/s  PyTorch/Eaglet")
        func add(_ r: Row) {
            rows.append(r)
            printLine(format(r))
            gpu.releasePool()
        }
        for p in precisions {
            add(
                Row(
                    name: "So400m tower, 1 tile (T=1024)", precision: p,
                    eagletSeconds: try visionTower(gpu, precision: p, repeats: repeats),
                    torchSeconds: torch["vision-\(p)"], flops: visionFLOPs()))
            for t in tokens {
                guard fits(p, t) else {
                    printLine(
                        padded("Qwen2.5-7B layer, prefill T=\(t)", 38) + "\(p.rawValue)  skipped: the fp32 path "
                            + "materialises the (H, T, S) scores");
                    continue
                }
                add(
                    Row(
                        name: "Qwen2.5-7B layer, prefill T=\(t)", precision: p,
                        eagletSeconds: try decoderLayer(gpu, tokens: t, precision: p, repeats: repeats),
                        torchSeconds: torch["decoder-\(p)-\(t)"], flops: decoderFLOPs(tokens: t)))
                if p == .bf16 {
                    add(
                        Row(
                            name: "attention alone, causal GQA T=\(t)", precision: p,
                            eagletSeconds: try attentionAlone(gpu, tokens: t, repeats: repeats),
                            torchSeconds: torch["attention-\(t)"], flops: attentionFLOPs(tokens: t)))
                }
            }
        }
        return (gpu.summary, rows)
    }

    /// One So400m encoder layer (T = 1024) and one Qwen2.5-7B decoder layer (T = 256) with the same
    /// seeded weights on the CPU (SigLIP2, Qwen2 modules) and on the GPU, fp32: (case, relative, within).
    public static func realSizeAgreement(_ gpu: GPU) throws -> [(String, Float, String, Bool)] {
        var out = [(String, Float, String, Bool)]()
        try gpu.loadKernelsBF16()
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
            out.append(("So400m encoder layer, T=1024", r.maxRelative, "fp32-block", r.passed))
            let lb = try GPUSiglipLayerBF16(
                gpu: gpu, ln1: (ones.storage, zeros.storage), ln2: (ones.storage, zeros.storage),
                q: (q.0.storage, q.1.storage), k: (k.0.storage, k.1.storage), v: (vv.0.storage, vv.1.storage),
                o: (o.0.storage, o.1.storage), fc1: (f1.0.storage, f1.1.storage), fc2: (f2.0.storage, f2.1.storage),
                width: v.c, intermediate: v.mlp)
            let gotBF16 = try gpu.downloadBF16(
                try lb(
                    gpu, try gpu.bf16(try gpu.upload(x.storage)), tokens: v.tokens, width: v.c, heads: v.heads,
                    eps: 1e-6))
            let rb = GPUCheck.closenessAtScale(gotBF16, ref, .bf16)
            out.append(("So400m encoder layer, T=1024, bf16", rb.maxRelative, "bf16", rb.passed))
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
            out.append(("Qwen2.5-7B decoder layer, T=256", r.maxRelative, "fp32-block", r.passed))
            let lb = try GPUQwen2LayerBF16(
                gpu: gpu, inputNorm: ones.storage, postNorm: ones.storage, q: c(q), k: c(k), v: c(v), o: c(o),
                gate: c(gate), up: c(up), down: c(down))
            let gotBF16 = try gpu.downloadBF16(
                try lb(
                    gpu, try gpu.bf16(try gpu.upload(x.storage)), tokens: t, width: s.c, heads: s.heads,
                    kvHeads: s.kvHeads, headDim: s.d, eps: 1e-6, invFreq: try gpu.upload(rope.invFreq),
                    keys: try gpu.alloc(t * kvw, elementSize: 2), values: try gpu.alloc(t * kvw, elementSize: 2),
                    start: 0))
            let rb = GPUCheck.closenessAtScale(gotBF16, ref, .bf16)
            out.append(("Qwen2.5-7B decoder layer, T=256, bf16", rb.maxRelative, "bf16", rb.passed))
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
        var line: String = padded(r.name, 38) + r.precision.rawValue + "  "
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
