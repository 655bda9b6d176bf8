// Decoding PNG and JPEG into RGBImage the way transformers' `load_image` does with PIL:
// `ImageOps.exif_transpose(image)` then `image.convert("RGB")`, quirks included.
//
// What PIL does, and so what this does (each checked against PIL in Fixtures/imaging):
//   * alpha is dropped, not composited over any background (RGBA, LA, palette with tRNS);
//   * grey (L) is replicated into R = G = B; 1-, 2- and 4-bit grey are scaled to 8 bits (×255, ×85, ×17);
//   * 16-bit RGB(A) and grey+alpha keep the high byte of each sample; 16-bit grey alone is PIL mode
//     "I;16", whose conversion to RGB *clamps* the 16-bit value to 255 (so a 16-bit grey of 1000 is white);
//   * JPEG: libjpeg's ISLOW DCT with fancy upsampling; CMYK (inverted when an Adobe marker is present)
//     converts with R = (255 − K) − (C·(255 − K) / 255) rounded, as PIL's cmyk2rgb;
//   * an EXIF orientation 2…8 (JPEG APP1, PNG eXIf) flips/rotates the pixels; gamma, sRGB and ICC
//     profiles are ignored.
// Sizes are read from the header first, so zero sizes and decompression bombs are refused before any
// pixel memory is allocated.
//
// What it is not: a decoder for GIF, BMP, WebP or TIFF (recognised by magic bytes, then refused).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import _Essentials
#if canImport(Glibc)
import Glibc
#endif
import _ImageCodecs

/// What the first bytes of a file say.
public struct ImageHeader: Equatable, Sendable {
    public let format: ImageFormat
    public let width: Int
    public let height: Int
}

extension RGBImage {
    /// PIL's decompression-bomb threshold (`Image.MAX_IMAGE_PIXELS`): 1024·1024·1024 / 4 / 3 pixels.
    public static let defaultMaxPixels = 89_478_485
    /// The largest image file read (1 GiB): checked from the file's size before a byte is read.
    public static let maxFileBytes = 1 << 30

    /// How much of a file `load` reads before deciding whether to read the rest.
    static let headerReadBytes = 1 << 16

    /// The header of `bytes` (or of their first part), checked: a known format, no zero side, at most
    /// `maxPixels` pixels.
    static func checkedHeader(_ bytes: [UInt8], file: String, maxPixels: Int) throws -> ImageHeader {
        let header = try sniffImageHeader(bytes, file: file)
        guard header.width > 0, header.height > 0 else {
            throw ImageError.zeroSize(file: file, width: header.width, height: header.height)
        }
        let (count, overflow) = header.width.multipliedReportingOverflow(by: header.height)
        guard !overflow, count <= maxPixels else {
            throw ImageError.tooManyPixels(file: file, width: header.width, height: header.height, limit: maxPixels)
        }
        return header
    }

    /// Reads and decodes the PNG or JPEG at `path` (see the file header for the conversion rules).
    public static func load(_ path: String, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        guard let isDir = Path.isDirectory(path) else {
            throw ImageError.cannotOpen(file: path, reason: Path.whyUnreachable(path))
        }
        guard !isDir else { throw ImageError.cannotOpen(file: path, reason: "is a folder") }
        let data: [UInt8]
        do {
            // The header first: a file that is not a PNG or JPEG, or whose size is refused, costs 64 KiB.
            data = try readRegularFile(path, limit: maxFileBytes, headerBytes: headerReadBytes) { prefix, size in
                do {
                    _ = try checkedHeader(prefix, file: path, maxPixels: maxPixels)
                } catch ImageError.truncated(_, _, _) where prefix.count < size {
                    // a JPEG whose frame header lies past the first bytes: decided on the whole file
                }
            }
        } catch let e as ImageError {
            throw e
        } catch {
            throw ImageError.cannotOpen(file: path, reason: "\(error)")
        }
        return try decode(data, file: path, maxPixels: maxPixels)
    }

