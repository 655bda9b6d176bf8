// Automatic Degrade Sampling (ADS): how Eagle 2.5 fits one sample's pictures into a fixed context
// length L without ever cutting its text (paper §3.2.1; docs/spec.md §2.1 and the "ADS" decision row).
//
// The rule, dual-phase, in this order:
//   Phase 1 (temporal first, every still image at t = 1 tile):
//     B  = L − text                                (text is never cut; text > L is an error)
//     n* = min(Σ_i c_i, ⌊(B − M·P) / P⌋)            M images, P tokens per tile (256), c_i candidates
//     each temporal input i first gets m_i = min(N_min, c_i); Σ m_i > n* is an error;
//     the rest R = n* − Σ m_i is shared in proportion to e_i = c_i − m_i by largest remainder:
//     f_i = ⌊R·e_i / E⌋, E = Σ e_i, and the R − Σ f_i leftover frames go one each to the largest
//     remainders R·e_i mod E, ties to the earlier input.
//   Phase 2 (tiling second):
//     t* = the largest cap in {12, 8, 6, 4, 2, 1} with Σ_j P·(IAP tiles_j(t) + thumbnail_j) ≤ B − n*·P,
//     where the thumbnail counts when the grid has more than one tile.
// Output: frames per temporal input, t*, tiles per image (grid + thumbnail), visual tokens
// P·(Σ tiles + Σ frames) and total tokens (visual + text).
//
// Consequences worth knowing (Chapter 11): whenever the frames are not all granted, phase 2 only has the
// remainder of one tile left over, so images stay at one tile ("mutually exclusive composition"); and
// largest-remainder sharing is not monotone per input (the Alabama paradox), although n*, t*, every
// image's tiles and the token counts are.
//
// What it is not: the tiler (Tiler), the frame sampler (Video), or the prompt builder (Tokenizer); ADS only
// counts. Packing several fitted samples into sequences of L lives in Packing.swift.
import Tiler

/// The constants of the rule. Defaults are the released model's.
public struct ADSConfig: Equatable, Sendable {
    /// Tokens one tile (or one frame) costs after pixel shuffle: (448/14/2)² = 256.
    public var tokensPerTile: Int
    /// Tile caps tried in phase 2, largest first.
    public var tileCaps: [Int]
    /// N_min: every temporal input gets at least min(N_min, its candidates) frames.
    public var minFrames: Int
    /// Tile side for the IAP grid choice.
    public var tileSize: Int
    /// Whether a grid of more than one tile gets a thumbnail.
    public var useThumbnail: Bool

    public init(
        tokensPerTile: Int = 256, tileCaps: [Int] = [12, 8, 6, 4, 2, 1], minFrames: Int = 8,
        tileSize: Int = 448, useThumbnail: Bool = true
    ) {
        self.tokensPerTile = tokensPerTile
        self.tileCaps = tileCaps
        self.minFrames = minFrames
        self.tileSize = tileSize
        self.useThumbnail = useThumbnail
    }
}

/// A still image of a sample, by size only.
public struct ADSImage: Equatable, Hashable, Sendable {
    public let width: Int
    public let height: Int
    public init(width: Int, height: Int) { self.width = width; self.height = height }
}

/// One sample to fit: its text length, still images, and temporal inputs (videos or multi-page documents)
/// given by their candidate frame counts (e.g. the 2-fps count of a video, or its page count).
public struct ADSRequest: Equatable, Sendable {
    public var maxContext: Int
    public var textTokens: Int
    public var images: [ADSImage]
    public var temporalCandidates: [Int]

    public init(maxContext: Int, textTokens: Int, images: [ADSImage] = [], temporalCandidates: [Int] = []) {
        self.maxContext = maxContext
        self.textTokens = textTokens
        self.images = images
        self.temporalCandidates = temporalCandidates
    }
}

/// What ADS decided for one sample.
public struct ADSAllocation: Equatable, Sendable {
    /// Frames per temporal input (n* = their sum).
    public let frames: [Int]
    /// t*: the tile cap every image was tiled with.
    public let tileCap: Int
    /// Tiles per image: IAP grid tiles plus the thumbnail when the grid has more than one tile.
    public let tiles: [Int]
    /// P · (Σ tiles + Σ frames).
    public let visualTokens: Int
    /// visualTokens + text tokens (≤ L).
    public let totalTokens: Int

    public var totalFrames: Int { frames.reduce(0, +) }

    public init(frames: [Int], tileCap: Int, tiles: [Int], visualTokens: Int, totalTokens: Int) {
        self.frames = frames
        self.tileCap = tileCap
        self.tiles = tiles
        self.visualTokens = visualTokens
        self.totalTokens = totalTokens
    }
}

/// Why a sample cannot be fitted (the paper discards such samples). Every case says what to change.
public enum ADSError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidRequest(field: String, reason: String)
    /// The text alone is longer than the context; text is never cut.
    case textTooLong(textTokens: Int, maxContext: Int)
    /// Even one tile per image does not fit next to the text.
    case imagesDoNotFit(images: Int, tokensNeeded: Int, budget: Int)
    /// The per-input minimum frames do not fit in n*.
    case minimumFramesDoNotFit(minimums: [Int], available: Int)

    public var description: String {
        switch self {
        case let .invalidRequest(f, r): return "ADS request: \(f) \(r)"
        case let .textTooLong(t, l):
            return
                "text is \(t) tokens, longer than the context of \(l); text is never cut, so raise --max-context or shorten the text"
        case let .imagesDoNotFit(m, need, b):
            return
                "\(m) image\(m == 1 ? "" : "s") at one tile each need \(need) tokens but only \(b) are left after the text; drop images or raise --max-context"
        case let .minimumFramesDoNotFit(mins, avail):
            return
                "the temporal inputs need at least \(mins.reduce(0, +)) frames (minimums \(mins)) but only \(avail) fit; lower the minimum frames, drop inputs or raise --max-context"
        }
    }
}

