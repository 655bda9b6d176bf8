// The tiler: image → grid → resized image → row-major tiles (+ thumbnail) → pixel_values (N, 3, S, S).
//
// Spec §1.4–1.5: resize the whole image to (columns·S, rows·S) with bicubic (aspect not preserved),
// cut it row-major (tile k is column k mod columns, row k div columns), then append the whole
// original image resized to S×S as a thumbnail — only when the grid has more than one tile.
// Defaults are the released checkpoint's: S = 448, 1…12 tiles, thumbnail on.
//
// What it is not: the choice of max tiles per image under a context budget (ADS, a later module).
import Imaging
import Tensor

/// Why a tiling configuration was rejected.
public enum TilerError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidConfig(field: String, value: Int, expected: String)
    public var description: String {
        switch self {
        case let .invalidConfig(f, v, e): return "tiling config: \(f) = \(v), expected \(e)"
        }
    }
}

/// Tiling settings, decodable from an Eagle 2.5 config.json (`force_image_size`,
/// `min_dynamic_tiles`, `max_dynamic_tiles`, `use_thumbnail`); missing fields take the defaults.
public struct TilingConfig: Codable, Equatable, Sendable {
    public var tileSize: Int
    public var minTiles: Int
    public var maxTiles: Int
    public var useThumbnail: Bool

    enum CodingKeys: String, CodingKey {
        case tileSize = "force_image_size"
        case minTiles = "min_dynamic_tiles"
        case maxTiles = "max_dynamic_tiles"
        case useThumbnail = "use_thumbnail"
    }

    public init(tileSize: Int = 448, minTiles: Int = 1, maxTiles: Int = 12, useThumbnail: Bool = true) {
        self.tileSize = tileSize; self.minTiles = minTiles; self.maxTiles = maxTiles; self.useThumbnail = useThumbnail
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            tileSize: try c.decodeIfPresent(Int.self, forKey: .tileSize) ?? 448,
            minTiles: try c.decodeIfPresent(Int.self, forKey: .minTiles) ?? 1,
            maxTiles: try c.decodeIfPresent(Int.self, forKey: .maxTiles) ?? 12,
            useThumbnail: try c.decodeIfPresent(Bool.self, forKey: .useThumbnail) ?? true)
    }

    /// The most pixels one image's tiles (thumbnail included) may hold: 2²⁸, i.e. 1 GiB of floats.
    public static let maxTilePixels = 1 << 28

    /// Throws unless 1 ≤ tileSize ≤ 8192, 1 ≤ minTiles ≤ maxTiles ≤ 1024 and
    /// (maxTiles + 1)·tileSize² ≤ `maxTilePixels` (so `pixelValues` cannot ask for absurd memory).
    public func validate() throws {
        guard (1...8192).contains(tileSize) else {
            throw TilerError.invalidConfig(field: "tile size", value: tileSize, expected: "1…8192")
        }
        guard minTiles >= 1 else {
            throw TilerError.invalidConfig(field: "min tiles", value: minTiles, expected: "at least 1")
        }
        guard maxTiles >= minTiles, maxTiles <= 1024 else {
            throw TilerError.invalidConfig(
                field: "max tiles", value: maxTiles, expected: "between min tiles (\(minTiles)) and 1024")
        }
        guard (maxTiles + 1) * tileSize * tileSize <= TilingConfig.maxTilePixels else {
            throw TilerError.invalidConfig(
                field: "max tiles", value: maxTiles,
                expected:
                    "(max tiles + 1) · tile size² ≤ \(TilingConfig.maxTilePixels) pixels with tile size \(tileSize)")
        }
    }
}

/// Cuts images into tiles by a rule and a configuration.
public struct Tiler: Sendable {
    public let config: TilingConfig
    public let rule: TilingRule

    public init(_ config: TilingConfig = TilingConfig(), rule: TilingRule = .areaPreservation) throws {
        try config.validate()
        self.config = config
        self.rule = rule
    }

    /// The grid for a `width`×`height` image.
    public func grid(width: Int, height: Int) -> TileGrid {
        chooseGrid(
            width: width, height: height, tileSize: config.tileSize,
            minTiles: config.minTiles, maxTiles: config.maxTiles, rule: rule)
    }

    /// Whether a thumbnail follows the grid tiles.
    public func hasThumbnail(_ grid: TileGrid) -> Bool { config.useThumbnail && grid.tiles > 1 }

    /// The tiles in order: grid tiles row-major, then the thumbnail if any. Each is S×S.
    /// `.reference` resizes with the direct bicubic loops, `.fast` with the separable one.
    public func tiles(of image: RGBImage, compute: Compute = .fast) -> [RGBImage] {
        let s = config.tileSize
        let g = grid(width: image.width, height: image.height)
        func resize(_ im: RGBImage, _ w: Int, _ h: Int) -> RGBImage {
            compute.isReference ? im.resizedBicubicNaive(width: w, height: h) : im.resizedBicubic(width: w, height: h)
        }
        let big = resize(image, g.columns * s, g.rows * s)
        var out = [RGBImage]()
        for k in 0..<g.tiles {
            out.append(big.cropped(x: (k % g.columns) * s, y: (k / g.columns) * s, width: s, height: s))
        }
        if hasThumbnail(g) { out.append(resize(image, s, s)) }
        return out
    }

    /// `pixel_values` (N, 3, S, S): every tile rescaled and normalised (mean = std = 0.5).
    public func pixelValues(_ image: RGBImage, compute: Compute = .fast) -> Tensor {
        let ts = tiles(of: image, compute: compute)
        let s = config.tileSize
        var storage = [Float]()
        storage.reserveCapacity(ts.count * 3 * s * s)
        for t in ts { storage += t.normalized(.siglip).storage }
        return Tensor(shape: [ts.count, 3, s, s], storage: storage)
    }

    /// A picture of the grid: the image as the grid sees it (stretched to columns·S × rows·S), scaled
    /// so its longer side is `size` pixels, with tile borders drawn over it.
    public func gridPicture(
        of image: RGBImage, grid g: TileGrid? = nil, size: Int = 480,
        color: (UInt8, UInt8, UInt8) = (255, 40, 40)
    ) -> RGBImage {
        let g = g ?? grid(width: image.width, height: image.height)
        let unit = max(1, size / max(g.columns, g.rows))
        var pic = image.resizedBicubic(width: unit * g.columns, height: unit * g.rows)
        let thickness = max(1, unit / 64)
        for r in 0..<g.rows {
            for c in 0..<g.columns {
                pic.strokeRectangle(
                    x: c * unit, y: r * unit, width: unit, height: unit, color: color, thickness: thickness)
            }
        }
        return pic
    }
}