    /// Decodes PNG or JPEG bytes; `file` names them in errors.
    public static func decode(_ bytes: [UInt8], file: String = "<memory>", maxPixels: Int = defaultMaxPixels) throws
        -> RGBImage
    {
        let header = try checkedHeader(bytes, file: file, maxPixels: maxPixels)
        var raw = eaglet_raw_image()
        var message = [CChar](repeating: 0, count: 256)
        let status: Int32 = bytes.withUnsafeBufferPointer { b in
            switch header.format {
            case .png:
                return eaglet_png_decode(b.baseAddress, b.count, UInt64(maxPixels), &raw, &message, message.count)
            case .jpeg:
                return eaglet_jpeg_decode(b.baseAddress, b.count, UInt64(maxPixels), &raw, &message, message.count)
            }
        }
        defer { eaglet_raw_image_free(&raw) }
        let detail = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        switch Int(status) {
        case Int(EAGLET_CODEC_OK): break
        case Int(EAGLET_CODEC_TRUNCATED): throw ImageError.truncated(file: file, format: header.format, detail: detail)
        case Int(EAGLET_CODEC_TOO_LARGE):
            throw ImageError.tooManyPixels(file: file, width: header.width, height: header.height, limit: maxPixels)
        case Int(EAGLET_CODEC_ZERO_SIZE):
            throw ImageError.zeroSize(file: file, width: header.width, height: header.height)
        default: throw ImageError.corrupt(file: file, format: header.format, detail: detail)
        }
        var image = convertToRGB(raw, format: header.format)
        if let exif = raw.exif, raw.exif_size > 0 {
            let orientation = exifOrientation(UnsafeBufferPointer(start: exif, count: raw.exif_size))
            image = image.applyingEXIFOrientation(orientation)
        }
        return image
    }
}

