// `eaglet preprocess IMAGE --dump OUT.safetensors`: the pixel_values (N, 3, S, S) Eagle 2.5's vision
// tower would read for an image — decode, IAP grid, bicubic resize, row-major tiles, thumbnail,
// rescale 1/255 and normalise with mean = std = 0.5 (docs/spec.md §1.5).
import ArgumentParser
import Eaglet
import Foundation

struct Preprocess: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn an image into pixel_values (N, 3, S, S) as the model sees them.",
        discussion: "Writes `pixel_values` (F32) and `image_sizes` (I64, [[height, width]]) to the safetensors file.")

    @Argument(help: "A PNG or JPEG image.")
    var image: String
    @OptionGroup var tiling: TilingOptions
    @Option(help: "The safetensors file to write.")
    var dump: String

    func run() throws {
        try reportingInputErrors {
            let tiler = try tiling.tiler()
            let decoded = try RGBImage.load(image, maxPixels: tiling.maxImagePixels)
            let grid = tiler.grid(width: decoded.width, height: decoded.height)
            let values = tiler.pixelValues(decoded)
            var writer = SafeTensorsWriter()
            writer.metadata = ["producer": "eaglet \(eagletVersion) preprocess", "grid": "\(grid.columns)x\(grid.rows)"]
            writer.add("pixel_values", values)
            writer.add("image_sizes", integers: [Int64(decoded.height), Int64(decoded.width)], shape: [1, 2])
            try writer.write(to: dump)
            print(
                "\(image): \(decoded.width)×\(decoded.height) → \(grid) grid"
                    + (tiler.hasThumbnail(grid) ? " + thumbnail" : "")
                    + " → pixel_values \(values.shape) written to \(dump)")
        }
    }
}
