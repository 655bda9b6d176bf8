// eaglet-bench vision: the So400m-shaped vision tower (27 layers, 1152 wide, 16 heads, MLP 4304) on one
// 448 px tile at patch 14 (1024 tokens), with seeded random weights, Eaglet's fast path against PyTorch's
// `transformers.SiglipVisionModel` (fp32, same thread count) in the same run. Also times one layer's
// attention half and MLP half separately (their share of a layer), and sgemm at 2048² with the same
// threads, so the tower's effective GFLOP/s can be read against the machine's matmul rate.
import ArgumentParser
import Eaglet
import Foundation

/// FLOPs of one tile through the tower: patch embedding + per layer q/k/v/out, scores, p·v, fc1, fc2.
func visionFlops(_ c: SiglipVisionConfig) -> Double {
    let t = Double(c.numPositions), w = Double(c.hiddenSize), m = Double(c.intermediateSize)
    let patch = 2 * t * Double(c.numChannels * c.patchSize * c.patchSize) * w
    let layer = 8 * t * w * w + 4 * t * t * w + 4 * t * w * m
    return patch + Double(c.numHiddenLayers) * layer
}

/// A tower of `config`'s shape with weights from seeds (the same recipe on every run).
func seededTower(_ config: SiglipVisionConfig) -> SiglipVisionTransformer {
    let c = config.hiddenSize, m = config.intermediateSize, p = config.patchSize
    var seed: UInt64 = 1000
    func next() -> UInt64 { seed += 1; return seed }
    func lin(_ n: Int, _ k: Int) -> SiglipLinear {
        SiglipLinear(
            weight: .seeded([n, k], seed: next(), scale: 1 / Float(k).squareRoot()),
            bias: .seeded([n], seed: next(), scale: 0.02))
    }
    func ln() -> LayerNorm {
        LayerNorm(
            weight: Tensor.seeded([c], seed: next(), scale: 0.1).map { $0 + 1 },
            bias: .seeded([c], seed: next(), scale: 0.1),
            eps: config.layerNormEps)
    }
    let embeddings = SiglipVisionEmbeddings(
        patchEmbedding: PatchConv2d(
            weight: .seeded([c, config.numChannels, p, p], seed: next(), scale: 0.04),
            bias: .seeded([c], seed: next(), scale: 0.02)),
        positionEmbedding: .seeded([config.numPositions, c], seed: next(), scale: 0.1))
    let layers = (0..<config.numHiddenLayers).map { _ in
        SiglipEncoderLayer(
            layerNorm1: ln(),
            selfAttn: SiglipAttention(
                qProj: lin(c, c), kProj: lin(c, c), vProj: lin(c, c), outProj: lin(c, c),
                numHeads: config.numAttentionHeads),
            layerNorm2: ln(), mlp: SiglipMLP(fc1: lin(m, c), fc2: lin(c, m)))
    }
    return SiglipVisionTransformer(config: config, embeddings: embeddings, layers: layers, postLayernorm: ln())
}

/// The child-process side: `_case vision --variant tower|attention|mlp --size 448 [--tiles N]` (the tower on N
/// tiles of one image in one call; its time is the whole call, its rate N tiles' FLOPs over it).
func runVisionCase(variant: String, size: Int, repeats: Int, threads: Int, tiles: Int = 1) throws -> BenchResult {
    var config = SiglipVisionConfig.so400m
    config.imageSize = size
    let flops = visionFlops(config)
    let t = config.numPositions, c = config.hiddenSize
    switch variant {
    case "tower":
        let tower = seededTower(config)
        let pixels = (0..<tiles).map { Tensor.seeded([3, size, size], seed: 7 + UInt64($0)) }
        let s = medianTime(repeats: repeats) {
            // post_layernorm's output only, as PyTorch's SiglipVisionModel returns by default
            _ = try? tower.features(tiles: pixels, selectLayer: -1)
        }
        return BenchResult(
            name: "vision", variant: "eaglet",
            size: "\(size)px-\(config.numHiddenLayers)L" + (tiles > 1 ? "-\(tiles)tiles" : ""), threads: threads,
            medianSeconds: s, rate: Double(tiles) * flops / s / 1e9, unit: "GFLOP/s", peakRSSBytes: peakRSSBytes())
    case "attention", "mlp":
        var one = config
        one.numHiddenLayers = 1
        let layer = seededTower(one).layers[0]
        let x = layer.layerNorm1(Tensor.seeded([t, c], seed: 8))
        let work: Double =
            variant == "attention"
            ? 8 * Double(t * c * c) + 4 * Double(t * t * c) : 4 * Double(t * c * config.intermediateSize)
        let compute = Compute.fast(threads: threads)
        let s = medianTime(repeats: max(repeats, 3)) {
            _ =
                variant == "attention"
                ? layer.selfAttn(x, residual: x, compute: compute) : layer.mlp(x, residual: x, compute: compute)
        }
        return BenchResult(
            name: "vision", variant: variant, size: "1-layer", threads: threads, medianSeconds: s,
            rate: work / s / 1e9, unit: "GFLOP/s", peakRSSBytes: peakRSSBytes())
    case "softmax", "gelu", "layernorm":
        let x = Tensor.seeded(
            variant == "softmax" ? [16 * t, t] : variant == "gelu" ? [t, config.intermediateSize] : [t, c], seed: 9,
            scale: 4)
        let w = Tensor(shape: [c], repeating: 1)
        let s = medianTime(repeats: max(repeats, 3)) {
            switch variant {
            case "softmax": _ = fastSoftmaxLast(x, threads: threads)
            case "gelu": _ = fastGeluTanh(x)
            default: _ = x.layerNorm(weight: w, bias: w, eps: 1e-6)
            }
        }
        return BenchResult(
            name: "vision", variant: variant, size: "\(x.shape)", threads: threads, medianSeconds: s,
            rate: Double(x.count) / s / 1e9, unit: "Gelem/s", peakRSSBytes: peakRSSBytes())
    default:
        throw ValidationError("vision: unknown variant \(variant) (tower, attention, mlp)")
    }
}

