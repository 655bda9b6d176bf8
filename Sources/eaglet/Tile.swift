// `eaglet tile`: which grid Eagle 2.5's IAP rule picks for an image size (docs/spec.md §1.3), and a picture of
// it. `eaglet tile --width W --height H [--json]` or `eaglet tile IMAGE [--png OUT.png]`.
import ArgumentParser
import Eaglet
import Foundation

/// Tiling flags shared by `tile` and `preprocess`, spelled the same everywhere.
struct TilingOptions: ParsableArguments {
    @Option(help: "Smallest number of grid tiles.")
    var minTiles: Int = 1
    @Option(help: "Largest number of grid tiles (the thumbnail is extra).")
    var maxTiles: Int = 12
    @Option(help: "Tile side in pixels.")
    var tileSize: Int = 448
    @Option(help: "Refuse images with more pixels than this (default: PIL's 89478485).")
    var maxImagePixels: Int = RGBImage.defaultMaxPixels

    func validate() throws {
        if maxImagePixels < 1 { throw ValidationError("--max-image-pixels must be at least 1") }
        _ = try tiler()
    }

    func tiler(rule: TilingRule = .areaPreservation) throws -> Tiler {
        do {
            return try Tiler(TilingConfig(tileSize: tileSize, minTiles: minTiles, maxTiles: maxTiles), rule: rule)
        } catch let e as TilerError { throw ValidationError(e.description) }
    }
}

struct Tile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the tile grid Eagle 2.5's Image Area Preservation rule picks.",
        discussion: """
            With --width/--height: the grid for that size. With IMAGE: the grid for the image's size, and \
            with --png a picture of the grid drawn over the image as the model sees it. --json prints one \
            line {"columns":C,"rows":R,"tiles":N,"thumbnail":true|false}, N = C·R (thumbnail not counted).
            """)

    @Argument(help: "A PNG or JPEG image (instead of --width/--height).")
    var image: String?
    @Option(help: "Image width in pixels.")
    var width: Int?
    @Option(help: "Image height in pixels.")
    var height: Int?
    @OptionGroup var tiling: TilingOptions
    @Option(help: "Grid rule: iap (Eagle 2.5) or internvl (InternVL's aspect-only rule, for comparison).")
    var rule: String = "iap"
    @Option(help: "Write a picture of the grid over the image to this PNG (needs IMAGE).")
    var png: String?
    @Flag(help: "Print exactly one line of JSON.")
    var json = false

    func validate() throws {
        if image == nil {
            guard let width, let height else { throw ValidationError("give an IMAGE, or both --width and --height") }
            guard width > 0, height > 0, width <= maxImageSide, height <= maxImageSide else {
                throw ValidationError(
                    "--width and --height must be in 1 … \(maxImageSide) (got \(width)×\(height))")
            }
            guard png == nil else { throw ValidationError("--png needs an IMAGE to draw on") }
        } else if width != nil || height != nil {
            throw ValidationError("give either an IMAGE or --width/--height, not both")
        }
        guard TilingRule(rawValue: rule) != nil else {
            throw ValidationError("--rule must be iap or internvl (got \(rule))")
        }
    }

    func run() throws {
        try reportingInputErrors {
            let tiler = try tiling.tiler(rule: TilingRule(rawValue: rule) ?? .areaPreservation)
            var picture: RGBImage? = nil
            let (w, h): (Int, Int)
            if let image {
                let decoded = try RGBImage.load(image, maxPixels: tiling.maxImagePixels)
                (w, h) = (decoded.width, decoded.height)
                picture = decoded
            } else {
                (w, h) = (width ?? 1, height ?? 1)
            }
            let grid = tiler.grid(width: w, height: h)
            let thumbnail = tiler.hasThumbnail(grid)
            if let png, let picture {
                try tiler.gridPicture(of: picture, grid: grid).writePNG(to: png)
            }
            if json {
                print(
                    "{\"columns\":\(grid.columns),\"rows\":\(grid.rows),\"tiles\":\(grid.tiles),\"thumbnail\":\(thumbnail)}"
                )
                return
            }
            let s = tiler.config.tileSize
            print(
                "\(w)×\(h) → \(grid) grid (\(rule)): \(grid.tiles) tile\(grid.tiles == 1 ? "" : "s") of \(s)×\(s)"
                    + (thumbnail ? " + 1 thumbnail = \(grid.tiles + 1) tiles" : ""))
            let score = areaPreservationScore(grid, width: w, height: h, tileSize: s)
            print("resized to \(grid.columns * s)×\(grid.rows * s); IAP score \(String(format: "%.4f", score))")
            if let png { print("grid picture written to \(png)") }
        }
    }
}

/// The largest image side `tile` and `ads` accept from a flag (2²⁰ pixels); grid arithmetic on larger sides
/// would overflow.
let maxImageSide = 1 << 20
