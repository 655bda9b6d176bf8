// Loading the vision tower from a checkpoint: the ONE place that knows checkpoint key names.
//
// What it is: `VisionWeightNames`, which finds the tower's prefix among a checkpoint's names —
// `vision_model.vision_model.` (released Eagle 2.5 files, spec section 7.2) or `vision_model.`
// (transformers 5.x, which flattened SiglipVisionModel) — and spells every tensor's full name; and the
// loaders that read those tensors from a `Checkpoint` or a single `SafeTensorsFile`, checking each
// shape against the config. `head.*` (the attention-pooling head) is never read.
// What it is not: a general state-dict remapper; the connector and language model map their own keys.
import PatchEmbed
import SafeTensors
import Tensor

/// Anything that holds tensors by name: a `Checkpoint` (one file or shards) or a `SafeTensorsFile`.
public protocol VisionWeightSource {
    /// Every tensor name.
    var names: [String] { get }
    /// Shape of `name`, or nil if absent.
    func shape(of name: String) -> [Int]?
    /// The tensor widened to Float32.
    func tensor(_ name: String) throws -> Tensor
    /// Where the tensors come from, for error messages.
    var sourceDescription: String { get }
}

extension Checkpoint: VisionWeightSource {
    public func shape(of name: String) -> [Int]? { info(name)?.shape }
    public var sourceDescription: String { directory }
}

extension SafeTensorsFile: VisionWeightSource {
    public func shape(of name: String) -> [Int]? { info(name)?.shape }
    public var sourceDescription: String { path }
}

/// Why the vision tower's weights could not be loaded.
public enum VisionWeightError: Error, Equatable, CustomStringConvertible {
    case noVisionTower(source: String, triedPrefixes: [String])
    case missing(source: String, tensor: String)
    case wrongShape(source: String, tensor: String, shape: [Int], expected: [Int])

    public var description: String {
        switch self {
        case let .noVisionTower(s, p):
            return "\(s): no vision tower found (looked for '\(p.map { $0 + VisionWeightNames.probe }.joined(separator: "' and '"))')"
        case let .missing(s, t): return "\(s): vision tower tensor '\(t)' is missing"
        case let .wrongShape(s, t, sh, e): return "\(s): tensor '\(t)' has shape \(sh), the config expects \(e)"
        }
    }
}

/// The checkpoint names of the vision tower's tensors.
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
        throw VisionWeightError.noVisionTower(source: source, triedPrefixes: prefixes)
    }

    public var patchEmbeddingWeight: String { prefix + "embeddings.patch_embedding.weight" }
    public var patchEmbeddingBias: String { prefix + "embeddings.patch_embedding.bias" }
    public var positionEmbedding: String { prefix + "embeddings.position_embedding.weight" }
    public var postLayerNormWeight: String { prefix + "post_layernorm.weight" }
    public var postLayerNormBias: String { prefix + "post_layernorm.bias" }
    /// `…encoder.layers.{i}.{suffix}`, suffix like "self_attn.q_proj.weight" or "mlp.fc1.bias".
    public func layer(_ i: Int, _ suffix: String) -> String { prefix + "encoder.layers.\(i).\(suffix)" }
    /// Whether a checkpoint name belongs to the pooling head, which Eaglet ignores.
    public func isHead(_ name: String) -> Bool { name.hasPrefix(prefix + "head.") }
}

/// Reads tensors and checks shapes, naming the tensor in every error.
struct ShapedReader {
    let source: VisionWeightSource

    func read(_ name: String, _ expected: [Int]) throws -> Tensor {
        guard let shape = source.shape(of: name) else {
            throw VisionWeightError.missing(source: source.sourceDescription, tensor: name)
        }
        guard shape == expected else {
            throw VisionWeightError.wrongShape(source: source.sourceDescription, tensor: name, shape: shape, expected: expected)
        }
        return try source.tensor(name)
    }

    func linear(_ base: String, out: Int, in k: Int) throws -> SiglipLinear {
        SiglipLinear(weight: try read(base + ".weight", [out, k]), bias: try read(base + ".bias", [out]))
    }

    func layerNorm(_ base: String, width c: Int, eps: Float) throws -> LayerNorm {
        LayerNorm(weight: try read(base + ".weight", [c]), bias: try read(base + ".bias", [c]), eps: eps)
    }
}

