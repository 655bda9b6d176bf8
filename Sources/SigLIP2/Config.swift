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
        case let .unsupportedModelType(f, m): return "\(f): vision_config.model_type is '\(m)', expected 'siglip_vision_model' (or 'siglip2_vision_model' for NaFlex)"
        case let .invalid(f, field, r): return "\(f): vision_config.\(field): \(r)"
        }
    }
}

/// transformers `SiglipVisionConfig` (So400m values in docs/spec.md §3.2).
public struct SiglipVisionConfig: Codable, Equatable, Sendable {
    public var model_type: String
    /// C: 1152 for So400m.
    public var hidden_size: Int
    /// MLP width: 4304 for So400m.
    public var intermediate_size: Int
    /// L: 27 for So400m.
    public var num_hidden_layers: Int
    /// H: 16 for So400m (D = 72).
    public var num_attention_heads: Int
    /// Tile side in pixels: 448 in Eagle2.5-8B (512 in google/siglip2-so400m-patch16-512).
    public var image_size: Int
    /// P: 14 in Eagle2.5-8B.
    public var patch_size: Int
    public var num_channels: Int
    public var layer_norm_eps: Float
    public var hidden_act: String
    /// NaFlex only: positions in the square table (S²).
    public var num_patches: Int?

    enum CodingKeys: String, CodingKey {
        case model_type = "model_type"
        case hidden_size = "hidden_size"
        case intermediate_size = "intermediate_size"
        case num_hidden_layers = "num_hidden_layers"
        case num_attention_heads = "num_attention_heads"
        case image_size = "image_size"
        case patch_size = "patch_size"
        case num_channels = "num_channels"
        case layer_norm_eps = "layer_norm_eps"
        case hidden_act = "hidden_act"
        case num_patches = "num_patches"
    }

    public init(model_type: String = "siglip_vision_model", hidden_size: Int = 768, intermediate_size: Int = 3072,
                num_hidden_layers: Int = 12, num_attention_heads: Int = 12, image_size: Int = 224, patch_size: Int = 16,
                num_channels: Int = 3, layer_norm_eps: Float = 1e-6, hidden_act: String = "gelu_pytorch_tanh",
                num_patches: Int? = nil) {
        self.model_type = model_type; self.hidden_size = hidden_size; self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers; self.num_attention_heads = num_attention_heads
        self.image_size = image_size; self.patch_size = patch_size; self.num_channels = num_channels
        self.layer_norm_eps = layer_norm_eps; self.hidden_act = hidden_act; self.num_patches = num_patches
    }

    /// Missing keys take transformers' `SiglipVisionConfig` defaults.
    public init(from decoder: Decoder) throws {
        let d = SiglipVisionConfig()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model_type = try c.decodeIfPresent(String.self, forKey: .model_type) ?? d.model_type
        hidden_size = try c.decodeIfPresent(Int.self, forKey: .hidden_size) ?? d.hidden_size
        intermediate_size = try c.decodeIfPresent(Int.self, forKey: .intermediate_size) ?? d.intermediate_size
        num_hidden_layers = try c.decodeIfPresent(Int.self, forKey: .num_hidden_layers) ?? d.num_hidden_layers
        num_attention_heads = try c.decodeIfPresent(Int.self, forKey: .num_attention_heads) ?? d.num_attention_heads
        image_size = try c.decodeIfPresent(Int.self, forKey: .image_size) ?? d.image_size
        patch_size = try c.decodeIfPresent(Int.self, forKey: .patch_size) ?? d.patch_size
        num_channels = try c.decodeIfPresent(Int.self, forKey: .num_channels) ?? d.num_channels
        layer_norm_eps = try c.decodeIfPresent(Float.self, forKey: .layer_norm_eps) ?? d.layer_norm_eps
        hidden_act = try c.decodeIfPresent(String.self, forKey: .hidden_act) ?? d.hidden_act
        num_patches = try c.decodeIfPresent(Int.self, forKey: .num_patches)
    }

    /// The So400m shape of Eagle2.5-8B's tower: 1152 wide, 27 layers, 16 heads, MLP 4304, 448 px / patch 14.
    public static let so400m = SiglipVisionConfig(hidden_size: 1152, intermediate_size: 4304, num_hidden_layers: 27,
                                                  num_attention_heads: 16, image_size: 448, patch_size: 14)

