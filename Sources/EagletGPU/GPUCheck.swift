// `gpu-check`: the CPU model and the GPU mirror run the same prompt side by side; every stage — each
// tile's embeddings and vision layers, post_layernorm, the pixel shuffle, mlp1, each decoder layer, the
// final norm, the logits — is compared with `closeness` under the fp32-block row of the tolerance table
// (docs/tolerances.md), and greedy generation must give identical tokens.
// What it is not: a test of either side against transformers (the fixtures do that); it catches what a
// single implementation cannot see in itself — an operator that is wrong in the same way in its naive
// and fast paths, or an assumption baked into both (chapter 14).
import Connector
import Eagle
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import _Essentials
#if canImport(Glibc)
import Glibc
#endif
import Imaging
import QwenAttention
import SigLIP2
import Tensor

public struct GPUCheckReport {
    public struct Row {
        public var stage: String
        public var count: Int
        public var maxAbs: Float
        public var relative: Float
        public var passed: Bool
    }
    public var device = ""
    public var rows = [Row]()
    public var cpuTokens = [Int](), gpuTokens = [Int]()
    public var cpuText = "", gpuText = ""
    public var cpuSeconds = 0.0, gpuSeconds = 0.0
    public var tokensEqual: Bool { cpuTokens == gpuTokens }
    public var passed: Bool { rows.allSatisfy(\.passed) && tokensEqual }
}

public enum GPUCheck {
    /// bf16 against fp32 is judged at the tensor's own scale: both sides divided by max|ref| before the
    /// elementwise bound (docs/tolerances.md, row `bf16`). A residual stream of magnitude 20 has a bf16 spacing
    /// of 0.125, so an absolute bound made for unit-scale outputs would fail it on rounding alone.
    public static func closenessAtScale(_ got: [Float], _ ref: [Float], _ tolerance: Tolerance) -> CloseReport {
        let scale = ref.reduce(Float(0)) { max($0, abs($1)) }
        guard scale > 0, scale.isFinite else { return closeness(got, ref, tolerance) }
        return closeness(got.map { $0 / scale }, ref.map { $0 / scale }, tolerance)
    }

