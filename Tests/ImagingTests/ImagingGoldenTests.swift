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
            let parts = key.split(separator: ".") // resize.NAME.EXT.WxH
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
            let d = PixelDifference(
                source.resizedBicubicNaive(width: size[0], height: size[1]), try fixtureImage(f, key))
            #expect(d.percentile999 <= 1 && d.maximum <= 3, "naive \(key): \(d)")
        }
    }

    @Test func fastResizeMatchesNaiveOnOddSizes() {
        let im = RGBImage(width: 37, height: 23) { x, y in
            (UInt8((x * 7 + y * 3) % 256), UInt8((x * y) % 256), UInt8(255 - (x * 5) % 256))
        }
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

@Suite struct EXIFOrientationParsing {
    /// A minimal TIFF block with one IFD0 entry: tag 0x0112 (Orientation), type SHORT, count 1.
    private func tiff(bigEndian: Bool, orientation: UInt16, type: UInt16 = 3) -> [UInt8] {
        func u16(_ v: UInt16) -> [UInt8] {
            bigEndian ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)]
        }
        func u32(_ v: UInt32) -> [UInt8] {
            bigEndian ? u16(UInt16(v >> 16)) + u16(UInt16(v & 0xFFFF)) : u16(UInt16(v & 0xFFFF)) + u16(UInt16(v >> 16))
        }
        return (bigEndian ? [0x4D, 0x4D] : [0x49, 0x49]) + u16(42) + u32(8) + u16(1)
            + u16(0x0112) + u16(type) + u32(1) + u16(orientation) + u16(0) + u32(0)
    }

    @Test func bothByteOrdersAndBadEntries() {
        for be in [false, true] {
            for o: UInt16 in 1...8 {
                #expect(
                    tiff(bigEndian: be, orientation: o).withUnsafeBufferPointer { exifOrientation($0) } == Int(o),
                    "big-endian \(be), \(o)")
            }
            #expect(
                tiff(bigEndian: be, orientation: 9).withUnsafeBufferPointer { exifOrientation($0) } == 1, "out of range"
            )
            #expect(
                tiff(bigEndian: be, orientation: 6, type: 4).withUnsafeBufferPointer { exifOrientation($0) } == 1,
                "not a SHORT")
        }
        let truncated = Array(tiff(bigEndian: false, orientation: 6).prefix(12))
        #expect(truncated.withUnsafeBufferPointer { exifOrientation($0) } == 1)
    }
}
