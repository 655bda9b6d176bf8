// Bad images: wrong magic, empty files, sizes past the pixel limit (refused from the header, before any
// pixel memory), a lowered limit, and a JPEG frame header that claims 65535×65535.
import Foundation
import Testing
import Imaging
import _TestSupport

@Suite struct ImageRobustness {
    func error(_ bytes: [UInt8], maxPixels: Int = RGBImage.defaultMaxPixels) -> ImageError? {
        thrown { _ = try RGBImage.decode(bytes, file: "x", maxPixels: maxPixels) } as? ImageError
    }

    @Test func wrongMagicAndEmpty() {
        var png = pngClaiming(width: 4, height: 4)
        png[1] = 0x51 // "\x89QNG"
        guard case .unknownFormat("x", _)? = error(png) else {
            Issue.record("bad PNG magic: expected unknownFormat"); return
        }
        #expect(error([]) == .empty(file: "x"))
        #expect(error(Array("BM\u{0}\u{0}".utf8)) == .unknownFormat(file: "x", detected: "looks like BMP"))
        // A JPEG start marker followed by no marker at all.
        guard case .corrupt("x", .jpeg, _)? = error([0xFF, 0xD8, 0x00, 0x01, 0x02]) else {
            Issue.record("JPEG without markers: expected corrupt"); return
        }
        guard case .truncated("x", .jpeg, _)? = error([0xFF, 0xD8]) else {
            Issue.record("bare SOI: expected truncated"); return
        }
    }

    /// Fixtures/robustness (Fixtures/generate/robustness_files.py): a progressive JPEG with 2000 repeated scans is
    /// refused (more than 500 scans), and a PNG carrying 300 MiB of deflated text decodes to exactly its pixels
    /// without its text chunks being inflated (issue 23, items 3 and 10).
    @Test func decompressionAndScanBombs() throws {
        let dir = "\(repositoryRoot)/Fixtures/robustness"
        let jpeg = try Array(Data(contentsOf: URL(fileURLWithPath: "\(dir)/scans-bomb.jpg")))
        guard case .corrupt("x", .jpeg, let detail)? = error(jpeg), detail.contains("500 scans") else {
            Issue.record("scans bomb: expected corrupt (more than 500 scans), got \(String(describing: error(jpeg)))")
            return
        }
        let bomb = try RGBImage.load("\(dir)/ztxt-bomb.png")
        let plain = try RGBImage.load("\(repositoryRoot)/Fixtures/imaging/files/gradient.png")
        #expect(bomb.width == plain.width && bomb.height == plain.height && bomb.pixels == plain.pixels)
    }

    @Test func hugePNGDimensionsHitThePixelLimitBeforeAllocating() {
        // 10¹⁰ pixels (30 GB as RGB): refused from the IHDR alone.
        #expect(
            error(pngClaiming(width: 100_000, height: 100_000))
                == .tooManyPixels(file: "x", width: 100_000, height: 100_000, limit: RGBImage.defaultMaxPixels))
        #expect(
            error(pngClaiming(width: 0xFFFF_FFFF, height: 0xFFFF_FFFF))
                == .tooManyPixels(file: "x", width: 0xFFFF_FFFF, height: 0xFFFF_FFFF, limit: RGBImage.defaultMaxPixels))
        #expect(error(pngClaiming(width: 0, height: 7)) == .zeroSize(file: "x", width: 0, height: 7))
    }

    @Test func thePixelLimitCanBeLoweredAndRaised() throws {
        let path = "\(repositoryRoot)/Fixtures/tiny-random/example.png"
        let image = try RGBImage.load(path)
        #expect(throws: ImageError.tooManyPixels(file: path, width: image.width, height: image.height, limit: 100)) {
            try RGBImage.load(path, maxPixels: 100)
        }
        // 10⁸ pixels: over the default limit; under a raised one the header passes and the decoder
        // gives its own verdict on the (empty) pixel data.
        let big = pngClaiming(width: 20_000, height: 5_000)
        #expect(error(big) == .tooManyPixels(file: "x", width: 20_000, height: 5_000, limit: RGBImage.defaultMaxPixels))
        switch error(big, maxPixels: 100_000_000) {
        case .corrupt?, .truncated?: break
        case let other:
            Issue.record(
                "20000×5000 under a raised limit: expected corrupt or truncated, got \(String(describing: other))")
        }
    }

    @Test func hugeJPEGFrameHeader() {
        // SOI, SOF0 (length 17, precision 8, height 65535, width 65535, 3 components), EOI.
        let sof: [UInt8] = [
            0xFF, 0xC0, 0x00, 0x11, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x03,
            0x01, 0x11, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01
        ]
        #expect(
            error([0xFF, 0xD8] + sof + [0xFF, 0xD9])
                == .tooManyPixels(file: "x", width: 65535, height: 65535, limit: RGBImage.defaultMaxPixels))
    }
}
