// The vision tower's configuration, decoded from the `vision_config` object of a real config.json.
//
// What it is: the fields of transformers' `SiglipVisionConfig` that the math needs, with explicit
// snake_case keys and transformers' own defaults for keys a file leaves out. Eagle 2.5's released
// config stores `model_type: "siglip_vision_model"` (docs/spec.md §7.1).
// What it is not: the Eagle top-level config (its own module), or SigLIP2 NaFlex's `num_patches`
// table geometry beyond reading the field.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import _Essentials
#if canImport(Glibc)
import Glibc
#endif

/// Why a vision config was rejected.
public enum VisionConfigError: Error, Equatable, CustomStringConvertible {
    case notJSON(file: String, reason: String)
    case missingVisionConfig(file: String)
    case unsupportedModelType(file: String, found: String)
    case invalid(file: String, field: String, reason: String)

    public var description: String {
        switch self {
        case let .notJSON(f, r): return "\(f): not a JSON config (\(r))"
        case let .missingVisionConfig(f): return "\(f): no object 'vision_config' (expected an Eagle 2.5 config.json)"
        case let .unsupportedModelType(f, m):
            return
                "\(f): vision_config.model_type is '\(m)', expected 'siglip_vision_model' (or 'siglip2_vision_model' for NaFlex)"
        case let .invalid(f, field, r): return "\(f): vision_config.\(field): \(r)"
        }
    }
}

