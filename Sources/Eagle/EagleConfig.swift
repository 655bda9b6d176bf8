// The Eagle 2.5 config.json (docs/spec.md §7.1): vision_config (SigLIP), text_config (Qwen2) and the fields that
// join them. Both spellings transformers has written are accepted: 4.x (`rope_theta`, `torch_dtype`,
// `llm_config` as an alias) and 5.x (`rope_parameters.rope_theta`, `dtype`).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import _Essentials
#if canImport(Glibc)
import Glibc
#endif
import Qwen2
import SigLIP2
import Tiler

/// The whole Eagle 2.5 configuration.
public struct EagleConfig: Sendable, Equatable {
    public var vision: SiglipVisionConfig
    public var text: Qwen2Config
    /// −1: the post-LayerNorm output; other values index the vision residual stream (0 = embeddings).
    public var selectLayer: Int
    /// Pixel-shuffle ratio; 0.5 merges 2×2 patches.
    public var downsampleRatio: Double
    /// Tile side S in pixels (force_image_size, else the vision config's image_size).
    public var tileSize: Int
    public var minTiles: Int
    public var maxTiles: Int
    public var useThumbnail: Bool
    /// The id of `<IMG_CONTEXT>`; always taken from here, never guessed from a tokenizer.
    public var imageTokenIndex: Int

    public init(
        vision: SiglipVisionConfig, text: Qwen2Config, selectLayer: Int, downsampleRatio: Double, tileSize: Int,
        minTiles: Int, maxTiles: Int, useThumbnail: Bool, imageTokenIndex: Int
    ) {
        self.vision = vision; self.text = text; self.selectLayer = selectLayer; self.downsampleRatio = downsampleRatio
        self.tileSize = tileSize; self.minTiles = minTiles; self.maxTiles = maxTiles; self.useThumbnail = useThumbnail
        self.imageTokenIndex = imageTokenIndex
    }

    /// Patches per tile side (S / patch).
    public var patchesPerSide: Int { tileSize / vision.patchSize }
    /// Most patches along one side of a tile: 128 (16 384 a tile, 16× Eagle2.5-8B's 1024).
    public static let maxPatchesPerSide = 128
    /// Visual tokens per tile: (S/patch)² · ratio² (256 for Eagle2.5-8B).
    public var tokensPerTile: Int {
        let side = Double(patchesPerSide) * downsampleRatio
        return Int((side * side).rounded())
    }
    /// The tiler this config describes.
    /// The rows of `ids` that take the visual tokens, after checking the prompt: not empty, every id
    /// inside the vocabulary, and exactly `m` `<IMG_CONTEXT>` placeholders for `m` visual tokens.
    public func imageSlots(ids: [Int], visualTokens m: Int) throws -> [Int] {
        guard !ids.isEmpty else { throw EagleError.emptyPrompt }
        let v = text.vocabSize
        if let bad = ids.first(where: { $0 < 0 || $0 >= v }) {
            throw EagleError.tokenOutOfRange(id: bad, vocabularySize: v)
        }
        let slots = ids.indices.filter { ids[$0] == imageTokenIndex }
        guard slots.count == m else { throw EagleError.imageTokenMismatch(placeholders: slots.count, visualTokens: m) }
        return slots
    }

    public var tiling: TilingConfig {
        TilingConfig(tileSize: tileSize, minTiles: minTiles, maxTiles: maxTiles, useThumbnail: useThumbnail)
    }

