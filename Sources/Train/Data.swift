// Training data in the LLaVA / InternVL / Eagle format, turned into the tokens, labels and tiles of a packed step
// exactly as inference builds its prompts (docs/spec.md §11.1):
//
//   one JSON object a line: {"id": …, "image": "a.png" | ["a.png", "b.jpg"] (optional, relative to the file's
//   folder), "conversations": [{"from": "human", "value": "<image>\nQuestion"}, {"from": "gpt", "value": "Answer"}, …]}
//
// A human turn's `<image>` placeholders take the sample's images in order; the turn's content is then
// `EaglePrompt.userContent` of those images (tiled by the checkpoint's own rule) and the text without the
// placeholders — the same bytes `eaglet generate` builds. The conversation is ChatML with the default system
// prompt; the loss covers the tokens of every gpt turn and the `<|im_end|>` that closes it, nothing else.
// Packing: the next B samples, their tiles degraded by ADS's rule (text is never cut; the sample with the most tiles
// loses one maximum tile at a time, its grid recomputed) until the pack fits the context, then concatenated with
// positions restarting at 0 and attention kept within each sample.
import Foundation
import Imaging
import Tensor
import Tiler
import Tokenizer
import _Essentials

/// One conversation, as read from a line.
public struct TrainingSample: Sendable {
    public var id: String
    /// Absolute image paths, in order.
    public var images: [String]
    /// (from, value) pairs: "human" or "gpt".
    public var turns: [(from: String, value: String)]
    /// 1-based line of the file.
    public var line: Int
    /// An optional "type" field (per-type accuracy in `eaglet eval`).
    public var type: String?

    public init(id: String, images: [String], turns: [(from: String, value: String)], line: Int, type: String?) {
        self.id = id; self.images = images; self.turns = turns; self.line = line; self.type = type
    }
}

/// Why a line or a sample cannot be used; each names the line.
public enum TrainingDataError: Error, CustomStringConvertible, Equatable {
    case malformed(file: String, line: Int, reason: String)
    case missingImage(file: String, line: Int, path: String)
    case tooLong(file: String, line: Int, tokens: Int, context: Int)
    case nothingSupervised(file: String, line: Int)
    case empty(file: String)

    public var description: String {
        switch self {
        case let .malformed(f, l, r): return "\(f):\(l): not a training sample: \(r)"
        case let .missingImage(f, l, p): return "\(f):\(l): image \(p) cannot be read"
        case let .tooLong(f, l, t, c):
            return
                "\(f):\(l): \(t) tokens even with one tile per image, longer than the context of \(c) (use a larger --max-context or --skip-bad)"
        case let .nothingSupervised(f, l): return "\(f):\(l): no gpt turn, so nothing to learn from (use --skip-bad)"
        case let .empty(f): return "\(f): no samples"
        }
    }
}

/// Reads a JSONL file of samples; a malformed line is an error naming its number.
public func readTrainingSamples(_ path: String) throws -> [TrainingSample] {
    let data = try readRegularFile(path, limit: 1 << 31)
    let folder = (path as NSString).deletingLastPathComponent
    var out = [TrainingSample]()
    for (i, raw) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
        let line = i + 1
        guard raw.contains(where: { !($0 == 32 || $0 == 9 || $0 == 13) }) else { continue }
        func bad(_ r: String) -> TrainingDataError { .malformed(file: path, line: line, reason: r) }
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(raw))) as? [String: Any] else {
            throw bad("not a JSON object")
        }
        guard let conv = obj["conversations"] as? [[String: Any]], !conv.isEmpty else {
            throw bad("no \"conversations\" list")
        }
        var turns = [(from: String, value: String)]()
        for t in conv {
            guard let from = t["from"] as? String, ["human", "gpt", "system"].contains(from),
                let value = t["value"] as? String
            else { throw bad("a turn needs \"from\" (human, gpt or system) and a string \"value\"") }
            turns.append((from, value))
        }
        var images = [String]()
        if let one = obj["image"] as? String {
            images = [one]
        } else if let many = obj["image"] as? [String] {
            images = many
        } else if obj["image"] != nil && !(obj["image"] is NSNull) {
            throw bad("\"image\" must be a path or a list of paths")
        }
        images = images.map { $0.hasPrefix("/") ? $0 : folder + "/" + $0 }
        let placeholders = turns.filter { $0.from == "human" }.map {
            $0.value.components(separatedBy: "<image>").count - 1
        }
        .reduce(0, +)
        if placeholders != images.count && placeholders != 0 {
            throw bad("\(placeholders) <image> placeholders for \(images.count) images")
        }
        let id = (obj["id"] as? String) ?? (obj["id"] as? Int).map(String.init) ?? "\(line)"
        out.append(TrainingSample(id: id, images: images, turns: turns, line: line, type: obj["type"] as? String))
    }
    guard !out.isEmpty else { throw TrainingDataError.empty(file: path) }
    return out
}

/// A sample's tokens: ids, which of them the loss covers, and the tiles of its images.
public struct EncodedSample: Sendable {
    public var ids: [Int]
    /// supervised[t]: token t is predicted (a gpt answer token or the <|im_end|> closing it).
    public var supervised: [Bool]
    public var pixelValues: Tensor?
    public var tiles: Int
}

/// Builds samples' tokens the way inference builds its prompts.
public struct SampleEncoder: Sendable {
    public let tokenizer: Tokenizer
    public let tiling: TilingConfig
    public let tokensPerTile: Int
    public let maxImagePixels: Int