    /// Largest hidden_size and intermediate_size accepted (2¹⁸; So400m is 1152 / 4304).
    public static let maxWidth = 1 << 18
    /// Largest layer and head counts accepted.
    public static let maxLayers = 4096
    /// Largest image_size accepted, in pixels.
    public static let maxImageSize = 1 << 14

    /// D = C / H.
    public var headDim: Int { hidden_size / num_attention_heads }
    /// Patches per side of a tile: image_size / patch_size (32 for Eagle2.5-8B).
    public var gridSide: Int { image_size / patch_size }
    /// T: tokens per tile (1024).
    public var numPositions: Int { gridSide * gridSide }

    /// Checks the values the math relies on; `file` names the source in errors.
    public func validated(file: String) throws -> SiglipVisionConfig {
        guard model_type == "siglip_vision_model" || model_type == "siglip2_vision_model" else {
            throw VisionConfigError.unsupportedModelType(file: file, found: model_type)
        }
        func check(_ ok: Bool, _ field: String, _ why: String) throws {
            if !ok { throw VisionConfigError.invalid(file: file, field: field, reason: why) }
        }
        try check(hidden_size > 0, "hidden_size", "must be positive, got \(hidden_size)")
        try check(intermediate_size > 0, "intermediate_size", "must be positive, got \(intermediate_size)")
        try check(num_hidden_layers >= 0, "num_hidden_layers", "must not be negative, got \(num_hidden_layers)")
        try check(num_attention_heads > 0 && hidden_size % num_attention_heads == 0, "num_attention_heads",
                  "must divide hidden_size \(hidden_size), got \(num_attention_heads)")
        try check(patch_size > 0, "patch_size", "must be positive, got \(patch_size)")
        try check(image_size >= patch_size, "image_size", "must be at least patch_size \(patch_size), got \(image_size)")
        try check(num_channels > 0, "num_channels", "must be positive, got \(num_channels)")
        try check(layer_norm_eps > 0 && layer_norm_eps.isFinite, "layer_norm_eps", "must be a positive number, got \(layer_norm_eps)")
        // Upper bounds far above any released tower, so that sizes multiplied together cannot overflow
        // and a corrupt file cannot make the weight check enumerate a billion layers.
        let limits = SiglipVisionConfig.self
        try check(hidden_size <= limits.maxWidth, "hidden_size", "is \(hidden_size), above the limit of \(limits.maxWidth)")
        try check(intermediate_size <= limits.maxWidth, "intermediate_size", "is \(intermediate_size), above the limit of \(limits.maxWidth)")
        try check(num_hidden_layers <= limits.maxLayers, "num_hidden_layers", "is \(num_hidden_layers), above the limit of \(limits.maxLayers)")
        try check(num_attention_heads <= limits.maxLayers, "num_attention_heads", "is \(num_attention_heads), above the limit of \(limits.maxLayers)")
        try check(image_size <= limits.maxImageSize, "image_size", "is \(image_size), above the limit of \(limits.maxImageSize) pixels")
        try check(num_channels <= 16, "num_channels", "is \(num_channels), above the limit of 16")
        if let n = num_patches {
            try check(n > 0 && n <= limits.maxImageSize * limits.maxImageSize, "num_patches", "must be positive and at most \(limits.maxImageSize)², got \(n)")
            // NaFlex views the position table as (S, S, C): S² rows exactly.
            let side = Int(Double(n).squareRoot().rounded())
            try check(side * side == n, "num_patches", "must be a perfect square (the position table is S×S), got \(n)")
        }
        try check(hidden_act == "gelu_pytorch_tanh", "hidden_act", "only 'gelu_pytorch_tanh' (SigLIP's) is implemented, got '\(hidden_act)'")
        return self
    }

    /// Decodes `vision_config` from the bytes of a config.json (Eagle 2.5's top-level file), or the
    /// object itself when the file is a bare vision config (it has `hidden_size` at the top).
    public static func decode(configJSON data: Data, file: String) throws -> SiglipVisionConfig {
        let obj: Any
        do { obj = try JSON.parse(data) } catch {
            throw VisionConfigError.notJSON(file: file, reason: "\(error)")
        }
        guard let top = obj as? [String: Any] else { throw VisionConfigError.notJSON(file: file, reason: "top level is not an object") }
        let vision: Any
        if let v = top["vision_config"] { vision = v } else if top["hidden_size"] != nil, top["text_config"] == nil { vision = top } else {
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
        guard let data = FileManager.default.contents(atPath: path) else {
            throw VisionConfigError.notJSON(file: path, reason: "cannot read the file")
        }
        return try decode(configJSON: data, file: path)
    }
}