    /// Decodes config.json bytes; `file` names the source in errors.
    public static func decode(_ data: Data, file: String) throws -> EagleConfig {
        guard let top = (try? JSON.parse(data)) as? [String: Any] else {
            let why = JSON.whyNot(data, [String: Any].self, what: "an object") ?? "not an object"
            throw EagleError.badConfig(file: file, field: "(top level)", expected: "a JSON object (\(why))")
        }
        if let mt = top["model_type"] as? String, mt != "eagle_2_5_vl" {
            throw EagleError.badConfig(file: file, field: "model_type", expected: "'eagle_2_5_vl', found '\(mt)'")
        }
        let vision: SiglipVisionConfig
        do { vision = try SiglipVisionConfig.decode(configJSON: data, file: file) } catch {
            throw EagleError.badConfig(
                file: file, field: "vision_config", expected: "a SigLIP vision config (\(error))")
        }
        guard top["text_config"] != nil || top["llm_config"] != nil else {
            throw EagleError.badConfig(file: file, field: "text_config", expected: "a Qwen2 text config object")
        }
        let text: Qwen2Config
        do { text = try Qwen2Config.decode(data, file: file) } catch {
            throw EagleError.badConfig(file: file, field: "text_config", expected: "a Qwen2 text config (\(error))")
        }

        func int(_ key: String, default d: Int? = nil) throws -> Int {
            guard let v = top[key] else {
                if let d { return d }
                throw EagleError.badConfig(file: file, field: key, expected: "an integer (the field is required)")
            }
            guard let n = JSON.int(v), abs(n) < 1_000_000_000 else {
                throw EagleError.badConfig(file: file, field: key, expected: "an integer, found \(v)")
            }
            return n
        }
        func bool(_ key: String, default d: Bool) throws -> Bool {
            guard let v = top[key] else { return d }
            guard let b = v as? Bool else {
                throw EagleError.badConfig(file: file, field: key, expected: "true or false, found \(v)")
            }
            return b
        }
        var c = EagleConfig(
            vision: vision, text: text,
            selectLayer: try int("select_layer", default: -1),
            downsampleRatio: 0.5,
            tileSize: try int("force_image_size", default: vision.imageSize),
            minTiles: try int("min_dynamic_tiles", default: 1),
            maxTiles: try int("max_dynamic_tiles", default: 12),
            useThumbnail: try bool("use_thumbnail", default: true),
            imageTokenIndex: try int("image_token_index"))
        if let r = top["downsample_ratio"] {
            guard let d = JSON.double(r), d == 0.5 else {
                throw EagleError.badConfig(
                    file: file, field: "downsample_ratio",
                    expected: "0.5 (the only pixel-shuffle ratio Eagle 2.5 uses), found \(r)")
            }
            c.downsampleRatio = d
        }
        if try !bool("use_pixel_shuffle", default: true) {
            throw EagleError.badConfig(
                file: file, field: "use_pixel_shuffle",
                expected: "true (the connector without pixel shuffle is not implemented)")
        }
        if try int("mlp_connector_layers", default: 2) != 2 {
            throw EagleError.badConfig(
                file: file, field: "mlp_connector_layers", expected: "2 (LayerNorm, Linear, GELU, Linear)")
        }
        guard c.tileSize == vision.imageSize else {
            throw EagleError.badConfig(
                file: file, field: "force_image_size",
                expected:
                    "the vision tower's image_size \(vision.imageSize) (position tables are not resized), found \(c.tileSize)"
            )
        }
        guard c.patchesPerSide % 2 == 0 else {
            throw EagleError.badConfig(
                file: file, field: "vision_config.patch_size",
                expected: "a patch grid with an even side for the 2×2 pixel shuffle, found \(c.patchesPerSide)")
        }
        // One tile's attention is over all its patches: bound them (Eagle 2.5: 32 × 32 = 1024) so that a
        // valid-looking config cannot ask for a P × P score matrix of gigabytes.
        guard c.patchesPerSide <= EagleConfig.maxPatchesPerSide else {
            throw EagleError.badConfig(
                file: file, field: "vision_config.image_size",
                expected:
                    "at most \(EagleConfig.maxPatchesPerSide) patches a side (image_size / patch_size), found \(c.patchesPerSide)"
            )
        }
        guard c.minTiles >= 1, c.maxTiles >= c.minTiles else {
            throw EagleError.badConfig(
                file: file, field: "max_dynamic_tiles", expected: "1 ≤ min_dynamic_tiles ≤ max_dynamic_tiles")
        }
        // The tiles of one image become one (N, 3, S, S) Float32 tensor: bound N·S² before any image comes.
        let (s2, o1) = c.tileSize.multipliedReportingOverflow(by: c.tileSize)
        let (tilePixels, o2) = s2.multipliedReportingOverflow(by: c.maxTiles + 1)
        guard !o1, !o2, tilePixels <= EagleConfig.maxTilePixels else {
            throw EagleError.badConfig(
                file: file, field: "max_dynamic_tiles",
                expected:
                    "(max_dynamic_tiles + 1) · image_size² ≤ \(EagleConfig.maxTilePixels) pixels, found \(c.maxTiles) tiles of \(c.tileSize)²"
            )
        }
        guard c.imageTokenIndex >= 0, c.imageTokenIndex < text.vocabSize else {
            throw EagleError.badConfig(
                file: file, field: "image_token_index", expected: "an id inside the vocabulary 0..<\(text.vocabSize)")
        }
        return c
    }

    /// Most pixels the tiles of one image may hold, (max_dynamic_tiles + 1) · S² (2²⁷: 134 M pixels,
    /// 1.6 GB as Float32; Eagle2.5-8B needs 13 · 448² = 2.6 M).
    public static let maxTilePixels = 1 << 27
    /// Largest config.json read (a real one is 3 KB).
    public static let maxFileBytes = 16 << 20

    /// Reads `directory/config.json`.
    public static func load(directory: String) throws -> EagleConfig {
        let path = Path.join(directory, "config.json")
        let data: Data
        do { data = Data(try readRegularFile(path, limit: maxFileBytes)) } catch let p as FileReadProblem {
            if case let .tooLarge(size, limit) = p {
                throw EagleError.badConfig(
                    file: path, field: "(file)", expected: "a config.json of at most \(limit) bytes, found \(size)")
            }
            throw EagleError.badConfig(
                file: path, field: "(file)", expected: "a readable config.json in the checkpoint folder (\(p))")
        }
        return try decode(data, file: path)
    }
}
