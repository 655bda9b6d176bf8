// The text configuration of Qwen2 (the `text_config` of an Eagle 2.5 config.json, or a Qwen2
// config.json on its own), decoded from the real JSON keys (docs/spec.md §5.1, §7.1).
//
// What it is: the fields the decoder needs. θ comes from `rope_parameters.rope_theta` (transformers 5.x)
// or `rope_theta` (4.x, as released checkpoints write it); neither is an error, never a default. Any
// RoPE type other than "default" (`rope_parameters.rope_type`, or a non-null `rope_scaling`) and
// `use_sliding_window: true` are rejected with a clear error rather than silently ignored.
// What it is not: a full `Qwen2Config` (dropout, initializer ranges and the like are not read).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import _Essentials
#if canImport(Glibc)
import Glibc
#endif

/// Why a Qwen2 config (or a prompt given to the decoder) was rejected; checkpoint mismatches are `CheckpointError`s.
public enum Qwen2Error: Error, Equatable, CustomStringConvertible, Sendable {
    case missingField(String)
    case badField(String, String)
    case unsupportedRope(String)
    case cannotRead(String, String)

    public var description: String {
        switch self {
        case let .missingField(f): return "Qwen2 config: required field '\(f)' is missing"
        case let .badField(f, why): return "Qwen2 config: field '\(f)' \(why)"
        case let .unsupportedRope(why):
            return "Qwen2 config: \(why); Eaglet implements only the default RoPE (plain θ^(−2k/D) frequencies)"
        case let .cannotRead(file, why): return "\(file): \(why)"
        }
    }
}

/// Qwen2 text configuration (hidden C, layers, H heads over Hkv kv heads, head dim D, MLP width, V).
public struct Qwen2Config: Codable, Sendable, Equatable {
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var intermediateSize: Int
    public var rmsNormEps: Float
    public var vocabSize: Int
    public var tieWordEmbeddings: Bool
    public var maxPositionEmbeddings: Int
    /// RoPE base θ.
    public var ropeTheta: Double
    /// D; `head_dim` when present, else hidden_size / num_attention_heads.
    public var headDim: Int