/// transformers `SiglipVisionConfig` (So400m values in docs/spec.md §3.2).
public struct SiglipVisionConfig: Codable, Equatable, Sendable {
    public var modelType: String
    /// C: 1152 for So400m.
    public var hiddenSize: Int
    /// MLP width: 4304 for So400m.
    public var intermediateSize: Int
    /// L: 27 for So400m.
    public var numHiddenLayers: Int
    /// H: 16 for So400m (D = 72).
    public var numAttentionHeads: Int
    /// Tile side in pixels: 448 in Eagle2.5-8B (512 in google/siglip2-so400m-patch16-512).
    public var imageSize: Int
    /// P: 14 in Eagle2.5-8B.
    public var patchSize: Int
    public var numChannels: Int
    public var layerNormEps: Float
    public var hiddenAct: String
    /// NaFlex only: positions in the square table (S²).
    public var numPatches: Int?

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case imageSize = "image_size"
        case patchSize = "patch_size"
        case numChannels = "num_channels"
        case layerNormEps = "layer_norm_eps"
        case hiddenAct = "hidden_act"
        case numPatches = "num_patches"
    }

    public init(
        modelType: String = "siglip_vision_model", hiddenSize: Int = 768, intermediateSize: Int = 3072,
        numHiddenLayers: Int = 12, numAttentionHeads: Int = 12, imageSize: Int = 224, patchSize: Int = 16,
        numChannels: Int = 3, layerNormEps: Float = 1e-6, hiddenAct: String = "gelu_pytorch_tanh",
        numPatches: Int? = nil
    ) {
        self.modelType = modelType; self.hiddenSize = hiddenSize; self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers; self.numAttentionHeads = numAttentionHeads
        self.imageSize = imageSize; self.patchSize = patchSize; self.numChannels = numChannels
        self.layerNormEps = layerNormEps; self.hiddenAct = hiddenAct; self.numPatches = numPatches
    }

    /// Missing keys take transformers' `SiglipVisionConfig` defaults.
    public init(from decoder: Decoder) throws {
        let d = SiglipVisionConfig()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? d.modelType
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        imageSize = try c.decodeIfPresent(Int.self, forKey: .imageSize) ?? d.imageSize
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? d.patchSize
        numChannels = try c.decodeIfPresent(Int.self, forKey: .numChannels) ?? d.numChannels
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? d.layerNormEps
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
        numPatches = try c.decodeIfPresent(Int.self, forKey: .numPatches)
    }

    /// The So400m shape of Eagle2.5-8B's tower: 1152 wide, 27 layers, 16 heads, MLP 4304, 448 px / patch 14.
    public static let so400m = SiglipVisionConfig(
        hiddenSize: 1152, intermediateSize: 4304, numHiddenLayers: 27,
        numAttentionHeads: 16, imageSize: 448, patchSize: 14)

    /// Largest hidden_size and intermediate_size accepted (2¹⁸; So400m is 1152 / 4304).
    public static let maxWidth = 1 << 18
    /// Largest layer and head counts accepted.
    public static let maxLayers = 4096
    /// Largest image_size accepted, in pixels.
    public static let maxImageSize = 1 << 14

    /// D = C / H.
    public var headDim: Int { hiddenSize / numAttentionHeads }
    /// Patches per side of a tile: image_size / patch_size (32 for Eagle2.5-8B).
    public var gridSide: Int { imageSize / patchSize }
    /// T: tokens per tile (1024).
    public var numPositions: Int { gridSide * gridSide }

    /// Checks the values the math relies on; `file` names the source in errors.
    public func validated(file: String) throws -> SiglipVisionConfig {
        guard modelType == "siglip_vision_model" || modelType == "siglip2_vision_model" else {
            throw VisionConfigError.unsupportedModelType(file: file, found: modelType)
        }
        func check(_ ok: Bool, _ field: String, _ why: String) throws {
            if !ok { throw VisionConfigError.invalid(file: file, field: field, reason: why) }
        }
        try check(hiddenSize > 0, "hidden_size", "must be positive, got \(hiddenSize)")
        try check(intermediateSize > 0, "intermediate_size", "must be positive, got \(intermediateSize)")
        try check(numHiddenLayers >= 0, "num_hidden_layers", "must not be negative, got \(numHiddenLayers)")
        try check(
            numAttentionHeads > 0 && hiddenSize % numAttentionHeads == 0, "num_attention_heads",
            "must divide hidden_size \(hiddenSize), got \(numAttentionHeads)")
        try check(patchSize > 0, "patch_size", "must be positive, got \(patchSize)")
        try check(imageSize >= patchSize, "image_size", "must be at least patch_size \(patchSize), got \(imageSize)")
        try check(numChannels > 0, "num_channels", "must be positive, got \(numChannels)")
        try check(
            layerNormEps > 0 && layerNormEps.isFinite, "layer_norm_eps",
            "must be a positive number, got \(layerNormEps)")
        // Upper bounds far above any released tower, so that sizes multiplied together cannot overflow
        // and a corrupt file cannot make the weight check enumerate a billion layers.
        let limits = SiglipVisionConfig.self
        try check(
            hiddenSize <= limits.maxWidth, "hidden_size", "is \(hiddenSize), above the limit of \(limits.maxWidth)")
        try check(
            intermediateSize <= limits.maxWidth, "intermediate_size",
            "is \(intermediateSize), above the limit of \(limits.maxWidth)")
        try check(
            numHiddenLayers <= limits.maxLayers, "num_hidden_layers",
            "is \(numHiddenLayers), above the limit of \(limits.maxLayers)")
        try check(
            numAttentionHeads <= limits.maxLayers, "num_attention_heads",
            "is \(numAttentionHeads), above the limit of \(limits.maxLayers)")
        try check(
            imageSize <= limits.maxImageSize, "image_size",
            "is \(imageSize), above the limit of \(limits.maxImageSize) pixels")
        try check(numChannels <= 16, "num_channels", "is \(numChannels), above the limit of 16")
        if let n = numPatches {
            try check(
                n > 0 && n <= limits.maxImageSize * limits.maxImageSize, "num_patches",
                "must be positive and at most \(limits.maxImageSize)², got \(n)")
            // NaFlex views the position table as (S, S, C): S² rows exactly.
            let side = Int(Double(n).squareRoot().rounded())
            try check(side * side == n, "num_patches", "must be a perfect square (the position table is S×S), got \(n)")
        }
        try check(
            hiddenAct == "gelu_pytorch_tanh", "hidden_act",
            "only 'gelu_pytorch_tanh' (SigLIP's) is implemented, got '\(hiddenAct)'")
        return self
    }

    /// Decodes `vision_config` from the bytes of a config.json (Eagle 2.5's top-level file), or the
    /// object itself when the file is a bare vision config (it has `hidden_size` at the top).
    public static func decode(configJSON data: Data, file: String) throws -> SiglipVisionConfig {
        let obj: Any
        do { obj = try JSON.parse(data) } catch {
            throw VisionConfigError.notJSON(file: file, reason: "\(error)")
        }
        guard let top = obj as? [String: Any] else {
            throw VisionConfigError.notJSON(file: file, reason: "top level is not an object")
        }
        let vision: Any
        if let v = top["vision_config"] {
            vision = v
        } else if top["hidden_size"] != nil, top["text_config"] == nil {
            vision = top
        } else {
            throw VisionConfigError.missingVisionConfig(file: file)
        }
        guard vision is [String: Any] else { throw VisionConfigError.missingVisionConfig(file: file) }
        do {
            let bytes = try JSON.serialize(vision)
            return try JSONDecoder().decode(SiglipVisionConfig.self, from: bytes).validated(file: file)
        } catch let e as VisionConfigError {
            throw e
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx) {
            let field = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            throw VisionConfigError.invalid(file: file, field: field, reason: ctx.debugDescription)
        } catch {
            throw VisionConfigError.invalid(file: file, field: "?", reason: "\(error)")
        }
    }

    /// Reads and decodes a config.json at `path`.
    public static func load(path: String) throws -> SiglipVisionConfig {
        let data: Data
        do { data = Data(try readRegularFile(path, limit: 16 << 20)) } catch {
            throw VisionConfigError.notJSON(file: path, reason: "the file \(error)")
        }
        return try decode(configJSON: data, file: path)
    }
}
