// The vision tower's parameters, declared once, and the loaders derived from them.
//
// What it is: `VisionWeightNames`, which finds the tower's prefix among a checkpoint's names —
// `vision_model.vision_model.` (released Eagle 2.5 files, docs/spec.md §7.2) or `vision_model.`
// (transformers 5.x, which flattened SiglipVisionModel); `SiglipVisionParameters`, every tensor of the tower as
// (checkpoint key, shape) from the config; and the loaders that read those specs through a `WeightStore`.
// Eagle's checkpoint check compares the same specs with the file. `head.*` (the attention-pooling head) is
// never read.
// What it is not: a general state-dict remapper; the connector and language model declare their own keys.
import PatchEmbed
import SafeTensors
import Tensor

/// The checkpoint prefix of the vision tower.
public struct VisionWeightNames: Equatable, Sendable {
    /// Known prefixes, most specific first: released Eagle 2.5, then transformers 5.x.
    public static let prefixes = ["vision_model.vision_model.", "vision_model."]
    /// The tensor whose presence identifies a prefix.
    public static let probe = "embeddings.patch_embedding.weight"

    /// The prefix in use, e.g. "vision_model.vision_model.".
    public let prefix: String

    public init(prefix: String) { self.prefix = prefix }

    /// Picks the first known prefix under which `probe` exists among `names`.
    public static func detect(in names: [String], source: String) throws -> VisionWeightNames {
        let set = Set(names)
        for p in prefixes where set.contains(p + probe) { return VisionWeightNames(prefix: p) }
        throw CheckpointError.componentNotFound(
            source: source, component: "vision tower", tried: prefixes.map { $0 + probe })
    }

    /// Whether a checkpoint name belongs to the pooling head, which Eaglet ignores.
    public func isHead(_ name: String) -> Bool { name.hasPrefix(prefix + "head.") }
}

/// Keys and shapes of one encoder layer, under `<prefix>encoder.layers.N.`.
public struct SiglipLayerParameters: ParameterGroup {
    public let layerNorm1: NormParameters
    public let qProj, kProj, vProj, outProj: LinearParameters
    public let layerNorm2: NormParameters
    public let fc1, fc2: LinearParameters

    public init(_ config: SiglipVisionConfig, base l: String) {
        let c = config.hiddenSize, m = config.intermediateSize
        layerNorm1 = NormParameters(l + "layer_norm1", width: c, bias: true)
        qProj = LinearParameters(l + "self_attn.q_proj", out: c, in: c, bias: true)
        kProj = LinearParameters(l + "self_attn.k_proj", out: c, in: c, bias: true)
        vProj = LinearParameters(l + "self_attn.v_proj", out: c, in: c, bias: true)
        outProj = LinearParameters(l + "self_attn.out_proj", out: c, in: c, bias: true)
        layerNorm2 = NormParameters(l + "layer_norm2", width: c, bias: true)
        fc1 = LinearParameters(l + "mlp.fc1", out: m, in: c, bias: true)
        fc2 = LinearParameters(l + "mlp.fc2", out: c, in: m, bias: true)
    }
}

/// Every tensor of the tower under `prefix`: the fixed-resolution `SiglipVisionModel` (Conv2d patch embedding,
/// (S/P)² positions) or, with `naflex`, `Siglip2VisionModel` (linear patch embedding, num_patches positions).
public struct SiglipVisionParameters: ParameterGroup {
    public let patchEmbedding: ParameterSpec, patchEmbeddingBias: ParameterSpec
    public let positionEmbedding: ParameterSpec
    public let layers: [SiglipLayerParameters]
    public let postLayernorm: NormParameters

    public init(_ config: SiglipVisionConfig, prefix p: String, naflex: Bool = false) {
        let c = config.hiddenSize, k = config.patchSize, ch = config.numChannels
        patchEmbedding = ParameterSpec(
            p + "embeddings.patch_embedding.weight", naflex ? [c, ch * k * k] : [c, ch, k, k])
        patchEmbeddingBias = ParameterSpec(p + "embeddings.patch_embedding.bias", [c])
        positionEmbedding = ParameterSpec(
            p + "embeddings.position_embedding.weight",
            [naflex ? config.numPatches ?? 256 : config.numPositions, c])
        layers = (0..<config.numHiddenLayers).map { SiglipLayerParameters(config, base: p + "encoder.layers.\($0).") }
        postLayernorm = NormParameters(p + "post_layernorm", width: c, bias: true)
    }
}

