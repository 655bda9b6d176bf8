// Every bad image input gets its own typed error, checked case by case (never just "it threw").
import Foundation
import Testing
import Imaging
import _TestSupport

private func temp(_ bytes: [UInt8], _ tag: String) -> String {
    let path = NSTemporaryDirectory() + "eaglet-bad-image-\(tag)-\(getpid())"
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return path
}

private func fileBytes(_ name: String) throws -> [UInt8] {
    let f = try Fixture.load("imaging")
    guard let d = FileManager.default.contents(atPath: f.path("files/\(name)")) else {
        throw FixtureError.missing(name)
    }
    return [UInt8](d)
}

/// The error `body` throws, if it is an ImageError.
private func imageError(_ body: () throws -> Void) -> ImageError? {
    do { try body(); return nil } catch let e as ImageError { return e } catch { return nil }
}

@Suite struct ImagingRejectsBadInput {
    @Test func truncatedPNGAndJPEG() throws {
        let png = try fileBytes("big.png"), jpg = try fileBytes("photo.jpg")
        for (bytes, format, tag) in [
            (Array(png.prefix(png.count / 2)), ImageFormat.png, "png-half"),
            (Array(png.prefix(20)), .png, "png-20"),
            (Array(jpg.prefix(jpg.count / 2)), .jpeg, "jpg-half"),
            (Array(jpg.prefix(100)), .jpeg, "jpg-100")
        ] {
            let p = temp(bytes, tag)
            let e = imageError { _ = try RGBImage.load(p) }
            guard case let .truncated(file, got, _) = e else {
                Issue.record("\(tag): expected truncated, got \(String(describing: e))"); continue
            }
            #expect(file == p && got == format, "\(tag)")
            #expect(e!.description.hasPrefix("\(p): truncated \(format.rawValue) file"))
        }
    }

    @Test func corruptPNGAndJPEG() throws {
        var png = try fileBytes("gradient.png")
        png[29] ^= 0xFF // the IHDR chunk's CRC no longer matches
        let p1 = temp(png, "png-crc")
        guard case let .corrupt(f1, .png, d1) = imageError({ _ = try RGBImage.load(p1) }) else {
            Issue.record("flipped IDAT byte: expected corrupt PNG"); return
        }
        #expect(f1 == p1 && d1.contains("CRC"), "libpng's reason: \(d1)")

        var jpg = try fileBytes("photo.jpg")
        let sof = (0..<jpg.count - 1).first { jpg[$0] == 0xFF && jpg[$0 + 1] == 0xC0 }!
        jpg[sof + 4] = 13 // sample precision 13 bits: not a JPEG libjpeg decodes
        let p2 = temp(jpg, "jpg-precision")
        guard case let .corrupt(f2, .jpeg, d2) = imageError({ _ = try RGBImage.load(p2) }) else {
            Issue.record("bad precision: expected corrupt JPEG"); return
        }
        #expect(f2 == p2 && d2.contains("precision"), "libjpeg's reason: \(d2)")
    }

    @Test func unknownFormatsAndEmptyFile() {
        let gif = temp(Array("GIF89a".utf8) + [1, 0, 1, 0, 0, 0, 0], "gif")
        #expect(throws: ImageError.unknownFormat(file: gif, detected: "looks like GIF")) { try RGBImage.load(gif) }
        let junk = temp([0x00, 0x11, 0x22, 0x33, 0x44], "junk")
        #expect(throws: ImageError.unknownFormat(file: junk, detected: "first bytes 00 11 22 33 44")) {
            try RGBImage.load(junk)
        }
        let empty = temp([], "empty")
        #expect(throws: ImageError.empty(file: empty)) { try RGBImage.load(empty) }
        #expect(throws: ImageError.cannotOpen(file: "/nonexistent/x.png", reason: "no such file or folder")) {
            try RGBImage.load("/nonexistent/x.png")
        }
    }

    @Test func zeroWidthOrHeight() throws {
        var png = try fileBytes("gradient.png")
        png[16...19] = [0, 0, 0, 0] // IHDR width 0
        let p = temp(png, "zero-w")
        #expect(throws: ImageError.zeroSize(file: p, width: 0, height: 45)) { try RGBImage.load(p) }
        var jpg = try fileBytes("photo.jpg")
        let sof = (0..<jpg.count - 1).first { jpg[$0] == 0xFF && jpg[$0 + 1] == 0xC0 }!
        jpg[sof + 5] = 0; jpg[sof + 6] = 0 // SOF height 0
        let q = temp(jpg, "zero-h")
        #expect(throws: ImageError.zeroSize(file: q, width: 61, height: 0)) { try RGBImage.load(q) }
    }

    @Test func tooManyPixelsIsRefusedBeforeDecoding() throws {
        // A 40-byte file whose header claims 100000 × 100000 pixels: refused from the header alone.
        var png = Array(try fileBytes("gradient.png").prefix(40))
        png[16...19] = [0x00, 0x01, 0x86, 0xA0]
        png[20...23] = [0x00, 0x01, 0x86, 0xA0]
        let p = temp(png, "bomb")
        #expect(
            throws: ImageError.tooManyPixels(file: p, width: 100_000, height: 100_000, limit: RGBImage.defaultMaxPixels)
        ) {
            try RGBImage.load(p)
        }
        // A real image over a configured limit; exactly at the limit is allowed.
        let real = temp(try fileBytes("photo.jpg"), "limit")
        #expect(throws: ImageError.tooManyPixels(file: real, width: 61, height: 37, limit: 61 * 37 - 1)) {
            try RGBImage.load(real, maxPixels: 61 * 37 - 1)
        }
        #expect(try RGBImage.load(real, maxPixels: 61 * 37).width == 61)
        #expect(RGBImage.defaultMaxPixels == 1024 * 1024 * 1024 / 4 / 3)
    }

    @Test func messagesNameTheFileAndWhatWasExpected() {
        #expect(
            ImageError.zeroSize(file: "a.png", width: 0, height: 5).description
                == "a.png: image has zero size (0×5); width and height must be at least 1")
        #expect(
            ImageError.unknownFormat(file: "b.gif", detected: "looks like GIF").description
                == "b.gif: unknown image format (looks like GIF); expected PNG or JPEG")
    }
}
