// Bad images: wrong magic, empty files, sizes past the pixel limit (refused from the header, before any
// pixel memory), a lowered limit, and a JPEG frame header that claims 65535×65535.
import Foundation
import Testing
import Imaging
import SafeTensors
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

/// Issue 23, item 9 and a minor item: an image file is judged by its first 64 KiB before the rest is read, and a
/// loop of symbolic links is named as one (it said "no such file").
@Suite struct ImageFileReads {
    /// Bytes this process has read through read(2) so far (/proc/self/io's rchar).
    func bytesRead() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("rchar:") {
            return Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// A 900 MB file that starts like a PNG whose first chunk is not IHDR: refused after its first bytes (the
    /// whole file used to be read, 900 MB of memory and reads, before the same error).
    @Test func aLargeFileWithABadHeaderIsNotReadWhole() throws {
        let path = try sparse("bad-header-900mb.png", size: 900_000_000)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.write(
            contentsOf: Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("tEXt".utf8)))
        try h.close()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let before = bytesRead()
        let e = thrown { _ = try RGBImage.load(path) } as? ImageError
        let after = bytesRead()
        guard case .corrupt(_, .png, let detail)? = e, detail.contains("IHDR") else {
            Issue.record("expected corrupt (first chunk is not IHDR), got \(String(describing: e))"); return
        }
        if let before, let after {
            #expect(after - before < 100_000_000, "read \(after - before) bytes of a file refused by its header")
        }
        // Too many pixels in the header is refused the same way.
        let big = scratch(
            "header-too-many-pixels.png",
            pngClaiming(width: 100_000, height: 100_000) + [UInt8](repeating: 0, count: 70_000))
        guard case .tooManyPixels? = thrown({ _ = try RGBImage.load(big) }) as? ImageError else {
            Issue.record("a header past the pixel limit: expected tooManyPixels"); return
        }
    }

    @Test func aLoopOfSymbolicLinksIsNamed() throws {
        let a = "\(scratchDirectory)/loop-a.png", b = "\(scratchDirectory)/loop-b.png"
        try? FileManager.default.removeItem(atPath: a)
        try? FileManager.default.removeItem(atPath: b)
        try FileManager.default.createSymbolicLink(atPath: a, withDestinationPath: b)
        try FileManager.default.createSymbolicLink(atPath: b, withDestinationPath: a)
        let e = thrown { _ = try RGBImage.load(a) }
        #expect("\(String(describing: e))".contains("loop of symbolic links"), "\(String(describing: e))")
        let m = thrown { _ = try Checkpoint(path: a) }
        #expect("\(String(describing: m))".contains("loop of symbolic links"), "\(String(describing: m))")
    }
}
