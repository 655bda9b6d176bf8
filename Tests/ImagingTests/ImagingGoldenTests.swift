// Imaging against PIL (Fixtures/imaging, from Fixtures/generate/imaging.py): decoding with transformers'
// load_image semantics, bicubic resize, and the PNG writer.
import Foundation
import Testing
import Imaging
import Tensor
import _TestSupport

/// The fixture's uint8 (H, W, 3) tensor `key` as an RGBImage.
func fixtureImage(_ f: Fixture, _ key: String) throws -> RGBImage {
    let t = try f.tensor(key)
    return RGBImage(width: t.shape[1], height: t.shape[0], pixels: t.storage.map { UInt8($0) })
}

/// An RGBImage as a Float tensor (H, W, 3), for assertClose.
func asTensor(_ im: RGBImage) -> Tensor {
    Tensor(shape: [im.height, im.width, 3], storage: im.pixels.map(Float.init))
}

@Suite struct ImagingMatchesPIL {
    let f: Fixture
    init() throws { f = try Fixture.load("imaging") }

    @Test func decodedFilesMatchPILLoadImage() throws {
        let keys = f.file.names.filter { $0.hasPrefix("decoded.") }
        #expect(keys.count >= 20)
        for key in keys {
            let name = String(key.dropFirst("decoded.".count))
            let image = try RGBImage.load(f.path("files/\(name)"))
            assertClose(asTensor(image), try f.tensor(key), .exact, name)
        }
    }

    @Test func exifOrientationsTransposeLikePIL() throws {
        // orientation 1 is the stored image; 2…8 must come out flipped/rotated exactly as PIL does.
        for o in 2...8 {
            let image = try RGBImage.load(f.path("files/exif\(o).png"))
            #expect((image.width, image.height) == (o >= 5 ? (7, 13) : (13, 7)), "orientation \(o)")
            assertClose(asTensor(image), try f.tensor("decoded.exif\(o).png"), .exact, "orientation \(o)")
        }
    }

    @Test func bicubicResizeMatchesPILBitForBit() throws {
        for key in f.file.names where key.hasPrefix("resize.") {
            let parts = key.split(separator: ".")                        // resize.NAME.EXT.WxH
            let name = parts[1] + "." + parts[2]
            let size = parts[3].split(separator: "x").compactMap { Int($0) }
            let source = try fixtureImage(f, "decoded.\(name)")
            let fast = source.resizedBicubic(width: size[0], height: size[1])
            assertClose(asTensor(fast), try f.tensor(key), .exact, "fast \(key)")
        }
    }

    @Test func naiveBicubicMeetsIssueBoundAgainstPIL() throws {
        // The issue's bound: 99.9th percentile of |Eaglet − PIL| ≤ 1 grey level, max ≤ 3.
        for key in f.file.names where key.hasPrefix("resize.") {
            let parts = key.split(separator: ".")
            let size = parts[3].split(separator: "x").compactMap { Int($0) }
            let source = try fixtureImage(f, "decoded.\(parts[1]).\(parts[2])")
            let d = PixelDifference(source.resizedBicubicNaive(width: size[0], height: size[1]), try fixtureImage(f, key))
            #expect(d.percentile999 <= 1 && d.maximum <= 3, "naive \(key): \(d)")
        }
    }

    @Test func fastResizeMatchesNaiveOnOddSizes() {
        let im = RGBImage(width: 37, height: 23) { x, y in (UInt8((x * 7 + y * 3) % 256), UInt8((x * y) % 256), UInt8(255 - (x * 5) % 256)) }
        for (w, h) in [(1, 1), (5, 41), (36, 24), (111, 7), (38, 22), (37, 9)] {
            let d = PixelDifference(im.resizedBicubic(width: w, height: h), im.resizedBicubicNaive(width: w, height: h))
            #expect(d.percentile999 <= 1 && d.maximum <= 3, "\(w)×\(h): \(d)")
        }
        #expect(im.resizedBicubic(width: 37, height: 23) == im)
    }

    @Test func normalizedMatchesRescaleThenNormalize() throws {
        // (p · 1/255 − 0.5) / 0.5 on the first tile of PIL's pipeline, where the crop is identity.
        let image = try fixtureImage(f, "decoded.gradient.png")
        let t = image.normalized()
        #expect(t.shape == [3, 45, 67])
        #expect(t[0, 0, 0] == -1 && t[0, 0, 66] == 1)
        let sample = image[x: 10, y: 20, c: 2]
        #expect(t[2, 20, 10] == (Float(Double(sample) / 255) - 0.5) / 0.5)
    }

    @Test func pngWriterRoundTripsThroughDecoder() throws {
        // Extra check beside the golden ones: what the writer writes, the decoder reads back unchanged.
        let image = try fixtureImage(f, "decoded.big.png")
        let path = NSTemporaryDirectory() + "eaglet-roundtrip-\(getpid()).png"
        try image.writePNG(to: path)
        #expect(try RGBImage.load(path) == image)
    }
}