    /// Runs the check. `printLine` receives the table as it is made.
    public static func run(
        model directory: String, image: String?, prompt: String, maxNewTokens: Int = 16,
        compute: Compute = .fast, tolerance: Tolerance = .fp32Block, precision: GPUPrecision = .fp32,
        printLine: @escaping (String) -> Void = { print($0) }
    ) throws -> GPUCheckReport {
        let gpu = try GPU.open() // first: without a GPU nothing else is worth loading
        let pipeline = try EaglePipeline(directory: directory)
        let images = try image.map { [try RGBImage.load($0)] } ?? []
        let prepared = try pipeline.prepare(images: images, question: prompt)
        let model = pipeline.model
        var report = GPUCheckReport()
        report.device = gpu.summary
        printLine("device: \(gpu.summary)")
        printLine(
            "model: \(directory); \(prepared.ids.count) prompt tokens, \(prepared.pixelValues?.shape[0] ?? 0) tiles; "
                + "paths: CPU fast, GPU \(compute.isReference ? "naive kernels" : "cuBLAS") \(precision.rawValue); "
                + "tolerance \(tolerance)")

        // CPU: every stage, by the CPU modules' own hooks.
        var cpu = [String: [Float]]()
        var order = [String]()
        func keep(_ name: String, _ v: [Float]) { cpu[name] = v; order.append(name) }
        var visual: Tensor? = nil
        if let p = prepared.pixelValues {
            let n = p.shape[0]
            var features = [Float]()
            for i in 0..<n {
                let tag = n > 1 ? "tile.\(i)." : ""
                let out = model.visionModel(p.row(i))
                keep(tag + "vision.embeddings", out.hiddenStates[0].storage)
                for (l, s) in out.hiddenStates.dropFirst().enumerated() { keep(tag + "vision.layers.\(l)", s.storage) }
                keep(tag + "vision.post_layernorm", out.lastHiddenState.storage)
                features += try SiglipVisionTransformer.features(out, selectLayer: model.config.selectLayer).storage
            }
            let f = Tensor(
                shape: [n, features.count / n / model.config.vision.hiddenSize, model.config.vision.hiddenSize],
                storage: features)
            keep("connector.pixel_shuffle", try pixelShuffle(f).storage)
            visual = try model.visualTokens(fromFeatures: f)
            keep("connector.mlp1", visual!.storage)
        }
        let emb = try model.splice(ids: prepared.ids, visual: visual)
        let lm = model.languageModel
        var none: KVCache? = nil
        let h = lm.hiddenStates(emb, cache: &none) { i, out in keep("decoder.layers.\(i)", out.storage) }
        keep("decoder.norm", h.storage)
        keep("logits", lm.lmHead(h).storage)

        // GPU: the same stages, compared as they arrive.
        let g = try GPUEagle(gpu: gpu, model: model, precision: precision)
        g.compute = compute
        printLine(
            pad("stage", 30) + pad("values", 10) + pad("max |Δ|", 12) + pad("relative", 12) + "within " + tolerance.name
        )
        func compare(_ name: String, _ values: () throws -> [Float]) throws {
            guard let ref = cpu[name] else { return }
            let got = try values()
            let r = closeness(got, ref, tolerance)
            let passed = precision == .bf16 ? GPUCheck.closenessAtScale(got, ref, tolerance).passed : r.passed
            let row = GPUCheckReport.Row(
                stage: name, count: ref.count, maxAbs: r.maxAbsDiff, relative: r.maxRelative, passed: passed)
            report.rows.append(row)
            printLine(
                pad(name, 30) + pad("\(ref.count)", 10) + pad(sci(r.maxAbsDiff), 12) + pad(sci(r.maxRelative), 12)
                    + (passed ? "yes" : "NO: \(r)"))
        }
        var gv: (GPUBuffer, Int)? = nil
        if let p = prepared.pixelValues { gv = try g.visualTokens(pixelValues: p, stage: compare) }
        let cache = try g.makeCache(capacity: prepared.ids.count)
        let e = try g.embed(ids: prepared.ids, visual: gv)
        let gh = try g.decode(e, tokens: prepared.ids.count, cache: cache, stage: compare)
        let gl = try g.logits(gh, tokens: prepared.ids.count, lastOnly: false)
        try compare("logits") { gl }
        let missing = order.filter { name in !report.rows.contains { $0.stage == name } }
        if !missing.isEmpty { printLine("stages the GPU did not report: \(missing.joined(separator: ", "))") }

        // Greedy generation on both.
        let t0 = Date()
        let cpuGen = try pipeline.generate(
            ids: prepared.ids, pixelValues: prepared.pixelValues, maxNewTokens: maxNewTokens)
        report.cpuSeconds = Date().timeIntervalSince(t0)
        let t1 = Date()
        let gpuGen = try g.generateGreedy(
            ids: prepared.ids, pixelValues: prepared.pixelValues, maxNewTokens: maxNewTokens,
            stopTokens: pipeline.stopTokens)
        report.gpuSeconds = Date().timeIntervalSince(t1)
        report.cpuTokens = cpuGen.tokens; report.gpuTokens = gpuGen.tokens
        let decodeText = { (t: [Int]) in (try? pipeline.tokenizer?.decode(t, skipSpecialTokens: true)) ?? "\(t)" }
        report.cpuText = decodeText(cpuGen.tokens); report.gpuText = decodeText(gpuGen.tokens)
        printLine("greedy CPU (\(cFormat("%.3f", report.cpuSeconds)) s): \(report.cpuTokens) \"\(report.cpuText)\"")
        printLine("greedy GPU (\(cFormat("%.3f", report.gpuSeconds)) s): \(report.gpuTokens) \"\(report.gpuText)\"")
        let worst = report.rows.max { $0.relative < $1.relative }
        printLine(
            "\(report.rows.filter(\.passed).count) of \(report.rows.count) stages within \(tolerance.name)"
                + (worst.map { "; worst relative \(sci($0.relative)) at \($0.stage)" } ?? "")
                + "; greedy tokens \(report.tokensEqual ? "identical" : "DIFFER")")
        return report
    }

    /// `s` in a column of `n`, always followed by at least one space.
    static func pad(_ s: String, _ n: Int) -> String { padded(s, n - 1) + " " }
    static func sci(_ x: Float) -> String { cFormat("%.2e", Double(x)) }
}