extension SiglipEncoderLayer {
    /// Layer `index` under `names`, shapes checked against `config`.
    public static func load(from source: VisionWeightSource, names: VisionWeightNames, index i: Int,
                            config: SiglipVisionConfig) throws -> SiglipEncoderLayer {
        let r = ShapedReader(source: source)
        let c = config.hidden_size, m = config.intermediate_size, eps = config.layer_norm_eps
        let attn = SiglipAttention(
            q_proj: try r.linear(names.layer(i, "self_attn.q_proj"), out: c, in: c),
            k_proj: try r.linear(names.layer(i, "self_attn.k_proj"), out: c, in: c),
            v_proj: try r.linear(names.layer(i, "self_attn.v_proj"), out: c, in: c),
            out_proj: try r.linear(names.layer(i, "self_attn.out_proj"), out: c, in: c),
            numHeads: config.num_attention_heads)
        return SiglipEncoderLayer(
            layer_norm1: try r.layerNorm(names.layer(i, "layer_norm1"), width: c, eps: eps),
            self_attn: attn,
            layer_norm2: try r.layerNorm(names.layer(i, "layer_norm2"), width: c, eps: eps),
            mlp: SiglipMLP(fc1: try r.linear(names.layer(i, "mlp.fc1"), out: m, in: c),
                           fc2: try r.linear(names.layer(i, "mlp.fc2"), out: c, in: m)))
    }
}

extension SiglipVisionTransformer {
    /// The fixed-resolution tower (what Eagle 2.5 runs) from a checkpoint holding it under either known
    /// prefix (detected), or under the explicit `names`.
    public static func load(from source: VisionWeightSource, config: SiglipVisionConfig,
                            names given: VisionWeightNames? = nil) throws -> SiglipVisionTransformer {
        let names = try given ?? VisionWeightNames.detect(in: source.names, source: source.sourceDescription)
        let r = ShapedReader(source: source)
        let c = config.hidden_size, p = config.patch_size
        let embeddings = SiglipVisionEmbeddings(
            patch_embedding: PatchConv2d(weight: try r.read(names.patchEmbeddingWeight, [c, config.num_channels, p, p]),
                                         bias: try r.read(names.patchEmbeddingBias, [c])),
            position_embedding: try r.read(names.positionEmbedding, [config.numPositions, c]))
        let layers = try (0..<config.num_hidden_layers).map {
            try SiglipEncoderLayer.load(from: source, names: names, index: $0, config: config)
        }
        return SiglipVisionTransformer(config: config, embeddings: embeddings, layers: layers,
                                       post_layernorm: try r.layerNorm(names.prefix + "post_layernorm", width: c, eps: config.layer_norm_eps))
    }
}

/// The NaFlex tower: `Siglip2VisionEmbeddings` plus the same encoder stack and post-LN.
public struct Siglip2VisionTransformer: Sendable {
    public var embeddings: Siglip2VisionEmbeddings
    /// The encoder layers, identical in shape and code to the fixed-resolution tower's.
    public var encoder: [SiglipEncoderLayer]
    public var post_layernorm: LayerNorm

    /// Loads a `Siglip2VisionModel` checkpoint; `config.num_patches` gives the table size (S²).
    public static func load(from source: VisionWeightSource, config: SiglipVisionConfig) throws -> Siglip2VisionTransformer {
        let names = try VisionWeightNames.detect(in: source.names, source: source.sourceDescription)
        let r = ShapedReader(source: source)
        let c = config.hidden_size, p = config.patch_size
        let s2 = config.num_patches ?? 256
        let embeddings = Siglip2VisionEmbeddings(
            patch_embedding: try r.linear(names.prefix + "embeddings.patch_embedding", out: c, in: config.num_channels * p * p),
            position_embedding: try r.read(names.positionEmbedding, [s2, c]))
        let layers = try (0..<config.num_hidden_layers).map {
            try SiglipEncoderLayer.load(from: source, names: names, index: $0, config: config)
        }
        return Siglip2VisionTransformer(embeddings: embeddings, encoder: layers,
                                        post_layernorm: try r.layerNorm(names.prefix + "post_layernorm", width: c, eps: config.layer_norm_eps))
    }

    /// One image's h·w patches (h·w, C_in·P·P) → hidden states (0 = embeddings) and the post-LN output.
    public func callAsFunction(_ patches: Tensor, height h: Int, width w: Int, naive: Bool = false) -> SiglipVisionTransformer.Output {
        var x = embeddings(patches, height: h, width: w)
        var states = [x]
        for layer in encoder {
            x = naive ? layer.naive(x) : layer(x)
            states.append(x)
        }
        return .init(hiddenStates: states, lastHiddenState: naive ? post_layernorm.naive(x) : post_layernorm(x))
    }
}
