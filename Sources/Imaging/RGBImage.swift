// RGBImage: the 8-bit RGB picture every later stage starts from, and the typed errors of Imaging.
//
// What it is: width, height and H·W·3 bytes, row-major, channels interleaved (R, G, B) — what PIL's
// `Image.convert("RGB")` holds and `np.asarray` shows as (H, W, 3). Cropping, drawing a few shapes for
// pictures, and conversion to the model's planar float tensor (Normalize.swift) live beside it.
//
// What it is not: a general image library. No alpha, no colour management, no other bit depths: the
// decoders (Decode.swift) reduce every input to this, the way transformers' `load_image` does.

/// An 8-bit RGB image, (H, W, 3) interleaved, row-major.
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// `height · width · 3` bytes: pixel (x, y) channel c at `(y · width + x) · 3 + c`.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(
            width >= 0 && height >= 0 && pixels.count == width * height * 3,
            "RGBImage: \(width)×\(height) needs \(width * height * 3) bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A `width`×`height` image filled with one colour.
    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (0, 0, 0)) {
        var p = [UInt8](repeating: 0, count: width * height * 3)
        for i in stride(from: 0, to: p.count, by: 3) { p[i] = fill.0; p[i + 1] = fill.1; p[i + 2] = fill.2 }
        self.init(width: width, height: height, pixels: p)
    }

    /// An image whose pixel (x, y) is `f(x, y)`.
    public init(width: Int, height: Int, _ f: (Int, Int) -> (UInt8, UInt8, UInt8)) {
        var p = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let c = f(x, y), o = (y * width + x) * 3
                p[o] = c.0; p[o + 1] = c.1; p[o + 2] = c.2
            }
        }
        self.init(width: width, height: height, pixels: p)
    }

    /// Channel `c` of pixel (x, y).
    public subscript(x x: Int, y y: Int, c c: Int) -> UInt8 {
        get { pixels[(y * width + x) * 3 + c] }
        set { pixels[(y * width + x) * 3 + c] = newValue }
    }

    /// The `w`×`h` rectangle whose top-left corner is (x, y) (must lie inside the image), as PIL's
    /// `crop((x, y, x + w, y + h))`.
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> RGBImage {
        precondition(
            x >= 0 && y >= 0 && w >= 0 && h >= 0 && x + w <= width && y + h <= height,
            "RGBImage.cropped: (\(x), \(y), \(w)×\(h)) outside \(width)×\(height)")
        var out = [UInt8](repeating: 0, count: w * h * 3)
        for row in 0..<h {
            let src = ((y + row) * width + x) * 3
            out.replaceSubrange(row * w * 3..<(row + 1) * w * 3, with: pixels[src..<src + w * 3])
        }
        return RGBImage(width: w, height: h, pixels: out)
    }
}

/// The formats Eaglet decodes.
public enum ImageFormat: String, Sendable, Equatable {
    case png = "PNG"
    case jpeg = "JPEG"
}

/// Why an image could not be read or written. Every case names the file.
public enum ImageError: Error, Equatable, CustomStringConvertible, Sendable {
    case cannotOpen(file: String, reason: String)
    /// The file holds no bytes at all.
    case empty(file: String)
    /// Neither PNG nor JPEG. `detected` names a format recognised by its magic bytes, or shows the bytes.
    case unknownFormat(file: String, detected: String)
    /// The data ends before the image does.
    case truncated(file: String, format: ImageFormat, detail: String)
    /// The decoder rejected the data.
    case corrupt(file: String, format: ImageFormat, detail: String)
    case zeroSize(file: String, width: Int, height: Int)
    /// width·height exceeds the limit; refused before any pixel memory is allocated.
    case tooManyPixels(file: String, width: Int, height: Int, limit: Int)
    case cannotWrite(file: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(f, r): return "\(f): cannot open image (\(r))"
        case let .empty(f): return "\(f): empty file, expected a PNG or JPEG image"
        case let .unknownFormat(f, d): return "\(f): unknown image format (\(d)); expected PNG or JPEG"
        case let .truncated(f, fmt, d): return "\(f): truncated \(fmt.rawValue) file (\(d))"
        case let .corrupt(f, fmt, d): return "\(f): corrupt \(fmt.rawValue) file (\(d))"
        case let .zeroSize(f, w, h): return "\(f): image has zero size (\(w)×\(h)); width and height must be at least 1"
        case let .tooManyPixels(f, w, h, lim):
            return
                "\(f): image is \(w)×\(h) = \(w.multipliedReportingOverflow(by: h).partialValue) pixels, more than the limit of \(lim) (a decompression-bomb guard; raise --max-image-pixels to allow it)"
        case let .cannotWrite(f, r): return "\(f): cannot write image (\(r))"
        }
    }
}

extension ImageError: CustomDebugStringConvertible {
    public var debugDescription: String { description }
}