    public init(
        tokenizer: Tokenizer, tiling: TilingConfig, tokensPerTile: Int, maxImagePixels: Int = RGBImage.defaultMaxPixels
    ) {
        self.tokenizer = tokenizer; self.tiling = tiling; self.tokensPerTile = tokensPerTile
        self.maxImagePixels = maxImagePixels
    }

    /// Tokens and tiles of `s` with at most `maxTiles` tiles per image (the config's own when nil).
    public func encode(_ s: TrainingSample, file: String, maxTiles: Int? = nil, images: [RGBImage]? = nil) throws
        -> EncodedSample
    {
        var cfg = tiling
        if let m = maxTiles { cfg.maxTiles = max(cfg.minTiles, min(cfg.maxTiles, m)) }
        let tiler = try Tiler(cfg)
        let pictures =
            try images
            ?? s.images.map { p in
                do { return try RGBImage.load(p, maxPixels: maxImagePixels) } catch {
                    throw TrainingDataError.missingImage(file: file, line: s.line, path: p)
                }
            }
        var tiles = [Tensor]()
        for im in pictures { tiles.append(tiler.pixelValues(im)) }
        let counts = tiles.map { $0.shape[0] }
        var ids = [Int](), sup = [Bool]()
        func add(_ text: String, _ supervised: Bool) {
            let t = tokenizer.encode(text)
            ids += t; sup += Array(repeating: supervised, count: t.count)
        }
        var next = 0 // the next image to place
        let system = s.turns.first { $0.from == "system" }?.value ?? EaglePrompt.defaultSystem
        add(EaglePrompt.imStart + "system\n" + system + EaglePrompt.imEnd + "\n", false)
        for (k, turn) in s.turns.enumerated() where turn.from != "system" {
            if turn.from == "human" {
                var text = turn.value
                var media = [PromptMedia]()
                let n = text.components(separatedBy: "<image>").count - 1
                // Placeholders present: that many images here; none anywhere: all images in the first turn.
                let take = n > 0 ? n : (next == 0 && k <= 1 ? counts.count : 0)
                for _ in 0..<take where next < counts.count {
                    media.append(.image(contextTokens: counts[next] * tokensPerTile)); next += 1
                }
                text = text.replacingOccurrences(of: "<image>\n", with: "").replacingOccurrences(
                    of: "<image>", with: "")
                add(
                    EaglePrompt.imStart + "user\n" + EaglePrompt.userContent(media: media, text: text)
                        + EaglePrompt.imEnd
                        + "\n" + EaglePrompt.imStart + "assistant\n", false)
            } else {
                add(turn.value + EaglePrompt.imEnd, true)
                add("\n", false)
            }
        }
        return EncodedSample(
            ids: ids, supervised: sup, pixelValues: tiles.isEmpty ? nil : Tensor.concatenate(tiles, dim: 0),
            tiles: counts.reduce(0, +))
    }
}

/// The samples of one step packed into one sequence (see the file's header).
public func pack(_ samples: [EncodedSample]) -> PackedBatch {
    var ids = [Int](), positions = [Int](), labels = [Int](), bounds = [0], tiles = [Tensor]()
    for s in samples {
        ids += s.ids
        positions += Array(0..<s.ids.count)
        for t in 0..<s.ids.count {
            labels.append(t + 1 < s.ids.count && s.supervised[t + 1] ? s.ids[t + 1] : PackedBatch.ignore)
        }
        bounds.append(ids.count)
        if let p = s.pixelValues { tiles.append(p) }
    }
    return PackedBatch(
        ids: ids, positions: positions, boundaries: bounds, labels: labels,
        pixelValues: tiles.isEmpty ? nil : Tensor.concatenate(tiles, dim: 0))
}

/// Encodes `samples` and degrades their tiles (ADS: text is never cut) until their total fits `context`: the sample
/// with the most tiles is re-tiled with one fewer maximum tile at a time. Throws `.tooLong` naming the longest sample
/// when every image is down to its minimum and the pack still does not fit.
public func encodeFitted(
    _ samples: [TrainingSample], encoder: SampleEncoder, context: Int, file: String
) throws -> [EncodedSample] {
    var maxTiles = samples.map { _ in encoder.tiling.maxTiles }
    let images = try samples.map { s in
        try s.images.map { p in
            do { return try RGBImage.load(p, maxPixels: encoder.maxImagePixels) } catch {
                throw TrainingDataError.missingImage(file: file, line: s.line, path: p)
            }
        }
    }
    var enc = try samples.indices.map { try encoder.encode(samples[$0], file: file, images: images[$0]) }
    while enc.reduce(0, { $0 + $1.ids.count }) > context {
        let candidates = enc.indices.filter { !images[$0].isEmpty && maxTiles[$0] > encoder.tiling.minTiles }
        guard let i = candidates.max(by: { enc[$0].tiles < enc[$1].tiles }) else {
            let worst = enc.indices.max { enc[$0].ids.count < enc[$1].ids.count }!
            throw TrainingDataError.tooLong(
                file: file, line: samples[worst].line, tokens: enc[worst].ids.count, context: context)
        }
        maxTiles[i] -= 1
        enc[i] = try encoder.encode(samples[i], file: file, maxTiles: maxTiles[i], images: images[i])
    }
    return enc
}