/// Tiles image `image` costs at tile cap `cap`: IAP grid tiles (1…cap), plus a thumbnail when > 1.
public func adsTiles(_ image: ADSImage, cap: Int, config: ADSConfig = ADSConfig()) -> Int {
    let g = chooseGrid(width: image.width, height: image.height, tileSize: config.tileSize, minTiles: 1, maxTiles: cap)
    return g.tiles + (config.useThumbnail && g.tiles > 1 ? 1 : 0)
}

/// Shares `total` items among inputs in proportion to `weights` (largest remainder, Hamilton's method):
/// floor(total·w_i / W), then one more each to the largest remainders, ties to the earlier input.
/// Requires total ≤ W when W > 0, and total = 0 when W = 0.
public func largestRemainder(_ total: Int, weights: [Int]) -> [Int] {
    let w = weights.reduce(0, +)
    guard w > 0 else {
        precondition(total == 0, "largestRemainder: \(total) items but all weights are zero")
        return weights.map { _ in 0 }
    }
    var shares = weights.map { total * $0 / w }
    let remainders = weights.map { total * $0 % w }
    var left = total - shares.reduce(0, +)
    // Indices by remainder descending; the stable sort keeps the earlier input first on a tie.
    let order = remainders.indices.sorted {
        remainders[$0] > remainders[$1] || (remainders[$0] == remainders[$1] && $0 < $1)
    }
    for i in order where left > 0 { shares[i] += 1; left -= 1 }
    return shares
}

/// The ADS allocation of `request` under `config` (see the file header for the rule).
public func automaticDegradeSampling(_ request: ADSRequest, config: ADSConfig = ADSConfig()) throws -> ADSAllocation {
    let p = config.tokensPerTile
    guard p >= 1 else {
        throw ADSError.invalidRequest(field: "tokens per tile", reason: "must be at least 1 (got \(p))")
    }
    guard !config.tileCaps.isEmpty, config.tileCaps.allSatisfy({ $0 >= 1 }) else {
        throw ADSError.invalidRequest(
            field: "tile caps", reason: "must be a non-empty list of numbers ≥ 1 (got \(config.tileCaps))")
    }
    guard config.minFrames >= 1 else {
        throw ADSError.invalidRequest(field: "minimum frames", reason: "must be at least 1 (got \(config.minFrames))")
    }
    guard request.maxContext >= 1 else {
        throw ADSError.invalidRequest(field: "max context", reason: "must be at least 1 (got \(request.maxContext))")
    }
    guard request.textTokens >= 0 else {
        throw ADSError.invalidRequest(field: "text tokens", reason: "must be ≥ 0 (got \(request.textTokens))")
    }
    // Bounds that keep every product below (total·weight, count·P) inside Int: far above any real context.
    let bound = 1 << 31
    for (field, v) in [
        ("tokens per tile", p), ("minimum frames", config.minFrames), ("max context", request.maxContext),
        ("text tokens", request.textTokens)
    ] + request.temporalCandidates.enumerated().map({ ("temporal input \($0.offset + 1)", $0.element) })
    where v > bound {
        throw ADSError.invalidRequest(field: field, reason: "must be at most \(bound) (got \(v))")
    }
    for (i, im) in request.images.enumerated() where im.width < 1 || im.height < 1 {
        throw ADSError.invalidRequest(
            field: "image \(i + 1)", reason: "must be at least 1×1 (got \(im.width)×\(im.height))")
    }
    for (i, c) in request.temporalCandidates.enumerated() where c < 1 {
        throw ADSError.invalidRequest(
            field: "temporal input \(i + 1)", reason: "needs at least 1 candidate frame (got \(c))")
    }

    // Phase 1: t = 1.
    guard request.textTokens <= request.maxContext else {
        throw ADSError.textTooLong(textTokens: request.textTokens, maxContext: request.maxContext)
    }
    let budget = request.maxContext - request.textTokens
    let m = request.images.count
    guard m * p <= budget else { throw ADSError.imagesDoNotFit(images: m, tokensNeeded: m * p, budget: budget) }
    let candidates = request.temporalCandidates
    let n = min(candidates.reduce(0, +), (budget - m * p) / p)
    let minimums = candidates.map { min(config.minFrames, $0) }
    guard minimums.reduce(0, +) <= n else { throw ADSError.minimumFramesDoNotFit(minimums: minimums, available: n) }
    let extra = largestRemainder(n - minimums.reduce(0, +), weights: zip(candidates, minimums).map { $0 - $1 })
    let frames = zip(minimums, extra).map { $0 + $1 }

    // Phase 2: the largest cap whose tiles fit in what the frames left.
    let left = budget - n * p
    // (With 1 among the caps something always fits: phase 1 kept M·P for one tile per image.)
    var chosen: (cap: Int, tiles: [Int])? = nil
    for c in config.tileCaps.sorted(by: >) {
        let t = request.images.map { adsTiles($0, cap: c, config: config) }
        if t.reduce(0, +) * p <= left { chosen = (c, t); break }
    }
    guard let (cap, tiles) = chosen else {
        let smallest = config.tileCaps.min() ?? 1
        let need = request.images.map { adsTiles($0, cap: smallest, config: config) }.reduce(0, +) * p
        throw ADSError.imagesDoNotFit(images: m, tokensNeeded: need, budget: left)
    }
    let visual = p * (tiles.reduce(0, +) + n)
    return ADSAllocation(
        frames: frames, tileCap: cap, tiles: tiles, visualTokens: visual,
        totalTokens: visual + request.textTokens)
}
