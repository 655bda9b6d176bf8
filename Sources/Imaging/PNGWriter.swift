// Writing RGBImage as PNG (libpng through the C shim), and the few drawing primitives the chapters'
// pictures need: filled rectangles, rectangle outlines, side-by-side composition.
//
// What it is not: a drawing library (no anti-aliasing, no text).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import _ImageCodecs

extension RGBImage {
    /// The image encoded as an 8-bit RGB PNG (zlib level 9).
    public func pngData() throws -> [UInt8] {
        guard width > 0, height > 0 else { throw ImageError.cannotWrite(file: "<memory>", reason: "zero-size image") }
        var buffer: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = pixels.withUnsafeBufferPointer { p in
            eaglet_png_encode_rgb8(
                p.baseAddress, UInt32(width), UInt32(height), &buffer, &size, &message, message.count)
        }
        guard status == EAGLET_CODEC_OK, let buffer else {
            let detail = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw ImageError.cannotWrite(file: "<memory>", reason: "libpng: \(detail)")
        }
        defer { eaglet_buffer_free(buffer) }
        return Array(UnsafeBufferPointer(start: buffer, count: size))
    }

    /// Writes the image as PNG to `path`.
    public func writePNG(to path: String) throws {
        let bytes: [UInt8]
        do { bytes = try pngData() } catch ImageError.cannotWrite(_, let reason) {
            throw ImageError.cannotWrite(file: path, reason: reason)
        }
        do { try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw ImageError.cannotWrite(file: path, reason: "\(error)")
        }
    }

    /// Fills the rectangle [x, x+w) × [y, y+h), clipped to the image.
    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, color: (UInt8, UInt8, UInt8)) {
        let x0 = max(0, x), y0 = max(0, y), x1 = min(width, x + w), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        for yy in y0..<y1 {
            for xx in x0..<x1 {
                let o = (yy * width + xx) * 3
                pixels[o] = color.0; pixels[o + 1] = color.1; pixels[o + 2] = color.2
            }
        }
    }

    /// Draws the outline of [x, x+w) × [y, y+h) with lines `thickness` pixels wide, inside the rectangle.
    public mutating func strokeRectangle(
        x: Int, y: Int, width w: Int, height h: Int,
        color: (UInt8, UInt8, UInt8), thickness t: Int = 1
    ) {
        fill(x: x, y: y, width: w, height: t, color: color)
        fill(x: x, y: y + h - t, width: w, height: t, color: color)
        fill(x: x, y: y, width: t, height: h, color: color)
        fill(x: x + w - t, y: y, width: t, height: h, color: color)
    }

    /// Images placed left to right on a background, `gap` pixels apart and around, tops aligned.
    public static func sideBySide(
        _ images: [RGBImage], gap: Int = 8, background: (UInt8, UInt8, UInt8) = (255, 255, 255)
    ) -> RGBImage {
        let w = images.reduce(gap) { $0 + $1.width + gap }
        let h = (images.map(\.height).max() ?? 0) + 2 * gap
        var canvas = RGBImage(width: w, height: h, fill: background)
        var x = gap
        for im in images {
            for row in 0..<im.height {
                let dst = ((gap + row) * w + x) * 3
                canvas.pixels.replaceSubrange(
                    dst..<dst + im.width * 3, with: im.pixels[row * im.width * 3..<(row + 1) * im.width * 3])
            }
            x += im.width + gap
        }
        return canvas
    }
}
