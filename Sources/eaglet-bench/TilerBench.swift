// `eaglet-bench tiler`: image → pixel_values (decode excluded) for a 16:9 frame of width W at the
// default config (448 px tiles, up to 12, thumbnail): the naive Double resize vs the PIL-arithmetic
// fixed-point resize, vs PIL + numpy doing the same pipeline (Fixtures/generate/bench_torch.py, case
// "tiler"). Rate: tiles (448×448×3 floats) per second.
import ArgumentParser
import Eaglet
import Foundation

struct TilerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tiler", abstract: "Tiling pipeline (resize, cut, thumbnail, normalise): naive vs fast vs PIL.")

    @Option(help: "Comma-separated image widths (height = width·9/16).")
    var sizes: String = "640,1920,3840"
    @OptionGroup var common: CommonOptions

    func run() throws {
        let widths = sizes.split(separator: ",").compactMap { Int($0) }
        var results = [BenchResult]()
        let pilAvailable = !common.noTorch && runTorch(["tiler", "--size", "64", "--repeats", "1"], threads: 1) != nil
        for w in widths {
            for variant in ["naive", "fast"] {
                FileHandle.standardError.write(Data("tiler \(variant) \(w)x\(w * 9 / 16)…\n".utf8))
                if let r = runCase(
                    ["tiler", "--variant", variant, "--size", String(w), "--repeats", variant == "naive" ? "1" : "5"],
                    threads: 1)
                {
                    results.append(r)
                }
            }
            if pilAvailable, let r = runTorch(["tiler", "--size", String(w), "--repeats", "5"], threads: 1) {
                results.append(r)
            }
        }
        printTable(results)
        print("")
        for w in widths {
            let row = results.filter { $0.size == "\(w)x\(w * 9 / 16)" }
            func rate(_ v: String) -> Double { row.first { $0.variant == v }?.rate ?? .nan }
            print(
                String(
                    format: "%5dx%-5d fast/naive %6.1f×   fast/PIL %5.2f", w, w * 9 / 16, rate("fast") / rate("naive"),
                    rate("fast") / rate("pil")))
        }
        if common.csv {
            try appendCSV(results, to: common.csvPath, machine: machineDescription(blasCore: BLAS.coreName))
        }
    }
}

/// The child-process side of a tiler case.
func tilerCase(variant: String, width: Int, repeats: Int) throws -> BenchResult {
    let height = width * 9 / 16
    let image = RGBImage(width: width, height: height) { x, y in
        (UInt8(x * 255 / max(1, width - 1)), UInt8(y * 255 / max(1, height - 1)), UInt8((x ^ y) & 255))
    }
    let tiler = try Tiler()
    var tiles = 0
    let t = medianTime(repeats: repeats, warmup: variant == "naive" ? 0 : 1) {
        tiles = tiler.pixelValues(image, compute: variant == "naive" ? .reference : .fast(threads: 1)).shape[0]
    }
    return BenchResult(
        name: "tiler", variant: variant, size: "\(width)x\(height)", threads: 1, medianSeconds: t,
        rate: Double(tiles) / t, unit: "tiles/s", peakRSSBytes: peakRSSBytes())
}
