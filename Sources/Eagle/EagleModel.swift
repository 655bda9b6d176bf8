// The whole Eagle 2.5 model: vision tower → pixel shuffle + mlp1 → splice into the text embeddings at
// `<IMG_CONTEXT>` → Qwen2 decoder (docs/spec.md §4, §5.3, §7). Shapes: N tiles of S×S pixels, P = (S/patch)² patches,
// C_v vision width, 4·C_v after the 2×2 shuffle, C the language width, T prompt tokens, V vocabulary.
//
// What it is not: a batcher (one prompt at a time). With `WeightFormat.native` the decoder's BF16 projections
// stay in the mapped checkpoint; the vision tower, mlp1, the embeddings and the LM head are still widened to fp32.
import Connector
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Qwen2
import QwenAttention
import SafeTensors
import SigLIP2
import Tensor
import Tiler

/// Eagle 2.5 with its weights.
public struct EagleModel: Sendable {
    public let config: EagleConfig
    /// `vision_model`: the SigLIP tower.
    public let visionModel: SiglipVisionTransformer
    /// `mlp1`: the connector after the pixel shuffle.
    public let mlp1: MLP1
    /// `language_model`: Qwen2.
    public var languageModel: Qwen2ForCausalLM

    public init(config: EagleConfig, visionModel: SiglipVisionTransformer, mlp1: MLP1, languageModel: Qwen2ForCausalLM)
    {
        self.config = config; self.visionModel = visionModel; self.mlp1 = mlp1; self.languageModel = languageModel
    }

    /// Loads `directory` (config.json + model.safetensors or a sharded index). Every mismatch between the
    /// checkpoint and the config is reported in one error before any weight is read.
    /// `scanForNonFinite` (on by default) reads every weight's bits once and rejects NaN or ±Inf by name.
    /// `weights`: `.native` keeps the decoder's BF16 projections in the mapped checkpoint (read in place),
    /// `.f32` widens every weight at load.
    public static func load(directory: String, scanForNonFinite: Bool = true, weights: WeightFormat = .native) throws
        -> EagleModel
    {
        let config = try EagleConfig.load(directory: directory)
        let checkpoint = try Checkpoint(path: directory)
        let store = WeightStore(checkpoint, format: weights)
        try EagleWeights.check(store, config: config)
        if scanForNonFinite {
            let bad = try EagleWeights.nonFiniteTensors(checkpoint)
            if !bad.isEmpty { throw EagleError.nonFiniteWeights(source: checkpoint.directory, tensors: bad) }
        }
        let p = EagleParameters(config, visionPrefix: EagleWeights.visionPrefix(store))
        let vision = try SiglipVisionTransformer.load(from: store, config: config.vision)
        let mlp1 = try MLP1.load(from: store, p.mlp1)
        let lm = try Qwen2ForCausalLM.load(config: config.text, store: store)
        return EagleModel(config: config, visionModel: vision, mlp1: mlp1, languageModel: lm)
    }

    /// Checks pixel_values (N, 3, S, S).
    func validate(pixelValues p: Tensor) throws {
        let s = config.tileSize
        guard p.rank == 4, p.shape[1] == config.vision.numChannels, p.shape[2] == s, p.shape[3] == s else {
            throw EagleError.badPixelValues(shape: p.shape, expected: "(N, \(config.vision.numChannels), \(s), \(s))")
        }
    }

    /// The `select_layer` features of every tile: pixel_values (N, 3, S, S) → (N, P, C_v).
    public func visionFeatures(_ pixelValues: Tensor, compute: Compute = .fast) throws -> Tensor {
        try validate(pixelValues: pixelValues)
        let n = pixelValues.shape[0]
        let f = try visionModel.features(
            tiles: (0..<n).map { pixelValues.row($0) }, selectLayer: config.selectLayer, compute: compute)
        let p = config.patchesPerSide * config.patchesPerSide
        return Tensor(shape: [n, p, config.vision.hiddenSize], storage: f.storage)
    }

    /// Visual tokens: features (N, P, C_v) → pixel shuffle (N, P/4, 4C_v) → mlp1 → (N·P/4, C).
    public func visualTokens(fromFeatures f: Tensor, compute: Compute = .fast) throws -> Tensor {
        let shuffled = compute.isReference ? try pixelShuffleNaive(f) : try pixelShuffle(f)
        let y = mlp1(shuffled, compute: compute)
        return y.reshaped([-1, config.text.hiddenSize])
    }

    /// Text embeddings (T, C) with the rows at `<IMG_CONTEXT>` replaced, in order, by `visual` (M, C).
    public func splice(ids: [Int], visual: Tensor?) throws -> Tensor {
        let positions = try config.imageSlots(ids: ids, visualTokens: visual?.shape[0] ?? 0)
        var e = languageModel.embed(ids)
        if let visual {
            let c = config.text.hiddenSize
            e.withUnsafeMutableStorage { E in
                visual.storage.withUnsafeBufferPointer { Vv in
                    for (k, t) in positions.enumerated() {
                        for j in 0..<c { E[t * c + j] = Vv[k * c + j] }
                    }
                }
            }
        }
        return e
    }

    /// Every intermediate of one forward pass.
    public struct Forward: Sendable {
        public var visionFeatures: Tensor?
        public var visualTokens: Tensor?
        public var logits: Tensor
    }

    /// One full forward: logits (T, V) for `ids` with the images in `pixelValues` (N, 3, S, S) or none.
    public func forward(ids: [Int], pixelValues: Tensor?, compute: Compute = .fast) throws -> Forward {
        var feats: Tensor? = nil, tokens: Tensor? = nil
        if let p = pixelValues, p.shape.first ?? 0 > 0 {
            feats = try visionFeatures(p, compute: compute)
            tokens = try visualTokens(fromFeatures: feats!, compute: compute)
        }
        let emb = try splice(ids: ids, visual: tokens)
        var none: KVCache? = nil
        let h = languageModel.hiddenStates(emb, cache: &none, compute: compute)
        return Forward(visionFeatures: feats, visualTokens: tokens, logits: languageModel.lmHead(h, compute: compute))
    }
}