struct VisionBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vision",
        abstract:
            "So400m-shaped SigLIP tower on one tile: Eaglet vs PyTorch SiglipVisionModel (fp32), attention/MLP share, GFLOP/s vs sgemm."
    )

    @Option(help: "Tile side in pixels (patch 14).")
    var size: Int = 448
    @Option(help: "Timed runs per case (median reported).")
    var repeats: Int = 3
    @Option(help: "Eaglet/PyTorch pairs, timed in alternation (E T E T …), each in its own process.")
    var pairs: Int = 5
    @Option(
        help:
            "Tiles of one image in one call (13: a 4K image's 12 tiles and thumbnail), against PyTorch's batch of as many."
    )
    var tiles: Int = 1
    @OptionGroup var common: CommonOptions

    func run() throws {
        var results = [BenchResult]()
        let torchAvailable =
            !common.noTorch && runTorch(["matmul", "--size", "64", "--repeats", "1"], threads: 1) != nil
        var lines = [String]()
        for t in common.threadCounts {
            func note(_ s: String) { FileHandle.standardError.write(Data("vision threads=\(t): \(s)…\n".utf8)) }
            let towerArgs = [
                "vision", "--variant", "tower", "--size", String(size), "--repeats", String(repeats), "--tiles",
                String(tiles)
            ]
            var mine: BenchResult? = nil, torch: BenchResult? = nil, paired: PairedTiming? = nil
            if torchAvailable {
                note("Eaglet tower and PyTorch SiglipVisionModel, \(pairs) pairs in alternation")
                if let (timing, e, p) = runPairs(
                    pairs, eaglet: { runCase(towerArgs, threads: t) },
                    torch: {
                        runTorch(
                            ["vision", "--size", String(size), "--repeats", String(repeats), "--tiles", String(tiles)],
                            threads: t)
                    })
                {
                    paired = timing; mine = e; torch = p
                }
            } else {
                note("eaglet tower")
                mine = runCase(towerArgs, threads: t)
            }
            note("attention / mlp halves")
            let attn = runCase(
                ["vision", "--variant", "attention", "--size", String(size), "--repeats", "5"], threads: t)
            let mlp = runCase(["vision", "--variant", "mlp", "--size", String(size), "--repeats", "5"], threads: t)
            note("sgemm 2048²")
            let gemm = runCase(["matmul", "--variant", "sgemm", "--size", "2048", "--repeats", "3"], threads: t)
            results += [mine, attn, mlp, gemm, torch].compactMap { $0 }
            guard let mine else { lines.append("threads=\(t): the Eaglet tower case failed"); continue }
            var line = String(format: "threads=%d  Eaglet %.3f s (%.1f GFLOP/s)", t, mine.medianSeconds, mine.rate)
            if let paired {
                line += "\n           " + paired.summary()
            }
            if let gemm {
                line += String(
                    format: "\n           sgemm 2048² %.1f GFLOP/s; tower reaches %.0f%% of it", gemm.rate,
                    100 * mine.rate / gemm.rate)
            }
            if tiles > 1 {
                line += String(
                    format: "\n           %d tiles in one call: %.3f s a tile", tiles,
                    mine.medianSeconds / Double(tiles))
            }
            if let attn, let mlp {
                let perLayer = mine.medianSeconds / Double(27 * tiles)
                line += String(
                    format:
                        "\n           per layer: attention %.1f ms (%.0f%%), MLP %.1f ms (%.0f%%), rest %.0f%% (norms, embeddings)",
                    attn.medianSeconds * 1e3, 100 * attn.medianSeconds / perLayer,
                    mlp.medianSeconds * 1e3, 100 * mlp.medianSeconds / perLayer,
                    100 * max(0, 1 - (attn.medianSeconds + mlp.medianSeconds) / perLayer))
            }
            lines.append(line)
        }
        print(cpuLine())
        printTable(results)
        print("")
        for l in lines { print(l) }
        if common.csv {
            try appendCSV(results, to: common.csvPath, machine: machineDescription(blasCore: BLAS.coreName))
        }
    }
}
