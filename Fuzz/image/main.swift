// libFuzzer target: PNG or JPEG bytes through RGBImage.decode — the Swift header sniffer, the C shim
// over libpng / libjpeg-turbo (the shim is instrumented, the Debian libraries are not), the PIL-style
// conversion to RGB and the EXIF orientation. The pixel limit is lowered to 2²² so one input cannot
// use more than ~50 MB. Property: only ImageError is thrown; a decoded image is consistent.
import Foundation
import Imaging

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let image = try RGBImage.decode(bytes, file: "fuzz", maxPixels: 1 << 22)
        precondition(image.width > 0 && image.height > 0 && image.pixels.count == image.width * image.height * 3)
    } catch is ImageError {
    } catch {
        fatalError("untyped error: \(error)")
    }
    return 0
}