/// Reads format and size from the first bytes: the PNG IHDR chunk, or a JPEG's first SOFn segment.
public func sniffImageHeader(_ b: [UInt8], file: String) throws -> ImageHeader {
    let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    if b.isEmpty { throw ImageError.empty(file: file) }
    func be16(_ i: Int) -> Int { Int(b[i]) << 8 | Int(b[i + 1]) }
    func be32(_ i: Int) -> Int { Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
    if b.starts(with: pngSignature) || pngSignature.starts(with: b) {
        guard b.count >= 24 else {
            throw ImageError.truncated(file: file, format: .png, detail: "\(b.count) bytes, the IHDR chunk needs 24")
        }
        guard b[12...15].elementsEqual("IHDR".utf8) else {
            throw ImageError.corrupt(file: file, format: .png, detail: "first chunk is not IHDR")
        }
        return ImageHeader(format: .png, width: be32(16), height: be32(20))
    }
    if b.count >= 2, b[0] == 0xFF, b[1] == 0xD8 {
        var i = 2
        while true {
            // a marker: one or more 0xFF, then its code
            guard i < b.count else {
                throw ImageError.truncated(file: file, format: .jpeg, detail: "data ends before the frame header (SOF)")
            }
            guard b[i] == 0xFF else {
                throw ImageError.corrupt(file: file, format: .jpeg, detail: "expected a marker at byte \(i)")
            }
            while i < b.count, b[i] == 0xFF { i += 1 }
            guard i < b.count else {
                throw ImageError.truncated(file: file, format: .jpeg, detail: "data ends before the frame header (SOF)")
            }
            let marker = b[i]
            i += 1
            if marker == 0x01 || (0xD0...0xD8).contains(marker) { continue } // standalone markers
            if marker == 0xD9 || marker == 0xDA {
                throw ImageError.corrupt(
                    file: file, format: .jpeg, detail: "no frame header (SOF) before the scan data")
            }
            guard i + 2 <= b.count else {
                throw ImageError.truncated(file: file, format: .jpeg, detail: "data ends inside a segment header")
            }
            let length = be16(i)
            guard length >= 2 else {
                throw ImageError.corrupt(file: file, format: .jpeg, detail: "segment length \(length) at byte \(i)")
            }
            let isSOF = (0xC0...0xCF).contains(marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC
            if isSOF {
                guard i + 7 <= b.count else {
                    throw ImageError.truncated(file: file, format: .jpeg, detail: "data ends inside the frame header")
                }
                return ImageHeader(format: .jpeg, width: be16(i + 5), height: be16(i + 3))
            }
            i += length
        }
    }
    let known: [(String, [UInt8])] = [
        ("GIF", Array("GIF8".utf8)), ("BMP", Array("BM".utf8)),
        ("TIFF", [0x49, 0x49, 0x2A, 0x00]), ("TIFF", [0x4D, 0x4D, 0x00, 0x2A])
    ]
    for (name, magic) in known where b.starts(with: magic) {
        throw ImageError.unknownFormat(file: file, detected: "looks like \(name)")
    }
    if b.count >= 12, b[0..<4].elementsEqual("RIFF".utf8), b[8..<12].elementsEqual("WEBP".utf8) {
        throw ImageError.unknownFormat(file: file, detected: "looks like WebP")
    }
    let shown = b.prefix(8).map {
        String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16)
    }
    throw ImageError.unknownFormat(file: file, detected: "first bytes \(shown.joined(separator: " "))")
}

/// PIL's `convert("RGB")` of what the shim decoded (see the file header for each rule).
func convertToRGB(_ raw: eaglet_raw_image, format: ImageFormat) -> RGBImage {
    let w = Int(raw.width), h = Int(raw.height), ch = Int(raw.channels), n = w * h
    let bytesPerSample = Int(raw.bit_depth) / 8
    var out = [UInt8](repeating: 0, count: n * 3)
    guard let src = raw.pixels else { return RGBImage(width: w, height: h, pixels: out) }
    /// Sample s of pixel i, narrowed to 8 bits as PIL does.
    let greyOnly16 = format == .png && bytesPerSample == 2 && ch == 1
    @inline(__always) func sample(_ i: Int, _ s: Int) -> Int {
        let o = (i * ch + s) * bytesPerSample
        if bytesPerSample == 1 { return Int(src[o]) }
        if greyOnly16 { return min(Int(src[o]) << 8 | Int(src[o + 1]), 255) } // "I;16" → RGB clamps
        return Int(src[o]) // high byte
    }
    let isCMYK = format == .jpeg && ch == 4
    for i in 0..<n {
        switch ch {
        case 1, 2:
            let g = UInt8(sample(i, 0))
            out[i * 3] = g; out[i * 3 + 1] = g; out[i * 3 + 2] = g
        default:
            if isCMYK {
                let flip = raw.adobe_inverted != 0 ? 255 : 0
                let nk = 255 - abs(flip - sample(i, 3))
                for c in 0..<3 { out[i * 3 + c] = UInt8(clamping: nk - mulDiv255(abs(flip - sample(i, c)), nk)) }
            } else {
                for c in 0..<3 { out[i * 3 + c] = UInt8(sample(i, c)) }
            }
        }
    }
    return RGBImage(width: w, height: h, pixels: out)
}

/// a·b/255 rounded to nearest, exactly as PIL computes it in integers.
@inline(__always) func mulDiv255(_ a: Int, _ b: Int) -> Int {
    let t = a * b + 128
    return ((t >> 8) + t) >> 8
}

/// The EXIF orientation (tag 0x0112 of IFD0) in a TIFF-format EXIF block; 1 when absent or unreadable.
public func exifOrientation(_ tiff: UnsafeBufferPointer<UInt8>) -> Int {
    guard tiff.count >= 8 else { return 1 }
    let little: Bool
    if tiff[0] == 0x49, tiff[1] == 0x49 {
        little = true
    } else if tiff[0] == 0x4D, tiff[1] == 0x4D {
        little = false
    } else {
        return 1
    }
    func u16(_ i: Int) -> Int? {
        guard i >= 0, i + 2 <= tiff.count else { return nil }
        return little ? Int(tiff[i]) | Int(tiff[i + 1]) << 8 : Int(tiff[i]) << 8 | Int(tiff[i + 1])
    }
    func u32(_ i: Int) -> Int? {
        guard let a = u16(i), let b = u16(i + 2) else { return nil }
        return little ? a | b << 16 : a << 16 | b
    }
    guard let ifd = u32(4), let count = u16(ifd) else { return 1 }
    for e in 0..<count {
        let entry = ifd + 2 + e * 12
        guard let tag = u16(entry), let type = u16(entry + 2) else { return 1 }
        if tag == 0x0112 {
            guard type == 3, let v = u16(entry + 8), (1...8).contains(v) else { return 1 }
            return v
        }
    }
    return 1
}

extension RGBImage {
    /// `ImageOps.exif_transpose`: orientation 2 mirror, 3 rotate 180°, 4 flip, 5 transpose,
    /// 6 rotate 90° clockwise, 7 transverse, 8 rotate 90° counter-clockwise; anything else unchanged.
    public func applyingEXIFOrientation(_ orientation: Int) -> RGBImage {
        guard (2...8).contains(orientation) else { return self }
        let swaps = orientation >= 5
        let ow = swaps ? height : width, oh = swaps ? width : height
        let (w, h) = (width, height)
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<oh {
            for x in 0..<ow {
                let (sx, sy): (Int, Int)
                switch orientation {
                case 2: (sx, sy) = (w - 1 - x, y)
                case 3: (sx, sy) = (w - 1 - x, h - 1 - y)
                case 4: (sx, sy) = (x, h - 1 - y)
                case 5: (sx, sy) = (y, x)
                case 6: (sx, sy) = (y, h - 1 - x)
                case 7: (sx, sy) = (w - 1 - y, h - 1 - x)
                default: (sx, sy) = (w - 1 - y, x)
                }
                let o = (y * ow + x) * 3, s = (sy * w + sx) * 3
                out[o] = pixels[s]; out[o + 1] = pixels[s + 1]; out[o + 2] = pixels[s + 2]
            }
        }
        return RGBImage(width: ow, height: oh, pixels: out)
    }
}