    public init(
        hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, numKeyValueHeads: Int,
        intermediateSize: Int, rmsNormEps: Float = 1e-6, vocabSize: Int, tieWordEmbeddings: Bool,
        maxPositionEmbeddings: Int = 32768, ropeTheta: Double, headDim: Int? = nil
    ) {
        self.hiddenSize = hiddenSize; self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads; self.numKeyValueHeads = numKeyValueHeads
        self.intermediateSize = intermediateSize; self.rmsNormEps = rmsNormEps; self.vocabSize = vocabSize
        self.tieWordEmbeddings = tieWordEmbeddings; self.maxPositionEmbeddings = maxPositionEmbeddings
        self.ropeTheta = ropeTheta; self.headDim = headDim ?? hiddenSize / numAttentionHeads
    }

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads"
        case intermediateSize = "intermediate_size"
        case rmsNormEps = "rms_norm_eps"
        case vocabSize = "vocab_size"
        case tieWordEmbeddings = "tie_word_embeddings"
        case maxPositionEmbeddings = "max_position_embeddings"
        case ropeTheta = "rope_theta"
        case ropeParameters = "rope_parameters"
        case ropeScaling = "rope_scaling"
        case headDim = "head_dim"
        case useSlidingWindow = "use_sliding_window"
    }

    struct RopeParameters: Codable {
        var ropeTheta: Double?
        var ropeType: String?
        var type: String?
        enum CodingKeys: String, CodingKey {
            case ropeTheta = "rope_theta"
            case ropeType = "rope_type"
            case type
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func required<T: Decodable>(_ key: CodingKeys, _ type: T.Type) throws -> T {
            do {
                guard let v = try c.decodeIfPresent(T.self, forKey: key) else {
                    throw Qwen2Error.missingField(key.rawValue)
                }
                return v
            } catch let e as Qwen2Error {
                throw e
            } catch { throw Qwen2Error.badField(key.rawValue, "is not a \(T.self)") }
        }
        hiddenSize = try required(.hiddenSize, Int.self)
        numHiddenLayers = try required(.numHiddenLayers, Int.self)
        numAttentionHeads = try required(.numAttentionHeads, Int.self)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numAttentionHeads
        intermediateSize = try required(.intermediateSize, Int.self)
        rmsNormEps = try required(.rmsNormEps, Float.self)
        vocabSize = try required(.vocabSize, Int.self)
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        maxPositionEmbeddings = try required(.maxPositionEmbeddings, Int.self)
        let params = try? c.decodeIfPresent(RopeParameters.self, forKey: .ropeParameters)
        let scaling = try? c.decodeIfPresent(RopeParameters.self, forKey: .ropeScaling)
        if let kind = params?.ropeType ?? params?.type, kind != "default" {
            throw Qwen2Error.unsupportedRope("rope_parameters.rope_type is '\(kind)'")
        }
        if let scaling {
            let kind = scaling.ropeType ?? scaling.type ?? "unknown"
            if kind != "default" { throw Qwen2Error.unsupportedRope("rope_scaling has type '\(kind)'") }
        }
        if let theta = try params?.ropeTheta ?? c.decodeIfPresent(Double.self, forKey: .ropeTheta) {
            ropeTheta = theta
        } else {
            throw Qwen2Error.missingField("rope_parameters.rope_theta (transformers 5.x) or rope_theta (4.x)")
        }
        if try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow) == true {
            throw Qwen2Error.badField("use_sliding_window", "is true; Eaglet implements full causal attention only")
        }
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim) ?? hiddenSize / max(numAttentionHeads, 1)
        for (name, v) in [
            ("hidden_size", hiddenSize), ("num_hidden_layers", numHiddenLayers),
            ("num_attention_heads", numAttentionHeads), ("num_key_value_heads", numKeyValueHeads),
            ("intermediate_size", intermediateSize), ("vocab_size", vocabSize), ("head_dim", headDim)
        ] where v <= 0 {
            throw Qwen2Error.badField(name, "must be positive, got \(v)")
        }
        // Upper bounds: far above any released model, low enough that products of two sizes cannot
        // overflow and that a corrupt file cannot make the weight check enumerate a billion layers.
        for (name, v, limit) in [
            ("hidden_size", hiddenSize, Qwen2Config.maxWidth),
            ("intermediate_size", intermediateSize, Qwen2Config.maxWidth),
            ("head_dim", headDim, Qwen2Config.maxWidth), ("vocab_size", vocabSize, Qwen2Config.maxVocabulary),
            ("num_hidden_layers", numHiddenLayers, Qwen2Config.maxLayers),
            ("num_attention_heads", numAttentionHeads, Qwen2Config.maxLayers),
            ("num_key_value_heads", numKeyValueHeads, Qwen2Config.maxLayers),
            ("max_position_embeddings", maxPositionEmbeddings, Qwen2Config.maxContext)
        ] where v > limit {
            throw Qwen2Error.badField(name, "is \(v), above the limit of \(limit) (a corrupt config?)")
        }
        guard maxPositionEmbeddings > 0 else {
            throw Qwen2Error.badField("max_position_embeddings", "must be positive, got \(maxPositionEmbeddings)")
        }
        guard rmsNormEps.isFinite, rmsNormEps > 0 else {
            throw Qwen2Error.badField("rms_norm_eps", "must be a positive number, got \(rmsNormEps)")
        }
        guard ropeTheta.isFinite, ropeTheta > 0 else {
            throw Qwen2Error.badField("rope_theta", "must be a positive number, got \(ropeTheta)")
        }
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw Qwen2Error.badField(
                "num_key_value_heads", "(\(numKeyValueHeads)) must divide num_attention_heads (\(numAttentionHeads))")
        }
        guard headDim % 2 == 0 else { throw Qwen2Error.badField("head_dim", "must be even for RoPE, got \(headDim)") }
    }

    /// Largest hidden_size, intermediate_size and head_dim accepted (2¹⁸; Qwen2-72B is 8192 / 29568 / 128).
    public static let maxWidth = 1 << 18
    /// Largest vocab_size accepted (2²⁴, as `Tokenizer.maxTokenID`).
    public static let maxVocabulary = 1 << 24
    /// Largest layer and head counts accepted.
    public static let maxLayers = 4096
    /// Largest max_position_embeddings accepted (2²⁴ = 16 M tokens).
    public static let maxContext = 1 << 24

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(hiddenSize, forKey: .hiddenSize); try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads);
        try c.encode(numKeyValueHeads, forKey: .numKeyValueHeads)
        try c.encode(intermediateSize, forKey: .intermediateSize); try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(vocabSize, forKey: .vocabSize); try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings); try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encode(headDim, forKey: .headDim)
    }

    /// Decodes a Qwen2 config from JSON: either the text config itself, or an Eagle 2.5 config.json
    /// holding it under `text_config` (or its alias `llm_config`). `file` names the source in errors.
    public static func decode(_ data: Data, file: String = "config.json") throws -> Qwen2Config {
        guard let obj = (try? JSON.parse(data)) as? [String: Any] else {
            throw Qwen2Error.cannotRead(
                file, JSON.whyNot(data, [String: Any].self, what: "an object") ?? "not a JSON object")
        }
        var text = data
        if let inner = obj["text_config"] ?? obj["llm_config"] {
            guard inner is [String: Any], let d = try? JSON.serialize(inner) else {
                throw Qwen2Error.cannotRead(file, "'text_config' is not an object")
            }
            text = d
        }
        do { return try JSONDecoder().decode(Qwen2Config.self, from: text) } catch let e as Qwen2Error { throw e } catch
        { throw Qwen2Error.cannotRead(file, "\(error)") }
    }

    /// Reads and decodes `path` (see `decode`).
    public static func load(path: String) throws -> Qwen2Config {
        let data: Data
        do { data = Data(try readRegularFile(path, limit: 16 << 20)) } catch {
            throw Qwen2Error.cannotRead(path, "\(error)")
        }
        return try decode(data, file: path)
    }
}