extension WeightStore {
    func siglipLinear(_ p: LinearParameters) throws -> SiglipLinear {
        SiglipLinear(weight: try read(p.weight), bias: try read(p.bias!))
    }
    func layerNorm(_ p: NormParameters, eps: Float) throws -> LayerNorm {
        LayerNorm(weight: try read(p.weight), bias: try read(p.bias!), eps: eps)
    }
}

extension SiglipEncoderLayer {
    /// The layer declared by `p`, read through `store`.
    public static func load(_ p: SiglipLayerParameters, from store: WeightStore, config: SiglipVisionConfig) throws
        -> SiglipEncoderLayer
    {
        let eps = config.layerNormEps
        let attn = SiglipAttention(
            qProj: try store.siglipLinear(p.qProj), kProj: try store.siglipLinear(p.kProj),
            vProj: try store.siglipLinear(p.vProj), outProj: try store.siglipLinear(p.outProj),
            numHeads: config.numAttentionHeads)
        return SiglipEncoderLayer(
            layerNorm1: try store.layerNorm(p.layerNorm1, eps: eps), selfAttn: attn,
            layerNorm2: try store.layerNorm(p.layerNorm2, eps: eps),
            mlp: SiglipMLP(fc1: try store.siglipLinear(p.fc1), fc2: try store.siglipLinear(p.fc2)))
    }
}

extension SiglipVisionTransformer {
    /// The fixed-resolution tower (what Eagle 2.5 runs) from a checkpoint holding it under either known
    /// prefix (detected), or under the explicit `names`.
    public static func load(
        from store: WeightStore, config: SiglipVisionConfig,
        names given: VisionWeightNames? = nil
    ) throws -> SiglipVisionTransformer {
        let names = try given ?? VisionWeightNames.detect(in: store.names, source: store.source.sourceDescription)
        let p = SiglipVisionParameters(config, prefix: names.prefix)
        let embeddings = SiglipVisionEmbeddings(
            patchEmbedding: PatchConv2d(
                weight: try store.read(p.patchEmbedding), bias: try store.read(p.patchEmbeddingBias)),
            positionEmbedding: try store.read(p.positionEmbedding))
        let layers = try p.layers.map { try SiglipEncoderLayer.load($0, from: store, config: config) }
        return SiglipVisionTransformer(
            config: config, embeddings: embeddings, layers: layers,
            postLayernorm: try store.layerNorm(p.postLayernorm, eps: config.layerNormEps))
    }

    /// The same from a checkpoint or a single file.
    public static func load(
        from source: TensorSource, config: SiglipVisionConfig,
        names given: VisionWeightNames? = nil
    ) throws -> SiglipVisionTransformer {
        try load(from: WeightStore(source), config: config, names: given)
    }
}

/// The NaFlex tower: `Siglip2VisionEmbeddings` plus the same encoder stack and post-LN.
public struct Siglip2VisionTransformer: Sendable {
    public var embeddings: Siglip2VisionEmbeddings
    /// The encoder layers, identical in shape and code to the fixed-resolution tower's.
    public var encoder: [SiglipEncoderLayer]
    public var postLayernorm: LayerNorm

    /// Loads a `Siglip2VisionModel` checkpoint; `config.num_patches` gives the table size (S²).
    public static func load(from source: TensorSource, config: SiglipVisionConfig) throws -> Siglip2VisionTransformer {
        let store = WeightStore(source)
        let names = try VisionWeightNames.detect(in: store.names, source: source.sourceDescription)
        let p = SiglipVisionParameters(config, prefix: names.prefix, naflex: true)
        let embeddings = Siglip2VisionEmbeddings(
            patchEmbedding: SiglipLinear(
                weight: try store.read(p.patchEmbedding), bias: try store.read(p.patchEmbeddingBias)),
            positionEmbedding: try store.read(p.positionEmbedding))
        let layers = try p.layers.map { try SiglipEncoderLayer.load($0, from: store, config: config) }
        return Siglip2VisionTransformer(
            embeddings: embeddings, encoder: layers,
            postLayernorm: try store.layerNorm(p.postLayernorm, eps: config.layerNormEps))
    }

    /// One image's h·w patches (h·w, C_in·P·P) → hidden states (0 = embeddings) and the post-LN output.
    public func callAsFunction(_ patches: Tensor, height h: Int, width w: Int, compute: Compute = .fast)
        -> SiglipVisionTransformer.Output
    {
        var x = embeddings(patches, height: h, width: w)
        var states = [x]
        for layer in encoder {
            x = layer(x, compute: compute)
            states.append(x)
        }
        return .init(hiddenStates: states, lastHiddenState: postLayernorm(x, compute: compute))
    }
}
